//! What the loop knows: the last good manifests, each sync's schedule, pending
//! runs, failures in a row and recent runs. Shown by `/status` and `/readyz`;
//! changed only by a reload, a trigger, the cheap check and a finished run.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::policy::Next;
use super::run::{RunRecord, RunResult, Trigger, rfc3339};
use super::schedule::Timetable;
use crate::backend::open::Target;
use crate::input::PlanInput;

/// Runs kept per sync for `/status`.
const HISTORY: usize = 20;

/// One sync as the loop tracks it.
#[derive(Debug)]
pub struct SyncState {
    pub schedule: String,
    pub timetable: Timetable,
    pub suspended: bool,
    pub next_run: Option<DateTime<Utc>>,
    /// A run asked for (run on create, manual trigger), and by what.
    pub pending: Option<Trigger>,
    pub running: bool,
    pub failures: u32,
    pub retry_at: Option<DateTime<Utc>>,
    pub runs: VecDeque<RunRecord>,
    /// What the cheap check saw of the sync's source and destinations, as of its
    /// last run or check.
    pub fingerprint: Option<String>,
    /// Deletions approved once by `POST /syncs/{name}/run?allowDeletes=N`: the
    /// next run that plans may delete exactly that many past the guard.
    pub approved_deletes: Option<usize>,
}

impl SyncState {
    /// A sync new to the loop.
    pub fn new(spec: &crate::manifest::ContactSyncSpec, timetable: Timetable) -> Self {
        Self {
            schedule: spec.schedule.to_string(),
            next_run: timetable.next_after(Utc::now()),
            timetable,
            suspended: spec.suspend,
            pending: spec.run_on_create.then_some(Trigger::RunOnCreate),
            running: false,
            failures: 0,
            retry_at: None,
            runs: VecDeque::new(),
            fingerprint: None,
            approved_deletes: None,
        }
    }

    /// The sync under its manifest as read anew; `changed` when that manifest, or
    /// the Workspace, is not what it was (so it runs now).
    pub fn renew(
        mut self,
        spec: &crate::manifest::ContactSyncSpec,
        timetable: Timetable,
        changed: bool,
    ) -> Self {
        if changed {
            self.pending = Some(Trigger::ManifestChanged);
        }
        self.next_run = timetable.next_after(Utc::now());
        self.schedule = spec.schedule.to_string();
        self.timetable = timetable;
        self.suspended = spec.suspend;
        self
    }

    /// Why the sync runs now, if it does.
    fn due(&self, now: DateTime<Utc>) -> Option<Trigger> {
        if self.running {
            None
        } else if let Some(why) = self.pending {
            Some(why)
        } else if self.retry_at.is_some_and(|t| t <= now) {
            Some(Trigger::Retry)
        } else if self.next_run.is_some_and(|t| t <= now) {
            Some(Trigger::Schedule)
        } else {
            None
        }
    }

    /// Whether the cheap check looks at the sync: scheduled, not suspended, and
    /// neither running nor about to.
    pub fn checked(&self) -> bool {
        !self.running && !self.suspended && self.schedule != "manual" && self.pending.is_none()
    }

    /// Takes a finished run in: what the error policy decided, the next scheduled
    /// time, the history, and what the cheap check compares with next — `seen`,
    /// when the run read the tenant.
    pub fn finish(
        &mut self,
        record: RunRecord,
        next: Next,
        seen: Option<&BTreeMap<String, String>>,
    ) {
        self.running = false;
        // An approval is used by the run that planned with it; one that failed
        // before it could keeps it for the retry.
        if record.result != RunResult::Failure {
            self.approved_deletes = None;
        }
        if let Some(seen) = seen {
            self.fingerprint = seen.get(&record.sync).cloned();
        }
        match next {
            Next::Retry { failures, after } => {
                self.failures = failures;
                self.retry_at = chrono::Duration::from_std(after).ok().map(|d| record.end + d);
            }
            Next::AwaitChange => {
                self.failures = 0;
                self.retry_at = None;
            }
        }
        if self.next_run.is_some_and(|t| t <= record.end) || record.trigger == Trigger::Schedule {
            self.next_run = self.timetable.next_after(record.end);
        }
        self.runs.push_front(record);
        self.runs.truncate(HISTORY);
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "schedule": self.schedule,
            "suspended": self.suspended,
            "nextRun": self.next_run.map(rfc3339),
            "running": self.running,
            "failuresInARow": self.failures,
            "retryAt": self.retry_at.map(rfc3339),
            "approvedDeletes": self.approved_deletes,
            "lastRun": self.runs.front(),
            "runs": self.runs,
        })
    }
}

