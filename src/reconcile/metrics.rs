//! The reconcile loop's Prometheus metrics: one registry, encoded in the
//! Prometheus text exposition format (0.0.4) on `/metrics`. A run is counted from
//! its record ([`Metrics::observe`]). Series of a sync that is removed from the
//! manifests are removed with it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::run::{RunRecord, RunResult, unix};
use crate::backend::open::RequestCounts;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SyncLabel {
    sync: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    sync: String,
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    sync: String,
    action: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DriftLabels {
    sync: String,
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    backend: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabel {
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: String,
}

type Seconds = Gauge<f64, AtomicU64>;

/// Every metric of the loop.
pub struct Metrics {
    registry: Registry,
    runs: Family<RunLabels, Counter>,
    duration: Family<SyncLabel, Histogram, fn() -> Histogram>,
    changes: Family<ChangeLabels, Counter>,
    drift: Family<DriftLabels, Gauge>,
    last_success: Family<SyncLabel, Seconds>,
    next_run: Family<SyncLabel, Seconds>,
    requests: Family<RequestLabels, Counter>,
    reads: Family<ModeLabel, Counter>,
    manifest_errors: Gauge,
    inventory_users: Gauge,
    full_scan: Seconds,
    /// Label values set per sync, to remove a sync's series.
    seen: Mutex<BTreeMap<String, Seen>>,
    /// API requests already counted, per (backend, code).
    exported: Mutex<BTreeMap<(String, String), u64>>,
    /// Where the backends the loop opens count their API requests.
    sent: Arc<RequestCounts>,
}

#[derive(Default)]
struct Seen {
    results: BTreeSet<String>,
    actions: BTreeSet<String>,
    kinds: BTreeSet<String>,
}

/// Changes a run applies, the `action` label.
const ACTIONS: [&str; 3] = ["create", "update", "delete"];

fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.5, 2.0, 14))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("contact_sync");
        let runs = Family::<RunLabels, Counter>::default();
        registry.register(
            "runs",
            "Runs of a sync by result (success, failure, heldBack)",
            runs.clone(),
        );
        let duration = Family::<SyncLabel, Histogram, fn() -> Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        registry.register(
            "run_duration_seconds",
            "How long a run of a sync took",
            duration.clone(),
        );
        let changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "changes",
            "Changes applied by a sync (create, update, delete)",
            changes.clone(),
        );
        let drift = Family::<DriftLabels, Gauge>::default();
        registry.register(
            "drift_errors",
            "Errors of the last run of a sync by kind (renames, conflicts, the deletion guard)",
            drift.clone(),
        );
        let last_success = Family::<SyncLabel, Seconds>::default();
        registry.register(
            "last_success_timestamp_seconds",
            "When a run of the sync last succeeded (Unix time)",
            last_success.clone(),
        );
        let next_run = Family::<SyncLabel, Seconds>::default();
        registry.register(
            "next_run_timestamp_seconds",
            "When the sync runs next by its schedule (Unix time)",
            next_run.clone(),
        );
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests by backend and HTTP status code",
            requests.clone(),
        );
        let reads = Family::<ModeLabel, Counter>::default();
        for mode in ["full", "incremental"] {
            let _ = reads.get_or_create(&ModeLabel { mode: mode.into() });
        }
        registry.register(
            "reads",
            "Users read by runs, by mode: full (every group and contact listed) or \
             incremental (the sync tokens of the read cache showed no change)",
            reads.clone(),
        );
        let manifest_errors = Gauge::default();
        registry.register(
            "manifest_errors",
            "Validation errors of the manifests on disk (the last good ones keep running)",
            manifest_errors.clone(),
        );
        let inventory_users = Gauge::default();
        registry.register(
            "inventory_users",
            "Users the inventory lists as holding synced contacts, after the last run (the \
             users a run reads besides those its syncs select)",
            inventory_users.clone(),
        );
        let full_scan = Seconds::default();
        registry.register(
            "last_full_scan_timestamp_seconds",
            "When a run last read every user and rebuilt the inventory (Unix time)",
            full_scan.clone(),
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build.get_or_create(&VersionLabel { version: env!("CARGO_PKG_VERSION").into() }).set(1);
        registry.register("build_info", "The running version of contact-sync", build);
        Self {
            registry,
            runs,
            duration,
            changes,
            drift,
            last_success,
            next_run,
            requests,
            reads,
            manifest_errors,
            inventory_users,
            full_scan,
            seen: Mutex::default(),
            exported: Mutex::default(),
            sent: Arc::default(),
        }
    }
}

