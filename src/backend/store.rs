//! The in-memory tenant behind the local backend (and, later, the emulator): a
//! [`TenantFile`] with the People API's and Directory API's semantics on top —
//! lookups by alias, nested group expansion, resource names, etags that change
//! with the content, 409 on a duplicate group name, stale-etag refusal.
//!
//! Ids, resource names and etags missing from the file are derived from stable
//! inputs (addresses, positions, content) so two loads of one file agree, and a
//! saved plan made from one load can be applied on the next.

use std::collections::HashSet;

use serde_json::Value;

use super::tenant::{SYSTEM_GROUPS, TenantContact, TenantContactGroup, TenantFile, TenantUser};
use super::{ContactUpdate, Error, NewContact, Result, UserScope};
use crate::model::{
    ClientData, Contact, ContactGroup, DirectoryUser, PERSON_FIELDS, PersonFields, in_org_unit,
    short_hash,
};

/// A tenant held in memory.
#[derive(Debug, Clone)]
pub struct Store {
    tenant: TenantFile,
    dirty: bool,
}

impl Store {
    /// Wraps a parsed file, assigning whatever ids, resource names and etags it lacks.
    pub fn new(mut tenant: TenantFile) -> Self {
        for user in &mut tenant.users {
            if user.id.is_none() {
                let digits: String = short_hash(&[&user.primary_email.to_lowercase()])
                    .chars()
                    .map(|c| char::from(b'0' + (c.to_digit(16).unwrap_or(0) % 10) as u8))
                    .collect();
                user.id = Some(format!("1{digits}"));
            }
            let email = user.primary_email.to_lowercase();
            for group in &mut user.contact_groups {
                if group.resource_name.is_none() {
                    group.resource_name =
                        Some(format!("contactGroups/{}", short_hash(&[&email, &group.name])));
                }
                group.etag = Some(group_etag(group));
            }
            let mut taken = HashSet::new();
            for (i, contact) in user.contacts.iter_mut().enumerate() {
                if contact.resource_name.is_none() {
                    contact.resource_name =
                        Some(format!("people/c{}", short_hash(&[&email, &i.to_string()])));
                }
                if !taken.insert(contact.resource_name.clone()) {
                    contact.resource_name =
                        Some(format!("people/c{}", short_hash(&[&email, &i.to_string(), "dup"])));
                }
                contact.etag = Some(contact_etag(contact));
            }
        }
        Self { tenant, dirty: false }
    }

    /// The tenant as it stands, for writing back.
    pub fn tenant(&self) -> &TenantFile {
        &self.tenant
    }

    /// Whether anything changed since load (ids assigned on load do not count).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the current state as written.
    pub fn mark_clean(&mut self) {
        self.dirty = false;
    }

    fn user_index(&self, key: &str) -> Option<usize> {
        let key_lc = key.to_lowercase();
        self.tenant.users.iter().position(|u| {
            u.id.as_deref() == Some(key)
                || u.primary_email.to_lowercase() == key_lc
                || u.aliases.iter().any(|a| a.to_lowercase() == key_lc)
        })
    }

    fn user_mut(&mut self, key: &str) -> Result<&mut TenantUser> {
        let i =
            self.user_index(key).ok_or_else(|| Error::NotFound { what: format!("user {key}") })?;
        self.dirty = true;
        Ok(&mut self.tenant.users[i])
    }

    fn user_ref(&self, key: &str) -> Result<&TenantUser> {
        let i =
            self.user_index(key).ok_or_else(|| Error::NotFound { what: format!("user {key}") })?;
        Ok(&self.tenant.users[i])
    }

    /// `users.get`: by primary address, alias or id.
    pub fn user(&self, key: &str) -> Option<DirectoryUser> {
        self.user_index(key).map(|i| directory_user(&self.tenant.users[i]))
    }

    /// `users.list`.
    pub fn users(&self, scope: &UserScope) -> Vec<DirectoryUser> {
        self.tenant
            .users
            .iter()
            .filter(|u| match scope {
                UserScope::All => true,
                UserScope::Domain(d) => {
                    u.primary_email.rsplit('@').next().is_some_and(|ud| ud.eq_ignore_ascii_case(d))
                }
                UserScope::OrgUnit(path) => in_org_unit(&u.org_unit_path, path),
            })
            .map(directory_user)
            .collect()
    }

