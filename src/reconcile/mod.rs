//! `contact-sync reconcile`: the long-running loop that keeps every destination in
//! step with the manifests, on schedule, with nobody running `apply`.
//!
//! An *activation* takes no hint about what changed: it plans the syncs that are
//! due from the last good manifests and the tenant as it is now, and applies them
//! under the writer lease. Triggers — a schedule coming due, a manifest edited, a
//! `POST /syncs/{name}/run` — only say *when*. Syncs due together share one
//! activation, so one directory read. A failed run is retried with exponential
//! backoff per sync, outside the activation; a run held back by a plan error (a
//! rename, a tripped deletion guard) waits for a change or its next schedule.
//!
//! Manifests are watched: an edit is validated at once; a bad one keeps the last
//! good manifests running and is shown in `/status` and the metrics until fixed.

mod http;
pub mod metrics;
pub mod schedule;
pub mod webhooks;

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::backend::open::Target;
use crate::input::{self, LoadError, LoadOptions};
use crate::plan::{ErrorKind, Plan, PlanInput, Status};
use crate::{apply, lease, reader};

use self::metrics::Metrics;
use self::schedule::Timetable;

/// How `reconcile` runs.
#[derive(Clone)]
pub struct Options {
    /// Manifest files and folders, and `--workspace`.
    pub load: LoadOptions,
    /// Address of the HTTP server.
    pub listen: String,
    /// Run every sync once and return.
    pub once: bool,
    /// `CONTACT_SYNC_TRIGGER_TOKEN`: required by `POST /syncs/{name}/run`.
    pub trigger_token: Option<String>,
    /// How often the cheap check looks for directory changes between scheduled
    /// runs (zero: never).
    pub check_interval: Duration,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("load", &self.load)
            .field("listen", &self.listen)
            .field("once", &self.once)
            .field("trigger_token", &self.trigger_token.as_ref().map(|_| "(redacted)"))
            .field("check_interval", &self.check_interval)
            .finish()
    }
}

/// First wait after a failed run; it doubles per failure in a row.
const BACKOFF_FIRST: Duration = Duration::from_secs(30);
/// Longest wait after failed runs.
const BACKOFF_CAP: Duration = Duration::from_secs(3600);
/// How long an activation waits for another writer's lease.
const LEASE_WAIT: Duration = Duration::from_secs(120);
/// Runs kept per sync for `/status`.
const HISTORY: usize = 20;
/// Quiet time after a manifest edit before it is read (editors write in steps).
const DEBOUNCE: Duration = Duration::from_millis(300);

/// The wait before the next attempt after `failures` failed runs in a row.
pub fn backoff(failures: u32) -> Duration {
    let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
    BACKOFF_FIRST.saturating_mul(factor).min(BACKOFF_CAP)
}

/// What one run of one sync came to, as `/status` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// Why it ran: `schedule`, `runOnCreate`, `manifestChanged`, `retry`, `manual`,
    /// `once`.
    pub trigger: String,
    /// RFC 3339, UTC.
    pub start: String,
    /// RFC 3339, UTC.
    pub end: String,
    /// `success`, `failure` or `heldBack`.
    pub result: String,
    /// Contacts and groups created.
    pub added: usize,
    /// Contacts and groups changed.
    pub changed: usize,
    /// Contacts and groups deleted.
    pub deleted: usize,
    /// What went wrong.
    pub errors: Vec<RunError>,
}

/// An error of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunError {
    /// The plan error kind (`api` for a failed request).
    pub kind: String,
    /// What happened and what to do.
    pub message: String,
    /// `file:line:col` of the manifest value to change, where there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

impl RunError {
    /// A request or a write that failed: a retry may mend it.
    fn api(message: String) -> Self {
        Self { kind: "api".into(), message, location: None }
    }
}