impl Metrics {
    /// Counts a finished run from its record.
    pub fn observe(&self, record: &RunRecord) {
        let sync = record.sync.as_str();
        let result = record.result.as_str();
        let errors = record.error_kinds();
        let mut seen = self.seen.lock().expect("metrics lock");
        let seen = seen.entry(sync.to_owned()).or_default();
        let label = SyncLabel { sync: sync.to_owned() };
        seen.results.insert(result.to_owned());
        self.runs.get_or_create(&RunLabels { sync: sync.into(), result: result.into() }).inc();
        self.duration.get_or_create(&label).observe(record.seconds());
        let changes = [record.added, record.changed, record.deleted];
        for (action, n) in ACTIONS.into_iter().zip(changes) {
            seen.actions.insert(action.to_owned());
            self.changes
                .get_or_create(&ChangeLabels { sync: sync.into(), action: action.into() })
                .inc_by(n as u64);
        }
        for kind in seen.kinds.iter() {
            if !errors.contains_key(kind) {
                self.drift
                    .get_or_create(&DriftLabels { sync: sync.into(), kind: kind.clone() })
                    .set(0);
            }
        }
        for (kind, n) in &errors {
            seen.kinds.insert(kind.clone());
            self.drift
                .get_or_create(&DriftLabels { sync: sync.into(), kind: kind.clone() })
                .set(*n);
        }
        if record.result == RunResult::Success {
            self.last_success.get_or_create(&label).set(unix(record.end));
        }
    }

    /// Exposes every series of `sync` that a run counts — runs by result, changes
    /// by action, the run duration, drift errors by kind — at zero until a run
    /// sets it: Prometheus's convention for known series, so that a rate or an
    /// alert sees them from the start.
    pub fn sync_known(&self, sync: &str) {
        let mut seen = self.seen.lock().expect("metrics lock");
        let seen = seen.entry(sync.to_owned()).or_default();
        for result in RunResult::ALL.map(RunResult::as_str) {
            seen.results.insert(result.to_owned());
            let _ =
                self.runs.get_or_create(&RunLabels { sync: sync.into(), result: result.into() });
        }
        for action in ACTIONS {
            seen.actions.insert(action.to_owned());
            let _ = self
                .changes
                .get_or_create(&ChangeLabels { sync: sync.into(), action: action.into() });
        }
        let _ = self.duration.get_or_create(&SyncLabel { sync: sync.to_owned() });
        for kind in crate::plan::error_kind_names() {
            seen.kinds.insert(kind.clone());
            let _ = self.drift.get_or_create(&DriftLabels { sync: sync.into(), kind });
        }
    }

    /// The backend whose API requests are counted: its series is exposed at zero
    /// until the first request (the local backend sends none).
    pub fn backend(&self, backend: &str) {
        let _ = self
            .requests
            .get_or_create(&RequestLabels { backend: backend.into(), code: "200".into() });
    }

    /// Sets when `sync` runs next (none: manual).
    pub fn next_run(&self, sync: &str, at: Option<f64>) {
        let label = SyncLabel { sync: sync.to_owned() };
        match at {
            Some(t) => {
                self.next_run.get_or_create(&label).set(t);
            }
            None => {
                self.next_run.remove(&label);
            }
        }
    }

    /// Removes every series of a sync that is gone from the manifests.
    pub fn remove_sync(&self, sync: &str) {
        let label = SyncLabel { sync: sync.to_owned() };
        self.duration.remove(&label);
        self.last_success.remove(&label);
        self.next_run.remove(&label);
        let Some(seen) = self.seen.lock().expect("metrics lock").remove(sync) else { return };
        for result in
            seen.results.iter().map(String::as_str).chain(RunResult::ALL.map(RunResult::as_str))
        {
            self.runs.remove(&RunLabels { sync: sync.into(), result: result.into() });
        }
        for action in seen.actions {
            self.changes.remove(&ChangeLabels { sync: sync.into(), action });
        }
        for kind in seen.kinds {
            self.drift.remove(&DriftLabels { sync: sync.into(), kind });
        }
    }

