//! What `plan` and `apply` load before touching a backend: the manifests validated,
//! the Workspace resolved into a [`Target`], the syncs to plan turned into the
//! planner's [`PlanInput`] — and whether the run sees the whole manifest set.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::backend::open::{self, Target};
use serde::{Deserialize, Serialize};

use crate::manifest::OrphanPolicy;
use crate::plan::{Adopt, FullScan, SyncInput};

/// Everything the planner needs from the manifests, in a form a saved plan can
/// carry so `apply PLAN.json` can check that the actual state has not moved.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanInput {
    /// The syncs to plan (after `--sync` filtering).
    pub syncs: Vec<SyncInput>,
    /// Names of every sync in the manifests, filtered or not: contacts of any
    /// other sync are orphans.
    pub known_syncs: Vec<String>,
    /// Why the run did not see the whole manifest set (`--sync`, some files of a
    /// folder), if it did not. A sync missing from a partial set may simply not
    /// have been read, so orphans are then neither looked for nor pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// The Workspace's orphan policy.
    pub orphans: OrphanPolicy,
    /// The Workspace's deletion guard threshold.
    pub max_delete_percent: u8,
    /// `--allow-deletes`.
    pub allow_deletes: bool,
    /// Deletions approved once, per sync (`contact-sync trigger NAME
    /// --allow-deletes N` to a running reconcile): the deletion guard lets that
    /// sync delete exactly that many.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub approved_deletes: BTreeMap<String, usize>,
    /// The manifest paths (and `--workspace FILE`) of the run as given, quoted
    /// for a shell: a command a message suggests repeats them, so it can be
    /// pasted as it is.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rerun: String,
    /// Whether every user is read rather than those the syncs select and the
    /// inventory lists (`--full-scan`).
    #[serde(default, skip_serializing_if = "FullScan::is_never")]
    pub full_scan: FullScan,
    /// `contact-sync adopt`: take over existing target groups of one sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<Adopt>,
}

/// The options of a run (`plan`, `apply`): what the command line resolves to and
/// what the library takes, the one place they live.
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
    /// `--full-scan` (or the reconcile loop's schedule of full scans).
    pub full_scan: crate::plan::FullScan,
    /// `contact-sync adopt`.
    pub adopt: Option<crate::plan::Adopt>,
    /// `--cache-dir`: where the read cache is kept (`None`: the default folder,
    /// see [`crate::cache::default_dir`]).
    pub cache_dir: Option<PathBuf>,
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
    Backend(open::Error),
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
/// `--workspace FILE PATH...` as the run was given them, quoted for a shell.
fn rerun_args(options: &LoadOptions) -> String {
    let quote = |p: &Path| {
        let s = p.display().to_string();
        let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
        if !s.is_empty() && s.chars().all(plain) {
            s
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let workspace = options.workspace.iter().map(|w| format!("--workspace {}", quote(w)));
    workspace.chain(options.paths.iter().map(|p| quote(p))).collect::<Vec<_>>().join(" ")
}

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
pub fn load(options: &LoadOptions) -> Result<(PlanInput, Target), LoadError> {
    use crate::plan::SyncInput;
    use crate::validate::validate_paths;

    let report = validate_paths(&options.paths);
    if !report.is_valid() {
        return Err(LoadError::Invalid(Box::new(report)));
    }
    let (target, ws_file, ws_fields) = match &options.workspace {
        Some(file) => {
            let ws_report = validate_paths(std::slice::from_ref(file));
            if !ws_report.is_valid() {
                return Err(LoadError::Invalid(Box::new(ws_report)));
            }
            let ws = ws_report
                .manifests
                .workspace
                .ok_or_else(|| LoadError::NoWorkspace(file.display().to_string()))?;
            let fields = ws.value.spec.fields.clone();
            (Target::resolve(&ws).map_err(LoadError::Backend)?, ws.doc.file.path.clone(), fields)
        }
        None => match &report.manifests.workspace {
            Some(ws) => (
                Target::resolve(ws).map_err(LoadError::Backend)?,
                ws.doc.file.path.clone(),
                ws.value.spec.fields.clone(),
            ),
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
        .map(|mut sync| {
            // The Workspace's field selection is the sync's own from here on: the
            // planner, a saved plan and the reconcile loop's "did the manifest
            // change" all see the selection that applies.
            if sync.manifest.spec.fields.is_none() {
                sync.manifest.spec.fields = ws_fields.clone();
            }
            sync
        })
        .collect();
    let input = PlanInput {
        syncs,
        known_syncs: known,
        approved_deletes: Default::default(),
        rerun: rerun_args(options),
        partial: partial(options, &ws_file),
        orphans: target.orphans,
        max_delete_percent: target.max_delete_percent,
        allow_deletes: options.allow_deletes,
        full_scan: options.full_scan,
        adopt: options.adopt.clone(),
    };
    Ok((input, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suggested_command_repeats_the_paths_quoted_for_a_shell() {
        let options = LoadOptions {
            paths: vec!["manifests/".into(), "Sales team's/a b.yaml".into()],
            workspace: Some("ws.yaml".into()),
            ..LoadOptions::default()
        };
        assert_eq!(
            rerun_args(&options),
            r"--workspace ws.yaml manifests/ 'Sales team'\''s/a b.yaml'"
        );
    }
}
