//! Contact groups in the store: the system groups and each user's own, created
//! with a unique name (a duplicate is `GroupExists`, as Google's 409), renamed
//! with their members carried along, deleted keeping the members, and
//! memberships changed.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;

use super::contacts::contact_etag;
use super::{Store, db_err, not_found, required_user, schema};
use crate::backend::tenant::{SYSTEM_GROUPS, TenantContactGroup, TenantUser};
use crate::backend::{Error, Result};
use crate::model::{ClientData, ContactGroup, short_hash};

impl Store {
    /// `contactGroups.list`: the system groups, then the user's own.
    pub fn contact_groups(&self, user: &str) -> Result<Vec<ContactGroup>> {
        self.read(|db| {
            let (id, _) = required_user(db, user)?;
            let mut groups: Vec<ContactGroup> = SYSTEM_GROUPS.iter().map(system_group).collect();
            groups.extend(
                schema::groups_of(db, id).map_err(db_err)?.iter().map(|(_, g)| to_group(g)),
            );
            Ok(groups)
        })
    }

    /// `contactGroups.get`: one of the user's groups, system groups included.
    pub fn contact_group(&self, user: &str, resource_name: &str) -> Result<Option<ContactGroup>> {
        self.read(|db| {
            let (id, _) = required_user(db, user)?;
            if let Some(system) = SYSTEM_GROUPS
                .iter()
                .find(|(id, _)| resource_name.strip_prefix("contactGroups/") == Some(id))
            {
                return Ok(Some(system_group(system)));
            }
            Ok(group_by_resource(db, id, resource_name)?.map(|(_, g)| to_group(&g)))
        })
    }

    /// Resource names of the contacts in one of the user's groups, in order.
    pub fn group_contacts(&self, user: &str, resource_name: &str) -> Result<Vec<String>> {
        self.read(|db| {
            let (id, _) = required_user(db, user)?;
            let groups = schema::groups_of(db, id).map_err(db_err)?;
            // The name the file uses for the group, when memberships by that name
            // mean this group (the first group of a name takes its members).
            let name = match resource_name.strip_prefix("contactGroups/") {
                Some(system) if SYSTEM_GROUPS.iter().any(|(id, _)| *id == system) => {
                    system.to_owned()
                }
                _ => {
                    let Some((_, g)) = groups
                        .iter()
                        .find(|(_, g)| g.resource_name.as_deref() == Some(resource_name))
                    else {
                        return Ok(Vec::new());
                    };
                    let first = groups.iter().find(|(_, other)| other.name == g.name);
                    if first.is_none_or(|(_, f)| f.resource_name != g.resource_name) {
                        return Ok(Vec::new());
                    }
                    g.name.clone()
                }
            };
            schema::member_names(db, id, &name).map_err(db_err)
        })
    }

