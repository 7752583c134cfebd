//! The tenant database's tables, and the workspace file's data in and out of them.
//!
//! One row per user, contact group, contact and Google group, each row holding the
//! file's own JSON for the item (so keys this version does not know survive a
//! round trip) beside the columns it is looked up by. Rows keep the file's order
//! through their row ids: new items get higher ones, as they are appended to the
//! file's lists. The indexes are what make a write cost what it touches:
//! addresses (primary and aliases) and ids → user; (user, resource name) → contact
//! or contact group; (user, group name) → member contacts.

use rusqlite::types::Type;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::backend::tenant::{
    TenantContact, TenantContactGroup, TenantFile, TenantGroup, TenantUser,
};

/// The layout's version, kept in `meta`; a database of another version is not used.
pub(super) const VERSION: &str = "1";

/// Every table, created afresh when the store is seeded.
const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
-- body: the file's user without its contactGroups and contacts.
CREATE TABLE users (id INTEGER PRIMARY KEY, user_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX users_by_id ON users (user_id);
-- Primary addresses and aliases, lower case; the first user to claim one has it.
CREATE TABLE addresses (address TEXT PRIMARY KEY, user INTEGER NOT NULL) WITHOUT ROWID;
-- body: the file's contact group without resourceName and etag.
CREATE TABLE contact_groups (
    id INTEGER PRIMARY KEY, user INTEGER NOT NULL, resource_name TEXT NOT NULL,
    name TEXT NOT NULL, etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX contact_groups_by_resource ON contact_groups (user, resource_name);
CREATE INDEX contact_groups_by_name ON contact_groups (user, name);
-- body: the file's contact without resourceName and etag.
CREATE TABLE contacts (
    id INTEGER PRIMARY KEY, user INTEGER NOT NULL, resource_name TEXT NOT NULL,
    etag TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX contacts_by_user ON contacts (user);
CREATE INDEX contacts_by_resource ON contacts (user, resource_name);
-- A contact's memberships by group name, as the file writes them (`myContacts`
-- for the system group): kept in step with the contact's body.
CREATE TABLE memberships (
    user INTEGER NOT NULL, group_name TEXT NOT NULL, contact INTEGER NOT NULL,
    PRIMARY KEY (user, group_name, contact)) WITHOUT ROWID;
-- body: the file's Google group; email in lower case.
CREATE TABLE groups (id INTEGER PRIMARY KEY, email TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX groups_by_email ON groups (email);
";

const TABLES: &[&str] =
    &["meta", "users", "addresses", "contact_groups", "contacts", "memberships", "groups"];

/// A JSON text of the database that does not parse: reported like a column of the
/// wrong type.
pub(super) fn from_json<T: DeserializeOwned>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

pub(super) fn to_json<T: Serialize>(value: &T) -> rusqlite::Result<String> {
    serde_json::to_string(value).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

/// A meta value.
pub(super) fn meta(db: &Connection, key: &str) -> rusqlite::Result<Option<String>> {
    db.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([key], |r| r.get(0))
        .optional()
}

pub(super) fn set_meta(db: &Connection, key: &str, value: &str) -> rusqlite::Result<()> {
    db.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute([key, value])?;
    Ok(())
}

/// Replaces whatever the database holds by `tenant`, whose ids, resource names
/// and etags are assigned. Part of the caller's transaction: a seed that stops
/// half-way leaves the database as it was.
pub(super) fn fill(tx: &Transaction, tenant: TenantFile) -> rusqlite::Result<()> {
    for table in TABLES {
        tx.execute_batch(&format!("DROP TABLE IF EXISTS {table}"))?;
    }
    tx.execute_batch(SCHEMA)?;
    set_meta(tx, "version", VERSION)?;
    set_meta(tx, "domains", &to_json(&tenant.domains)?)?;
    set_meta(tx, "extra", &to_json(&tenant.extra)?)?;
    set_meta(tx, "sharedContacts", &to_json(&tenant.shared_contacts)?)?;
    for mut user in tenant.users {
        let groups = std::mem::take(&mut user.contact_groups);
        let contacts = std::mem::take(&mut user.contacts);
        tx.prepare_cached("INSERT INTO users (user_id, body) VALUES (?1, ?2)")?
            .execute(params![user.id.as_deref().unwrap_or_default(), to_json(&user)?])?;
        let id = tx.last_insert_rowid();
        let mut claim = tx.prepare_cached("INSERT OR IGNORE INTO addresses VALUES (?1, ?2)")?;
        for address in std::iter::once(&user.primary_email).chain(&user.aliases) {
            claim.execute(params![address.to_lowercase(), id])?;
        }
        for group in &groups {
            insert_group(tx, id, group)?;
        }
        for contact in &contacts {
            insert_contact(tx, id, contact)?;
        }
    }
    for group in &tenant.groups {
        tx.prepare_cached("INSERT INTO groups (email, body) VALUES (?1, ?2)")?
            .execute(params![group.email.to_lowercase(), to_json(group)?])?;
    }
    Ok(())
}

/// The whole tenant, in the file's order.
pub(super) fn export(db: &Connection) -> rusqlite::Result<TenantFile> {
    let mut tenant = head(db)?;
    let mut rows = db.prepare("SELECT id, body FROM users ORDER BY id")?;
    for row in rows.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (id, body) = row?;
        tenant.users.push(user(db, id, &body)?);
    }
    Ok(tenant)
}

/// The tenant without its users.
pub(super) fn head(db: &Connection) -> rusqlite::Result<TenantFile> {
    let domains: Vec<String> = from_json(&meta(db, "domains")?.unwrap_or_else(|| "[]".into()))?;
    let extra: Map<String, Value> = from_json(&meta(db, "extra")?.unwrap_or_else(|| "{}".into()))?;
    let shared_contacts: Vec<TenantContact> =
        from_json(&meta(db, "sharedContacts")?.unwrap_or_else(|| "[]".into()))?;
    let mut groups = Vec::new();
    let mut rows = db.prepare("SELECT body FROM groups ORDER BY id")?;
    for body in rows.query_map([], |r| r.get::<_, String>(0))? {
        groups.push(from_json::<TenantGroup>(&body?)?);
    }
    Ok(TenantFile { domains, users: Vec::new(), groups, shared_contacts, extra })
}

/// The user in row `id`, whose body is `body`, with its contact groups and contacts.
pub(super) fn user(db: &Connection, id: i64, body: &str) -> rusqlite::Result<TenantUser> {
    let mut user: TenantUser = from_json(body)?;
    user.contact_groups = groups_of(db, id)?.into_iter().map(|(_, g)| g).collect();
    user.contacts = contacts_of(db, id, None)?.into_iter().map(|(_, c)| c).collect();
    Ok(user)
}

/// A contact group as a row.
pub(super) fn insert_group(
    tx: &Connection,
    user: i64,
    group: &TenantContactGroup,
) -> rusqlite::Result<()> {
    let body = TenantContactGroup { resource_name: None, etag: None, ..group.clone() };
    tx.prepare_cached(
        "INSERT INTO contact_groups (user, resource_name, name, etag, body) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        user,
        group.resource_name.as_deref().unwrap_or_default(),
        group.name,
        group.etag.as_deref().unwrap_or_default(),
        to_json(&body)?
    ])?;
    Ok(())
}

/// Rewrites the contact group in row `id`.
pub(super) fn update_group(
    tx: &Connection,
    id: i64,
    group: &TenantContactGroup,
) -> rusqlite::Result<()> {
    let body = TenantContactGroup { resource_name: None, etag: None, ..group.clone() };
    tx.prepare_cached("UPDATE contact_groups SET name = ?2, etag = ?3, body = ?4 WHERE id = ?1")?
        .execute(params![
            id,
            group.name,
            group.etag.as_deref().unwrap_or_default(),
            to_json(&body)?
        ])?;
    Ok(())
}

/// A user's contact groups, in order, with their row ids.
pub(super) fn groups_of(
    db: &Connection,
    user: i64,
) -> rusqlite::Result<Vec<(i64, TenantContactGroup)>> {
    let mut stmt = db.prepare_cached(
        "SELECT id, resource_name, etag, body FROM contact_groups WHERE user = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([user], |r| {
        Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?, r.get(3)?))
    })?;
    rows.map(|row| {
        let (id, rn, etag, body): (i64, String, String, String) = row?;
        let mut group: TenantContactGroup = from_json(&body)?;
        group.resource_name = Some(rn);
        group.etag = Some(etag);
        Ok((id, group))
    })
    .collect()
}

