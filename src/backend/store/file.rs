//! The store's files: a tenant database opened, created or copied to disk (each
//! atomically, readable by its owner only), and the tenant written out as a
//! workspace YAML file, user by user.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::{Cause, Store, StoreError, schema};
use crate::backend::tenant::TenantFile;
use crate::backend::{Error, Result};

impl Store {
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
    /// [`crate::backend::tenant::write_atomic_streamed`]). Returns the text's hash.
    pub fn write_yaml(&self, path: &Path) -> std::io::Result<String> {
        let io = std::io::Error::other;
        let tx = self.db.unchecked_transaction().map_err(io)?;
        let head = schema::head(&tx).map_err(io)?;
        let mut rows = tx.prepare("SELECT id, body FROM users ORDER BY id").map_err(io)?;
        let users = rows
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .map_err(io)?
            .map(|row| row.and_then(|(id, body)| schema::user(&tx, id, &body)).map_err(io));
        crate::backend::tenant::write_atomic_streamed(path, &head, users)
    }

    /// The database file, if the store is not in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
}

/// Settings of a database file: write-ahead log (readers do not wait for the
/// writer, and a write is one append), and a sync to disk at every commit, so an
/// answered write survives a crash of the machine too.
pub(super) fn configure(db: &Connection) -> rusqlite::Result<()> {
    db.busy_timeout(std::time::Duration::from_secs(30))?;
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// `path` with `suffix` appended: SQLite's `-wal` and `-shm` files.
pub(super) fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub(super) fn remove_if_there(path: &Path) -> std::io::Result<()> {
    use std::io::ErrorKind as IoKind;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != IoKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
