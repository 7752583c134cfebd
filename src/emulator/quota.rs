//! Per-user, per-window quotas at Google's default figures (People API quotas): a
//! request spends its bucket's cost, and a bucket that would go over answers 429
//! `RESOURCE_EXHAUSTED` until the window turns. The window is a minute at Google;
//! tests shorten it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::error::ApiError;

/// What a request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// connections.list, people.batchGet.
    CriticalRead,
    /// batchCreate/batchUpdate (a batch costs 6).
    CriticalWrite,
    /// Contact deletes (a batch costs 10) and contact group writes.
    DeleteAndGroupWrite,
    /// contactGroups list/get.
    GroupRead,
    /// Directory API queries.
    Directory,
}

/// Limits per window.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Window length.
    pub window: Duration,
    /// Critical reads per window.
    pub critical_read: u32,
    /// Critical write units per window.
    pub critical_write: u32,
    /// Delete and group write units per window.
    pub delete_and_group_write: u32,
    /// Group reads per window.
    pub group_read: u32,
    /// Directory queries per window.
    pub directory: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(60),
            critical_read: 90,
            critical_write: 30,
            delete_and_group_write: 30,
            group_read: 90,
            directory: 2400,
        }
    }
}

impl Limits {
    fn limit(&self, bucket: Bucket) -> u32 {
        match bucket {
            Bucket::CriticalRead => self.critical_read,
            Bucket::CriticalWrite => self.critical_write,
            Bucket::DeleteAndGroupWrite => self.delete_and_group_write,
            Bucket::GroupRead => self.group_read,
            Bucket::Directory => self.directory,
        }
    }
}

/// Spent units per user and bucket in the current window.
#[derive(Debug)]
pub struct Quotas {
    limits: Limits,
    spent: HashMap<(String, Bucket), (Instant, u32)>,
}

impl Quotas {
    /// Quotas with the given limits.
    pub fn new(limits: Limits) -> Self {
        Self { limits, spent: HashMap::new() }
    }

    /// Spends `cost` units of `bucket` for `user`, or refuses with 429.
    pub fn charge(&mut self, user: &str, bucket: Bucket, cost: u32) -> Result<(), ApiError> {
        self.charge_at(Instant::now(), user, bucket, cost)
    }

    /// [`Quotas::charge`] at `now`.
    fn charge_at(
        &mut self,
        now: Instant,
        user: &str,
        bucket: Bucket,
        cost: u32,
    ) -> Result<(), ApiError> {
        let window = self.limits.window;
        let limit = self.limits.limit(bucket);
        let entry = self.spent.entry((user.to_owned(), bucket)).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 + cost > limit {
            let left = window.saturating_sub(now.duration_since(entry.0));
            return Err(ApiError::quota(
                format!(
                    "Quota exceeded for quota metric '{bucket:?}' and limit 'per minute per user' of service 'people.googleapis.com' for user {user}."
                ),
                // Whole seconds, rounded up: a client that waits as told finds
                // the window turned, not a few hundred milliseconds short of it.
                left.as_secs_f64().ceil().max(1.0) as u64,
            ));
        }
        entry.1 += cost;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_costs_more_and_the_window_refills() {
        // The clock is the test's: the window turns when the test says, however
        // slowly the machine runs it.
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut q = Quotas::new(Limits { window: Duration::from_millis(50), ..Limits::default() });
        for ms in 0..5 {
            q.charge_at(at(ms), "ann@example.com", Bucket::CriticalWrite, 6).unwrap();
        }
        let err = q.charge_at(at(49), "ann@example.com", Bucket::CriticalWrite, 6).unwrap_err();
        assert_eq!(err.code.as_u16(), 429);
        assert!(err.retry_after.is_some());
        // Another user has a bucket of their own.
        q.charge_at(at(49), "bob@example.com", Bucket::CriticalWrite, 6).unwrap();
        q.charge_at(at(60), "ann@example.com", Bucket::CriticalWrite, 6).unwrap();
    }
}