    /// `contactGroups.create`.
    pub fn create_group(
        &mut self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
    ) -> Result<ContactGroup> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let groups = schema::groups_of(tx, id).map_err(db_err)?;
            if groups.iter().any(|(_, g)| g.name == name)
                || SYSTEM_GROUPS.iter().any(|(_, n)| *n == name)
            {
                return Err(Error::GroupExists {
                    user: u.primary_email.clone(),
                    name: name.to_owned(),
                });
            }
            let email = u.primary_email.to_lowercase();
            let mut n = groups.len();
            let rn = loop {
                let rn = format!("contactGroups/{}", short_hash(&[&email, name, &n.to_string()]));
                if !groups.iter().any(|(_, g)| g.resource_name.as_deref() == Some(&rn)) {
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
            schema::insert_group(tx, id, &group).map_err(db_err)?;
            Ok(to_group(&group))
        })
    }

    /// `contactGroups.update`: name and clientData; a rename carries the members
    /// along.
    pub fn update_group(&mut self, user: &str, group: ContactGroup) -> Result<ContactGroup> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let taken = tx
                .prepare_cached(
                    "SELECT 1 FROM contact_groups WHERE user = ?1 AND name = ?2 \
                     AND resource_name != ?3",
                )
                .and_then(|mut s| s.exists(rusqlite::params![id, group.name, group.resource_name]))
                .map_err(db_err)?;
            if taken {
                return Err(Error::GroupExists { user: u.primary_email, name: group.name });
            }
            let (row, mut g) = group_by_resource(tx, id, &group.resource_name)?
                .ok_or_else(|| not_found(format!("contact group {}", group.resource_name)))?;
            if g.etag.as_deref() != Some(group.etag.as_str()) {
                return Err(Error::Stale {
                    what: format!("contact group {}", group.resource_name),
                });
            }
            let old_name = std::mem::replace(&mut g.name, group.name.clone());
            g.client_data = group.client_data;
            g.etag = Some(group_etag(&g));
            schema::update_group(tx, row, &g).map_err(db_err)?;
            if old_name != g.name {
                for (row, mut c) in schema::members_named(tx, id, &old_name).map_err(db_err)? {
                    let old_groups = c.contact_groups.clone();
                    for m in &mut c.contact_groups {
                        if *m == old_name {
                            m.clone_from(&g.name);
                        }
                    }
                    c.etag = Some(contact_etag(&c));
                    schema::update_contact(tx, id, row, &old_groups, &c).map_err(db_err)?;
                }
            }
            Ok(to_group(&g))
        })
    }

    /// `contactGroups.delete` with `deleteContacts=false`: the members stay, out
    /// of the group.
    pub fn delete_group(&mut self, user: &str, resource_name: &str) -> Result<()> {
        self.write(|tx| {
            let (id, _) = required_user(tx, user)?;
            let (row, g) = group_by_resource(tx, id, resource_name)?
                .ok_or_else(|| not_found(format!("contact group {resource_name}")))?;
            tx.prepare_cached("DELETE FROM contact_groups WHERE id = ?1")
                .and_then(|mut s| s.execute([row]))
                .map_err(db_err)?;
            for (row, mut c) in schema::members_named(tx, id, &g.name).map_err(db_err)? {
                let old_groups = c.contact_groups.clone();
                c.contact_groups.retain(|m| *m != g.name);
                c.etag = Some(contact_etag(&c));
                schema::update_contact(tx, id, row, &old_groups, &c).map_err(db_err)?;
            }
            Ok(())
        })
    }

    /// `contactGroups.members.modify`: every contact named must exist, or nothing
    /// changes.
    pub fn modify_members(
        &mut self,
        user: &str,
        group: &str,
        add: &[String],
        remove: &[String],
    ) -> Result<()> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let groups = schema::groups_of(tx, id).map_err(db_err)?;
            let name = group_names(&u, &groups, &[group.to_owned()])?.remove(0);
            let mut touched = Vec::new();
            let mut seen = HashSet::new();
            for rn in add.iter().chain(remove) {
                let found = schema::contacts_named(tx, id, rn).map_err(db_err)?;
                if found.is_empty() {
                    return Err(not_found(format!("contact {rn} of {}", u.primary_email)));
                }
                touched.extend(found.into_iter().filter(|(row, _)| seen.insert(*row)));
            }
            for (row, mut c) in touched {
                let rn = c.resource_name.clone().unwrap_or_default();
                let before = c.contact_groups.clone();
                if add.contains(&rn) && !c.contact_groups.contains(&name) {
                    c.contact_groups.push(name.clone());
                }
                if remove.contains(&rn) {
                    c.contact_groups.retain(|m| *m != name);
                }
                if c.contact_groups != before {
                    c.etag = Some(contact_etag(&c));
                    schema::update_contact(tx, id, row, &before, &c).map_err(db_err)?;
                }
            }
            Ok(())
        })
    }
}

/// The user's first contact group called `resource_name`, with its row.
pub(super) fn group_by_resource(
    db: &Connection,
    user: i64,
    resource_name: &str,
) -> Result<Option<(i64, TenantContactGroup)>> {
    Ok(schema::groups_of(db, user)
        .map_err(db_err)?
        .into_iter()
        .find(|(_, g)| g.resource_name.as_deref() == Some(resource_name)))
}

/// Group names → resource names, as memberships are shown: the first group of a
/// name takes it.
pub(super) fn resources_by_name(groups: &[(i64, TenantContactGroup)]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (_, g) in groups {
        if let Some(rn) = &g.resource_name {
            map.entry(g.name.clone()).or_insert_with(|| rn.clone());
        }
    }
    map
}

pub(super) fn group_resources(db: &Connection, user: i64) -> Result<HashMap<String, String>> {
    Ok(resources_by_name(&schema::groups_of(db, user).map_err(db_err)?))
}

/// Group resource names → names as the file writes them.
pub(super) fn group_names(
    u: &TenantUser,
    groups: &[(i64, TenantContactGroup)],
    resource_names: &[String],
) -> Result<Vec<String>> {
    resource_names
        .iter()
        .map(|rn| {
            if let Some((id, _)) =
                SYSTEM_GROUPS.iter().find(|(id, _)| rn.strip_prefix("contactGroups/") == Some(id))
            {
                return Ok((*id).to_owned());
            }
            groups
                .iter()
                .find(|(_, g)| g.resource_name.as_deref() == Some(rn))
                .map(|(_, g)| g.name.clone())
                .ok_or_else(|| not_found(format!("contact group {rn} of {}", u.primary_email)))
        })
        .collect()
}

pub(super) fn system_group((id, name): &(&str, &str)) -> ContactGroup {
    ContactGroup {
        resource_name: format!("contactGroups/{id}"),
        etag: short_hash(&[id]),
        name: (*name).to_owned(),
        client_data: Vec::new(),
        system: true,
    }
}

pub(super) fn to_group(g: &TenantContactGroup) -> ContactGroup {
    ContactGroup {
        resource_name: g.resource_name.clone().unwrap_or_default(),
        etag: g.etag.clone().unwrap_or_default(),
        name: g.name.clone(),
        client_data: g.client_data.clone(),
        system: false,
    }
}

/// A hash of the content: the JSON text of `[name, clientData]`.
pub(super) fn group_etag(g: &TenantContactGroup) -> String {
    let body = serde_json::to_string(&(&g.name, &g.client_data)).expect("JSON values serialize");
    format!("%G{}", short_hash(&[&body]))
}
