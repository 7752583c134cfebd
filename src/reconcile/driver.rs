//! The loop itself: wait for the next thing due (a schedule, a retry, a trigger,
//! a manifest edit, the cheap check), run what is due, and hand each run's record
//! to the error policy, the state, the metrics and the webhooks. It decides
//! nothing of its own: when to retry is [`super::policy`]'s, what a run came to
//! is [`super::run::judge`]'s.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::Options;
use super::error::Error;
use super::metrics::Metrics;
use super::policy::error_policy;
use super::run::{Ran, RunRecord, RunResult, Trigger, judge, run_syncs, unix};
use super::schedule::Timetable;
use super::state::{Loaded, State, SyncState};
use super::watch::Watch;
use super::webhooks::Notifier;
use crate::input::{self, LoadError, LoadOptions};

/// The longest the loop sleeps without looking again.
const IDLE: Duration = Duration::from_secs(3600);

/// What the loop and its HTTP server share.
pub struct Shared {
    pub options: Options,
    state: Mutex<State>,
    pub metrics: Metrics,
    wake: tokio::sync::Notify,
    /// Whether `POST /syncs/{name}/run` is served (a token, or a loopback address).
    pub trigger_enabled: bool,
    notifier: Notifier,
}

/// Runs the loop until `cancel` (SIGTERM); with `--once`, runs every sync once.
/// Returns whether every run succeeded (for `--once`'s exit code). Either way it
/// returns once the notifications still being sent are through (or given up).
pub async fn run(options: Options, cancel: CancellationToken) -> Result<bool, Error> {
    let trigger_enabled = trigger_allowed(&options.listen, options.trigger_token.is_some());
    let shared = Arc::new(Shared {
        options,
        state: Mutex::default(),
        metrics: Metrics::default(),
        wake: tokio::sync::Notify::new(),
        trigger_enabled,
        notifier: Notifier::new().map_err(|source| Error::Webhooks { source })?,
    });
    shared.reload();
    let result =
        if shared.options.once { shared.once(&cancel).await } else { shared.serve(&cancel).await };
    shared.notifier.finish().await;
    result
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

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("reconcile state lock")
    }

    /// The HTTP server and the loop, until `cancel`.
    async fn serve(self: &Arc<Self>, cancel: &CancellationToken) -> Result<bool, Error> {
        if !self.trigger_enabled {
            tracing::warn!(
                listen = %self.options.listen,
                "POST /syncs/{{name}}/run is disabled: the address is not loopback and \
                 CONTACT_SYNC_TRIGGER_TOKEN is not set"
            );
        }
        let listener = tokio::net::TcpListener::bind(&self.options.listen)
            .await
            .map_err(|source| Error::Listen { listen: self.options.listen.clone(), source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| Error::Address { listen: self.options.listen.clone(), source })?;
        tracing::info!(%addr, "contact-sync reconcile serving /healthz /readyz /metrics /status");
        eprintln!(
            "contact-sync reconcile: serving http://{addr} (/healthz /readyz /metrics /status)"
        );
        let server = {
            let cancel = cancel.clone();
            let app = super::http::router(self.clone());
            tokio::spawn(async move {
                axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await
            })
        };
        self.main_loop(cancel).await?;
        let _ = server.await;
        Ok(true)
    }

    /// Runs what is due, then sleeps until something is due, a trigger, a
    /// settled manifest edit or `cancel`.
    async fn main_loop(&self, cancel: &CancellationToken) -> Result<(), Error> {
        let (mut watch, mut edits) =
            Watch::new(&self.options.load.paths, self.options.load.workspace.as_ref())?;
        let interval = self.options.check_interval;
        let mut next_check = Instant::now() + interval;
        while !cancel.is_cancelled() {
            if !interval.is_zero() && Instant::now() >= next_check {
                self.check().await;
                next_check = Instant::now() + interval;
            }
            let now = Utc::now();
            let due = self.lock().due(now);
            if !due.is_empty() {
                self.activate(due, cancel).await;
                continue;
            }
            let next_wake = self.lock().next_wake();
            let mut wait =
                next_wake.map_or(IDLE, |at| (at - now).to_std().unwrap_or_default().min(IDLE));
            if !interval.is_zero() {
                wait = wait.min(next_check.saturating_duration_since(Instant::now()));
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
                Some(()) = edits.recv() => {
                    super::watch::settle(&mut edits).await;
                    watch.follow();
                    self.reload();
                }
                () = cancel.cancelled() => break,
            }
        }
        Ok(())
    }

    /// Validates the manifests on disk. Valid: they replace the last good ones —
    /// new syncs are added (run at once when `runOnCreate`), removed ones dropped
    /// with their metrics. Invalid: the last good ones keep running, and the
    /// errors are shown until an edit fixes them.
    fn reload(&self) {
        let loaded = input::load(&LoadOptions { syncs: Vec::new(), ..self.options.load.clone() });
        let mut state = self.lock();
        match loaded {
            Ok((input, target)) => self.replace(&mut state, Loaded { input, target }),
            Err(e) => {
                state.manifest_errors = load_errors(e);
                self.metrics.manifest_errors(state.manifest_errors.len());
                tracing::warn!(
                    errors = state.manifest_errors.len(),
                    "the manifests have errors; the last good ones keep running"
                );
                return;
            }
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Puts `loaded` in place of the last good manifests. What changed since runs
    /// now: the syncs whose manifest changed, and every sync when the Workspace did.
    fn replace(&self, state: &mut State, loaded: Loaded) {
        let Loaded { input, target } = &loaded;
        self.metrics.backend(match &target.backend {
            crate::backend::open::BackendTarget::Local { .. } => "local",
            crate::backend::open::BackendTarget::Google { .. } => "google",
        });
        let previous = state.loaded.clone();
        let workspace_changed = previous.as_ref().is_some_and(|p| {
            serde_json::to_value(&p.target).ok() != serde_json::to_value(target).ok()
        });
        let changed = |name: &str, manifest: &crate::manifest::ContactSync| {
            workspace_changed
                || previous.as_ref().is_some_and(|p| {
                    p.input.syncs.iter().any(|s| s.name() == name && s.manifest != *manifest)
                })
        };
        let mut errors = Vec::new();
        let mut syncs = BTreeMap::new();
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
            let state_of = match state.syncs.remove(&name) {
                Some(old) => old.renew(spec, timetable, changed(&name, &sync.manifest)),
                None => SyncState::new(spec, timetable),
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
        state.loaded = Some(Arc::new(loaded));
    }

    /// Asks for a run of `sync` now: `Err` with the HTTP status when it cannot be.
    pub fn trigger(
        &self,
        sync: &str,
        allow_deletes: Option<usize>,
    ) -> Result<(), axum::http::StatusCode> {
        self.lock().trigger(sync, allow_deletes)?;
        self.wake.notify_one();
        Ok(())
    }

    /// `/status`.
    pub fn status(&self) -> serde_json::Value {
        self.lock().status()
    }

    /// `/readyz`.
    pub fn ready(&self) -> Result<(), super::state::NotReady> {
        self.lock().ready()
    }

    /// The cheap check: for every scheduled sync not running, a few directory reads
    /// (its selectors, its source group's etag); a sync whose picture moved since
    /// its last run or check runs now. Manual and suspended syncs are left alone.
    async fn check(&self) {
        let Some(loaded) = self.lock().loaded.clone() else { return };
        let backend = match loaded.target.open_counted(true, self.metrics.request_counts()) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cheap check: {}", crate::text::error_chain(&e));
                return;
            }
        };
        for sync in &loaded.input.syncs {
            let name = sync.name();
            if !self.lock().syncs.get(name).is_some_and(SyncState::checked) {
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
                s.pending = Some(Trigger::DirectoryChanged);
            }
            s.fingerprint = Some(seen);
        }
    }

    /// `--once`: every sync (manual ones too), in one activation.
    async fn once(&self, cancel: &CancellationToken) -> Result<bool, Error> {
        let (names, errors) = {
            let state = self.lock();
            (state.syncs.keys().cloned().collect::<Vec<_>>(), state.manifest_errors.clone())
        };
        if !errors.is_empty() {
            for e in &errors {
                eprintln!("{e}");
            }
            return Err(Error::ManifestErrors);
        }
        let due = names.into_iter().map(|n| (n, Trigger::Once)).collect();
        let records = self.activate(due, cancel).await;
        Ok(records.iter().all(|r| r.result == RunResult::Success))
    }

    /// One activation: the `due` syncs planned together from the last good
    /// manifests and applied under the writer lease; each sync's record then
    /// goes through the error policy into the state, the metrics, the logs and
    /// the webhooks.
    async fn activate(
        &self,
        due: Vec<(String, Trigger)>,
        cancel: &CancellationToken,
    ) -> Vec<RunRecord> {
        let Some(loaded) = self.lock().loaded.clone() else { return Vec::new() };
        self.lock().start(&due);
        let start = Utc::now();
        let mut input = loaded.input.clone();
        let every = input.syncs.iter().all(|s| due.iter().any(|(n, _)| n == s.name()));
        input.syncs.retain(|s| due.iter().any(|(n, _)| n == s.name()));
        if !every && input.partial.is_none() {
            input.partial = Some("this activation ran only the syncs that were due".into());
        }
        input.approved_deletes = self.lock().approvals(&due);
        let cache_dir = self.options.load.cache_dir.as_deref();
        let ran =
            run_syncs(&loaded.target, &input, cancel, self.metrics.request_counts(), cache_dir)
                .await;
        let end = Utc::now();
        if let Ok(Ran { report, .. }) = &ran
            && let Some(inventory) = &report.inventory
        {
            let scanned = inventory.scanned.map(|t| t.timestamp() as f64);
            self.metrics.inventory(inventory.holders.len(), scanned);
        }
        self.lock().backend_ok = Some(ran.is_ok());
        if let Ok(Ran { plan, .. }) = &ran {
            let (full, incremental) = (plan.survey.read_full, plan.survey.read_incremental);
            self.metrics.reads(full, incremental);
            let mut state = self.lock();
            state.reads.full += full;
            state.reads.incremental += incremental;
            state.last_reads = Some(super::state::Reads { full, incremental });
        }
        let seen = ran.as_ref().ok().map(|r| &r.seen);
        let records: Vec<RunRecord> = due
            .into_iter()
            .map(|(name, trigger)| judge(RunRecord::new(&name, trigger, start, end), &ran))
            .collect();
        for record in &records {
            self.finish(record, seen, &loaded);
        }
        records
    }

    /// A finished run of one sync: the error policy decides what follows, and the
    /// state, the metrics, the logs and the webhooks take the record in.
    fn finish(&self, record: &RunRecord, seen: Option<&BTreeMap<String, String>>, loaded: &Loaded) {
        let mut state = self.lock();
        // A sync removed from the manifests while it ran keeps no series.
        if let Some(s) = state.syncs.get_mut(&record.sync) {
            let next = error_policy(record, s.failures);
            s.finish(record.clone(), next, seen);
            self.metrics.observe(record);
            self.metrics.next_run(&record.sync, s.next_run.map(unix));
        }
        drop(state);
        log(record);
        self.notifier.observe(record, &loaded.target.notifications);
    }
}

/// The run in the log: one line, and each error on its own line — what and why,
/// not only how many.
fn log(record: &RunRecord) {
    tracing::info!(
        sync = %record.sync,
        trigger = %record.trigger,
        result = %record.result,
        added = record.added,
        changed = record.changed,
        deleted = record.deleted,
        errors = record.errors.len(),
        seconds = record.seconds(),
        "run finished"
    );
    for e in &record.errors {
        tracing::warn!(
            sync = %record.sync,
            kind = %e.kind,
            location = e.location.as_deref().unwrap_or_default(),
            "{}",
            e.message
        );
    }
}

/// The lines `/status` shows for manifests that do not load.
fn load_errors(e: LoadError) -> Vec<String> {
    match e {
        LoadError::Invalid(report) => {
            let mut lines: Vec<String> =
                report.diagnostics.iter().map(ToString::to_string).collect();
            if report.omitted > 0 {
                lines.push(format!("{} more errors not listed", report.omitted));
            }
            lines
        }
        other => vec![crate::text::error_chain(&other)],
    }
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
}