fn contact_row(r: &rusqlite::Row) -> rusqlite::Result<(i64, TenantContact)> {
    let (id, rn, etag, body): (i64, String, String, String) =
        (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
    Ok((id, parse_contact(rn, etag, &body)?))
}

/// A JSON value of the database as `T`; null is the default.
fn parsed<T: DeserializeOwned + Default>(v: Value) -> rusqlite::Result<T> {
    if v.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(v)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, Type::Text, Box::new(e)))
}

/// A contact from its row: what [`contact_body`] wrote. (Read as a map, and the
/// two keys of its own taken out: quicker than serde's `flatten`.)
fn parse_contact(rn: String, etag: String, body: &str) -> rusqlite::Result<TenantContact> {
    let mut fields: Map<String, Value> = from_json(body)?;
    let mut take = |key: &str| fields.shift_remove(key).unwrap_or(Value::Null);
    let (client_data, contact_groups) = (take("clientData"), take("contactGroups"));
    Ok(TenantContact {
        resource_name: Some(rn),
        etag: Some(etag),
        client_data: parsed(client_data)?,
        contact_groups: parsed(contact_groups)?,
        fields,
    })
}

/// A user's contacts, in order, with their row ids; `page` = (offset, limit).
pub(super) fn contacts_of(
    db: &Connection,
    user: i64,
    page: Option<(usize, usize)>,
) -> rusqlite::Result<Vec<(i64, TenantContact)>> {
    let (offset, limit) = page.map_or((0, -1), |(o, l)| (o as i64, l as i64));
    let mut stmt = db.prepare_cached(
        "SELECT id, resource_name, etag, body FROM contacts WHERE user = ?1 ORDER BY id \
         LIMIT ?2 OFFSET ?3",
    )?;
    stmt.query_map(params![user, limit, offset], contact_row)?.collect()
}

