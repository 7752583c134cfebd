//! The Workspace document resolved into where the actual state lives, and the
//! backend opened on it. A resolved target is also saved with a plan, so `apply
//! PLAN.json` reaches the same tenant without the manifests.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::backend::local::LocalBackend;
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
    Google,
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
    /// The google backend is not part of this build.
    #[error(
        "backend `google` is not available in this version of contact-sync; use backend `local`"
    )]
    GoogleUnavailable,
}

impl Target {
    /// Resolves a Workspace document; `local.path` is taken relative to its file.
    pub fn resolve(ws: &Located<Workspace>) -> Self {
        let spec = &ws.value.spec;
        let backend = match spec.backend {
            BackendKind::Local => {
                let dir = ws.doc.file.path.parent().unwrap_or(Path::new("."));
                let rel = spec.local.as_ref().map_or("workspace.yaml", |l| l.path.as_str());
                let path = dir.join(rel);
                BackendTarget::Local { path: std::path::absolute(&path).unwrap_or(path) }
            }
            BackendKind::Google => BackendTarget::Google,
        };
        Self { backend, orphans: spec.orphans, max_delete_percent: spec.max_delete_percent }
    }

    /// Opens the backend.
    pub fn open(&self) -> Result<Box<dyn Backend>, Error> {
        match &self.backend {
            BackendTarget::Local { path } => LocalBackend::open(path)
                .map(|b| Box::new(b) as Box<dyn Backend>)
                .map_err(|source| Error::Local { path: path.clone(), source }),
            BackendTarget::Google => Err(Error::GoogleUnavailable),
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
    /// `--sync` names a sync the manifests do not have.
    #[error("--sync {name}: no sync of that name in the manifests (there are: {known})")]
    UnknownSync {
        /// The name given.
        name: String,
        /// The names there are.
        known: String,
    },
}

/// Validates the manifests, resolves the Workspace and builds the planner's input.
pub fn load(options: &LoadOptions) -> Result<(crate::plan::PlanInput, Target), LoadError> {
    use crate::plan::{PlanInput, SyncInput};
    use crate::validate::validate_paths;

    let report = validate_paths(&options.paths);
    if !report.is_valid() {
        return Err(LoadError::Invalid(Box::new(report)));
    }
    let target = match &options.workspace {
        Some(file) => {
            let ws_report = validate_paths(std::slice::from_ref(file));
            if !ws_report.is_valid() {
                return Err(LoadError::Invalid(Box::new(ws_report)));
            }
            let ws = ws_report
                .manifests
                .workspace
                .ok_or_else(|| LoadError::NoWorkspace(file.display().to_string()))?;
            Target::resolve(&ws)
        }
        None => match &report.manifests.workspace {
            Some(ws) => Target::resolve(ws),
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
        find_orphans: options.syncs.is_empty(),
        orphans: target.orphans,
        max_delete_percent: target.max_delete_percent,
        allow_deletes: options.allow_deletes,
    };
    Ok((input, target))
}
