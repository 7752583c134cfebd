//! What the loop does after a run, and how it retries: the reconciler / error
//! policy split of Kubernetes controllers. A run only says what it came to
//! ([`super::run::RunRecord`]); [`error_policy`] decides, from that alone, when the
//! sync runs again. The backoffs of the loop — failed runs, webhook sends — are
//! configured in [`crate::retry`] with every other one.

use std::time::Duration;

use backon::BackoffBuilder;

use super::run::{RunRecord, RunResult};
use crate::retry::{RUN_CAP, WEBHOOK_ATTEMPTS, runs};
pub use crate::retry::{WEBHOOK_TIMEOUT, webhooks};

/// The longest one webhook message can take, every attempt timing out: how long
/// a stopping loop waits for the messages still being sent.
pub fn webhook_worst_case() -> Duration {
    let waits: Duration = webhooks().build().sum();
    WEBHOOK_TIMEOUT * WEBHOOK_ATTEMPTS as u32 + waits
}

/// The wait before the next attempt after `failures` failed runs in a row.
pub fn backoff(failures: u32) -> Duration {
    // The cap is reached long before 64 doublings.
    let nth = failures.saturating_sub(1).min(64) as usize;
    runs().build().nth(nth).unwrap_or(RUN_CAP)
}

/// When a sync runs again, besides its schedule, a change or a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// The run failed: try again after `after`, the `failures`-th failure in a row.
    Retry { failures: u32, after: Duration },
    /// Nothing to retry: wait for the schedule, a change or a trigger (a run held
    /// back waits for a change too). The failures in a row start over.
    AwaitChange,
}

/// What follows `record`, a run of a sync that had failed `failures` times in a
/// row before it.
pub fn error_policy(record: &RunRecord, failures: u32) -> Next {
    match record.result {
        RunResult::Failure => {
            let failures = failures.saturating_add(1);
            Next::Retry { failures, after: backoff(failures) }
        }
        RunResult::Success | RunResult::HeldBack => Next::AwaitChange,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reconcile::run::Trigger;

    fn ran(result: RunResult) -> RunRecord {
        let now = chrono::Utc::now();
        RunRecord { result, ..RunRecord::new("s", Trigger::Schedule, now, now) }
    }

    #[test]
    fn failed_runs_back_off_exponentially_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::from_secs(30));
        assert_eq!(backoff(2), Duration::from_secs(60));
        assert_eq!(backoff(5), Duration::from_secs(480));
        assert_eq!(backoff(8), Duration::from_secs(3600));
        assert_eq!(backoff(40), Duration::from_secs(3600));
        assert_eq!(backoff(u32::MAX), Duration::from_secs(3600));
    }

    #[test]
    fn a_failure_is_retried_later_each_time_and_anything_else_waits() {
        let failed = ran(RunResult::Failure);
        assert_eq!(
            error_policy(&failed, 0),
            Next::Retry { failures: 1, after: Duration::from_secs(30) }
        );
        assert_eq!(
            error_policy(&failed, 3),
            Next::Retry { failures: 4, after: Duration::from_secs(240) }
        );
        assert_eq!(error_policy(&ran(RunResult::Success), 5), Next::AwaitChange);
        assert_eq!(
            error_policy(&ran(RunResult::HeldBack), 2),
            Next::AwaitChange,
            "a held-back run waits for a change, not a retry"
        );
    }

    #[test]
    fn a_webhook_message_is_tried_three_times_a_second_then_two_apart() {
        let waits: Vec<Duration> = webhooks().build().collect();
        assert_eq!(waits, [Duration::from_secs(1), Duration::from_secs(2)]);
        assert_eq!(webhook_worst_case(), Duration::from_secs(33));
    }
}