    /// Sets what the inventory says after a run.
    pub fn inventory(&self, users: usize, scanned: Option<f64>) {
        self.inventory_users.set(users as i64);
        if let Some(t) = scanned {
            self.full_scan.set(t);
        }
    }

    /// Counts how a run read its users.
    pub fn reads(&self, full: usize, incremental: usize) {
        for (mode, n) in [("full", full), ("incremental", incremental)] {
            self.reads.get_or_create(&ModeLabel { mode: mode.into() }).inc_by(n as u64);
        }
    }

    /// Sets the number of validation errors of the manifests on disk.
    pub fn manifest_errors(&self, n: usize) {
        self.manifest_errors.set(n as i64);
    }

    /// The counters the backends the loop opens count their API requests in.
    pub fn request_counts(&self) -> Arc<RequestCounts> {
        self.sent.clone()
    }

    /// The exposition text, API request counts brought up to date first.
    pub fn encode(&self) -> String {
        let totals = self.sent.totals();
        let mut exported = self.exported.lock().expect("metrics lock");
        for ((backend, code), total) in totals {
            let before = exported.insert((backend.clone(), code.clone()), total).unwrap_or(0);
            self.requests
                .get_or_create(&RequestLabels { backend, code })
                .inc_by(total.saturating_sub(before));
        }
        let mut out = String::new();
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_series_are_exposed_at_zero_before_any_run_or_request() {
        let metrics = Metrics::default();
        metrics.sync_known("sales");
        metrics.backend("local");
        let text = metrics.encode();
        for series in [
            "contact_sync_runs_total{sync=\"sales\",result=\"failure\"} 0\n",
            "contact_sync_runs_total{sync=\"sales\",result=\"success\"} 0\n",
            "contact_sync_changes_total{sync=\"sales\",action=\"delete\"} 0\n",
            "contact_sync_run_duration_seconds_count{sync=\"sales\"} 0\n",
            "contact_sync_drift_errors{sync=\"sales\",kind=\"sourceRenamed\"} 0\n",
            "contact_sync_drift_errors{sync=\"sales\",kind=\"deleteGuard\"} 0\n",
            "contact_sync_api_requests_total{backend=\"local\",code=\"200\"} 0\n",
            "contact_sync_reads_total{mode=\"full\"} 0\n",
            "contact_sync_reads_total{mode=\"incremental\"} 0\n",
        ] {
            assert!(text.contains(series), "{series} missing:\n{text}");
        }
        // A sync removed takes them all with it.
        metrics.remove_sync("sales");
        assert!(!metrics.encode().contains("sync=\"sales\""));
    }

    #[test]
    fn the_requests_counted_by_the_backends_the_loop_opens_are_exposed() {
        let metrics = Metrics::default();
        let counts = metrics.request_counts();
        counts.count("google", "200");
        counts.count("google", "200");
        counts.count("google", "429");
        let text = metrics.encode();
        assert!(
            text.contains("contact_sync_api_requests_total{backend=\"google\",code=\"200\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("contact_sync_api_requests_total{backend=\"google\",code=\"429\"} 1\n"),
            "{text}"
        );
        // Encoding again counts nothing twice; a later request adds one.
        counts.count("google", "200");
        let text = metrics.encode();
        assert!(
            text.contains("contact_sync_api_requests_total{backend=\"google\",code=\"200\"} 3\n"),
            "{text}"
        );
        metrics.reads(3, 197);
        let text = metrics.encode();
        assert!(text.contains("contact_sync_reads_total{mode=\"full\"} 3\n"), "{text}");
        assert!(text.contains("contact_sync_reads_total{mode=\"incremental\"} 197\n"), "{text}");
        // Counters of another owner are not these.
        assert!(!Metrics::default().encode().contains("code=\"429\""));
    }
}