/// One sync as the loop tracks it.
#[derive(Debug)]
struct SyncState {
    schedule: String,
    timetable: Timetable,
    suspended: bool,
    next_run: Option<DateTime<Utc>>,
    /// A run asked for (run on create, manual trigger), and by what.
    pending: Option<String>,
    running: bool,
    failures: u32,
    retry_at: Option<DateTime<Utc>>,
    runs: VecDeque<RunRecord>,
    /// What the cheap check saw of the sync's source and destinations, as of its
    /// last run or check.
    fingerprint: Option<String>,
}

/// The manifests as last validated without errors.
#[derive(Debug)]
struct Loaded {
    input: PlanInput,
    target: Target,
}

#[derive(Debug, Default)]
struct State {
    loaded: Option<Arc<Loaded>>,
    manifest_errors: Vec<String>,
    /// Whether the backend answered its last call (none yet: unknown).
    backend_ok: Option<bool>,
    syncs: BTreeMap<String, SyncState>,
}

/// What the loop and its HTTP server share.
pub struct Shared {
    options: Options,
    state: Mutex<State>,
    metrics: Metrics,
    wake: tokio::sync::Notify,
    /// Whether `POST /syncs/{name}/run` is served (a token, or a loopback address).
    trigger_enabled: bool,
    /// For webhooks.
    http: reqwest::Client,
}

