//! Contacts in the store: listed and paged in the file's order, fetched by name,
//! created with stable resource names, updated by field mask against their etag
//! (a stale one refuses the whole batch), and deleted.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde_json::Value;

use super::groups::{group_names, group_resources, resources_by_name};
use super::{Store, db_err, not_found, required_user, schema};
use crate::backend::tenant::{PHOTO_DATA, SYSTEM_GROUPS, TenantContact, TenantUser};
use crate::backend::{ContactUpdate, Error, NewContact, Refusal, Result};
use crate::model::{Contact, PERSON_FIELDS, PersonFields, short_hash};

impl Store {
    /// `people.connections.list` with every field.
    pub fn contacts(&self, user: &str) -> Result<Vec<Contact>> {
        Ok(self.contacts_page(user, 0, usize::MAX)?.0)
    }

    /// `limit` of the user's contacts from `offset` on, and how many the user has.
    pub fn contacts_page(
        &self,
        user: &str,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Contact>, usize)> {
        self.read(|db| {
            let (id, _) = required_user(db, user)?;
            let groups = group_resources(db, id)?;
            let limit = limit.min(i64::MAX as usize);
            let rows = schema::contacts_of(db, id, Some((offset, limit))).map_err(db_err)?;
            let total: i64 = db
                .prepare_cached("SELECT COUNT(*) FROM contacts WHERE user = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get(0)))
                .map_err(db_err)?;
            let contacts = rows.iter().map(|(_, c)| to_contact(&groups, c)).collect();
            Ok((contacts, usize::try_from(total).unwrap_or_default()))
        })
    }

    /// `people.batchGet`: each named contact of the user, if there is one.
    pub fn contacts_named(
        &self,
        user: &str,
        resource_names: &[&str],
    ) -> Result<Vec<Option<Contact>>> {
        self.read(|db| {
            let (id, _) = required_user(db, user)?;
            let groups = group_resources(db, id)?;
            resource_names
                .iter()
                .map(|rn| {
                    let found = schema::contacts_named(db, id, rn).map_err(db_err)?;
                    Ok(found.first().map(|(_, c)| to_contact(&groups, c)))
                })
                .collect()
        })
    }

    /// `people.batchCreateContacts`.
    pub fn create_contacts(
        &mut self,
        user: &str,
        new: Vec<NewContact<'_>>,
    ) -> Result<Vec<Contact>> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let email = u.primary_email.to_lowercase();
            let groups = schema::groups_of(tx, id).map_err(db_err)?;
            let resources = resources_by_name(&groups);
            let count: usize = tx
                .prepare_cached("SELECT COUNT(*) FROM contacts WHERE user = ?1")
                .and_then(|mut s| s.query_row([id], |r| r.get::<_, i64>(0)))
                .map_err(db_err)?
                .try_into()
                .unwrap_or_default();
            let mut created = Vec::with_capacity(new.len());
            // Each name from the user's count of contacts at its turn, as a list
            // that grows by one per contact.
            for (count, contact) in (count..).zip(new) {
                let contact_groups = group_names(&u, &groups, &contact.memberships)?;
                let mut fields = serde_json::Map::new();
                for (k, v) in contact.fields.into_owned() {
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
                let mut n = count;
                let rn = loop {
                    let rn = format!("people/c{}", short_hash(&[&email, "new", &n.to_string()]));
                    if !schema::contact_exists(tx, id, &rn).map_err(db_err)? {
                        break rn;
                    }
                    n += 1;
                };
                tc.resource_name = Some(rn);
                tc.etag = Some(contact_etag(&tc));
                schema::insert_contact(tx, id, &tc).map_err(db_err)?;
                created.push(to_contact(&resources, &tc));
            }
            Ok(created)
        })
    }

    /// `people.batchUpdateContacts`: masked fields replaced, cleared when absent.
    /// The batch applies whole or not at all.
    pub fn update_contacts(
        &mut self,
        user: &str,
        updates: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            // Check every etag first, as Google does.
            for up in &updates {
                let (_, c) = contact_in(tx, id, &u, &up.resource_name)?;
                if c.etag.as_deref() != Some(up.etag.as_str()) {
                    return Err(Error::Stale { what: format!("contact {}", up.resource_name) });
                }
            }
            let resources = group_resources(tx, id)?;
            let mut out = Vec::with_capacity(updates.len());
            for up in updates {
                let (row, mut c) = contact_in(tx, id, &u, &up.resource_name)?;
                let old_groups = c.contact_groups.clone();
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
                        return Err(Error::Invalid(Refusal::FieldNotUpdatable {
                            field: field.clone(),
                        }));
                    }
                }
                c.etag = Some(contact_etag(&c));
                schema::update_contact(tx, id, row, &old_groups, &c).map_err(db_err)?;
                out.push(to_contact(&resources, &c));
            }
            Ok(out)
        })
    }

    /// `people.batchDeleteContacts`: every name must exist, or nothing is deleted.
    pub fn delete_contacts(&mut self, user: &str, resource_names: &[String]) -> Result<()> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let mut doomed = Vec::new();
            for rn in resource_names {
                let found = schema::contacts_named(tx, id, rn).map_err(db_err)?;
                if found.is_empty() {
                    return Err(not_found(format!("contact {rn} of {}", u.primary_email)));
                }
                doomed.extend(found);
            }
            let mut gone = HashSet::new();
            for (row, c) in doomed {
                if gone.insert(row) {
                    schema::delete_contact(tx, id, row, &c.contact_groups).map_err(db_err)?;
                }
            }
            Ok(())
        })
    }
}

/// The user's first contact called `resource_name`, with its row.
pub(super) fn contact_in(
    db: &Connection,
    user: i64,
    u: &TenantUser,
    resource_name: &str,
) -> Result<(i64, TenantContact)> {
    schema::contacts_named(db, user, resource_name)
        .map_err(db_err)?
        .into_iter()
        .next()
        .ok_or_else(|| not_found(format!("contact {resource_name} of {}", u.primary_email)))
}

pub(super) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A contact as the API shows it; `groups` maps the user's group names to
/// resource names.
pub(super) fn to_contact(groups: &HashMap<String, String>, c: &TenantContact) -> Contact {
    let memberships = c
        .contact_groups
        .iter()
        .filter_map(|name| {
            if SYSTEM_GROUPS.iter().any(|(id, _)| id == name) {
                return Some(format!("contactGroups/{name}"));
            }
            groups.get(name).cloned()
        })
        .collect();
    let fields: PersonFields = c
        .fields
        .iter()
        .filter(|(k, _)| PERSON_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let resource_name = c.resource_name.clone().unwrap_or_default();
    // The photo's "URL": the contact and a hash of the photo, which changes with it.
    let photo = c
        .fields
        .get(PHOTO_DATA)
        .and_then(Value::as_str)
        .map(|data| format!("{resource_name}/{}", short_hash(&["photo", data])));
    Contact {
        resource_name,
        etag: c.etag.clone().unwrap_or_default(),
        fields,
        memberships,
        client_data: c.client_data.clone(),
        photo,
    }
}

/// A hash of the content: the JSON text of `[fields, contactGroups, clientData]`.
pub(super) fn contact_etag(c: &TenantContact) -> String {
    let body = serde_json::to_string(&(&c.fields, &c.contact_groups, &c.client_data))
        .expect("JSON values serialize");
    format!("%E{}", short_hash(&[&body]))
}
