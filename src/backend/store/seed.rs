//! Filling the store: a tenant seeded whole (with the ids, resource names and
//! etags it lacks derived from stable inputs, so two loads of one file agree),
//! read back whole, and the clean/dirty mark with the origin it was loaded from.

use std::collections::HashSet;

use rusqlite::Connection;

use super::contacts::contact_etag;
use super::groups::group_etag;
use super::{Store, db_err, schema};
use crate::backend::Result;
use crate::backend::tenant::TenantFile;
use crate::model::short_hash;

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

    /// Replaces the whole tenant by `tenant` (assigning what it lacks) in one
    /// transaction, and marks the store clean with `origin`.
    pub fn seed(&mut self, mut tenant: TenantFile, origin: &str) -> Result<()> {
        assign_ids(&mut tenant);
        let tx = self.db.transaction().map_err(db_err)?;
        schema::fill(&tx, tenant).map_err(db_err)?;
        schema::set_meta(&tx, "dirty", "0").map_err(db_err)?;
        schema::set_meta(&tx, "origin", origin).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        self.dirty = false;
        Ok(())
    }

    /// The tenant as it stands, for writing back to a workspace file.
    pub fn tenant(&self) -> Result<TenantFile> {
        let tx = self.db.unchecked_transaction().map_err(db_err)?;
        schema::export(&tx).map_err(db_err)
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
        let tx = self.db.transaction().map_err(db_err)?;
        schema::set_meta(&tx, "dirty", "0").map_err(db_err)?;
        schema::set_meta(&tx, "origin", origin).map_err(db_err)?;
        tx.commit().map_err(db_err)?;
        self.dirty = false;
        Ok(())
    }

    /// Records `origin` without marking the store clean.
    pub fn set_origin(&mut self, origin: &str) -> Result<()> {
        schema::set_meta(&self.db, "origin", origin).map_err(db_err)
    }

    /// What [`Store::seed`], [`Store::mark_clean`] or [`Store::set_origin`] last
    /// recorded.
    pub fn origin(&self) -> Result<String> {
        Ok(schema::meta(&self.db, "origin").map_err(db_err)?.unwrap_or_default())
    }
}

/// Assigns the ids, resource names and etags a parsed file lacks, from stable
/// inputs: so two loads of one file agree.
pub(super) fn assign_ids(tenant: &mut TenantFile) {
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
