//! The read cache: per user, the People API sync tokens of its two listings and
//! what the last full read of it concluded ([`Converged`]), so that a run can
//! skip reading a user that provably did not change.
//!
//! The markers in the tenant stay the only truth. The cache only ever saves
//! reads: a user is planned from it only when both incremental listings come
//! back empty *and* what the run desires of the user is what the cached
//! conclusion was drawn under; anything else reads the user in full. A missing,
//! corrupt or foreign file (another tenant, another contact-sync version) is
//! ignored, and the run reads in full. The file holds no contact data: sync
//! tokens, user ids, sync names, digests and counts. It is the owner's only
//! (0600, in a folder that is too).

use std::collections::BTreeMap;
use std::io::ErrorKind as Io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::backend::SyncTokens;
use crate::backend::open::{BackendTarget, Target};
use crate::plan::planner::Converged;

/// Bumped when the meaning of an entry changes.
const FORMAT: u32 = 1;

/// The environment variable that sets the cache folder (as `--cache-dir`).
pub const ENV: &str = "CONTACT_SYNC_CACHE_DIR";

/// One user's entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Where the user's listings stood when it was last read (in full or not).
    pub tokens: SyncTokens,
    /// What the last full read concluded.
    pub converged: Converged,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File {
    format: u32,
    version: String,
    tenant: String,
    users: BTreeMap<String, Entry>,
}

/// The cache of one tenant, loaded; written back by [`ReadCache::save`].
#[derive(Debug)]
pub struct ReadCache {
    path: PathBuf,
    tenant: String,
    users: Mutex<BTreeMap<String, Entry>>,
    /// Why the file on disk was not used, when it was there and was not.
    ignored: Option<String>,
}

/// The folder the cache goes in when none is given: `$CONTACT_SYNC_CACHE_DIR`,
/// else `$XDG_CACHE_HOME/contact-sync`, else `~/.cache/contact-sync`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    var(ENV)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("contact-sync")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("contact-sync")))
}

/// What tells one tenant from another: the customer, the admin, the endpoints
/// and the key; `None` for the local backend, whose reads cost nothing.
fn tenant_key(target: &Target) -> Option<String> {
    let BackendTarget::Google { settings, credentials } = &target.backend else { return None };
    let mut h = Sha256::new();
    for part in [
        settings.customer.as_str(),
        settings.admin_user.as_str(),
        settings.endpoints.people.as_deref().unwrap_or("google"),
        settings.endpoints.directory.as_deref().unwrap_or("google"),
        &credentials.to_string_lossy(),
    ] {
        h.update(part.as_bytes());
        h.update([0]);
    }
    Some(hex::encode(h.finalize()))
}

impl ReadCache {
    /// The cache of `target` in `dir` (the [`default_dir`] when `None`); `None`
    /// for a tenant whose reads cost nothing (the local backend), or when there
    /// is no folder to keep it in.
    pub fn open(target: &Target, dir: Option<&Path>) -> Option<Self> {
        let tenant = tenant_key(target)?;
        let dir = dir.map(Path::to_path_buf).or_else(default_dir)?;
        let path = dir.join(format!("reads-{}.json", &tenant[..16]));
        Some(Self::load(path, tenant))
    }