/// Runs the loop until `cancel` (SIGTERM); with `--once`, runs every sync once.
/// Returns whether every run succeeded (for `--once`'s exit code).
pub async fn run(options: Options, cancel: CancellationToken) -> anyhow::Result<bool> {
    let trigger_enabled = trigger_allowed(&options.listen, options.trigger_token.is_some());
    let shared = Arc::new(Shared {
        options,
        state: Mutex::default(),
        metrics: Metrics::default(),
        wake: tokio::sync::Notify::new(),
        trigger_enabled,
        http: reqwest::Client::builder()
            .user_agent(concat!("contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()?,
    });
    shared.reload();
    if shared.options.once {
        return shared.once(&cancel).await;
    }
    if !trigger_enabled {
        tracing::warn!(
            listen = %shared.options.listen,
            "POST /syncs/{{name}}/run is disabled: the address is not loopback and \
             CONTACT_SYNC_TRIGGER_TOKEN is not set"
        );
    }
    let listener = tokio::net::TcpListener::bind(&shared.options.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", shared.options.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "contact-sync reconcile serving /healthz /readyz /metrics /status");
    eprintln!("contact-sync reconcile: serving http://{addr} (/healthz /readyz /metrics /status)");
    let server = {
        let cancel = cancel.clone();
        let app = http::router(shared.clone());
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await
        })
    };
    let (mut watch, mut edits) =
        Watch::new(&shared.options.load.paths, shared.options.load.workspace.as_ref())?;
    let interval = shared.options.check_interval;
    let mut next_check = Instant::now() + interval;
    loop {
        if cancel.is_cancelled() {
            break;
        }
        if !interval.is_zero() && Instant::now() >= next_check {
            shared.check().await;
            next_check = Instant::now() + interval;
        }
        let now = Utc::now();
        let due = shared.due(now);
        if !due.is_empty() {
            shared.activate(due, &cancel).await;
            continue;
        }
        let mut wait = shared.next_wake().map_or(Duration::from_secs(3600), |at| {
            (at - now).to_std().unwrap_or_default().min(Duration::from_secs(3600))
        });
        if !interval.is_zero() {
            wait = wait.min(next_check.saturating_duration_since(Instant::now()));
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shared.wake.notified() => {}
            Some(()) = edits.recv() => {
                // Let the edit settle, then take it whole.
                tokio::time::sleep(DEBOUNCE).await;
                while edits.try_recv().is_ok() {}
                watch.follow();
                shared.reload();
            }
            () = cancel.cancelled() => break,
        }
    }
    let _ = server.await;
    Ok(true)
}

/// Whether `POST /syncs/{name}/run` is served on `listen`: always with a token;
/// without one only on a loopback address, where nobody else can reach it.
fn trigger_allowed(listen: &str, has_token: bool) -> bool {
    let loopback = listen
        .parse::<std::net::SocketAddr>()
        .map(|a| a.ip().is_loopback())
        .unwrap_or_else(|_| listen.starts_with("localhost:"));
    has_token || loopback
}

/// Watches the manifest paths; every change sends a unit (the loop debounces).
///
/// A path is watched where it leads now. One that goes through a symbolic link —
/// git-sync's `--link`, which it swaps atomically to each new checkout — also has
/// the folder holding the link watched, so the swap is seen; [`Watch::follow`]
/// then watches the new checkout.
struct Watch {
    paths: Vec<PathBuf>,
    /// Where each path led when it was last watched.
    leads_to: Vec<Option<PathBuf>>,
    tx: tokio::sync::mpsc::UnboundedSender<()>,
    watcher: notify::RecommendedWatcher,
}

impl Watch {
    fn new(
        paths: &[PathBuf],
        workspace: Option<&PathBuf>,
    ) -> anyhow::Result<(Self, tokio::sync::mpsc::UnboundedReceiver<()>)> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let paths: Vec<PathBuf> = paths.iter().chain(workspace).cloned().collect();
        let (watcher, leads_to) = Self::watch(&paths, &tx)?;
        Ok((Self { paths, leads_to, tx, watcher }, rx))
    }

    fn watch(
        paths: &[PathBuf],
        tx: &tokio::sync::mpsc::UnboundedSender<()>,
    ) -> anyhow::Result<(notify::RecommendedWatcher, Vec<Option<PathBuf>>)> {
        use notify::Watcher;
        let tx = tx.clone();
        let mut watcher =
            notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
                // Hidden files are never manifests: the tenant's lock, temporary
                // copies, git-sync's .git and .worktrees. Except `..data` and its
                // `..TIMESTAMP` folders: a Kubernetes ConfigMap volume is updated by
                // swapping that link, and its files are links through it.
                let hidden = |p: &PathBuf| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with('.') && !n.starts_with(".."))
                };
                if event.is_ok_and(|e| !e.kind.is_access() && !e.paths.iter().all(hidden)) {
                    let _ = tx.send(());
                }
            })?;
        for path in paths {
            watcher
                .watch(path, notify::RecursiveMode::Recursive)
                .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", path.display()))?;
            for link in links_on(path) {
                if let Some(folder) = link.parent() {
                    watcher
                        .watch(folder, notify::RecursiveMode::NonRecursive)
                        .map_err(|e| anyhow::anyhow!("cannot watch {}: {e}", folder.display()))?;
                }
            }
        }
        Ok((watcher, paths.iter().map(|p| std::fs::canonicalize(p).ok()).collect()))
    }

    /// Watches anew when a path leads elsewhere than it did (a swapped link).
    /// A path that leads nowhere for the moment keeps the old watch.
    fn follow(&mut self) {
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

/// The symbolic links on the way to `path`, itself included.
fn links_on(path: &std::path::Path) -> Vec<PathBuf> {
    let Ok(path) = std::path::absolute(path) else { return Vec::new() };
    path.ancestors()
        .filter(|a| std::fs::symlink_metadata(a).is_ok_and(|m| m.file_type().is_symlink()))
        .map(std::path::Path::to_path_buf)
        .collect()
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("reconcile state lock")
    }

    /// Validates the manifests on disk. Valid: they replace the last good ones —
    /// new syncs are added (run at once when `runOnCreate`), removed ones dropped
    /// with their metrics. Invalid: the last good ones keep running, and the
    /// errors are shown until an edit fixes them.
    fn reload(&self) {
        let loaded = input::load(&LoadOptions { syncs: Vec::new(), ..self.options.load.clone() });
        let mut state = self.lock();
        let (input, target) = match loaded {
            Ok(ok) => ok,
            Err(e) => {
                state.manifest_errors = match e {
                    LoadError::Invalid(report) => {
                        let mut lines: Vec<String> =
                            report.diagnostics.iter().map(ToString::to_string).collect();
                        if report.omitted > 0 {
                            lines.push(format!("{} more errors not listed", report.omitted));
                        }
                        lines
                    }
                    other => vec![crate::text::error_chain(&other)],
                };
                self.metrics.manifest_errors(state.manifest_errors.len());
                tracing::warn!(
                    errors = state.manifest_errors.len(),
                    "the manifests have errors; the last good ones keep running"
                );
                return;
            }
        };
        let mut errors = Vec::new();
        let mut syncs = BTreeMap::new();
        self.metrics.backend(match &target.backend {
            crate::backend::open::BackendTarget::Local { .. } => "local",
            crate::backend::open::BackendTarget::Google { .. } => "google",
        });
        // What changed since the last good manifests runs now: the syncs whose
        // manifest changed, and every sync when the Workspace did.
        let previous = state.loaded.clone();
        let workspace_changed = previous.as_ref().is_some_and(|p| {
            serde_json::to_value(&p.target).ok() != serde_json::to_value(&target).ok()
        });
        let changed = |name: &str, manifest: &crate::manifest::ContactSync| {
            workspace_changed
                || previous.as_ref().is_some_and(|p| {
                    p.input.syncs.iter().any(|s| s.name() == name && s.manifest != *manifest)
                })
        };
        for sync in &input.syncs {
            let spec = &sync.manifest.spec;
            let name = sync.name().to_owned();
            let timetable =
                match Timetable::new(&spec.schedule, &target.nightly_at, &target.time_zone) {
                    Ok(t) => t,
                    Err(e) => {
                        errors.push(format!("sync {name}: {e}"));
                        continue;
                    }
                };
            let now = Utc::now();
            let state_of = match state.syncs.remove(&name) {
                Some(mut old) => {
                    if changed(&name, &sync.manifest) {
                        old.pending = Some("manifestChanged".to_owned());
                    }
                    old.next_run = timetable.next_after(now);
                    old.schedule = spec.schedule.to_string();
                    old.timetable = timetable;
                    old.suspended = spec.suspend;
                    old
                }
                None => SyncState {
                    schedule: spec.schedule.to_string(),
                    next_run: timetable.next_after(now),
                    timetable,
                    suspended: spec.suspend,
                    pending: spec.run_on_create.then(|| "runOnCreate".to_owned()),
                    running: false,
                    failures: 0,
                    retry_at: None,
                    runs: VecDeque::new(),
                    fingerprint: None,
                },
            };
            self.metrics.next_run(&name, state_of.next_run.map(unix));
            self.metrics.sync_known(&name);
            syncs.insert(name, state_of);
        }
        for gone in state.syncs.keys() {
            self.metrics.remove_sync(gone);
        }
        state.syncs = syncs;
        state.manifest_errors = errors;
        self.metrics.manifest_errors(state.manifest_errors.len());
        state.loaded = Some(Arc::new(Loaded { input, target }));
        drop(state);
        self.wake.notify_one();
    }

    /// The syncs to run now, with what triggered each.
    fn due(&self, now: DateTime<Utc>) -> Vec<(String, String)> {
        let state = self.lock();
        state
            .syncs
            .iter()
            .filter(|(_, s)| !s.running)
            .filter_map(|(name, s)| {
                let why = if let Some(why) = &s.pending {
                    why.clone()
                } else if s.retry_at.is_some_and(|t| t <= now) {
                    "retry".to_owned()
                } else if s.next_run.is_some_and(|t| t <= now) {
                    "schedule".to_owned()
                } else {
                    return None;
                };
                Some((name.clone(), why))
            })
            .collect()
    }

    /// When something is due next.
    fn next_wake(&self) -> Option<DateTime<Utc>> {
        let state = self.lock();
        state.syncs.values().flat_map(|s| [s.next_run, s.retry_at]).flatten().min()
    }

    /// Asks for a run of `sync` now: `Err` with the HTTP status when it cannot be.
    fn trigger(&self, sync: &str) -> Result<(), axum::http::StatusCode> {
        use axum::http::StatusCode;
        let mut state = self.lock();
        let s = state.syncs.get_mut(sync).ok_or(StatusCode::NOT_FOUND)?;
        if s.running {
            return Err(StatusCode::CONFLICT);
        }
        s.pending = Some("manual".to_owned());
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// The cheap check: for every scheduled sync not running, a few directory reads
    /// (its selectors, its source group's etag); a sync whose picture moved since
    /// its last run or check runs now. Manual and suspended syncs are left alone.
    async fn check(&self) {
        let Some(loaded) = self.lock().loaded.clone() else { return };
        let backend = match loaded.target.open_read_only() {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cheap check: {}", crate::text::error_chain(&e));
                return;
            }
        };
        for sync in &loaded.input.syncs {
            let name = sync.name();
            let eligible = self.lock().syncs.get(name).is_some_and(|s| {
                !s.running && !s.suspended && s.schedule != "manual" && s.pending.is_none()
            });
            if !eligible {
                continue;
            }
            let seen = match crate::directory::fingerprint(backend.as_ref(), &sync.manifest).await {
                Ok(seen) => seen,
                Err(e) => {
                    tracing::warn!(sync = %name, "cheap check: {}", crate::text::error_chain(&e));
                    continue;
                }
            };
            let mut state = self.lock();
            let Some(s) = state.syncs.get_mut(name) else { continue };
            if s.fingerprint.as_ref().is_some_and(|before| *before != seen) && !s.running {
                tracing::info!(sync = %name, "the directory moved since the last run; running now");
                s.pending = Some("directoryChanged".to_owned());
            }
            s.fingerprint = Some(seen);
        }
    }

    /// `--once`: every sync (manual ones too), in one activation.
    async fn once(&self, cancel: &CancellationToken) -> anyhow::Result<bool> {
        let (names, errors) = {
            let state = self.lock();
            (state.syncs.keys().cloned().collect::<Vec<_>>(), state.manifest_errors.clone())
        };
        if !errors.is_empty() {
            for e in &errors {
                eprintln!("{e}");
            }
            anyhow::bail!("the manifests have errors; nothing was run");
        }
        let due = names.into_iter().map(|n| (n, "once".to_owned())).collect();
        let records = self.activate(due, cancel).await;
        Ok(records.iter().all(|r| r.result == "success"))
    }

    /// One activation: the `due` syncs planned together from the last good
    /// manifests and applied under the writer lease. Records each sync's run.
    async fn activate(
        &self,
        due: Vec<(String, String)>,
        cancel: &CancellationToken,
    ) -> Vec<RunRecord> {
        let Some(loaded) = self.lock().loaded.clone() else { return Vec::new() };
        {
            let mut state = self.lock();
            for (name, _) in &due {
                if let Some(s) = state.syncs.get_mut(name) {
                    s.running = true;
                    s.pending = None;
                }
            }
        }
        let start = Utc::now();
        let clock = Instant::now();
        let mut input = loaded.input.clone();
        let every = input.syncs.iter().all(|s| due.iter().any(|(n, _)| n == s.name()));
        input.syncs.retain(|s| due.iter().any(|(n, _)| n == s.name()));
        if !every && input.partial.is_none() {
            input.partial = Some("this activation ran only the syncs that were due".into());
        }
        let outcome = run_syncs(&loaded.target, &input, cancel).await;
        let end = Utc::now();
        let seconds = clock.elapsed().as_secs_f64();
        let mut records = Vec::new();
        if let Ok((_, report, _)) = &outcome
            && let Some(inventory) = &report.inventory
        {
            let scanned = inventory.scanned.map(|t| t.timestamp() as f64);
            self.metrics.inventory(inventory.holders.len(), scanned);
        }
        let mut state = self.lock();
        state.backend_ok = Some(outcome.is_ok());
        for (name, trigger) in due {
            let record = match &outcome {
                Ok((plan, report, _)) => judge(&name, plan, report),
                Err(e) => RunRecord {
                    result: "failure".into(),
                    errors: vec![RunError::api(e.clone())],
                    ..RunRecord::empty()
                },
            };
            let record = RunRecord { trigger, start: rfc3339(start), end: rfc3339(end), ..record };
            let mut kinds: BTreeMap<String, i64> = BTreeMap::new();
            for e in &record.errors {
                *kinds.entry(e.kind.clone()).or_default() += 1;
            }
            // A sync removed from the manifests while it ran keeps no series.
            let still_there = state.syncs.contains_key(&name);
            if still_there {
                self.metrics.run(
                    &name,
                    &record.result,
                    seconds,
                    [
                        ("create", record.added as u64),
                        ("update", record.changed as u64),
                        ("delete", record.deleted as u64),
                    ],
                    &kinds,
                    unix(end),
                );
            }
            tracing::info!(
                sync = %name,
                trigger = %record.trigger,
                result = %record.result,
                added = record.added,
                changed = record.changed,
                deleted = record.deleted,
                errors = record.errors.len(),
                seconds,
                "run finished"
            );
            // Each error on its own line: what and why, not only how many.
            for e in &record.errors {
                tracing::warn!(
                    sync = %name,
                    kind = %e.kind,
                    location = e.location.as_deref().unwrap_or_default(),
                    "{}",
                    e.message
                );
            }
            if let Some(s) = state.syncs.get_mut(&name) {
                s.running = false;
                if let Ok((_, _, seen)) = &outcome {
                    s.fingerprint = seen.get(&name).cloned();
                }
                match record.result.as_str() {
                    "failure" => {
                        s.failures += 1;
                        s.retry_at =
                            chrono::Duration::from_std(backoff(s.failures)).ok().map(|d| end + d);
                    }
                    _ => {
                        s.failures = 0;
                        s.retry_at = None;
                    }
                }
                if s.next_run.is_some_and(|t| t <= end) || record.trigger == "schedule" {
                    s.next_run = s.timetable.next_after(end);
                }
                self.metrics.next_run(&name, s.next_run.map(unix));
                s.runs.push_front(record.clone());
                s.runs.truncate(HISTORY);
            }
            for hook in &loaded.target.notifications {
                for m in webhooks::messages(&name, &record, hook) {
                    webhooks::send(self.http.clone(), hook.clone(), m);
                }
            }
            records.push(record);
        }
        records
    }

    /// `/status`.
    fn status(&self) -> serde_json::Value {
        let state = self.lock();
        let syncs: serde_json::Map<String, serde_json::Value> = state
            .syncs
            .iter()
            .map(|(name, s)| {
                let value = serde_json::json!({
                    "schedule": s.schedule,
                    "suspended": s.suspended,
                    "nextRun": s.next_run.map(rfc3339),
                    "running": s.running,
                    "failuresInARow": s.failures,
                    "retryAt": s.retry_at.map(rfc3339),
                    "lastRun": s.runs.front(),
                    "runs": s.runs,
                });
                (name.clone(), value)
            })
            .collect();
        serde_json::json!({
            "ready": self.ready_with(&state).is_ok(),
            "manifestErrors": state.manifest_errors,
            "syncs": syncs,
        })
    }

    /// `/readyz`: manifests loaded, and the backend answered its last call.
    fn ready(&self) -> Result<(), String> {
        self.ready_with(&self.lock())
    }

    fn ready_with(&self, state: &State) -> Result<(), String> {
        if state.loaded.is_none() {
            return Err("no valid manifests loaded yet".into());
        }
        if state.backend_ok == Some(false) {
            return Err("the backend did not answer the last run".into());
        }
        Ok(())
    }
}

