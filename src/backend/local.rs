//! The local backend: a [`Store`] loaded from the workspace file, written back by
//! [`Backend::commit`] atomically and under an advisory lock.
//!
//! Writes go to memory first; `commit` then takes the lock, checks the file is
//! still the one that was read (someone else's apply in between would otherwise be
//! overwritten), writes a temporary file, flushes it and renames it into place.
//! Any failure leaves the previous file untouched.
//!
//! Two other ways to keep the tenant share the rest. The emulator's
//! ([`LocalBackend::open_mirrored`]) keeps the store in a database file beside the
//! YAML file, so that its writes are durable as they are answered and a restart
//! finds them, and writes the YAML file back by the same `commit`. A workspace path
//! ending in `.db` or `.sqlite` names a tenant database, written as it goes, with
//! no YAML file at all: for a tenant too large to parse and rewrite whole.
//!
//! The same lock is the writer lease: `apply` takes it before it reads the tenant
//! and keeps it until its writes are committed, recording who holds it in the lock
//! file so that a second writer can say whom it waits for. The operating system
//! releases it when the holder's process ends, however it ends.
//!
//! A tenant file that is a symbolic link is written through: the file it points at
//! gets the new content, and its lock file (`.<name>.lock`) lies beside that file,
//! so that every link to one file shares one lock. Whoever takes the lock removes
//! the temporary copies of the file that a writer killed half-way left behind.

use std::fs::{File, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::store::{Store, StoreError};
use super::{
    Backend, ContactUpdate, Error, LeaseAttempt, LeaseHolder, NewContact, Refusal, Result,
    UserScope, tenant,
};
use crate::diagnostic::Diagnostic;
use crate::model::{ClientData, Contact, ContactGroup, DirectoryUser, short_hash};

/// A tenant kept in a local YAML file (or in a tenant database).
#[derive(Debug)]
pub struct LocalBackend {
    /// The path as given, for messages.
    path: PathBuf,
    /// The file it stands for, symbolic links followed: what is written and locked.
    target: PathBuf,
    /// How the tenant is kept.
    kind: Kind,
    state: Mutex<State>,
    /// The lock file, locked, while this process holds the writer lease.
    lease: Mutex<Option<File>>,
}

/// How the local backend keeps its tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The YAML file, read into a database in memory and written back by commit:
    /// an apply's writes reach the file all at once or not at all.
    Yaml,
    /// The YAML file, mirrored in a database file beside it (the emulator's): each
    /// write is durable once made, and the YAML file is written back by commit.
    Mirrored,
    /// A tenant database, named by the workspace path itself (`.db`, `.sqlite`):
    /// each write is durable once made; there is no YAML file.
    Database,
}

/// How long a commit without the lease waits for another process's lock.
const COMMIT_LOCK_WAIT: Duration = Duration::from_secs(30);

#[derive(Debug)]
struct State {
    store: Store,
    /// Hash of the YAML file's bytes as last read or written.
    file_hash: String,
    /// Size and modification time of the YAML file as last read or written: while
    /// they stay the same, the file is taken to be unchanged without reading it.
    file_stamp: Option<Stamp>,
    /// An edit of the YAML file was set aside because of writes not yet written
    /// back (warned about once).
    edit_ignored: bool,
}

/// Size and modification time of a file.
type Stamp = (u64, std::time::SystemTime);

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

/// What a mirrored store records about the YAML file it was seeded from or last
/// wrote: its stamp and hash, to tell on the next start whether the file was
/// edited since.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Origin {
    len: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    modified: u128,
    hash: String,
}

impl Origin {
    fn of(stamp: Option<Stamp>, hash: &str) -> Self {
        let (len, modified) = stamp.map_or((0, 0), |(len, time)| {
            (len, time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()))
        });
        Self { len, modified, hash: hash.to_owned() }
    }

    /// As the store records it.
    fn text(stamp: Option<Stamp>, hash: &str) -> String {
        serde_json::to_string(&Self::of(stamp, hash)).unwrap_or_default()
    }

    fn parse(text: &str) -> Self {
        serde_json::from_str(text).unwrap_or_default()
    }

    /// Whether the file has the size and time recorded.
    fn stamp_matches(&self, stamp: Option<Stamp>) -> bool {
        let now = Self::of(stamp, "");
        stamp.is_some() && (now.len, now.modified) == (self.len, self.modified)
    }
}

