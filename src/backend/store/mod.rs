//! The tenant behind the local backend and the emulator: the workspace file's data
//! in an embedded SQLite database, with the People API's and Directory API's
//! semantics on top — lookups by id and alias, nested group expansion, resource
//! names, etags that change with the content, 409 on a duplicate group name,
//! stale-etag refusal.
//!
//! The database is indexed by user and by resource (see [`schema`]), so a read or
//! a write costs what it touches, not the size of the tenant, and every write is
//! one transaction: a batch applies whole or not at all. The local backend keeps
//! it in memory, seeded from its YAML file and written back to it on commit; the
//! emulator keeps it in a file beside its YAML file, where each write is durable
//! once answered.
//!
//! Ids, resource names and etags missing from the file are derived from stable
//! inputs (addresses, positions, content) so two loads of one file agree, and a
//! saved plan made from one load can be applied on the next.

mod error;
mod schema;

pub use error::{Cause, StoreError};

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde_json::Value;

use super::tenant::{
    PHOTO_DATA, SYSTEM_GROUPS, TenantContact, TenantContactGroup, TenantFile, TenantUser,
};
use super::{ContactUpdate, Error, NewContact, Refusal, Result, UserScope};
use crate::model::{
    ClientData, Contact, ContactGroup, DirectoryUser, PERSON_FIELDS, PersonFields, in_org_unit,
    photo, short_hash,
};

/// A tenant in an embedded database.
#[derive(Debug)]
pub struct Store {
    db: Connection,
    /// Where the database lives; `None` in memory.
    path: Option<PathBuf>,
    /// Whether anything was written since the store was seeded or marked clean;
    /// kept in the database too, so that a restart knows.
    dirty: bool,
}

/// A database error, as the backends report it.
fn db(e: rusqlite::Error) -> Error {
    Error::Store(StoreError::Database(Arc::new(e)))
}

fn not_found(what: String) -> Error {
    Error::NotFound { what }
}

impl Store {
    /// A store in memory holding `tenant`, assigning whatever ids, resource names
    /// and etags it lacks.
    pub fn new(tenant: TenantFile) -> Self {
        let db = Connection::open_in_memory().expect("SQLite opens a database in memory");
        db.set_prepared_statement_cache_capacity(64);
        let mut store = Self { db, path: None, dirty: false };
        store.seed(tenant, "").expect("a database in memory takes any tenant");
        store
    }

    /// Opens the tenant database at `path`, as an earlier [`Store::create_file`]
    /// left it (with every write made since). Fails when there is no database
    /// there, or not one of this version.
    pub fn open_file(path: &Path) -> Result<Self> {
        let path_buf = || path.to_path_buf();
        let fail = |e: rusqlite::Error| StoreError::Open { path: path_buf(), cause: e.into() };
        if !path.is_file() {
            return Err(StoreError::NoDatabase { path: path_buf() }.into());
        }
        let db = Connection::open(path).map_err(fail)?;
        configure(&db).map_err(fail)?;
        match schema::meta(&db, "version").map_err(fail)? {
            Some(v) if v == schema::VERSION => {}
            found => return Err(StoreError::WrongVersion { path: path_buf(), found }.into()),
        }
        let dirty = schema::meta(&db, "dirty").map_err(fail)?;
        Ok(Self { db, path: Some(path.to_path_buf()), dirty: dirty.as_deref() == Some("1") })
    }

    /// Creates the tenant database at `path` holding `tenant`, replacing whatever
    /// is there, and records `origin` (see [`Store::origin`]). The file is readable
    /// by its owner only. The data goes in
    /// one transaction: a process killed half-way leaves a database that
    /// [`Store::open_file`] refuses, never half a tenant.
    pub fn create_file(path: &Path, tenant: TenantFile, origin: &str) -> Result<Self> {
        let fail = |e: Cause| StoreError::Create { path: path.to_path_buf(), cause: e };
        for file in [path.to_path_buf(), sidecar(path, "-wal"), sidecar(path, "-shm")] {
            remove_if_there(&file).map_err(|e| fail(e.into()))?;
        }
        // Contact data, readable by its owner only; SQLite gives its `-wal` and
        // `-shm` files the database file's mode.
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(path).map_err(|e| fail(e.into()))?;
        let db = Connection::open(path).map_err(|e| fail(e.into()))?;
        configure(&db).map_err(|e| fail(e.into()))?;
        let mut store = Self { db, path: Some(path.to_path_buf()), dirty: false };
        store.seed(tenant, origin)?;
        Ok(store)
    }

