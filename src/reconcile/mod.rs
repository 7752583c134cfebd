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

mod driver;
mod error;
mod http;
pub mod metrics;
pub mod policy;
pub mod run;
pub mod schedule;
mod state;
mod watch;
pub mod webhooks;

use std::time::Duration;

use crate::input::LoadOptions;

pub use self::driver::run;
pub use self::error::Error;
pub use self::run::{RunError, RunRecord, RunResult, Trigger};

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
