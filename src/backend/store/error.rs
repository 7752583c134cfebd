//! What can go wrong keeping the local tenant: its database, the workspace file it
//! is written back to, and the lock file beside that. Each error names the file
//! and keeps what the system said as its `#[source]`, so a message shows the cause
//! once, at the end of the chain. Causes sit behind `Arc` because
//! [`crate::backend::Error`] is `Clone` (one error reaches every destination it
//! stopped).

use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::LeaseHolder;
use crate::backend::local::OpenError;

/// Why the local tenant could not be read or written.
#[derive(Clone, Debug, thiserror::Error)]
pub enum StoreError {
    /// A statement on the tenant database failed.
    #[error("the tenant database")]
    Database(#[source] Cause),
    /// There is no tenant database at `path`.
    #[error("{}: no such file", path.display())]
    NoDatabase {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The file at `path` is no tenant database of this version.
    #[error(
        "{}: not a tenant database of this version ({})",
        path.display(),
        found.as_deref().unwrap_or("none")
    )]
    WrongVersion {
        /// The database file.
        path: PathBuf,
        /// The version it records, if any.
        found: Option<String>,
    },
    /// The tenant database at `path` cannot be opened.
    #[error("{}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Cause,
    },
    /// A new tenant database cannot be created at `path`.
    #[error("cannot create {}", path.display())]
    Create {
        /// The database file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Cause,
    },
    /// A copy of the tenant database cannot be written to `path`; whatever was
    /// there is kept.
    #[error("cannot write {} (it was left as it was)", path.display())]
    WriteDatabase {
        /// The database file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Cause,
    },
    /// The workspace file cannot be read again before writing it back.
    #[error("cannot re-read {} (the file was left as it was)", path.display())]
    Reread {
        /// The workspace file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<std::io::Error>,
    },
    /// The workspace file cannot be written back.
    #[error("cannot write {} (the file was left as it was)", path.display())]
    WriteFile {
        /// The workspace file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<std::io::Error>,
    },
    /// The workspace file was edited while contact-sync worked from what it read.
    #[error(
        "{} changed on disk while contact-sync was working; nothing was written. Run plan again",
        path.display()
    )]
    ChangedOnDisk {
        /// The workspace file.
        path: PathBuf,
    },
    /// The lock file cannot be opened.
    #[error("cannot open the lock file {}", path.display())]
    OpenLock {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<std::io::Error>,
    },
    /// Another process holds the workspace file's lock past the wait for it.
    #[error("cannot write {}: it is locked by {holder}; the file was left as it was", path.display())]
    Locked {
        /// The workspace file.
        path: PathBuf,
        /// Who holds the lock.
        holder: LeaseHolder,
    },
    /// The workspace file cannot be locked for the writer lease.
    #[error("cannot lock {}", path.display())]
    Lock {
        /// The workspace file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<std::io::Error>,
    },
    /// The workspace file cannot be locked to write it back.
    #[error("cannot lock {} (the file was left as it was)", path.display())]
    LockForCommit {
        /// The workspace file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<std::io::Error>,
    },
    /// The workspace file cannot be read again once the lease is taken.
    #[error("cannot read {} again", path.display())]
    Reload {
        /// The workspace file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<OpenError>,
    },
    /// The lock file cannot be unlocked.
    #[error("cannot unlock {}", path.display())]
    Unlock {
        /// The lock file.
        path: PathBuf,
        /// What failed.
        #[source]
        cause: Arc<std::io::Error>,
    },
}

/// What failed underneath a [`StoreError`] that names a file.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Cause {
    /// The file system.
    #[error(transparent)]
    Io(Arc<std::io::Error>),
    /// SQLite, in its words (the code it gives below them only repeats them).
    #[error("{0}")]
    Sqlite(Arc<rusqlite::Error>),
    /// The path ends in no file name.
    #[error("no file name")]
    NoFileName,
    /// The path cannot be handed to SQLite.
    #[error("the path is not UTF-8")]
    NotUtf8,
}

impl From<std::io::Error> for Cause {
    fn from(e: std::io::Error) -> Self {
        Cause::Io(Arc::new(e))
    }
}

impl From<rusqlite::Error> for Cause {
    fn from(e: rusqlite::Error) -> Self {
        Cause::Sqlite(Arc::new(e))
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use super::*;
    use crate::backend::Error;
    use crate::backend::store::Store;

    #[test]
    fn a_store_error_names_the_file_and_shows_its_cause_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        std::fs::write(&path, "not a database, not even close to one").unwrap();
        let err = Store::open_file(&path).unwrap_err();
        let Error::Store(StoreError::Open { path: named, .. }) = &err else {
            panic!("not an open error: {err:?}")
        };
        assert_eq!(named, &path);
        // SQLite's words come from the source, once, after the file.
        let cause = err.source().expect("the cause is kept").to_string();
        assert!(!err.to_string().contains(&cause), "{err}");
        let chain = crate::text::error_chain(&err);
        assert_eq!(chain, format!("{}: {cause}", path.display()));

        let missing = dir.path().join("none.db");
        let err = Store::open_file(&missing).unwrap_err();
        assert!(matches!(&err, Error::Store(StoreError::NoDatabase { path }) if *path == missing));
        assert_eq!(err.to_string(), format!("{}: no such file", missing.display()));
    }
}