/// The manifests as last validated without errors.
#[derive(Debug)]
pub struct Loaded {
    pub input: PlanInput,
    pub target: Target,
}

/// Everything the loop tracks.
#[derive(Debug, Default)]
pub struct State {
    pub loaded: Option<Arc<Loaded>>,
    pub manifest_errors: Vec<String>,
    /// Whether the backend answered its last call (none yet: unknown).
    pub backend_ok: Option<bool>,
    pub syncs: BTreeMap<String, SyncState>,
    /// How the runs read their users: since the loop started, and the last run.
    pub reads: Reads,
    pub last_reads: Option<Reads>,
}

/// Users read in full and planned from the read cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reads {
    pub full: usize,
    pub incremental: usize,
}

impl Reads {
    /// `/status`: the counts and the share planned from the cache (none read: null).
    fn status(self) -> serde_json::Value {
        let total = self.full + self.incremental;
        let ratio = (total > 0).then(|| self.incremental as f64 / total as f64);
        serde_json::json!({
            "full": self.full,
            "incremental": self.incremental,
            "cacheHitRatio": ratio,
        })
    }
}

impl State {
    /// The syncs to run now, with what triggered each.
    pub fn due(&self, now: DateTime<Utc>) -> Vec<(String, Trigger)> {
        self.syncs.iter().filter_map(|(name, s)| Some((name.clone(), s.due(now)?))).collect()
    }

    /// When something is due next.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.syncs.values().flat_map(|s| [s.next_run, s.retry_at]).flatten().min()
    }

    /// Marks the `due` syncs running.
    pub fn start(&mut self, due: &[(String, Trigger)]) {
        for (name, _) in due {
            if let Some(s) = self.syncs.get_mut(name) {
                s.running = true;
                s.pending = None;
            }
        }
    }

    /// Asks for a run of `sync` now, approving `allow_deletes` deletions past its
    /// guard once: `Err` with the HTTP status when it cannot be.
    pub fn trigger(
        &mut self,
        sync: &str,
        allow_deletes: Option<usize>,
    ) -> Result<(), axum::http::StatusCode> {
        use axum::http::StatusCode;
        let s = self.syncs.get_mut(sync).ok_or(StatusCode::NOT_FOUND)?;
        if s.running {
            return Err(StatusCode::CONFLICT);
        }
        s.pending = Some(Trigger::Manual);
        if allow_deletes.is_some() {
            s.approved_deletes = allow_deletes;
        }
        Ok(())
    }

    /// The deletions approved for the `due` syncs, for their plan.
    pub fn approvals(&self, due: &[(String, Trigger)]) -> BTreeMap<String, usize> {
        due.iter()
            .filter_map(|(name, _)| Some((name.clone(), self.syncs.get(name)?.approved_deletes?)))
            .collect()
    }

    /// `/status`.
    pub fn status(&self) -> serde_json::Value {
        let syncs: serde_json::Map<String, serde_json::Value> =
            self.syncs.iter().map(|(name, s)| (name.clone(), s.status())).collect();
        serde_json::json!({
            "ready": self.ready().is_ok(),
            "manifestErrors": self.manifest_errors,
            "reads": {
                "total": self.reads.status(),
                "lastRun": self.last_reads.map(Reads::status),
            },
            "syncs": syncs,
        })
    }

    /// `/readyz`: manifests loaded, and the backend answered its last call.
    pub fn ready(&self) -> Result<(), NotReady> {
        if self.loaded.is_none() {
            return Err(NotReady::NoManifests);
        }
        if self.backend_ok == Some(false) {
            return Err(NotReady::BackendDown);
        }
        Ok(())
    }
}

