//! One run of the syncs that are due: plan them together and apply the plan under
//! the writer lease ([`run_syncs`]), then say what it came to for each sync
//! ([`judge`]) as a typed [`RunRecord`] — what `/status` shows, what the metrics
//! count, what webhooks tell. What happens next is decided elsewhere
//! ([`super::policy`]).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use tokio_util::sync::CancellationToken;

use crate::backend::open::Target;
use crate::cache::ReadCache;
use crate::input::PlanInput;
use crate::plan::{ErrorKind, Plan, Status, SyncPlan};
use crate::{apply, lease, reader};

/// How long an activation waits for another writer's lease.
const LEASE_WAIT: Duration = Duration::from_secs(120);

/// Why a sync ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// Its schedule came due.
    Schedule,
    /// It is new and asks to run at once (`runOnCreate`).
    RunOnCreate,
    /// Its manifest, or the Workspace, changed.
    ManifestChanged,
    /// The cheap check saw its source or destinations move.
    DirectoryChanged,
    /// A failed run is tried again.
    Retry,
    /// `POST /syncs/{name}/run`.
    Manual,
    /// `reconcile --once`.
    Once,
}

impl Trigger {
    /// The name `/status`, the logs and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::RunOnCreate => "runOnCreate",
            Self::ManifestChanged => "manifestChanged",
            Self::DirectoryChanged => "directoryChanged",
            Self::Retry => "retry",
            Self::Manual => "manual",
            Self::Once => "once",
        }
    }
}

impl std::fmt::Display for Trigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a run of a sync came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RunResult {
    /// Everything planned was applied.
    Success,
    /// Something failed that a retry can mend (a request, a write).
    Failure,
    /// The plan holds something back that only a change can mend.
    HeldBack,
}

impl RunResult {
    /// Every result, for the metric series exposed from the start.
    pub const ALL: [Self; 3] = [Self::Success, Self::Failure, Self::HeldBack];

    /// The name `/status`, the logs and the metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::HeldBack => "heldBack",
        }
    }
}

impl std::fmt::Display for RunResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one run of one sync came to, as `/status` shows it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    /// The sync (the key it is shown under, so not repeated in `/status`).
    #[serde(skip)]
    pub sync: String,
    /// Why it ran.
    pub trigger: Trigger,
    /// RFC 3339, UTC, whole seconds.
    #[serde(serialize_with = "rfc3339_of")]
    pub start: DateTime<Utc>,
    /// RFC 3339, UTC, whole seconds.
    #[serde(serialize_with = "rfc3339_of")]
    pub end: DateTime<Utc>,
    /// `success`, `failure` or `heldBack`.
    pub result: RunResult,
    /// Contacts and groups created (`create`, the plan's word).
    #[serde(rename = "create")]
    pub added: usize,
    /// Contacts and groups changed (`update`).
    #[serde(rename = "update")]
    pub changed: usize,
    /// Contacts and groups deleted (`delete`).
    #[serde(rename = "delete")]
    pub deleted: usize,
    /// What went wrong.
    pub errors: Vec<RunError>,
}

impl RunRecord {
    /// A run of `sync` that changed nothing and succeeded, to fill in.
    pub fn new(sync: &str, trigger: Trigger, start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        Self {
            sync: sync.to_owned(),
            trigger,
            start,
            end,
            result: RunResult::Success,
            added: 0,
            changed: 0,
            deleted: 0,
            errors: Vec::new(),
        }
    }

    /// How long the run took, in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).num_milliseconds().max(0) as f64 / 1000.0
    }

    /// Its errors counted by kind.
    pub fn error_kinds(&self) -> BTreeMap<String, i64> {
        let mut kinds = BTreeMap::new();
        for e in &self.errors {
            *kinds.entry(e.kind.clone()).or_default() += 1;
        }
        kinds
    }
}

/// An error of a run.
#[derive(Clone, Debug, Serialize)]
pub struct RunError {
    /// The plan error kind (`api` for a failed request).
    pub kind: String,
    /// What happened and what to do.
    pub message: String,
    /// `file:line:col` of the manifest value to change, where there is one; in
    /// JSON `{"file", "line", "column"}`, as in the plan.
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "crate::plan::error::position::serialize"
    )]
    pub location: Option<String>,
}

