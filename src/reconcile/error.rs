//! What stops the reconcile loop from starting or going on (a run that fails is
//! not one of them: it is recorded and tried again, see [`super::run::RunFailed`]).

use std::path::PathBuf;

/// Why `reconcile` could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP server's address cannot be listened on.
    #[error("cannot listen on {listen}: {source}")]
    Listen {
        /// `--listen`.
        listen: String,
        #[source]
        source: std::io::Error,
    },
    /// A manifest path cannot be watched for edits.
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// The path.
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
    /// The file watcher could not be set up.
    #[error("cannot set up the watcher of manifest edits: {source}")]
    Watcher {
        #[source]
        source: notify::Error,
    },
    /// The HTTP client of the webhooks could not be set up.
    #[error("cannot set up the HTTP client of the webhooks: {source}")]
    Webhooks {
        #[source]
        source: reqwest::Error,
    },
    /// The listening socket gave no address.
    #[error("cannot tell the address listened on for {listen}: {source}")]
    Address {
        /// `--listen`.
        listen: String,
        #[source]
        source: std::io::Error,
    },
    /// `--once` with manifests that have errors.
    #[error("the manifests have errors; nothing was run")]
    ManifestErrors,
}