    /// `members.list` with `includeDerivedMembership`: users' primary addresses.
    pub fn group_members(&self, group: &str) -> Option<Vec<String>> {
        let find =
            |email: &str| self.tenant.groups.iter().find(|g| g.email.eq_ignore_ascii_case(email));
        let root = find(group)?;
        let mut seen_groups = HashSet::from([root.email.to_lowercase()]);
        let mut queue = vec![root];
        let mut members = Vec::new();
        let mut seen_users = HashSet::new();
        while let Some(g) = queue.pop() {
            for member in &g.members {
                if let Some(nested) = find(member) {
                    if seen_groups.insert(nested.email.to_lowercase()) {
                        queue.push(nested);
                    }
                } else if let Some(i) = self.user_index(member) {
                    let email = self.tenant.users[i].primary_email.clone();
                    if seen_users.insert(email.to_lowercase()) {
                        members.push(email);
                    }
                }
            }
        }
        Some(members)
    }

    /// `members.list` without derived membership: direct members as (address, is a
    /// group).
    pub fn direct_members(&self, group: &str) -> Option<Vec<(String, bool)>> {
        let is_group =
            |email: &str| self.tenant.groups.iter().any(|g| g.email.eq_ignore_ascii_case(email));
        let g = self.tenant.groups.iter().find(|g| g.email.eq_ignore_ascii_case(group))?;
        Some(g.members.iter().map(|m| (m.clone(), is_group(m))).collect())
    }

    /// `contactGroups.list`: user groups plus the system groups.
    pub fn contact_groups(&self, user: &str) -> Result<Vec<ContactGroup>> {
        let u = self.user_ref(user)?;
        let mut groups: Vec<ContactGroup> = SYSTEM_GROUPS
            .iter()
            .map(|(id, name)| ContactGroup {
                resource_name: format!("contactGroups/{id}"),
                etag: short_hash(&[id]),
                name: (*name).to_owned(),
                client_data: Vec::new(),
                system: true,
            })
            .collect();
        groups.extend(u.contact_groups.iter().map(|g| ContactGroup {
            resource_name: g.resource_name.clone().unwrap_or_default(),
            etag: g.etag.clone().unwrap_or_default(),
            name: g.name.clone(),
            client_data: g.client_data.clone(),
            system: false,
        }));
        Ok(groups)
    }

    /// `people.connections.list` with every field.
    pub fn contacts(&self, user: &str) -> Result<Vec<Contact>> {
        let u = self.user_ref(user)?;
        Ok(u.contacts.iter().map(|c| to_contact(u, c)).collect())
    }

    /// `people.batchCreateContacts`.
    pub fn create_contacts(&mut self, user: &str, new: Vec<NewContact>) -> Result<Vec<Contact>> {
        let u = self.user_mut(user)?;
        let email = u.primary_email.to_lowercase();
        let mut created = Vec::with_capacity(new.len());
        for contact in new {
            let contact_groups = group_names(u, &contact.memberships)?;
            let mut fields = serde_json::Map::new();
            for (k, v) in contact.fields {
                if PERSON_FIELDS.contains(&k.as_str()) {
                    fields.insert(k, v);
                }
            }
            let mut tc = TenantContact {
                resource_name: None,
                etag: None,
                client_data: contact.client_data,
                contact_groups,
                fields,
            };
            let mut n = u.contacts.len();
            let rn = loop {
                let rn = format!("people/c{}", short_hash(&[&email, "new", &n.to_string()]));
                if !u.contacts.iter().any(|c| c.resource_name.as_deref() == Some(&rn)) {
                    break rn;
                }
                n += 1;
            };
            tc.resource_name = Some(rn);
            tc.etag = Some(contact_etag(&tc));
            created.push(to_contact(u, &tc));
            u.contacts.push(tc);
        }
        Ok(created)
    }