/// Why `/readyz` is not ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    /// No manifests have loaded without errors yet.
    #[error("no valid manifests loaded yet")]
    NoManifests,
    /// The last run found the backend not answering.
    #[error("the backend did not answer the last run")]
    BackendDown,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Schedule;

    fn sync(schedule: Schedule) -> SyncState {
        SyncState {
            schedule: schedule.to_string(),
            timetable: Timetable::new(&schedule, "02:00", "UTC").unwrap(),
            suspended: false,
            next_run: None,
            pending: None,
            running: false,
            failures: 0,
            retry_at: None,
            runs: VecDeque::new(),
            fingerprint: None,
            approved_deletes: None,
        }
    }

    #[test]
    fn a_pending_run_goes_first_then_a_retry_then_the_schedule() {
        let now = Utc::now();
        let earlier = now - chrono::Duration::seconds(1);
        let mut s = sync(Schedule::Nightly);
        assert_eq!(s.due(now), None);
        s.next_run = Some(earlier);
        assert_eq!(s.due(now), Some(Trigger::Schedule));
        s.retry_at = Some(earlier);
        assert_eq!(s.due(now), Some(Trigger::Retry));
        s.pending = Some(Trigger::Manual);
        assert_eq!(s.due(now), Some(Trigger::Manual));
        s.running = true;
        assert_eq!(s.due(now), None, "never twice at once");
    }

    #[test]
    fn an_approval_is_used_by_the_run_that_plans_and_kept_across_a_failure() {
        let mut state = State::default();
        state.syncs.insert("s".into(), sync(Schedule::Manual));
        assert_eq!(state.trigger("nope", Some(3)), Err(axum::http::StatusCode::NOT_FOUND));
        state.trigger("s", Some(30)).unwrap();
        let due = vec![("s".to_owned(), Trigger::Manual)];
        assert_eq!(state.approvals(&due), BTreeMap::from([("s".to_owned(), 30)]));
        // A trigger without an approval keeps the one given.
        state.trigger("s", None).unwrap();
        assert_eq!(state.syncs["s"].approved_deletes, Some(30));
        let end = Utc::now();
        let mut failed = RunRecord::new("s", Trigger::Manual, end, end);
        failed.result = RunResult::Failure;
        let s = state.syncs.get_mut("s").unwrap();
        let retry = Next::Retry { failures: 1, after: std::time::Duration::from_secs(30) };
        s.finish(failed, retry, None);
        assert_eq!(s.approved_deletes, Some(30), "the retry still has it");
        let mut held = RunRecord::new("s", Trigger::Retry, end, end);
        held.result = RunResult::HeldBack;
        s.finish(held, Next::AwaitChange, None);
        assert_eq!(s.approved_deletes, None, "a run that planned used it up");
        assert!(state.approvals(&due).is_empty());
    }

    #[test]
    fn a_finished_run_takes_the_policy_s_retry_and_the_next_scheduled_time() {
        let mut s = sync(Schedule::Nightly);
        s.running = true;
        let end = Utc::now();
        let record = RunRecord::new("s", Trigger::Schedule, end, end);
        let after = std::time::Duration::from_secs(30);
        let seen = BTreeMap::from([("s".to_owned(), "fp".to_owned())]);
        s.finish(record.clone(), Next::Retry { failures: 1, after }, Some(&seen));
        assert!(!s.running);
        assert_eq!((s.failures, s.retry_at), (1, Some(end + chrono::Duration::seconds(30))));
        assert!(s.next_run.is_some_and(|t| t > end), "a scheduled run sets the next");
        assert_eq!(s.fingerprint.as_deref(), Some("fp"));
        s.finish(record, Next::AwaitChange, None);
        assert_eq!((s.failures, s.retry_at), (0, None));
        assert_eq!(s.runs.len(), 2);
        assert_eq!(s.fingerprint.as_deref(), Some("fp"));
    }
}
