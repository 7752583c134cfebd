//! Opening a backend: the Workspace document resolved into where the actual state
//! lives ([`Target`]), and the backend opened on it. A resolved target is also
//! saved with a plan, so `apply PLAN.json` reaches the same tenant without the
//! manifests. Whoever opens a backend may hand it the counters its API requests
//! are counted in ([`RequestCounts`]), and reads them when it likes (the reconcile
//! loop's `/metrics`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::local::LocalBackend;
use super::{Backend, google};
use crate::manifest::{BackendKind, GoogleBackend, Located, OrphanPolicy, Workspace};

/// Where the actual state lives, with the tenant-wide settings planning needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The Workspace document's `metadata.name` (a plan's heading names it).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// The backend.
    pub backend: BackendTarget,
    /// Orphan policy.
    pub orphans: OrphanPolicy,
    /// Deletion guard threshold.
    pub max_delete_percent: u8,
    /// Local time of day, `HH:MM`, of `nightly` syncs.
    #[serde(default = "default_nightly_at")]
    pub nightly_at: String,
    /// IANA time zone of `nightlyAt` and cron schedules.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Webhooks of `reconcile`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<crate::manifest::Notification>,
}

fn default_nightly_at() -> String {
    "02:00".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

/// The backend and what it needs to open.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum BackendTarget {
    /// The local workspace file, by absolute path.
    Local {
        /// The file.
        path: PathBuf,
    },
    /// A Google Workspace tenant: the Workspace's `spec.google` as written, and
    /// the key file it names (or `$GOOGLE_APPLICATION_CREDENTIALS`), absolute.
    Google {
        /// `spec.google`.
        settings: GoogleBackend,
        /// Service-account key file, absolute.
        credentials: PathBuf,
    },
}

/// API requests a backend sent, by backend and HTTP status code (`none`: no answer
/// came back). The local backend sends none.
#[derive(Debug, Default)]
pub struct RequestCounts {
    counts: Mutex<BTreeMap<(String, String), u64>>,
}

impl RequestCounts {
    /// Counts one request of `backend` answered `code`.
    pub fn count(&self, backend: &str, code: &str) {
        let mut counts = self.counts.lock().expect("request counts");
        *counts.entry((backend.to_owned(), code.to_owned())).or_default() += 1;
    }

    /// The requests so far, as ((backend, code), count).
    pub fn totals(&self) -> BTreeMap<(String, String), u64> {
        self.counts.lock().expect("request counts").clone()
    }
}

/// Why the backend could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local file failed to load; the diagnostics say where.
    #[error("cannot open the local workspace file {}", path.display())]
    Local {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: crate::backend::local::OpenError,
    },
    /// The google backend could not be set up (key file, HTTP client).
    #[error("cannot set up the google backend")]
    Google(#[source] crate::backend::Error),
    /// No key file is configured.
    #[error(
        "backend google needs a service-account key: set spec.google.credentialsFile in the \
         Workspace or the GOOGLE_APPLICATION_CREDENTIALS environment variable"
    )]
    NoCredentials,
}

impl Target {
    /// Resolves a Workspace document: `local.path` and `google.credentialsFile` are
    /// taken relative to its folder; the key file defaults to
    /// `$GOOGLE_APPLICATION_CREDENTIALS`.
    pub fn resolve(ws: &Located<Workspace>) -> Result<Self, Error> {
        let spec = &ws.value.spec;
        let dir = ws.doc.file.path.parent().unwrap_or(Path::new("."));
        let absolute = |rel: &str| {
            let path = dir.join(rel);
            std::path::absolute(&path).unwrap_or(path)
        };
        let backend = match (spec.backend, &spec.google) {
            (BackendKind::Local, _) => {
                let rel = spec.local.as_ref().map_or("workspace.yaml", |l| l.path.as_str());
                BackendTarget::Local { path: absolute(rel) }
            }
            (BackendKind::Google, google) => {
                let google = google.clone().ok_or(Error::NoCredentials)?;
                let credentials = match &google.credentials_file {
                    Some(file) => absolute(file),
                    None => std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
                        .map(PathBuf::from)
                        .ok_or(Error::NoCredentials)?,
                };
                BackendTarget::Google { settings: google, credentials }
            }
        };
        Ok(Self {
            name: ws.value.metadata.name.clone(),
            backend,
            orphans: spec.orphans,
            max_delete_percent: spec.max_delete_percent,
            nightly_at: spec.nightly_at.clone(),
            time_zone: spec.time_zone.clone(),
            notifications: spec.notifications.clone(),
        })
    }

    /// Opens the backend to read and write (`apply`), its requests counted nowhere.
    pub fn open(&self) -> Result<Arc<dyn Backend>, Error> {
        self.open_counted(false, Arc::default())
    }

    /// Opens the backend to read only (`plan`): on Google, its tokens carry the
    /// `contacts.readonly` scope and it sends no write.
    pub fn open_read_only(&self) -> Result<Arc<dyn Backend>, Error> {
        self.open_counted(true, Arc::default())
    }

    /// Opens the backend, to read only or to write, counting its API requests in
    /// `requests`.
    pub fn open_counted(
        &self,
        read_only: bool,
        requests: Arc<RequestCounts>,
    ) -> Result<Arc<dyn Backend>, Error> {
        match &self.backend {
            BackendTarget::Local { path } => LocalBackend::open(path)
                .map(|b| Arc::new(b) as Arc<dyn Backend>)
                .map_err(|source| Error::Local { path: path.clone(), source }),
            BackendTarget::Google { settings, credentials } => {
                let config = google::Config {
                    requests,
                    ..google::Config::new(settings, credentials.clone(), read_only)
                };
                google::GoogleBackend::new(config)
                    .map(|b| Arc::new(b) as Arc<dyn Backend>)
                    .map_err(Error::Google)
            }
        }
    }
}