/// Why the workspace file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Reading failed.
    #[error(transparent)]
    Read(#[from] crate::manifest::LoadError),
    /// The file has errors; each names its `file:line:col`.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    /// The tenant database could not be opened or written.
    #[error(transparent)]
    Store(#[from] Error),
}

/// Whether `path` names a tenant database rather than a YAML file: it ends in
/// `.db`, `.sqlite` or `.sqlite3`.
pub fn is_database(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["db", "sqlite", "sqlite3"].contains(&e.to_ascii_lowercase().as_str()))
}

/// The database file that mirrors the YAML file `target` (symbolic links
/// followed): `.<name>.db` beside it, with SQLite's `-wal` and `-shm` files.
pub fn mirror_path(target: &Path) -> PathBuf {
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("workspace");
    target.with_file_name(format!(".{name}.db"))
}

/// Reads and parses a YAML workspace file: (text's hash, tenant).
fn read_yaml(path: &Path) -> Result<(String, tenant::TenantFile), OpenError> {
    let text = crate::manifest::load::read_limited(path, crate::manifest::load::MAX_TENANT_BYTES)?;
    let hash = short_hash(&[&text]);
    let tenant = tenant::parse(path, text).map_err(OpenError::Invalid)?;
    Ok((hash, tenant))
}

/// The mirror database of a YAML file, as found.
enum Mirror {
    /// It holds the file as it is now (seeded from it, or written back to it,
    /// since the file last changed), with the file's hash.
    Current(Store, String),
    /// It holds an older version of the file.
    Stale(Store),
    /// It cannot be used (not a database, another version).
    Unusable(Error),
    /// There is none.
    Missing,
}

fn mirror(path: &Path, db_path: &Path, file_stamp: Option<Stamp>) -> Result<Mirror, OpenError> {
    if !db_path.exists() {
        return Ok(Mirror::Missing);
    }
    let store = match Store::open_file(db_path) {
        Ok(store) => store,
        Err(e) => return Ok(Mirror::Unusable(e)),
    };
    let origin = Origin::parse(&store.origin()?);
    if origin.hash.is_empty() {
        return Ok(Mirror::Stale(store));
    }
    if origin.stamp_matches(file_stamp) {
        return Ok(Mirror::Current(store, origin.hash));
    }
    // Touched or copied, perhaps not changed.
    let text = crate::manifest::load::read_limited(path, crate::manifest::load::MAX_TENANT_BYTES)?;
    Ok(if short_hash(&[&text]) == origin.hash {
        Mirror::Current(store, origin.hash)
    } else {
        Mirror::Stale(store)
    })
}