/// The kind of a request or a write that failed.
pub const API: &str = "api";

impl RunError {
    /// A request or a write that failed: a retry may mend it.
    pub fn api(message: String) -> Self {
        Self { kind: API.into(), message, location: None }
    }
}

/// RFC 3339 in UTC, whole seconds.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Unix time in seconds, as the metrics give it.
pub fn unix(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

fn rfc3339_of<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*t))
}

/// What a run of the due syncs read and did.
pub struct Ran {
    pub plan: Plan,
    pub report: apply::Report,
    /// What the cheap check compares with until the next run, per sync.
    pub seen: BTreeMap<String, String>,
}

/// Why a run of the due syncs applied nothing: a retry may mend it.
#[derive(Debug, thiserror::Error)]
pub enum RunFailed {
    /// The tenant could not be opened.
    #[error(transparent)]
    Open(#[from] crate::backend::open::Error),
    /// The tenant could not be read.
    #[error(transparent)]
    Backend(#[from] crate::backend::Error),
    /// The writer lease could not be taken.
    #[error(transparent)]
    Lease(#[from] lease::Error),
    /// Stopped while the tenant was being read.
    #[error("interrupted while reading the tenant; nothing was applied")]
    Interrupted,
    /// The plan was refused.
    #[error(transparent)]
    Refused(#[from] apply::Refusal),
}

/// Plans `input` and applies it under the writer lease, counting API requests in
/// `requests`; users that provably did not change since the read cache in
/// `cache_dir` saw them converged are planned from it.
pub async fn run_syncs(
    target: &Target,
    input: &PlanInput,
    cancel: &CancellationToken,
    requests: std::sync::Arc<crate::backend::open::RequestCounts>,
    cache_dir: Option<&std::path::Path>,
) -> Result<Ran, RunFailed> {
    let backend = target.open_counted(false, requests)?;
    let holder = lease::holder_name("contact-sync reconcile");
    let lease = lease::acquire(backend.clone(), holder, LEASE_WAIT, cancel, |_, _| {}).await?;
    // Opened for each run: a cache deleted or damaged meanwhile only means full reads.
    let cache = ReadCache::open(target, cache_dir);
    if let Some(why) = cache.as_ref().and_then(ReadCache::ignored) {
        tracing::info!("reading every user in full: {why}");
    }
    let result = under_lease(backend.as_ref(), input, cancel, cache.as_ref()).await;
    if let Err(e) = lease.release().await {
        tracing::warn!("cannot give the writer lease up ({e}); it lapses by itself");
    }
    result
}

/// Plans, applies through the same check and run as `contact-sync apply`, and
/// notes what the cheap check compares with until the next run.
async fn under_lease(
    backend: &dyn crate::backend::Backend,
    input: &PlanInput,
    cancel: &CancellationToken,
    cache: Option<&ReadCache>,
) -> Result<Ran, RunFailed> {
    let plan = tokio::select! {
        plan = reader::plan_cached(backend, input, &|_, _| {}, cache) => plan?,
        () = cancel.cancelled() => return Err(RunFailed::Interrupted),
    };
    if let Some(cache) = cache {
        // Before anything is written: a user about to be written is read in
        // full next time, however this run ends.
        cache.forget_planned(&plan);
        cache.save_or_warn();
    }
    // Without changes too: the inventory may need bringing up to date.
    let checked = apply::Apply::new(&plan).adopt(input.adopt.as_ref()).check()?;
    let report = checked.run(backend, cancel, &|_| {}).await.report;
    if let Some(w) = &report.inventory_warning {
        tracing::warn!("{w}");
    }
    let mut seen = BTreeMap::new();
    for sync in &input.syncs {
        if let Ok(fp) = crate::directory::fingerprint(backend, &sync.manifest).await {
            seen.insert(sync.name().to_owned(), fp);
        }
    }
    Ok(Ran { plan, report, seen })
}

/// What the run of `record.sync` came to, filled into `record`: `failure` when
/// something failed that a retry can mend (a request, a write); `heldBack` when
/// the plan holds something back that only a change can mend (a rename, a
/// conflict, the deletion guard), or a suspended sync has changes; else `success`.
pub fn judge<E: std::error::Error + 'static>(
    mut record: RunRecord,
    ran: &Result<Ran, E>,
) -> RunRecord {
    let Ran { plan, report, .. } = match ran {
        Ok(ran) => ran,
        Err(e) => {
            record.result = RunResult::Failure;
            record.errors.push(RunError::api(crate::text::error_chain(e)));
            return record;
        }
    };
    let name = record.sync.clone();
    let Some(sync) = plan.syncs.iter().find(|s| s.name == name) else { return record };
    record.errors.extend(plan_errors(sync));
    record_applied(&mut record, report);
    // Destinations with changes that an interruption left unstarted.
    let planned = sync.destinations.iter().filter(|d| d.status == Status::Changes).count();
    let reported = report.destinations.iter().filter(|d| d.sync == name).count();
    if sync.applicable() && reported < planned {
        record.errors.push(RunError::api(format!(
            "interrupted: {} destination(s) not started",
            planned - reported
        )));
    }
    record.result = verdict(&record, sync);
    record
}

/// The plan's errors for `sync`: its own and its destinations'.
fn plan_errors(sync: &SyncPlan) -> impl Iterator<Item = RunError> + '_ {
    let kind = |k: ErrorKind| {
        serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    };
    let errors =
        sync.errors.iter().chain(sync.destinations.iter().filter_map(|d| d.error.as_ref()));
    errors.map(move |e| RunError {
        kind: kind(e.kind()),
        message: e.message(),
        location: e.location().map(str::to_owned),
    })
}

/// What the apply did for `record.sync`, into `record`: the counts of what was
/// saved, and what failed (a destination, the inventory, the commit).
fn record_applied(record: &mut RunRecord, report: &apply::Report) {
    for d in report.destinations.iter().filter(|d| d.sync == record.sync) {
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
        record.errors.push(RunError::api(e.to_string()));
    }
    if let Some(e) = &report.commit_error {
        record
            .errors
            .push(RunError::api(format!("nothing was saved: {}", crate::text::error_chain(e))));
    }
}

/// `failure` when an error a retry can mend was recorded; `heldBack` when only
/// the plan's were, or a suspended sync has changes; else `success`.
fn verdict(record: &RunRecord, sync: &SyncPlan) -> RunResult {
    let failed = record.errors.iter().any(|e| e.kind == API);
    let suspended_changes =
        sync.suspended && sync.destinations.iter().any(|d| d.status == Status::Changes);
    if failed {
        RunResult::Failure
    } else if !record.errors.is_empty() || suspended_changes {
        RunResult::HeldBack
    } else {
        RunResult::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_triggers_keep_their_names_in_status() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        let mut record = RunRecord::new(
            "s",
            Trigger::RunOnCreate,
            t("2026-11-24T02:00:00.250Z"),
            t("2026-11-24T02:00:05.750Z"),
        );
        record.result = RunResult::HeldBack;
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["trigger"], "runOnCreate");
        assert_eq!(json["result"], "heldBack");
        assert_eq!(json["start"], "2026-11-24T02:00:00Z");
        assert_eq!(json["end"], "2026-11-24T02:00:05Z");
        assert!(json.get("sync").is_none(), "{json}");
        assert_eq!(record.seconds(), 5.5);
        for r in RunResult::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for tr in [Trigger::DirectoryChanged, Trigger::ManifestChanged, Trigger::Once] {
            assert_eq!(serde_json::to_value(tr).unwrap(), tr.as_str());
        }
    }

    #[test]
    fn a_run_that_could_not_start_is_a_failure_of_the_api_kind() {
        let now = Utc::now();
        let failed = Err::<Ran, _>(std::io::Error::other("cannot open"));
        let record = judge(RunRecord::new("s", Trigger::Schedule, now, now), &failed);
        assert_eq!(record.result, RunResult::Failure);
        assert_eq!(record.errors[0].kind, "api");
        assert_eq!(record.errors[0].message, "cannot open");
    }
}
