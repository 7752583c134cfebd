//! The Workspace document resolved into where the actual state lives, and the
//! backend opened on it. A resolved target is also saved with a plan, so `apply
//! PLAN.json` reaches the same tenant without the manifests.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use std::time::Duration;

use crate::backend::local::LocalBackend;
use crate::backend::{Backend, google};
use crate::manifest::{BackendKind, Located, OrphanPolicy, Workspace};

/// Where the actual state lives, with the tenant-wide settings planning needs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// The backend.
    pub backend: BackendTarget,
    /// Orphan policy.
    pub orphans: OrphanPolicy,
    /// Deletion guard threshold.
    pub max_delete_percent: u8,
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
    /// A Google Workspace tenant.
    Google {
        /// Customer id.
        customer: String,
        /// Admin impersonated for directory reads.
        admin_user: String,
        /// Holder of the writer lease group.
        state_user: String,
        /// Service-account key file, absolute.
        credentials: PathBuf,
        /// People API base URL.
        people_url: String,
        /// Directory API base URL.
        directory_url: String,
        /// Token URL override.
        token_url: Option<String>,
        /// Users at once.
        concurrency: u32,
        /// Request timeout, seconds.
        timeout_seconds: u32,
        /// Attempts per request.
        max_attempts: u32,
        /// First backoff, milliseconds.
        base_delay_ms: u32,
    },
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
    #[error("cannot set up the google backend: {0}")]
    Google(crate::backend::Error),
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
                BackendTarget::Google {
                    customer: google.customer,
                    state_user: google.state_user.unwrap_or_else(|| google.admin_user.clone()),
                    admin_user: google.admin_user,
                    credentials,
                    people_url: google
                        .endpoints
                        .people
                        .unwrap_or_else(|| google::PEOPLE_URL.into()),
                    directory_url: google
                        .endpoints
                        .directory
                        .unwrap_or_else(|| google::DIRECTORY_URL.into()),
                    token_url: google.endpoints.token,
                    concurrency: google.concurrency,
                    timeout_seconds: google.request_timeout_seconds,
                    max_attempts: google.retry.max_attempts,
                    base_delay_ms: google.retry.base_delay_ms,
                }
            }
        };
        Ok(Self { backend, orphans: spec.orphans, max_delete_percent: spec.max_delete_percent })
    }

    /// Opens the backend to read and write (`apply`).
    pub fn open(&self) -> Result<Arc<dyn Backend>, Error> {
        self.open_with(false)
    }

    /// Opens the backend to read only (`plan`): on Google, its tokens carry the
    /// `contacts.readonly` scope and it sends no write.
    pub fn open_read_only(&self) -> Result<Arc<dyn Backend>, Error> {
        self.open_with(true)
    }

    fn open_with(&self, read_only: bool) -> Result<Arc<dyn Backend>, Error> {
        match &self.backend {
            BackendTarget::Local { path } => LocalBackend::open(path)
                .map(|b| Arc::new(b) as Arc<dyn Backend>)
                .map_err(|source| Error::Local { path: path.clone(), source }),
            BackendTarget::Google {
                customer,
                admin_user,
                state_user,
                credentials,
                people_url,
                directory_url,
                token_url,
                concurrency,
                timeout_seconds,
                max_attempts,
                base_delay_ms,
            } => {
                let config = google::Config {
                    customer: customer.clone(),
                    admin_user: admin_user.clone(),
                    state_user: state_user.clone(),
                    credentials: credentials.clone(),
                    people_url: people_url.clone(),
                    directory_url: directory_url.clone(),
                    token_url: token_url.clone(),
                    concurrency: *concurrency as usize,
                    timeout: Duration::from_secs(u64::from(*timeout_seconds)),
                    retry: google::RetryPolicy {
                        max_attempts: *max_attempts,
                        base_delay: Duration::from_millis(u64::from(*base_delay_ms)),
                        ..google::RetryPolicy::default()
                    },
                    read_only,
                };
                google::GoogleBackend::new(config)
                    .map(|b| Arc::new(b) as Arc<dyn Backend>)
                    .map_err(Error::Google)
            }
        }
    }
}

