//! Per-user pacing of writes by Google's per-user quotas, so that a run spends a
//! user's quota without drawing a 429 for it: critical writes (a batch create or
//! update costs 6 of 30 a minute by default) and contact deletes and group writes
//! (a batch delete costs 10, a group write 1, of 30 a minute).
//!
//! A user's window opens with its first write of a bucket, as the server's does;
//! a write that would go over waits until that window has turned (with a margin
//! of a twentieth of the window, for the server's clock and the network). A 429
//! that comes anyway (another client writing as the same user, a project quota)
//! is still waited out by the retries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Quotas per user and window, as the Workspace sets them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// The window (a minute at Google).
    pub window: Duration,
    /// Critical write units per window.
    pub critical_writes: u32,
    /// Contact delete and group write units per window.
    pub deletes_and_group_writes: u32,
}

/// What a write request spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// Batch creates and updates of contacts.
    CriticalWrite,
    /// Batch deletes of contacts, contact group writes.
    DeleteAndGroupWrite,
}

/// The bucket and cost of a People API request, if it is a write that spends one.
pub fn cost(method: &reqwest::Method, path: &str) -> Option<(Bucket, u32)> {
    if method == reqwest::Method::GET {
        return None;
    }
    Some(match path {
        "people:batchCreateContacts" | "people:batchUpdateContacts" => (Bucket::CriticalWrite, 6),
        "people:batchDeleteContacts" => (Bucket::DeleteAndGroupWrite, 10),
        p if p.starts_with("contactGroups") => (Bucket::DeleteAndGroupWrite, 1),
        // A photo write is a single contact write.
        p if p.ends_with(":updateContactPhoto") || p.ends_with(":deleteContactPhoto") => {
            (Bucket::CriticalWrite, 1)
        }
        _ => return None,
    })
}

/// Units spent per (user, bucket) in the current window.
#[derive(Debug)]
pub struct Pacer {
    quotas: Quotas,
    spent: Mutex<HashMap<(String, Bucket), (Instant, u32)>>,
}

impl Pacer {
    /// A pacer for `quotas`.
    pub fn new(quotas: Quotas) -> Self {
        Self { quotas, spent: Mutex::default() }
    }

    /// Waits until `user` may spend `cost` of `bucket`, and spends it.
    pub async fn spend(&self, user: &str, bucket: Bucket, cost: u32) {
        let limit = match bucket {
            Bucket::CriticalWrite => self.quotas.critical_writes,
            Bucket::DeleteAndGroupWrite => self.quotas.deletes_and_group_writes,
        };
        let window = self.quotas.window;
        loop {
            let wait = {
                let mut spent = self.spent.lock().expect("pacer lock");
                let now = Instant::now();
                let entry = spent.entry((user.to_lowercase(), bucket)).or_insert((now, 0));
                if now.duration_since(entry.0) >= window {
                    *entry = (now, 0);
                }
                // A request dearer than the whole quota is sent alone.
                if entry.1 == 0 || entry.1 + cost <= limit {
                    entry.1 += cost;
                    return;
                }
                (entry.0 + window + window / 20).saturating_duration_since(now)
            };
            tokio::time::sleep(wait).await;
            let mut spent = self.spent.lock().expect("pacer lock");
            if let Some(entry) = spent.get_mut(&(user.to_lowercase(), bucket))
                && entry.0.elapsed() >= window
            {
                *entry = (Instant::now(), 0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_user_spends_its_window_then_waits_for_the_next_and_others_do_not() {
        let window = Duration::from_secs(60);
        let pacer =
            Pacer::new(Quotas { window, critical_writes: 30, deletes_and_group_writes: 30 });
        let start = tokio::time::Instant::now();
        for _ in 0..5 {
            pacer.spend("ann@example.com", Bucket::CriticalWrite, 6).await;
        }
        assert!(start.elapsed() < Duration::from_secs(1), "five batches fit a window");
        pacer.spend("bob@example.com", Bucket::CriticalWrite, 6).await;
        pacer.spend("ann@example.com", Bucket::DeleteAndGroupWrite, 10).await;
        assert!(start.elapsed() < Duration::from_secs(1), "another user, another bucket");
        pacer.spend("ann@example.com", Bucket::CriticalWrite, 6).await;
        assert!(start.elapsed() >= window, "the sixth waits for the window to turn");
    }
}