impl LocalBackend {
    /// Opens the workspace at `path`: a YAML file, read into memory; or a tenant
    /// database when the path ends in `.db`, `.sqlite` or `.sqlite3`.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        if is_database(path) {
            let store = Store::open_file(path)?;
            return Ok(Self::with(path, Kind::Database, store, String::new(), None));
        }
        let file_stamp = stamp(path);
        let (file_hash, tenant) = read_yaml(path)?;
        Ok(Self::with(path, Kind::Yaml, Store::new(tenant), file_hash, file_stamp))
    }

    /// Opens the YAML workspace file at `path` mirrored in a database file beside
    /// it (see [`mirror_path`]; a database path is opened as it is). The database
    /// of an earlier run is used again, with every write made since, when the YAML
    /// file was not edited since that run seeded it or wrote it back; otherwise it
    /// is seeded afresh from the file.
    pub fn open_mirrored(path: &Path) -> Result<Self, OpenError> {
        if is_database(path) {
            return Self::open(path);
        }
        let target = crate::fsutil::resolve(path).unwrap_or_else(|_| path.to_path_buf());
        let db_path = mirror_path(&target);
        let file_stamp = stamp(path);
        match mirror(path, &db_path, file_stamp)? {
            Mirror::Current(mut store, hash) => {
                store.set_origin(&Origin::text(file_stamp, &hash))?;
                return Ok(Self::with(path, Kind::Mirrored, store, hash, file_stamp));
            }
            Mirror::Stale(store) if store.is_dirty() => tracing::warn!(
                "{} was edited since {} last wrote it back: serving the file as it is now; \
                 the writes made since were not in the file and are dropped",
                path.display(),
                db_path.display()
            ),
            Mirror::Unusable(e) => {
                let e = crate::text::error_chain(&e);
                tracing::info!("seeding {} afresh from {}: {e}", db_path.display(), path.display());
            }
            Mirror::Stale(_) | Mirror::Missing => {}
        }
        let (file_hash, tenant) = read_yaml(path)?;
        let store = Store::create_file(&db_path, tenant, &Origin::text(file_stamp, &file_hash))?;
        Ok(Self::with(path, Kind::Mirrored, store, file_hash, file_stamp))
    }

    /// The tenant at `path` as [`LocalBackend::open_mirrored`] would serve it, without
    /// creating or changing any file: a tenant database as it is; a YAML file's
    /// mirror database when it holds the file as it is now (with the writes made
    /// since); else the file itself, read into memory.
    pub fn served(path: &Path) -> Result<Store, OpenError> {
        if is_database(path) {
            return Ok(Store::open_file(path)?);
        }
        let target = crate::fsutil::resolve(path).unwrap_or_else(|_| path.to_path_buf());
        if let Mirror::Current(store, _) = mirror(path, &mirror_path(&target), stamp(path))? {
            return Ok(store);
        }
        Ok(Store::new(read_yaml(path)?.1))
    }

    fn with(
        path: &Path,
        kind: Kind,
        store: Store,
        file_hash: String,
        file_stamp: Option<Stamp>,
    ) -> Self {
        Self {
            path: path.to_path_buf(),
            target: crate::fsutil::resolve(path).unwrap_or_else(|_| path.to_path_buf()),
            kind,
            state: Mutex::new(State { store, file_hash, file_stamp, edit_ignored: false }),
            lease: Mutex::new(None),
        }
    }

    /// Reloads the YAML file if someone else changed it since it was read or
    /// written (the emulator serves a file people and tests may edit). Returns
    /// whether it did. Costs a `stat` while the file is unchanged. An edit made
    /// while writes are not yet written back is not loaded (that would drop them),
    /// so callers commit first.
    pub fn reload_if_changed(&self) -> Result<bool, OpenError> {
        if self.kind == Kind::Database {
            return Ok(false);
        }
        // Read under the lock, so a commit in progress is not mistaken for an edit.
        let mut state = self.state.lock().expect("store lock poisoned");
        let file_stamp = stamp(&self.path);
        if file_stamp.is_some() && file_stamp == state.file_stamp {
            return Ok(false);
        }
        let text = crate::manifest::load::read_limited(
            &self.path,
            crate::manifest::load::MAX_TENANT_BYTES,
        )?;
        let hash = short_hash(&[&text]);
        if hash == state.file_hash {
            state.file_stamp = file_stamp;
            if self.kind == Kind::Mirrored {
                state.store.set_origin(&Origin::text(file_stamp, &hash))?;
            }
            return Ok(false);
        }
        if state.store.is_dirty() {
            if !state.edit_ignored {
                state.edit_ignored = true;
                tracing::warn!(
                    "{} was edited while writes to it were not yet written back; the edit is \
                     not loaded",
                    self.path.display()
                );
            }
            return Ok(false);
        }
        let tenant = tenant::parse(&self.path, text).map_err(OpenError::Invalid)?;
        match self.kind {
            Kind::Mirrored => state.store.seed(tenant, &Origin::text(file_stamp, &hash))?,
            _ => state.store = Store::new(tenant),
        }
        state.file_hash = hash;
        state.file_stamp = file_stamp;
        state.edit_ignored = false;
        Ok(true)
    }

    /// Runs `f` on the store.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.state.lock().expect("store lock poisoned").store)
    }

    /// Writes the store back to the YAML file if anything changed: under the lock,
    /// only if the file is still the one that was read, atomically. A tenant
    /// database has nothing to write back: its writes are durable as they are made.
    pub fn commit_now(&self) -> Result<()> {
        if self.kind == Kind::Database || !self.with_store(|s| s.is_dirty()) {
            return Ok(());
        }
        // Under the lease the lock is ours already (a second lock of the same file
        // from this process would wait for itself). Otherwise it is taken before the
        // store, so that waiting for it does not stop the store's readers.
        let lease = self.lease.lock().expect("lease lock poisoned");
        let lock = if lease.is_none() { Some(self.lock_for_commit()?) } else { None };
        let mut state = self.state.lock().expect("store lock poisoned");
        let path = || self.path.clone();
        let unchanged = state.file_stamp.is_some() && stamp(&self.path) == state.file_stamp || {
            let current = std::fs::read_to_string(&self.path)
                .map_err(|e| StoreError::Reread { path: path(), cause: Arc::new(e) })?;
            short_hash(&[&current]) == state.file_hash
        };
        if !unchanged {
            return Err(StoreError::ChangedOnDisk { path: path() }.into());
        }
        state.file_hash = state
            .store
            .write_yaml(&self.target)
            .map_err(|e| StoreError::WriteFile { path: path(), cause: Arc::new(e) })?;
        state.file_stamp = stamp(&self.path);
        let origin = Origin::text(state.file_stamp, &state.file_hash);
        state.store.mark_clean(&origin)?;
        if let Some(lock) = lock {
            let _ = lock.set_len(0);
        }
        Ok(())
    }

    fn lock_path(&self) -> PathBuf {
        let name = self.target.file_name().and_then(|n| n.to_str()).unwrap_or("workspace");
        self.target.with_file_name(format!(".{name}.lock"))
    }

    /// Removes what writers killed half-way left behind. Only under the lock: no
    /// other writer is at work then.
    fn remove_leftovers(&self) {
        match crate::fsutil::remove_leftovers(&self.target) {
            Ok(removed) => {
                for file in removed {
                    tracing::info!(
                        "removed {}, left behind by an apply that was stopped",
                        file.display()
                    );
                }
            }
            Err(e) => tracing::warn!(
                "cannot remove the temporary files left beside {}: {e}",
                self.target.display()
            ),
        }
    }

    fn open_lock(&self) -> Result<File> {
        std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(self.lock_path())
            .map_err(|e| StoreError::OpenLock { path: self.lock_path(), cause: Arc::new(e) }.into())
    }

    /// Who holds the lock, as the holder recorded it in the lock file.
    fn lock_holder(&self) -> LeaseHolder {
        let text = std::fs::read_to_string(self.lock_path()).unwrap_or_default();
        let record: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        let holder = record["holder"].as_str().filter(|h| !h.is_empty()).map_or_else(
            || format!("a process that left no record in {}", self.lock_path().display()),
            str::to_owned,
        );
        let since = record["since"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc));
        LeaseHolder { holder, since, expires: None }
    }

    /// Locks the lock file for a commit made without the lease (the emulator's, or
    /// a library caller's), waiting a bounded time for another holder.
    fn lock_for_commit(&self) -> Result<File> {
        let mut file = self.open_lock()?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => {
                    let me = format!("pid {} (saving {})", std::process::id(), self.path.display());
                    record_holder(&mut file, &me);
                    self.remove_leftovers();
                    return Ok(file);
                }
                Err(TryLockError::WouldBlock) if start.elapsed() < COMMIT_LOCK_WAIT => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    let holder = self.lock_holder();
                    return Err(StoreError::Locked { path: self.path.clone(), holder }.into());
                }
                Err(TryLockError::Error(e)) => {
                    let cause = Arc::new(e);
                    return Err(StoreError::LockForCommit { path: self.path.clone(), cause }.into());
                }
            }
        }
    }
}