/// What `plan` and `apply` load before touching a backend.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Manifest files and folders.
    pub paths: Vec<PathBuf>,
    /// A file whose Workspace document replaces the manifests' own.
    pub workspace: Option<PathBuf>,
    /// Only these syncs (all when empty).
    pub syncs: Vec<String>,
    /// `--allow-deletes`.
    pub allow_deletes: bool,
}

/// Why manifests could not be turned into a plan input.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The manifests (or the `--workspace` file) have errors.
    #[error("{0}")]
    Invalid(Box<crate::validate::Report>),
    /// There is no Workspace document to say where the tenant is.
    #[error(
        "no Workspace document in {0}; add one (see examples/contact-sync.yaml) or pass --workspace FILE"
    )]
    NoWorkspace(String),
    /// The Workspace's backend settings cannot be used.
    #[error(transparent)]
    Backend(Error),
    /// `--sync` names a sync the manifests do not have.
    #[error("--sync {name}: no sync of that name in the manifests (there are: {known})")]
    UnknownSync {
        /// The name given.
        name: String,
        /// The names there are.
        known: String,
    },
}

/// Why the run does not see the whole manifest set, if it does not.
///
/// The manifest set of a tenant is the folder of its Workspace document and
/// everything under it. A run sees all of it when one of its paths is that folder
/// or a folder above it, and no `--sync` narrows it; only then can a sync that no
/// manifest declares be taken for one whose manifest was deleted.
fn partial(options: &LoadOptions, workspace_file: &Path) -> Option<String> {
    if !options.syncs.is_empty() {
        return Some(format!("--sync {} narrowed the run", options.syncs.join(", ")));
    }
    let folder =
        workspace_file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let root = folder.canonicalize().unwrap_or_else(|_| folder.to_path_buf());
    let covered = options
        .paths
        .iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.canonicalize().ok())
        .any(|p| root.starts_with(p));
    (!covered).then(|| {
        format!(
            "the paths given are part of the manifest set, which is the folder of the Workspace \
             document ({}) and everything under it; plan that folder to look for them",
            folder.display()
        )
    })
}

/// Validates the manifests, resolves the Workspace and builds the planner's input.
pub fn load(options: &LoadOptions) -> Result<(crate::plan::PlanInput, Target), LoadError> {
    use crate::plan::{PlanInput, SyncInput};
    use crate::validate::validate_paths;

    let report = validate_paths(&options.paths);
    if !report.is_valid() {
        return Err(LoadError::Invalid(Box::new(report)));
    }
    let (target, ws_file) = match &options.workspace {
        Some(file) => {
            let ws_report = validate_paths(std::slice::from_ref(file));
            if !ws_report.is_valid() {
                return Err(LoadError::Invalid(Box::new(ws_report)));
            }
            let ws = ws_report
                .manifests
                .workspace
                .ok_or_else(|| LoadError::NoWorkspace(file.display().to_string()))?;
            (Target::resolve(&ws).map_err(LoadError::Backend)?, ws.doc.file.path.clone())
        }
        None => match &report.manifests.workspace {
            Some(ws) => {
                (Target::resolve(ws).map_err(LoadError::Backend)?, ws.doc.file.path.clone())
            }
            None => {
                let paths: Vec<String> =
                    options.paths.iter().map(|p| p.display().to_string()).collect();
                return Err(LoadError::NoWorkspace(paths.join(", ")));
            }
        },
    };
    let known: Vec<String> =
        report.manifests.syncs.iter().map(|s| s.value.metadata.name.clone()).collect();
    if let Some(name) = options.syncs.iter().find(|n| !known.contains(n)) {
        return Err(LoadError::UnknownSync { name: name.clone(), known: known.join(", ") });
    }
    let syncs = report
        .manifests
        .syncs
        .iter()
        .filter(|s| options.syncs.is_empty() || options.syncs.contains(&s.value.metadata.name))
        .map(SyncInput::from_located)
        .collect();
    let input = PlanInput {
        syncs,
        known_syncs: known,
        partial: partial(options, &ws_file),
        orphans: target.orphans,
        max_delete_percent: target.max_delete_percent,
        allow_deletes: options.allow_deletes,
    };
    Ok((input, target))
}
