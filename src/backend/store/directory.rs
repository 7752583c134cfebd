//! The Directory API's side of the store: users by id, address or alias, user
//! listings by scope, Google groups with nested groups expanded, custom schemas,
//! shared contacts and users' photos.

use std::collections::{HashMap, HashSet};

use rusqlite::Connection;
use serde_json::Value;

use super::contacts::to_contact;
use super::{Store, db_err, find_user, schema};
use crate::backend::tenant::{TenantGroup, TenantUser};
use crate::backend::{Result, UserScope};
use crate::model::{Contact, DirectoryUser, in_org_unit, photo, short_hash};

impl Store {
    /// `users.get`: by primary address, alias or id.
    pub fn user(&self, key: &str) -> Result<Option<DirectoryUser>> {
        self.read(|db| Ok(find_user(db, key)?.map(|(_, u)| directory_user(&u))))
    }

    /// `users.list`.
    pub fn users(&self, scope: &UserScope) -> Result<Vec<DirectoryUser>> {
        self.read(|db| {
            let mut stmt =
                db.prepare_cached("SELECT body FROM users ORDER BY id").map_err(db_err)?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(db_err)?;
            let mut users = Vec::new();
            for body in rows {
                let u: TenantUser = schema::from_json(&body.map_err(db_err)?).map_err(db_err)?;
                let selected = match scope {
                    UserScope::All => true,
                    UserScope::Domain(d) => u
                        .primary_email
                        .rsplit('@')
                        .next()
                        .is_some_and(|ud| ud.eq_ignore_ascii_case(d)),
                    UserScope::OrgUnit(path) => in_org_unit(&u.org_unit_path, path),
                };
                if selected {
                    users.push(directory_user(&u));
                }
            }
            Ok(users)
        })
    }

    /// The domain's shared contacts (`people.listDirectoryPeople` with
    /// `DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT`), in the file's order.
    pub fn shared_contacts(&self) -> Result<Vec<Contact>> {
        self.read(|db| {
            let head = schema::head(db).map_err(db_err)?;
            Ok(head.shared_contacts.iter().map(|c| to_contact(&HashMap::new(), c)).collect())
        })
    }

    /// The custom user schemas (`schemas.list`): every schema some user has a
    /// value of, with the fields any user has, sorted by name.
    pub fn user_schemas(&self) -> Result<Vec<crate::model::resolution::UserSchema>> {
        let mut schemas: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
            std::collections::BTreeMap::new();
        for u in self.users(&UserScope::All)? {
            for (name, fields) in &u.custom_schemas {
                let entry = schemas.entry(name.clone()).or_default();
                entry.extend(fields.as_object().into_iter().flat_map(|f| f.keys().cloned()));
            }
        }
        Ok(schemas
            .into_iter()
            .map(|(name, fields)| crate::model::resolution::UserSchema {
                name,
                fields: fields.into_iter().collect(),
            })
            .collect())
    }

    /// `members.list` with `includeDerivedMembership`: users' primary addresses.
    pub fn group_members(&self, group: &str) -> Result<Option<Vec<String>>> {
        self.read(|db| {
            let Some(root) = find_group(db, group)? else { return Ok(None) };
            let mut seen_groups = HashSet::from([root.email.to_lowercase()]);
            let mut queue = vec![root];
            let mut members = Vec::new();
            let mut seen_users = HashSet::new();
            while let Some(g) = queue.pop() {
                for member in &g.members {
                    if let Some(nested) = find_group(db, member)? {
                        if seen_groups.insert(nested.email.to_lowercase()) {
                            queue.push(nested);
                        }
                    } else if let Some((_, u)) = find_user(db, member)?
                        && seen_users.insert(u.primary_email.to_lowercase())
                    {
                        members.push(u.primary_email);
                    }
                }
            }
            Ok(Some(members))
        })
    }

    /// `members.list` without derived membership: direct members as (address, is a
    /// group).
    pub fn direct_members(&self, group: &str) -> Result<Option<Vec<(String, bool)>>> {
        self.read(|db| {
            let Some(g) = find_group(db, group)? else { return Ok(None) };
            let mut members = Vec::new();
            for m in g.members {
                let is_group = find_group(db, &m)?.is_some();
                members.push((m, is_group));
            }
            Ok(Some(members))
        })
    }

    /// `users.photos.get`: the bytes of a user's directory photo, if there is one;
    /// `None` also when there is no such user.
    pub fn user_photo(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.read(|db| {
            Ok(find_user(db, key)?
                .and_then(|(_, u)| u.photo_data)
                .and_then(|data| photo::decode_base64(&data)))
        })
    }
}

/// The Google group with this address.
pub(super) fn find_group(db: &Connection, email: &str) -> Result<Option<TenantGroup>> {
    let body: Option<String> = db
        .prepare_cached("SELECT body FROM groups WHERE email = ?1 ORDER BY id LIMIT 1")
        .and_then(|mut s| {
            use rusqlite::OptionalExtension;
            s.query_row([email.to_lowercase()], |r| r.get(0)).optional()
        })
        .map_err(db_err)?;
    body.map(|b| schema::from_json(&b).map_err(db_err)).transpose()
}

pub(super) fn directory_user(u: &TenantUser) -> DirectoryUser {
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
        addresses: u.addresses.clone(),
        relations: u.relations.clone(),
        locations: u.locations.clone(),
        external_ids: u.external_ids.clone(),
        ims: u.ims.clone(),
        websites: u.websites.clone(),
        include_in_global_address_list: u.include_in_global_address_list,
        custom_schemas: u.custom_schemas.clone().into_iter().collect(),
        thumbnail_photo_etag: u.photo_data.as_deref().map(|data| short_hash(&["photo", data])),
    }
}