/// Writes who holds the lock into the lock file. The record only helps others say
/// whom they wait for: a failure to write it stops nothing.
fn record_holder(file: &mut File, holder: &str) {
    let record = serde_json::json!({ "holder": holder, "since": Utc::now().to_rfc3339() });
    let _ = file.set_len(0).and_then(|()| writeln!(file, "{record}"));
}

#[async_trait]
impl Backend for LocalBackend {
    async fn user(&self, key: &str) -> Result<Option<DirectoryUser>> {
        self.with_store(|s| s.user(key))
    }

    async fn users(&self, scope: UserScope) -> Result<Vec<DirectoryUser>> {
        self.with_store(|s| s.users(&scope))
    }

    async fn user_schemas(&self) -> Result<Vec<crate::model::resolution::UserSchema>> {
        self.with_store(|s| s.user_schemas())
    }

    async fn shared_contacts(&self) -> Result<Vec<Contact>> {
        self.with_store(|s| s.shared_contacts())
    }

    /// The workspace file's users always carry their custom fields.
    fn want_custom_schemas(&self, _schemas: &[String]) {}

    async fn group_members(&self, group: &str) -> Result<Option<Vec<String>>> {
        self.with_store(|s| s.group_members(group))
    }

    async fn contact_groups(&self, user: &str) -> Result<Vec<ContactGroup>> {
        self.with_store(|s| s.contact_groups(user))
    }