impl RunRecord {
    fn empty() -> Self {
        Self {
            trigger: String::new(),
            start: String::new(),
            end: String::new(),
            result: "success".into(),
            added: 0,
            changed: 0,
            deleted: 0,
            errors: Vec::new(),
        }
    }
}

/// Plans `input` and applies it under the writer lease.
async fn run_syncs(
    target: &Target,
    input: &PlanInput,
    cancel: &CancellationToken,
) -> Result<(Plan, apply::Report, BTreeMap<String, String>), String> {
    let backend = target.open().map_err(|e| crate::text::error_chain(&e))?;
    let holder = lease::holder_name("contact-sync reconcile");
    let lease = lease::acquire(backend.clone(), holder, LEASE_WAIT, cancel, |_, _| {})
        .await
        .map_err(|e| crate::text::error_chain(&e))?;
    let result = async {
        let plan = tokio::select! {
            plan = reader::plan(backend.as_ref(), input) => {
                plan.map_err(|e| crate::text::error_chain(&e))?
            }
            () = cancel.cancelled() => {
                return Err("interrupted while reading the tenant; nothing was applied".to_owned());
            }
        };
        // Without changes too: the inventory may need bringing up to date.
        let report = apply::apply_with(backend.as_ref(), &plan, cancel, &|_| {}).await;
        if let Some(w) = &report.inventory_warning {
            tracing::warn!("{w}");
        }
        // What the cheap check compares with until the next run.
        let mut seen = BTreeMap::new();
        for sync in &input.syncs {
            if let Ok(fp) = crate::directory::fingerprint(backend.as_ref(), &sync.manifest).await {
                seen.insert(sync.name().to_owned(), fp);
            }
        }
        Ok((plan, report, seen))
    }
    .await;
    if let Err(e) = lease.release().await {
        tracing::warn!("cannot give the writer lease up ({e}); it lapses by itself");
    }
    result
}

