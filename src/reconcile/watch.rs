//! Watching the manifests: every change to the manifest paths sends a unit to
//! the loop, which lets the change settle ([`settle`]: editors and git-sync write
//! in steps) and reads the manifests anew.
//!
//! Debounced here, not by `notify-debouncer-full`: that one drops a path created
//! and removed within its window, which is what git-sync's link swap looks like
//! when the old checkout is removed right after (the new link is created over
//! the watched path, whose old target then goes), so the swap would be missed.
//!
//! A path is watched where it leads now. One that goes through a symbolic link —
//! git-sync's `--link`, which it swaps atomically to each new checkout — also has
//! the folder holding the link watched, so the swap is seen; [`Watch::follow`]
//! then watches the new checkout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

use super::error::Error;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// Quiet time after a manifest edit before it is read.
const DEBOUNCE: Duration = Duration::from_millis(300);

/// The manifest paths' watch.
pub struct Watch {
    paths: Vec<PathBuf>,
    /// Where each path led when it was last watched.
    leads_to: Vec<Option<PathBuf>>,
    tx: UnboundedSender<()>,
    watcher: RecommendedWatcher,
}

impl Watch {
    /// Watches `paths` and the `workspace` file; the receiver gets a unit per
    /// change.
    pub fn new(
        paths: &[PathBuf],
        workspace: Option<&PathBuf>,
    ) -> Result<(Self, UnboundedReceiver<()>), Error> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let paths: Vec<PathBuf> = paths.iter().chain(workspace).cloned().collect();
        let (watcher, leads_to) = Self::watch(&paths, &tx)?;
        Ok((Self { paths, leads_to, tx, watcher }, rx))
    }

    fn watch(
        paths: &[PathBuf],
        tx: &UnboundedSender<()>,
    ) -> Result<(RecommendedWatcher, Vec<Option<PathBuf>>), Error> {
        let tx = tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                if event.is_ok_and(|e| concerns_manifests(&e)) {
                    let _ = tx.send(());
                }
            })
            .map_err(|source| Error::Watcher { source })?;
        for path in paths {
            watcher
                .watch(path, RecursiveMode::Recursive)
                .map_err(|source| Error::Watch { path: path.clone(), source })?;
            for link in links_on(path) {
                if let Some(folder) = link.parent() {
                    watcher
                        .watch(folder, RecursiveMode::NonRecursive)
                        .map_err(|source| Error::Watch { path: folder.to_owned(), source })?;
                }
            }
        }
        Ok((watcher, paths.iter().map(|p| std::fs::canonicalize(p).ok()).collect()))
    }

    /// Watches anew when a path leads elsewhere than it did (a swapped link).
    /// A path that leads nowhere for the moment keeps the old watch.
    pub fn follow(&mut self) {
        let now: Vec<Option<PathBuf>> =
            self.paths.iter().map(|p| std::fs::canonicalize(p).ok()).collect();
        if now == self.leads_to || now.iter().any(Option::is_none) {
            return;
        }
        match Self::watch(&self.paths, &self.tx) {
            Ok((watcher, leads_to)) => {
                tracing::info!(
                    "manifest paths lead elsewhere now (a swapped link); watching there"
                );
                self.watcher = watcher;
                self.leads_to = leads_to;
            }
            Err(e) => tracing::warn!("{e}; still watching the old location"),
        }
    }
}

/// Gives a change a moment to settle, then takes every change seen until then
/// as one.
pub async fn settle(edits: &mut UnboundedReceiver<()>) {
    tokio::time::sleep(DEBOUNCE).await;
    while edits.try_recv().is_ok() {}
}

/// Whether an event can change what the manifests say. Hidden files are never
/// manifests: the tenant's lock, temporary copies, git-sync's .git and
/// .worktrees. Except `..data` and its `..TIMESTAMP` folders: a Kubernetes
/// ConfigMap volume is updated by swapping that link, and its files are links
/// through it.
fn concerns_manifests(event: &notify::Event) -> bool {
    let hidden = |p: &PathBuf| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.') && !n.starts_with(".."))
    };
    !event.kind.is_access() && !event.paths.iter().all(hidden)
}

/// The symbolic links on the way to `path`, itself included.
fn links_on(path: &Path) -> Vec<PathBuf> {
    let Ok(path) = std::path::absolute(path) else { return Vec::new() };
    path.ancestors()
        .filter(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()))
        .map(Path::to_path_buf)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_files_and_reads_are_not_manifest_changes() {
        use notify::event::{AccessKind, CreateKind, EventKind};
        let event = |kind, path: &str| notify::Event::new(kind).add_path(PathBuf::from(path));
        let created = EventKind::Create(CreateKind::File);
        assert!(concerns_manifests(&event(created, "/m/sync.yaml")));
        assert!(concerns_manifests(&event(created, "/m/..2026_01_01")), "a ConfigMap swap");
        assert!(!concerns_manifests(&event(created, "/m/.tenant.lock")));
        assert!(!concerns_manifests(&event(EventKind::Access(AccessKind::Any), "/m/sync.yaml")));
    }
}
