//! The writer lease, driven: one apply writes to a tenant at a time.
//!
//! An apply takes the tenant's lease before it reads the tenant (so that what it
//! plans is what it writes), waits a bounded time for another holder — saying whom
//! it waits for — and fails naming the holder when the wait is over. While the
//! apply runs, the lease is renewed in the background; before each write the apply
//! checks that it still holds it, so a writer that was stopped (and whose lease
//! lapsed and was taken over) writes nothing more when it wakes. At the end the
//! lease is given up, also after a failure or an interruption. `plan` takes none.
//!
//! Where the lease lives is the backend's business ([`Backend::try_lease`]): a
//! marked contact group of a designated user on Google, the file lock locally.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::{self, Backend, LeaseAttempt, LeaseHolder};

/// How long a lease lasts unless renewed: a writer that dies holds the tenant at
/// most this long.
pub const TTL: Duration = Duration::from_secs(120);

/// Default of `--lock-timeout`: how long an apply waits for another writer.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// How often a held lease is renewed.
const RENEW_EVERY: Duration = Duration::from_secs(30);

/// Writes stop this long before the lease would lapse, in case clocks disagree.
const MARGIN: Duration = Duration::from_secs(20);

/// How often a waiting writer asks again.
const POLL: Duration = Duration::from_secs(2);

/// Why the lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Someone else held it for the whole wait.
    #[error(
        "another apply is writing to this tenant: the writer lease is held by {holder}. Waited {}s \
         (--lock-timeout); nothing was applied. Let it finish and run again, or wait longer with \
         --lock-timeout SECONDS",
        waited.as_secs()
    )]
    Held {
        /// Who holds it.
        holder: LeaseHolder,
        /// How long we waited.
        waited: Duration,
    },
    /// The backend failed.
    #[error("cannot take the writer lease")]
    Backend(#[source] backend::Error),
    /// Interrupted (SIGTERM, Ctrl-C) while waiting.
    #[error("interrupted while waiting for the writer lease; nothing was applied")]
    Cancelled,
}

/// A name for this process as a lease holder: who, where, what, and a random tag
/// that tells two runs of the same command apart.
pub fn holder_name(command: &str) -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into());
    let tag: u32 = rand::random();
    format!("{user}@{host} pid {} ({command}) #{tag:08x}", std::process::id())
}

#[derive(Debug, Default)]
struct Shared {
    /// Until when the lease is ours; `None`: as long as this process lives.
    valid_until: Mutex<Option<Instant>>,
    /// Why it is no longer ours, once it is not.
    lost: Mutex<Option<String>>,
}

/// A held writer lease. Give it up with [`Lease::release`]; dropped, it stops
/// being renewed and lapses by itself.
pub struct Lease {
    backend: Arc<dyn Backend>,
    holder: String,
    shared: Arc<Shared>,
    renewal: JoinHandle<()>,
    /// The expired lease this one took over, if any.
    pub took_over: Option<LeaseHolder>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("holder", &self.holder).finish_non_exhaustive()
    }
}

/// Takes the writer lease as `holder`, waiting up to `wait` for another holder;
/// `waiting` is told whom we wait for, each time we ask.
pub async fn acquire(
    backend: Arc<dyn Backend>,
    holder: String,
    wait: Duration,
    cancel: &CancellationToken,
    mut waiting: impl FnMut(&LeaseHolder, Duration),
) -> Result<Lease, Error> {
    let start = Instant::now();
    loop {
        let asked = Instant::now();
        match backend.try_lease(&holder, TTL).await.map_err(Error::Backend)? {
            LeaseAttempt::Taken { expires, took_over } => {
                let shared = Arc::new(Shared::default());
                *shared.valid_until.lock().expect("lease state") = expires.map(|_| asked + TTL);
                let renewal = tokio::spawn(renew(backend.clone(), holder.clone(), shared.clone()));
                return Ok(Lease { backend, holder, shared, renewal, took_over });
            }
            LeaseAttempt::Held(other) => {
                let waited = start.elapsed();
                if waited >= wait {
                    return Err(Error::Held { holder: other, waited });
                }
                waiting(&other, waited);
                tokio::select! {
                    () = tokio::time::sleep(POLL.min(wait - waited)) => {}
                    () = cancel.cancelled() => return Err(Error::Cancelled),
                }
            }
        }
    }
}

async fn renew(backend: Arc<dyn Backend>, holder: String, shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(RENEW_EVERY).await;
        let asked = Instant::now();
        match backend.try_lease(&holder, TTL).await {
            Ok(LeaseAttempt::Taken { expires, .. }) => {
                *shared.valid_until.lock().expect("lease state") = expires.map(|_| asked + TTL);
            }
            Ok(LeaseAttempt::Held(other)) => {
                *shared.lost.lock().expect("lease state") =
                    Some(format!("the writer lease lapsed and was taken over by {other}"));
                return;
            }
            Err(e) => tracing::warn!("cannot renew the writer lease (will try again): {e}"),
        }
    }
}

impl Lease {
    /// Whether this process may still write: the lease is neither lost nor about
    /// to lapse.
    pub fn check(&self) -> Result<(), String> {
        if let Some(why) = self.shared.lost.lock().expect("lease state").clone() {
            return Err(why);
        }
        match *self.shared.valid_until.lock().expect("lease state") {
            Some(until) if Instant::now() + MARGIN >= until => {
                Err("the writer lease is about to lapse: it could not be renewed in time, so \
                 nothing more is written"
                    .to_owned())
            }
            _ => Ok(()),
        }
    }

    /// Who holds it: this process.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Gives the lease up.
    pub async fn release(self) -> Result<(), backend::Error> {
        self.renewal.abort();
        self.backend.release_lease(&self.holder).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}