    async fn contacts(&self, user: &str) -> Result<Vec<Contact>> {
        self.with_store(|s| s.contacts(user))
    }

    async fn create_contacts(
        &self,
        user: &str,
        contacts: Vec<NewContact<'_>>,
    ) -> Result<Vec<Contact>> {
        self.with_store(|s| s.create_contacts(user, contacts))
    }

    async fn update_contacts(
        &self,
        user: &str,
        updates: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>> {
        self.with_store(|s| s.update_contacts(user, updates))
    }

    async fn delete_contacts(&self, user: &str, resource_names: Vec<String>) -> Result<()> {
        self.with_store(|s| s.delete_contacts(user, &resource_names))
    }

    async fn create_group(
        &self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
    ) -> Result<ContactGroup> {
        self.with_store(|s| s.create_group(user, name, client_data))
    }

    async fn update_group(&self, user: &str, group: ContactGroup) -> Result<ContactGroup> {
        self.with_store(|s| s.update_group(user, group))
    }

    async fn delete_group(&self, user: &str, resource_name: &str) -> Result<()> {
        self.with_store(|s| s.delete_group(user, resource_name))
    }

    async fn modify_members(
        &self,
        user: &str,
        group: &str,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> Result<()> {
        self.with_store(|s| s.modify_members(user, group, &add, &remove))
    }

    async fn commit(&self) -> Result<()> {
        self.commit_now()
    }

    async fn contact_photo(&self, user: &str, url: &str) -> Result<Option<Vec<u8>>> {
        // The store's photo "URL" is `<resource name>/<hash of the photo>`: a
        // photo changed since is not the one asked for.
        let Some((resource_name, _)) = url.rsplit_once('/') else {
            return Ok(None);
        };
        let current = self.with_store(|s| s.contacts_named(user, &[resource_name]))?;
        match current.into_iter().flatten().next() {
            Some(c) if c.photo.as_deref() == Some(url) => {
                self.with_store(|s| s.contact_photo(user, resource_name))
            }
            _ => Ok(None),
        }
    }

    async fn user_photo(&self, user_key: &str) -> Result<Option<Vec<u8>>> {
        self.with_store(|s| s.user_photo(user_key))
    }

    async fn set_contact_photo(
        &self,
        user: &str,
        resource_name: &str,
        bytes: &[u8],
    ) -> Result<Contact> {
        if let Some(why) = crate::model::photo::refusal(bytes) {
            let resource_name = resource_name.to_owned();
            return Err(Error::Invalid(Refusal::Photo { resource_name, why }));
        }
        self.with_store(|s| s.set_contact_photo(user, resource_name, Some(bytes)))
    }

    async fn delete_contact_photo(&self, user: &str, resource_name: &str) -> Result<Contact> {
        self.with_store(|s| s.set_contact_photo(user, resource_name, None))
    }

    async fn try_lease(&self, holder: &str, _ttl: Duration) -> Result<LeaseAttempt> {
        let mut lease = self.lease.lock().expect("lease lock poisoned");
        if lease.is_none() {
            let mut file = self.open_lock()?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(LeaseAttempt::Held(self.lock_holder())),
                Err(TryLockError::Error(e)) => {
                    let cause = Arc::new(e);
                    return Err(StoreError::Lock { path: self.path.clone(), cause }.into());
                }
            }
            record_holder(&mut file, holder);
            self.remove_leftovers();
            // Another writer may have changed the file since it was read; nothing
            // is written yet, so read it again.
            if let Err(e) = self.reload_if_changed() {
                let _ = file.set_len(0);
                let _ = file.unlock();
                let cause = Arc::new(e);
                return Err(StoreError::Reload { path: self.path.clone(), cause }.into());
            }
            *lease = Some(file);
        }
        Ok(LeaseAttempt::Taken { expires: None, took_over: None })
    }

    async fn renew_lease(&self, _holder: &str, _ttl: Duration) -> Result<LeaseAttempt> {
        // The lock lasts as long as it is held: ours if we hold it.
        if self.lease.lock().expect("lease lock poisoned").is_some() {
            return Ok(LeaseAttempt::Taken { expires: None, took_over: None });
        }
        Ok(LeaseAttempt::Held(self.lock_holder()))
    }

    async fn release_lease(&self, _holder: &str) -> Result<()> {
        if let Some(file) = self.lease.lock().expect("lease lock poisoned").take() {
            let _ = file.set_len(0);
            file.unlock()
                .map_err(|e| StoreError::Unlock { path: self.lock_path(), cause: Arc::new(e) })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT: &str = "\
domains: [example.com]
users:
  - primaryEmail: ann@example.com
    favouriteColour: teal          # not part of the format: kept
    contactGroups: [{ name: Friends }]
    contacts:
      - names: [{ givenName: Bo }]
        contactGroups: [Friends]
        x-note: keep me
future: { anything: 1 }
";

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("tenant.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    #[tokio::test]
    async fn apply_keeps_what_it_does_not_understand_and_assigns_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TENANT);
        let backend = LocalBackend::open(&path).unwrap();
        let group = backend.create_group("ann@example.com", "Synced", vec![]).await.unwrap();
        assert!(group.resource_name.starts_with("contactGroups/"));
        backend.commit().await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        for kept in ["favouriteColour: teal", "x-note: keep me", "anything: 1", "name: Synced"] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        assert!(text.contains("id: \"1"), "the user id is written back:\n{text}");
        assert!(text.contains("resourceName: people/c"), "{text}");
        // Reading the file again gives the same ids.
        let again = LocalBackend::open(&path).unwrap();
        assert_eq!(
            again.contacts("ann@example.com").await.unwrap(),
            backend.contacts("ann@example.com").await.unwrap()
        );
    }

    #[tokio::test]
    async fn a_file_changed_on_disk_meanwhile_is_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TENANT);
        let backend = LocalBackend::open(&path).unwrap();
        backend.create_group("ann@example.com", "Synced", vec![]).await.unwrap();
        let edited = TENANT.replace("teal", "red");
        std::fs::write(&path, &edited).unwrap();
        let err = backend.commit().await.unwrap_err();
        assert!(err.to_string().contains("changed on disk"), "{err}");
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            edited,
            "the other writer's file stands"
        );
    }

    #[tokio::test]
    async fn plan_only_never_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TENANT);
        let backend = LocalBackend::open(&path).unwrap();
        backend.contacts("ann@example.com").await.unwrap();
        backend.commit().await.unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TENANT);
    }

    #[tokio::test]
    async fn a_copy_of_the_tenant_left_by_a_killed_apply_is_removed_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TENANT);
        let leftover = dir.path().join(".tenant.yaml.contact-sync-tmp.5f3a9c0e12d4b7a8");
        let unrelated = dir.path().join("notes.yaml");
        // The next apply takes the lease.
        std::fs::write(&leftover, TENANT).unwrap();
        std::fs::write(&unrelated, TENANT).unwrap();
        let backend = LocalBackend::open(&path).unwrap();
        backend.try_lease("test", Duration::from_secs(60)).await.unwrap();
        assert!(!leftover.exists(), "the leftover copy of the contact data is still there");
        backend.release_lease("test").await.unwrap();
        // A write without the lease (the emulator's) takes the lock too.
        std::fs::write(&leftover, TENANT).unwrap();
        backend.create_group("ann@example.com", "Synced", vec![]).await.unwrap();
        backend.commit().await.unwrap();
        assert!(!leftover.exists(), "the leftover copy of the contact data is still there");
        assert!(unrelated.exists(), "other files stay");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlinked_tenant_stays_a_link_and_its_target_gets_the_changes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::create_dir(dir.path().join("config")).unwrap();
        let real = dir.path().join("data/tenant.yaml");
        std::fs::write(&real, TENANT).unwrap();
        let link = dir.path().join("config/workspace.yaml");
        std::os::unix::fs::symlink("../data/tenant.yaml", &link).unwrap();
        let backend = LocalBackend::open(&link).unwrap();
        backend.try_lease("test", Duration::from_secs(60)).await.unwrap();
        backend.create_group("ann@example.com", "Synced", vec![]).await.unwrap();
        backend.commit().await.unwrap();
        backend.release_lease("test").await.unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert!(std::fs::read_to_string(&real).unwrap().contains("name: Synced"));
        // One lock for every link to the file: beside the file itself.
        assert!(dir.path().join("data/.tenant.yaml.lock").exists());
        assert!(!dir.path().join("config/.workspace.yaml.lock").exists());
        // And the change is read back through the link.
        let again = LocalBackend::open(&link).unwrap();
        let groups = again.contact_groups("ann@example.com").await.unwrap();
        assert!(groups.iter().any(|g| g.name == "Synced"), "{groups:?}");
    }

    fn group_names(backend: &LocalBackend, user: &str) -> Vec<String> {
        backend
            .with_store(|s| s.contact_groups(user).unwrap())
            .into_iter()
            .map(|g| g.name)
            .collect()
    }

    #[tokio::test]
    async fn a_mirror_keeps_unwritten_writes_until_the_file_is_edited() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), TENANT);
        let backend = LocalBackend::open_mirrored(&path).unwrap();
        assert!(dir.path().join(".tenant.yaml.db").is_file());
        backend.create_group("ann@example.com", "Synced", vec![]).await.unwrap();
        drop(backend);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TENANT, "not written back yet");
        // The next start finds the file as it was, and serves the write.
        let backend = LocalBackend::open_mirrored(&path).unwrap();
        assert!(group_names(&backend, "ann@example.com").contains(&"Synced".to_owned()));
        // A copy of what it serves, as a database, from the mirror.
        let copy = dir.path().join("copy.db");
        LocalBackend::served(&path).unwrap().write_database(&copy).unwrap();
        let copied = LocalBackend::open(&copy).unwrap();
        assert_eq!(
            copied.with_store(|s| s.tenant().unwrap()),
            backend.with_store(|s| s.tenant().unwrap())
        );
        // An edit of the file while it serves is picked up once written back…
        backend.commit().await.unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("name: Synced"));
        let edited = std::fs::read_to_string(&path).unwrap().replace("Friends", "Pals");
        std::fs::write(&path, &edited).unwrap();
        assert!(backend.reload_if_changed().unwrap());
        assert!(group_names(&backend, "ann@example.com").contains(&"Pals".to_owned()));
        drop(backend);
        // … and an edit made while it was stopped wins over its database.
        let backend = LocalBackend::open_mirrored(&path).unwrap();
        backend.create_group("ann@example.com", "Dropped", vec![]).await.unwrap();
        drop(backend);
        std::fs::write(&path, TENANT).unwrap();
        let backend = LocalBackend::open_mirrored(&path).unwrap();
        assert_eq!(group_names(&backend, "ann@example.com")[2..], ["Friends"]);
        // The file as exported equals the file as loaded, ids assigned.
        assert_eq!(
            LocalBackend::served(&path).unwrap().tenant().unwrap(),
            Store::new(tenant::parse(&path, TENANT.into()).unwrap()).tenant().unwrap()
        );
    }

    #[tokio::test]
    async fn a_tenant_database_is_a_workspace_too() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = write(dir.path(), TENANT);
        let db = dir.path().join("tenant.db");
        LocalBackend::served(&yaml).unwrap().write_database(&db).unwrap();
        let backend = LocalBackend::open(&db).unwrap();
        backend.try_lease("test", Duration::from_secs(60)).await.unwrap();
        backend.create_group("ann@example.com", "Synced", vec![]).await.unwrap();
        backend.commit().await.unwrap();
        backend.release_lease("test").await.unwrap();
        assert!(dir.path().join(".tenant.db.lock").exists());
        let again = LocalBackend::open(&db).unwrap();
        assert!(group_names(&again, "ann@example.com").contains(&"Synced".to_owned()));
        let err = LocalBackend::open(&dir.path().join("missing.db")).unwrap_err();
        assert!(err.to_string().contains("missing.db"), "{err}");
    }

    #[test]
    fn errors_in_the_file_name_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            dir.path(),
            &TENANT.replace("contactGroups: [Friends]", "contactGroups: [Enemies]"),
        );
        let Err(OpenError::Invalid(errors)) = LocalBackend::open(&path) else { panic!("opened") };
        let shown = errors[0].to_string();
        assert!(shown.contains("tenant.yaml:8:25: /users/0/contacts/0/contactGroups/0: no contact group named \"Enemies\""), "{shown}");

        let path = write(
            dir.path(),
            &TENANT.replace("primaryEmail: ann@example.com", "primaryEmail: [ann]"),
        );
        let Err(OpenError::Invalid(errors)) = LocalBackend::open(&path) else { panic!("opened") };
        assert!(
            errors[0].to_string().contains(
                "tenant.yaml:3:5: /users/0/primaryEmail: invalid type: sequence, expected a string"
            ),
            "{}",
            errors[0]
        );
    }
}