    fn load(path: PathBuf, tenant: String) -> Self {
        let (users, ignored) = match std::fs::read(&path) {
            Err(e) if e.kind() == Io::NotFound => (BTreeMap::new(), None),
            Err(e) => (BTreeMap::new(), Some(format!("cannot read it: {e}"))),
            Ok(bytes) => match serde_json::from_slice::<File>(&bytes) {
                Err(e) => (BTreeMap::new(), Some(format!("it is damaged: {e}"))),
                Ok(f) if f.tenant != tenant => {
                    (BTreeMap::new(), Some("it is another tenant's".into()))
                }
                Ok(f) if f.format != FORMAT || f.version != env!("CARGO_PKG_VERSION") => {
                    (BTreeMap::new(), Some(format!("it was written by contact-sync {}", f.version)))
                }
                Ok(f) => (f.users, None),
            },
        };
        if let Some(why) = &ignored {
            tracing::info!("not using the read cache {} ({why}): reading in full", path.display());
        }
        Self { path, tenant, users: Mutex::new(users), ignored }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Why the file was there but not used (damaged, another tenant's…).
    pub fn ignored(&self) -> Option<&str> {
        self.ignored.as_deref()
    }

    fn users(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Entry>> {
        self.users.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The entry of the user with immutable id `id`.
    pub fn get(&self, id: &str) -> Option<Entry> {
        self.users().get(id).cloned()
    }

    /// Records what a read of user `id` concluded.
    pub fn put(&self, id: &str, entry: Entry) {
        self.users().insert(id.to_owned(), entry);
    }

    /// Forgets user `id`: its next read is a full one (after a write to it, whose
    /// effect incremental listings may show only minutes later).
    pub fn forget(&self, id: &str) {
        self.users().remove(id);
    }

    /// Forgets every user `plan` has changes for, before they are applied: their
    /// next read is a full one whatever becomes of the writes.
    pub fn forget_planned(&self, plan: &crate::plan::Plan) {
        let written: std::collections::HashSet<String> = plan
            .syncs
            .iter()
            .flat_map(|s| &s.destinations)
            .filter(|d| d.status == crate::plan::Status::Changes)
            .map(|d| d.user.to_lowercase())
            .collect();
        let mut users = self.users();
        for (id, seen) in &plan.survey.seen {
            if written.contains(&seen.email.to_lowercase()) {
                users.remove(id);
            }
        }
    }

    /// Saves, and says on stderr (not as an error: the cache only saves reads)
    /// when it cannot.
    pub fn save_or_warn(&self) {
        if let Err(e) = self.save() {
            tracing::warn!(
                "cannot write the read cache {}: {e}; the next run reads in full",
                self.path.display()
            );
        }
    }

    /// How many users it has entries for.
    pub fn len(&self) -> usize {
        self.users().len()
    }

    /// Whether it has no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the cache back, atomically, readable by its owner only.
    pub fn save(&self) -> std::io::Result<()> {
        let file = File {
            format: FORMAT,
            version: env!("CARGO_PKG_VERSION").into(),
            tenant: self.tenant.clone(),
            users: self.users().clone(),
        };
        let bytes = serde_json::to_vec(&file).map_err(std::io::Error::other)?;
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir)?;
        }
        private_file(&self.path)?;
        crate::fsutil::write_atomic(&self.path, &bytes)
    }
}

/// Creates `dir` (and its parents) if missing; a folder it creates is its
/// owner's only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Makes sure the file at `path` exists and is its owner's only, so that the
/// atomic replacement (which keeps the permissions of the file it replaces) is
/// too.
fn private_file(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    drop(file);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            tokens: SyncTokens { groups: "g1".into(), contacts: "c1".into() },
            converged: Converged {
                desired: "d".into(),
                state: "s".into(),
                owners: BTreeMap::from([("sales".into(), 3)]),
                managed: BTreeMap::from([("sales".into(), 2)]),
                owned: 2,
            },
        }
    }

    #[test]
    fn a_saved_cache_reads_back_and_is_its_owners_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache/reads.json");
        let cache = ReadCache::load(path.clone(), "tenant-a".into());
        cache.put("u1", entry());
        cache.save().unwrap();
        let again = ReadCache::load(path.clone(), "tenant-a".into());
        assert_eq!(again.get("u1"), Some(entry()));
        assert_eq!(again.ignored(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }

    #[test]
    fn a_foreign_damaged_or_older_cache_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reads.json");
        let cache = ReadCache::load(path.clone(), "tenant-a".into());
        cache.put("u1", entry());
        cache.save().unwrap();
        let other = ReadCache::load(path.clone(), "tenant-b".into());
        assert!(other.is_empty());
        assert_eq!(other.ignored(), Some("it is another tenant's"));

        let text = std::fs::read_to_string(&path).unwrap();
        let older = text.replace(env!("CARGO_PKG_VERSION"), "0.0.1");
        std::fs::write(&path, older).unwrap();
        let older = ReadCache::load(path.clone(), "tenant-a".into());
        assert!(older.is_empty());
        assert!(older.ignored().unwrap().contains("0.0.1"), "{:?}", older.ignored());

        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let damaged = ReadCache::load(path, "tenant-a".into());
        assert!(damaged.is_empty());
        assert!(damaged.ignored().unwrap().starts_with("it is damaged"));
    }
}
