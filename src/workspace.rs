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
    #[error("cannot open the local workspace file {path}: {source}")]
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
