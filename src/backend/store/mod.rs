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

//!
//! By noun:
//! - [`file`]: the database file opened, created or copied; the YAML written out;
//! - [`seed`]: a whole tenant seeded or read back; the clean mark and its origin;
//! - [`directory`]: users, Google groups, custom schemas, shared contacts;
//! - [`groups`]: contact groups and their members;
//! - [`contacts`]: contacts listed, created, updated and deleted;
//! - [`photos`]: contact photos;
//! - [`schema`]: the tables and their rows; [`error`]: what can go wrong.
//!
//! Here: the [`Store`] itself, its read and write transactions, and the user
//! lookup every noun starts from.

mod contacts;
mod directory;
mod error;
mod file;
mod groups;
mod photos;
mod schema;
mod seed;

pub use error::{Cause, StoreError};

use std::path::PathBuf;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::tenant::TenantUser;
use super::{Error, Result};

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
fn db_err(e: rusqlite::Error) -> Error {
    Error::Store(StoreError::Database(e.into()))
}

fn not_found(what: String) -> Error {
    Error::NotFound { what }
}

impl Store {
    /// Runs `f` in one write transaction: all of it is kept, or none of it.
    fn write<T>(&mut self, f: impl FnOnce(&Transaction) -> Result<T>) -> Result<T> {
        let tx =
            self.db.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_err)?;
        let out = f(&tx)?;
        if !self.dirty {
            schema::set_meta(&tx, "dirty", "1").map_err(db_err)?;
        }
        tx.commit().map_err(db_err)?;
        self.dirty = true;
        Ok(out)
    }

    /// Runs `f` on one consistent snapshot.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let tx = self.db.unchecked_transaction().map_err(db_err)?;
        f(&tx)
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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::backend::tenant::TenantFile;
    use crate::backend::{ContactUpdate, NewContact};
    use crate::model::{Contact, ContactGroup, PersonFields};

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
            fields: std::borrow::Cow::Owned(PersonFields::from([(
                "names".into(),
                serde_json::json!([{ "givenName": format!("N{i}") }]),
            )])),
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