    /// Writes `tenant` as a new tenant database at `path`, atomically (see
    /// [`Store::write_database`]).
    pub fn write_file(path: &Path, tenant: TenantFile) -> Result<()> {
        Self::new(tenant).write_database(path)
    }

    /// Writes a copy of the store to `path` as a tenant database, atomically: it is
    /// built beside it under a temporary name, synced and renamed into place, so a
    /// process killed half-way leaves whatever was at `path` before. Readable by
    /// its owner only.
    pub fn write_database(&self, path: &Path) -> Result<()> {
        let fail = |e: Cause| {
            Error::Store(StoreError::WriteDatabase { path: path.to_path_buf(), cause: e })
        };
        let name =
            path.file_name().and_then(|n| n.to_str()).ok_or_else(|| fail(Cause::NoFileName))?;
        let temp =
            path.with_file_name(format!(".{name}.contact-sync-tmp.{:016x}", rand::random::<u64>()));
        let copied = (|| {
            // VACUUM INTO wants an empty file or none; an empty one keeps its mode.
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options.open(&temp).map_err(|e| fail(e.into()))?;
            let target = temp.to_str().ok_or_else(|| fail(Cause::NotUtf8))?;
            self.db.execute("VACUUM INTO ?1", [target]).map_err(|e| fail(e.into()))?;
            std::fs::File::open(&temp).and_then(|f| f.sync_all()).map_err(|e| fail(e.into()))?;
            for file in [sidecar(path, "-wal"), sidecar(path, "-shm")] {
                remove_if_there(&file).map_err(|e| fail(e.into()))?;
            }
            std::fs::rename(&temp, path).map_err(|e| fail(e.into()))
        })();
        if copied.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        copied
    }

    /// Writes the tenant to `path` as a workspace file, atomically and user by
    /// user, never holding the whole tenant or its text (see
    /// [`super::tenant::write_atomic_streamed`]). Returns the text's hash.
    pub fn write_yaml(&self, path: &Path) -> std::io::Result<String> {
        let io = std::io::Error::other;
        let tx = self.db.unchecked_transaction().map_err(io)?;
        let head = schema::head(&tx).map_err(io)?;
        let mut rows = tx.prepare("SELECT id, body FROM users ORDER BY id").map_err(io)?;
        let users = rows
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(io)?
            .map(|row| row.and_then(|(id, body)| schema::user(&tx, id, &body)).map_err(io));
        super::tenant::write_atomic_streamed(path, &head, users)
    }

    /// The database file, if the store is not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Replaces the whole tenant by `tenant` (assigning what it lacks) in one
    /// transaction, and marks the store clean with `origin`.
    pub fn seed(&mut self, mut tenant: TenantFile, origin: &str) -> Result<()> {
        assign_ids(&mut tenant);
        let tx = self.db.transaction().map_err(db)?;
        schema::fill(&tx, tenant).map_err(db)?;
        schema::set_meta(&tx, "dirty", "0").map_err(db)?;
        schema::set_meta(&tx, "origin", origin).map_err(db)?;
        tx.commit().map_err(db)?;
        self.dirty = false;
        Ok(())
    }

    /// The tenant as it stands, for writing back to a workspace file.
    pub fn tenant(&self) -> Result<TenantFile> {
        let tx = self.db.unchecked_transaction().map_err(db)?;
        schema::export(&tx).map_err(db)
    }

    /// Whether anything changed since the store was seeded or marked clean (ids
    /// assigned on load do not count).
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the current state as written to where it came from, recording
    /// `origin`: what the caller needs to know later whether that place changed
    /// since (the local backend: its file's size, time and hash).
    pub fn mark_clean(&mut self, origin: &str) -> Result<()> {
        let tx = self.db.transaction().map_err(db)?;
        schema::set_meta(&tx, "dirty", "0").map_err(db)?;
        schema::set_meta(&tx, "origin", origin).map_err(db)?;
        tx.commit().map_err(db)?;
        self.dirty = false;
        Ok(())
    }