    /// `people.batchUpdateContacts`: masked fields replaced, cleared when absent.
    pub fn update_contacts(
        &mut self,
        user: &str,
        updates: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>> {
        let u = self.user_mut(user)?;
        // Check every etag first: the batch applies whole or not at all.
        for up in &updates {
            let c = find_contact(u, &up.resource_name)?;
            if c.etag.as_deref() != Some(up.etag.as_str()) {
                return Err(Error::Stale { what: format!("contact {}", up.resource_name) });
            }
        }
        let mut out = Vec::new();
        for up in updates {
            let i = u
                .contacts
                .iter()
                .position(|c| c.resource_name.as_deref() == Some(&up.resource_name))
                .expect("checked above");
            let c = &mut u.contacts[i];
            for field in &up.update_mask {
                if field == "clientData" {
                    c.client_data = up.client_data.clone();
                } else if PERSON_FIELDS.contains(&field.as_str()) {
                    match up.fields.get(field) {
                        Some(v) if !is_empty(v) => {
                            c.fields.insert(field.clone(), v.clone());
                        }
                        _ => {
                            c.fields.remove(field);
                        }
                    }
                } else {
                    return Err(Error::Invalid(format!("field `{field}` cannot be updated")));
                }
            }
            c.etag = Some(contact_etag(c));
            let snapshot = c.clone();
            out.push(to_contact(u, &snapshot));
        }
        Ok(out)
    }

    /// `people.batchDeleteContacts`.
    pub fn delete_contacts(&mut self, user: &str, resource_names: &[String]) -> Result<()> {
        let u = self.user_mut(user)?;
        for rn in resource_names {
            find_contact(u, rn)?;
        }
        u.contacts
            .retain(|c| !resource_names.iter().any(|rn| c.resource_name.as_deref() == Some(rn)));
        Ok(())
    }

    /// `contactGroups.create`.
    pub fn create_group(
        &mut self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
    ) -> Result<ContactGroup> {
        let u = self.user_mut(user)?;
        if u.contact_groups.iter().any(|g| g.name == name)
            || SYSTEM_GROUPS.iter().any(|(_, n)| *n == name)
        {
            return Err(Error::GroupExists {
                user: u.primary_email.clone(),
                name: name.to_owned(),
            });
        }
        let email = u.primary_email.to_lowercase();
        let mut n = u.contact_groups.len();
        let rn = loop {
            let rn = format!("contactGroups/{}", short_hash(&[&email, name, &n.to_string()]));
            if !u.contact_groups.iter().any(|g| g.resource_name.as_deref() == Some(&rn)) {
                break rn;
            }
            n += 1;
        };
        let mut group = TenantContactGroup {
            name: name.to_owned(),
            resource_name: Some(rn),
            etag: None,
            client_data,
            extra: Default::default(),
        };
        group.etag = Some(group_etag(&group));
        u.contact_groups.push(group.clone());
        Ok(to_group(&group))
    }

    /// `contactGroups.update`: name and clientData.
    pub fn update_group(&mut self, user: &str, group: ContactGroup) -> Result<ContactGroup> {
        let u = self.user_mut(user)?;
        if u.contact_groups.iter().any(|g| {
            g.name == group.name && g.resource_name.as_deref() != Some(&group.resource_name)
        }) {
            return Err(Error::GroupExists { user: u.primary_email.clone(), name: group.name });
        }
        let g = u
            .contact_groups
            .iter_mut()
            .find(|g| g.resource_name.as_deref() == Some(&group.resource_name))
            .ok_or_else(|| Error::NotFound {
                what: format!("contact group {}", group.resource_name),
            })?;
        if g.etag.as_deref() != Some(group.etag.as_str()) {
            return Err(Error::Stale { what: format!("contact group {}", group.resource_name) });
        }
        let old_name = std::mem::replace(&mut g.name, group.name.clone());
        g.client_data = group.client_data;
        g.etag = Some(group_etag(g));
        let updated = to_group(g);
        for c in &mut u.contacts {
            for m in &mut c.contact_groups {
                if *m == old_name {
                    *m = group.name.clone();
                }
            }
            c.etag = Some(contact_etag(c));
        }
        Ok(updated)
    }

    /// `contactGroups.delete` with `deleteContacts=false`.
    pub fn delete_group(&mut self, user: &str, resource_name: &str) -> Result<()> {
        let u = self.user_mut(user)?;
        let i = u
            .contact_groups
            .iter()
            .position(|g| g.resource_name.as_deref() == Some(resource_name))
            .ok_or_else(|| Error::NotFound { what: format!("contact group {resource_name}") })?;
        let name = u.contact_groups.remove(i).name;
        for c in &mut u.contacts {
            let before = c.contact_groups.len();
            c.contact_groups.retain(|m| *m != name);
            if c.contact_groups.len() != before {
                c.etag = Some(contact_etag(c));
            }
        }
        Ok(())
    }

    /// `contactGroups.members.modify`.
    pub fn modify_members(
        &mut self,
        user: &str,
        group: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<()> {
        let u = self.user_mut(user)?;
        let name = group_names(u, &[group.to_owned()])?.remove(0);
        for rn in add.iter().chain(remove) {
            find_contact(u, rn)?;
        }
        for c in &mut u.contacts {
            let rn = c.resource_name.as_deref().unwrap_or_default();
            let before = c.contact_groups.clone();
            if add.iter().any(|a| a == rn) && !c.contact_groups.contains(&name) {
                c.contact_groups.push(name.clone());
            }
            if remove.iter().any(|r| r == rn) {
                c.contact_groups.retain(|m| *m != name);
            }
            if c.contact_groups != before {
                c.etag = Some(contact_etag(c));
            }
        }
        Ok(())
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn find_contact<'a>(u: &'a TenantUser, rn: &str) -> Result<&'a TenantContact> {
    u.contacts
        .iter()
        .find(|c| c.resource_name.as_deref() == Some(rn))
        .ok_or_else(|| Error::NotFound { what: format!("contact {rn} of {}", u.primary_email) })
}

/// Group resource names → names as the file writes them.
fn group_names(u: &TenantUser, resource_names: &[String]) -> Result<Vec<String>> {
    resource_names
        .iter()
        .map(|rn| {
            if let Some((id, _)) =
                SYSTEM_GROUPS.iter().find(|(id, _)| rn.strip_prefix("contactGroups/") == Some(id))
            {
                return Ok((*id).to_owned());
            }
            u.contact_groups
                .iter()
                .find(|g| g.resource_name.as_deref() == Some(rn))
                .map(|g| g.name.clone())
                .ok_or_else(|| Error::NotFound {
                    what: format!("contact group {rn} of {}", u.primary_email),
                })
        })
        .collect()
}

fn directory_user(u: &TenantUser) -> DirectoryUser {
    let name = |k: &str| u.name.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    DirectoryUser {
        id: u.id.clone().unwrap_or_default(),
        primary_email: u.primary_email.clone(),
        aliases: u.aliases.clone(),
        org_unit_path: u.org_unit_path.clone(),
        suspended: u.suspended,
        archived: u.archived,
        given_name: name("givenName"),
        family_name: name("familyName"),
        phones: u.phones.clone(),
        organizations: u.organizations.clone(),
        include_in_global_address_list: u.include_in_global_address_list,
    }
}

fn to_group(g: &TenantContactGroup) -> ContactGroup {
    ContactGroup {
        resource_name: g.resource_name.clone().unwrap_or_default(),
        etag: g.etag.clone().unwrap_or_default(),
        name: g.name.clone(),
        client_data: g.client_data.clone(),
        system: false,
    }
}

fn to_contact(u: &TenantUser, c: &TenantContact) -> Contact {
    let memberships = c
        .contact_groups
        .iter()
        .filter_map(|name| {
            if SYSTEM_GROUPS.iter().any(|(id, _)| id == name) {
                return Some(format!("contactGroups/{name}"));
            }
            u.contact_groups.iter().find(|g| g.name == *name)?.resource_name.clone()
        })
        .collect();
    let fields: PersonFields = c
        .fields
        .iter()
        .filter(|(k, _)| PERSON_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Contact {
        resource_name: c.resource_name.clone().unwrap_or_default(),
        etag: c.etag.clone().unwrap_or_default(),
        fields,
        memberships,
        client_data: c.client_data.clone(),
    }
}

fn contact_etag(c: &TenantContact) -> String {
    let body = serde_json::json!([c.fields, c.contact_groups, c.client_data]).to_string();
    format!("%E{}", short_hash(&[&body]))
}

fn group_etag(g: &TenantContactGroup) -> String {
    let body = serde_json::json!([g.name, g.client_data]).to_string();
    format!("%G{}", short_hash(&[&body]))
}