/// A user's contacts called `resource_name` (one, unless the file repeats a name).
pub(super) fn contacts_named(
    db: &Connection,
    user: i64,
    resource_name: &str,
) -> rusqlite::Result<Vec<(i64, TenantContact)>> {
    let mut stmt = db.prepare_cached(
        "SELECT id, resource_name, etag, body FROM contacts \
         WHERE user = ?1 AND resource_name = ?2 ORDER BY id",
    )?;
    stmt.query_map(params![user, resource_name], contact_row)?.collect()
}

/// Whether the user has a contact called `resource_name`.
pub(super) fn contact_exists(
    db: &Connection,
    user: i64,
    resource_name: &str,
) -> rusqlite::Result<bool> {
    db.prepare_cached("SELECT 1 FROM contacts WHERE user = ?1 AND resource_name = ?2")?
        .exists(params![user, resource_name])
}

/// The contacts of a user that belong to the group the file calls `group_name`.
pub(super) fn members_named(
    db: &Connection,
    user: i64,
    group_name: &str,
) -> rusqlite::Result<Vec<(i64, TenantContact)>> {
    let mut stmt = db.prepare_cached(
        "SELECT c.id, c.resource_name, c.etag, c.body FROM memberships m \
         JOIN contacts c ON c.id = m.contact \
         WHERE m.user = ?1 AND m.group_name = ?2 ORDER BY m.contact",
    )?;
    stmt.query_map(params![user, group_name], contact_row)?.collect()
}

/// Resource names of the contacts of a user that belong to the group the file
/// calls `group_name`, in order.
pub(super) fn member_names(
    db: &Connection,
    user: i64,
    group_name: &str,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = db.prepare_cached(
        "SELECT c.resource_name FROM memberships m JOIN contacts c ON c.id = m.contact \
         WHERE m.user = ?1 AND m.group_name = ?2 ORDER BY m.contact",
    )?;
    stmt.query_map(params![user, group_name], |r| r.get(0))?.collect()
}

/// A contact's row body: the file's contact without `resourceName` and `etag`
/// (the row's columns), serialized as [`TenantContact`] does.
fn contact_body(contact: &TenantContact) -> rusqlite::Result<String> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Body<'a> {
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        client_data: &'a [crate::model::ClientData],
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        contact_groups: &'a [String],
        #[serde(flatten)]
        fields: &'a Map<String, Value>,
    }
    to_json(&Body {
        client_data: &contact.client_data,
        contact_groups: &contact.contact_groups,
        fields: &contact.fields,
    })
}

/// A contact as a row, with its memberships.
pub(super) fn insert_contact(
    tx: &Connection,
    user: i64,
    contact: &TenantContact,
) -> rusqlite::Result<i64> {
    tx.prepare_cached(
        "INSERT INTO contacts (user, resource_name, etag, body) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![
        user,
        contact.resource_name.as_deref().unwrap_or_default(),
        contact.etag.as_deref().unwrap_or_default(),
        contact_body(contact)?
    ])?;
    let id = tx.last_insert_rowid();
    join(tx, user, id, &contact.contact_groups)?;
    Ok(id)
}

fn join(tx: &Connection, user: i64, contact: i64, groups: &[String]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO memberships VALUES (?1, ?2, ?3)")?;
    for name in groups {
        stmt.execute(params![user, name, contact])?;
    }
    Ok(())
}

fn leave(tx: &Connection, user: i64, contact: i64, groups: &[String]) -> rusqlite::Result<()> {
    let mut stmt = tx.prepare_cached(
        "DELETE FROM memberships WHERE user = ?1 AND group_name = ?2 AND contact = ?3",
    )?;
    for name in groups {
        stmt.execute(params![user, name, contact])?;
    }
    Ok(())
}

/// Rewrites the contact in row `id`, whose memberships were `old_groups`.
pub(super) fn update_contact(
    tx: &Connection,
    user: i64,
    id: i64,
    old_groups: &[String],
    contact: &TenantContact,
) -> rusqlite::Result<()> {
    let body = TenantContact { resource_name: None, etag: None, ..contact.clone() };
    tx.prepare_cached("UPDATE contacts SET etag = ?2, body = ?3 WHERE id = ?1")?
        .execute(params![id, contact.etag.as_deref().unwrap_or_default(), to_json(&body)?])?;
    if old_groups != contact.contact_groups.as_slice() {
        leave(tx, user, id, old_groups)?;
        join(tx, user, id, &contact.contact_groups)?;
    }
    Ok(())
}

/// Deletes the contact in row `id`, whose memberships are `groups`.
pub(super) fn delete_contact(
    tx: &Connection,
    user: i64,
    id: i64,
    groups: &[String],
) -> rusqlite::Result<()> {
    leave(tx, user, id, groups)?;
    tx.prepare_cached("DELETE FROM contacts WHERE id = ?1")?.execute([id])?;
    Ok(())
}