    /// Records `origin` without marking the store clean.
    pub fn set_origin(&mut self, origin: &str) -> Result<()> {
        schema::set_meta(&self.db, "origin", origin).map_err(db)
    }

    /// What [`Store::seed`], [`Store::mark_clean`] or [`Store::set_origin`] last
    /// recorded.
    pub fn origin(&self) -> Result<String> {
        Ok(schema::meta(&self.db, "origin").map_err(db)?.unwrap_or_default())
    }

    /// Runs `f` in one write transaction: all of it is kept, or none of it.
    fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx = self.db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db)?;
        let out = f(&tx)?;
        if !self.dirty {
            schema::set_meta(&tx, "dirty", "1").map_err(db)?;
        }
        tx.commit().map_err(db)?;
        self.dirty = true;
        Ok(out)
    }

    /// Runs `f` on one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self.db.unchecked_transaction().map_err(db)?;
        f(&tx)
    }

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
    pub fn create_contacts(&mut self, user: &str, new: Vec<NewContact>) -> Result<Vec<Contact>> {
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

    /// The bytes of a contact's photo, if it has one.
    pub fn contact_photo(&self, user: &str, resource_name: &str) -> Result<Option<Vec<u8>>> {
        self.read(|db| {
            let (id, u) = required_user(db, user)?;
            let (_, c) = contact_in(db, id, &u, resource_name)?;
            Ok(c.fields.get(PHOTO_DATA).and_then(Value::as_str).and_then(photo::decode_base64))
        })
    }

    /// `people.updateContactPhoto` (`Some`) or `people.deleteContactPhoto`
    /// (`None`): the contact's photo replaced or removed; returns the contact.
    pub fn set_contact_photo(
        &mut self,
        user: &str,
        resource_name: &str,
        bytes: Option<&[u8]>,
    ) -> Result<Contact> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let (row, mut c) = contact_in(tx, id, &u, resource_name)?;
            match bytes {
                Some(bytes) => {
                    c.fields.insert(PHOTO_DATA.into(), photo::encode_base64(bytes).into());
                }
                None => {
                    c.fields.shift_remove(PHOTO_DATA);
                }
            }
            c.etag = Some(contact_etag(&c));
            let groups = c.contact_groups.clone();
            schema::update_contact(tx, id, row, &groups, &c).map_err(db_err)?;
            Ok(to_contact(&group_resources(tx, id)?, &c))
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

/// Settings of a database file: write-ahead log (readers do not wait for the
/// writer, and a write is one append), and a sync to disk at every commit, so an
/// answered write survives a crash of the machine too.
fn configure(db: &Connection) -> rusqlite::Result<()> {
    db.busy_timeout(std::time::Duration::from_secs(30))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// `path` with `suffix` appended: SQLite's `-wal` and `-shm` files.
fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn remove_if_there(path: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind as IoKind;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != IoKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn db_err(e: rusqlite::Error) -> Error {
    db(e)
}

/// Assigns the ids, resource names and etags a parsed file lacks, from stable
/// inputs: so two loads of one file agree.
fn assign_ids(tenant: &mut TenantFile) {
    let mut taken = HashSet::new();
    for (i, contact) in tenant.shared_contacts.iter_mut().enumerate() {
        if contact.resource_name.is_none() || !taken.insert(contact.resource_name.clone()) {
            contact.resource_name =
                Some(format!("people/c{}", short_hash(&["shared", &i.to_string()])));
            taken.insert(contact.resource_name.clone());
        }
        contact.etag = Some(contact_etag(contact));
    }
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
}

/// The user a key names (id, primary address or alias), with its row: the first
/// in the file's order that any of them matches.
fn find_user(db: &Connection, key: &str) -> Result<Option<(i64, TenantUser)>> {
    let by_id: Option<i64> = db
        .prepare_cached("SELECT MIN(id) FROM users WHERE user_id = ?1")
        .and_then(|mut s| s.query_row([key], |r| r.get(0)))
        .map_err(db_err)?;
    let by_address: Option<i64> = db
        .prepare_cached("SELECT MIN(user) FROM addresses WHERE address = ?1")
        .and_then(|mut s| s.query_row([key.to_lowercase()], |r| r.get(0)))
        .map_err(db_err)?;
    let Some(id) = by_id.into_iter().chain(by_address).min() else { return Ok(None) };
    let body: String = db
        .prepare_cached("SELECT body FROM users WHERE id = ?1")
        .and_then(|mut s| s.query_row([id], |r| r.get(0)))
        .map_err(db_err)?;
    Ok(Some((id, schema::from_json(&body).map_err(db_err)?)))
}

fn required_user(db: &Connection, key: &str) -> Result<(i64, TenantUser)> {
    find_user(db, key)?.ok_or_else(|| not_found(format!("user {key}")))
}

/// The Google group with this address.
fn find_group(db: &Connection, email: &str) -> Result<Option<super::tenant::TenantGroup>> {
    let body: Option<String> = db
        .prepare_cached("SELECT body FROM groups WHERE email = ?1 ORDER BY id LIMIT 1")
        .and_then(|mut s| {
            use rusqlite::OptionalExtension;
            s.query_row([email.to_lowercase()], |r| r.get(0)).optional()
        })
        .map_err(db_err)?;
    body.map(|b| schema::from_json(&b).map_err(db_err)).transpose()
}

/// The user's first contact group called `resource_name`, with its row.
fn group_by_resource(
    db: &Connection,
    user: i64,
    resource_name: &str,
) -> Result<Option<(i64, TenantContactGroup)>> {
    Ok(schema::groups_of(db, user)
        .map_err(db_err)?
        .into_iter()
        .find(|(_, g)| g.resource_name.as_deref() == Some(resource_name)))
}

/// The user's first contact called `resource_name`, with its row.
fn contact_in(
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

/// Group names → resource names, as memberships are shown: the first group of a
/// name takes it.
fn resources_by_name(groups: &[(i64, TenantContactGroup)]) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for (_, g) in groups {
        if let Some(rn) = &g.resource_name {
            map.entry(g.name.clone()).or_insert_with(|| rn.clone());
        }
    }
    map
}

fn group_resources(db: &Connection, user: i64) -> Result<HashMap<String, String>> {
    Ok(resources_by_name(&schema::groups_of(db, user).map_err(db_err)?))
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

/// Group resource names → names as the file writes them.
fn group_names(
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

fn system_group((id, name): &(&str, &str)) -> ContactGroup {
    ContactGroup {
        resource_name: format!("contactGroups/{id}"),
        etag: short_hash(&[id]),
        name: (*name).to_owned(),
        client_data: Vec::new(),
        system: true,
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

/// A contact as the API shows it; `groups` maps the user's group names to
/// resource names.
fn to_contact(groups: &HashMap<String, String>, c: &TenantContact) -> Contact {
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
fn contact_etag(c: &TenantContact) -> String {
    let body = serde_json::to_string(&(&c.fields, &c.contact_groups, &c.client_data))
        .expect("JSON values serialize");
    format!("%E{}", short_hash(&[&body]))
}

/// A hash of the content: the JSON text of `[name, clientData]`.
fn group_etag(g: &TenantContactGroup) -> String {
    let body = serde_json::to_string(&(&g.name, &g.client_data)).expect("JSON values serialize");
    format!("%G{}", short_hash(&[&body]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "\
domains: [example.com]
users:
  - primaryEmail: ann@example.com
    aliases: [annie@example.com]
    favouriteColour: teal
    contactGroups: [{ name: Friends }, { name: Work, x-note: kept }]
    contacts:
      - names: [{ givenName: Bo }]
        contactGroups: [Friends, myContacts]
        x-note: keep me
      - names: [{ givenName: Cy }]
        contactGroups: [Work]
  - primaryEmail: bob@example.com
    id: \"42\"
groups:
  - email: all@example.com
    members: [team@example.com, bob@example.com]
  - email: team@example.com
    members: [annie@example.com, all@example.com]
future: { anything: 1 }
";

    fn tenant() -> TenantFile {
        super::super::tenant::parse(Path::new("t.yaml"), TENANT.into()).unwrap()
    }

    fn friends(store: &Store) -> ContactGroup {
        let groups = store.contact_groups("ann@example.com").unwrap();
        groups.into_iter().find(|g| g.name == "Friends").unwrap()
    }

    #[test]
    fn two_loads_of_one_file_agree_and_a_round_trip_keeps_everything() {
        let (a, b) = (Store::new(tenant()), Store::new(tenant()));
        let exported = a.tenant().unwrap();
        assert_eq!(exported, b.tenant().unwrap());
        assert_eq!(Store::new(exported.clone()).tenant().unwrap(), exported, "nothing re-derived");
        let text = super::super::tenant::to_text(&exported).unwrap();
        for kept in ["favouriteColour: teal", "x-note: keep me", "x-note: kept", "anything: 1"] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        assert_eq!(exported.users[1].id.as_deref(), Some("42"));
    }

    #[test]
    fn users_are_found_by_id_address_and_alias_and_groups_expand() {
        let store = Store::new(tenant());
        let ann = store.user("ANNIE@example.com").unwrap().unwrap();
        assert_eq!(ann.primary_email, "ann@example.com");
        assert_eq!(store.user(&ann.id).unwrap().unwrap().primary_email, "ann@example.com");
        assert_eq!(store.user("42").unwrap().unwrap().primary_email, "bob@example.com");
        assert_eq!(store.user("nobody@example.com").unwrap(), None);
        let mut members = store.group_members("all@example.com").unwrap().unwrap();
        members.sort();
        assert_eq!(members, ["ann@example.com", "bob@example.com"]);
        let direct = store.direct_members("ALL@example.com").unwrap().unwrap();
        assert_eq!(direct[0], ("team@example.com".to_owned(), true));
        assert_eq!(store.group_members("none@example.com").unwrap(), None);
    }

    #[test]
    fn a_batch_with_one_stale_etag_changes_nothing() {
        let mut store = Store::new(tenant());
        let contacts = store.contacts("ann@example.com").unwrap();
        let update = |c: &Contact, etag: &str| ContactUpdate {
            resource_name: c.resource_name.clone(),
            etag: etag.to_owned(),
            fields: PersonFields::from([(
                "nicknames".into(),
                serde_json::json!([{ "value": "x" }]),
            )]),
            update_mask: vec!["nicknames".into()],
            client_data: Vec::new(),
        };
        let batch = vec![update(&contacts[0], &contacts[0].etag), update(&contacts[1], "%Eold")];
        let err = store.update_contacts("ann@example.com", batch).unwrap_err();
        assert!(matches!(err, Error::Stale { .. }), "{err}");
        assert_eq!(store.contacts("ann@example.com").unwrap(), contacts);
        assert!(!store.is_dirty());
        // A deletion naming one contact that is not there deletes none.
        let names = vec![contacts[0].resource_name.clone(), "people/cnone".into()];
        assert!(store.delete_contacts("ann@example.com", &names).is_err());
        assert_eq!(store.contacts("ann@example.com").unwrap().len(), 2);
        // The etag moves with the content.
        let updated =
            store.update_contacts("ann@example.com", vec![update(&contacts[0], &contacts[0].etag)]);
        assert_ne!(updated.unwrap()[0].etag, contacts[0].etag);
        assert!(store.is_dirty());
    }

    #[test]
    fn group_names_are_unique_and_a_rename_carries_the_members() {
        let mut store = Store::new(tenant());
        let err = store.create_group("ann@example.com", "Work", vec![]).unwrap_err();
        assert!(matches!(err, Error::GroupExists { .. }), "{err}");
        let err = store.create_group("ann@example.com", "Starred", vec![]).unwrap_err();
        assert!(matches!(err, Error::GroupExists { .. }), "{err}");
        let group = friends(&store);
        let before = store.contacts("ann@example.com").unwrap();
        assert_eq!(
            store.group_contacts("ann@example.com", &group.resource_name).unwrap(),
            [before[0].resource_name.clone()]
        );
        let renamed = ContactGroup { name: "Pals".into(), ..group.clone() };
        let renamed = store.update_group("ann@example.com", renamed).unwrap();
        assert_ne!(renamed.etag, group.etag);
        let after = store.contacts("ann@example.com").unwrap();
        assert_eq!(after[0].memberships, before[0].memberships, "still a member");
        assert_ne!(after[0].etag, before[0].etag, "the membership's name is content");
        assert_eq!(after[1], before[1], "others untouched");
        let exported = store.tenant().unwrap();
        assert_eq!(exported.users[0].contacts[0].contact_groups, ["Pals", "myContacts"]);
        // A stale group etag is refused; so is taking another group's name.
        let stale = ContactGroup { name: "Mates".into(), ..group };
        assert!(matches!(store.update_group("ann@example.com", stale), Err(Error::Stale { .. })));
        let clash = ContactGroup { name: "Work".into(), ..renamed.clone() };
        assert!(matches!(
            store.update_group("ann@example.com", clash),
            Err(Error::GroupExists { .. })
        ));
        // Deleting the group keeps its members, out of it.
        store.delete_group("ann@example.com", &renamed.resource_name).unwrap();
        let left = store.contacts("ann@example.com").unwrap();
        assert_eq!(left[0].memberships, ["contactGroups/myContacts"]);
    }

    #[test]
    fn created_contacts_get_stable_names_and_pages_follow_the_files_order() {
        let mut a = Store::new(tenant());
        let mut b = Store::new(tenant());
        let group = friends(&a).resource_name;
        let new = |i: usize| NewContact {
            fields: PersonFields::from([(
                "names".into(),
                serde_json::json!([{ "givenName": format!("N{i}") }]),
            )]),
            memberships: vec![group.clone()],
            client_data: Vec::new(),
        };
        let made = a.create_contacts("ann@example.com", (0..5).map(new).collect()).unwrap();
        let again = b.create_contacts("ann@example.com", (0..5).map(new).collect()).unwrap();
        assert_eq!(made, again, "two stores agree on new names");
        let (page, total) = a.contacts_page("ann@example.com", 2, 3).unwrap();
        assert_eq!(total, 7);
        let names: Vec<String> = page.iter().map(Contact::display_name).collect();
        assert_eq!(names, ["N0", "N1", "N2"]);
        let members = a.group_contacts("ann@example.com", &group).unwrap();
        assert_eq!(members.len(), 6);
        let named = a.contacts_named("ann@example.com", &[&made[4].resource_name, "x"]).unwrap();
        assert_eq!(named, [Some(made[4].clone()), None]);
        a.modify_members("ann@example.com", &group, &[], &[made[0].resource_name.clone()]).unwrap();
        assert_eq!(a.group_contacts("ann@example.com", &group).unwrap().len(), 5);
    }

    #[test]
    fn a_database_file_keeps_its_writes_and_refuses_what_it_cannot_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let mut store = Store::create_file(&path, tenant(), "seeded").unwrap();
        store.create_group("bob@example.com", "Later", vec![]).unwrap();
        drop(store);
        let store = Store::open_file(&path).unwrap();
        assert!(store.is_dirty(), "a restart knows what was not written back");
        assert_eq!(store.origin().unwrap(), "seeded");
        assert!(store.contact_groups("42").unwrap().iter().any(|g| g.name == "Later"));
        let exported = store.tenant().unwrap();
        drop(store);

        let copy = dir.path().join("copy.db");
        Store::write_file(&copy, exported.clone()).unwrap();
        assert_eq!(Store::open_file(&copy).unwrap().tenant().unwrap(), exported);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&copy).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "contact data readable by others");
        }
        let names: Vec<_> =
            std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(!names.iter().any(|n| n.to_string_lossy().contains("tmp")), "{names:?}");

        std::fs::write(&path, "not a database").unwrap();
        let err = Store::open_file(&path).unwrap_err();
        assert!(err.to_string().contains("t.db"), "{err}");
        assert!(Store::open_file(&dir.path().join("none.db")).is_err());
    }
}