/// What one sync's run came to: `failure` when something failed that a retry can
/// mend (a request, a write); `heldBack` when the plan holds something back that
/// only a change can mend (a rename, a conflict, the deletion guard), or a
/// suspended sync has changes; else `success`.
fn judge(name: &str, plan: &Plan, report: &apply::Report) -> RunRecord {
    let mut record = RunRecord::empty();
    let Some(sync) = plan.syncs.iter().find(|s| s.name == name) else { return record };
    let kind = |k: ErrorKind| {
        serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    };
    let plan_errors =
        sync.errors.iter().chain(sync.destinations.iter().filter_map(|d| d.error.as_ref()));
    for e in plan_errors {
        record.errors.push(RunError {
            kind: kind(e.kind()),
            message: e.message(),
            location: e.location().map(str::to_owned),
        });
    }
    for d in report.destinations.iter().filter(|d| d.sync == name) {
        match &d.error {
            Some(e) => record.errors.push(RunError::api(format!(
                "{}: {}",
                d.user,
                crate::text::error_chain(e)
            ))),
            None if report.commit_error.is_none() => {
                record.added += d.added;
                record.changed += d.changed;
                record.deleted += d.deleted;
            }
            None => {}
        }
    }
    if let Some(e) = &report.inventory_error {
        record.errors.push(RunError::api(e.clone()));
    }
    if let Some(e) = &report.commit_error {
        record
            .errors
            .push(RunError::api(format!("nothing was saved: {}", crate::text::error_chain(e))));
    }
    // Destinations with changes that an interruption left unstarted.
    let planned = sync.destinations.iter().filter(|d| d.status == Status::Changes).count();
    let reported = report.destinations.iter().filter(|d| d.sync == name).count();
    let unstarted = sync.applicable() && reported < planned;
    if unstarted {
        record.errors.push(RunError::api(format!(
            "interrupted: {} destination(s) not started",
            planned - reported
        )));
    }
    let failed = record.errors.iter().any(|e| e.kind == "api");
    let suspended_changes =
        sync.suspended && sync.destinations.iter().any(|d| d.status == Status::Changes);
    record.result = if failed {
        "failure"
    } else if !record.errors.is_empty() || suspended_changes {
        "heldBack"
    } else {
        "success"
    }
    .into();
    record
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trigger_needs_a_token_off_loopback() {
        assert!(trigger_allowed("127.0.0.1:9090", false));
        assert!(trigger_allowed("[::1]:9090", false));
        assert!(trigger_allowed("localhost:9090", false));
        assert!(!trigger_allowed("0.0.0.0:9090", false), "403 for all without a token");
        assert!(!trigger_allowed("10.0.0.7:9090", false));
        assert!(trigger_allowed("0.0.0.0:9090", true));
    }

    #[test]
    fn failed_runs_back_off_exponentially_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(8), Duration::from_secs(3600));
        assert_eq!(backoff(40), Duration::from_secs(3600));
    }
}
