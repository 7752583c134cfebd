//! Every backoff of contact-sync, configured here once on `backon`'s exponential
//! backoff: the retries of one Google API request (and of a photo download), the
//! looks for a group that Google says exists but does not list yet, the runs of a
//! sync that keeps failing, and the attempts of one webhook message. Whoever
//! retries builds its waits here and lets `backon` run the attempts; what is worth
//! retrying stays with the caller.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use rand::RngExt;

/// First wait after a failed run; it doubles per failure in a row.
pub const RUN_FIRST: Duration = Duration::from_secs(30);
/// Longest wait after failed runs.
pub const RUN_CAP: Duration = Duration::from_secs(3600);

/// Attempts per webhook message.
pub const WEBHOOK_ATTEMPTS: usize = 3;
/// Time allowed for one webhook attempt.
pub const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
/// First wait between webhook attempts; it doubles (1 s, 2 s).
const WEBHOOK_FIRST: Duration = Duration::from_secs(1);

/// The waits between the runs of a sync that keeps failing.
pub fn runs() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(RUN_FIRST)
        .with_factor(2.0)
        .with_max_delay(RUN_CAP)
        .without_max_times()
}

/// The waits between the attempts of one webhook message (the retries, so one
/// fewer than the attempts).
pub fn webhooks() -> ExponentialBuilder {
    ExponentialBuilder::new()
        .with_min_delay(WEBHOOK_FIRST)
        .with_factor(2.0)
        .with_max_times(WEBHOOK_ATTEMPTS - 1)
}

/// The waits between the attempts of one API request: `first`, doubling per
/// attempt, each plus a jitter of up to `first`, none longer than `cap` (a quota
/// window is a minute); `attempts` in all, the first included, so one fewer waits.
/// With `attempts` at 0 there is no end (the caller says when to stop).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requests {
    /// Attempts in all, the first included; 0 for no limit.
    pub attempts: u32,
    /// First wait.
    pub first: Duration,
    /// Longest single wait.
    pub cap: Duration,
}

impl Requests {
    /// The same waits, none longer than `cap`, as many as the caller asks for.
    pub fn capped_unbounded(self, cap: Duration) -> Self {
        Self { attempts: 0, cap: self.cap.min(cap), ..self }
    }

    /// Whether `wait` (the server's `Retry-After`, say) replaces the next wait:
    /// the server's word, up to the cap, as long as attempts are left (`next`).
    pub fn server_wait(&self, next: Option<Duration>, wait: Option<Duration>) -> Option<Duration> {
        next.map(|ours| wait.map_or(ours, |theirs| theirs.min(self.cap)))
    }
}

impl BackoffBuilder for Requests {
    type Backoff = Jittered;

    fn build(self) -> Jittered {
        let exponential = ExponentialBuilder::new()
            .with_min_delay(self.first)
            .with_factor(2.0)
            .with_max_delay(self.cap);
        let exponential = match self.attempts {
            0 => exponential.without_max_times(),
            n => exponential.with_max_times(n.saturating_sub(1) as usize),
        };
        Jittered { waits: exponential.build(), first: self.first, cap: self.cap }
    }
}

/// [`Requests`]' waits: exponential, each plus up to `first` of jitter, capped.
#[derive(Debug)]
pub struct Jittered {
    waits: ExponentialBackoff,
    first: Duration,
    cap: Duration,
}

impl Iterator for Jittered {
    type Item = Duration;

    fn next(&mut self) -> Option<Duration> {
        let wait = self.waits.next()?;
        let jitter = rand::rng().random_range(0..=self.first.as_millis().max(1) as u64);
        Some((wait + Duration::from_millis(jitter)).min(self.cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_waits_double_from_the_first_with_jitter_up_to_the_cap() {
        let policy =
            Requests { attempts: 8, first: Duration::from_secs(1), cap: Duration::from_secs(65) };
        let waits: Vec<Duration> = policy.build().collect();
        assert_eq!(waits.len(), 7, "8 attempts, 7 waits between them: {waits:?}");
        for (n, wait) in waits.iter().enumerate() {
            let exp = Duration::from_secs(1 << n);
            assert!(*wait >= exp && *wait <= exp + Duration::from_secs(1), "{n}: {wait:?}");
        }
        let long = Requests { attempts: 12, ..policy }.build().last().unwrap();
        assert_eq!(long, Duration::from_secs(65), "capped");
    }

    #[test]
    fn an_unbounded_policy_keeps_going_under_its_new_cap() {
        let policy = Requests {
            attempts: 3,
            first: Duration::from_millis(10),
            cap: Duration::from_secs(65),
        };
        let capped = policy.capped_unbounded(Duration::from_millis(50));
        let waits: Vec<Duration> = capped.build().take(20).collect();
        assert_eq!(waits.len(), 20);
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(50)), "{waits:?}");
        assert_eq!(waits[19], Duration::from_millis(50));
    }

    #[test]
    fn the_server_wait_replaces_ours_while_attempts_are_left() {
        let policy =
            Requests { attempts: 3, first: Duration::from_secs(1), cap: Duration::from_secs(65) };
        let ours = Some(Duration::from_secs(2));
        assert_eq!(policy.server_wait(ours, None), ours);
        assert_eq!(
            policy.server_wait(ours, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            policy.server_wait(ours, Some(Duration::from_secs(600))),
            Some(Duration::from_secs(65)),
            "capped"
        );
        assert_eq!(
            policy.server_wait(None, Some(Duration::from_secs(30))),
            None,
            "no attempts left"
        );
    }
}
