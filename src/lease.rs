//! The writer lease, driven: one apply writes to a tenant at a time.
//!
//! An apply takes the tenant's lease before it reads the tenant (so that what it
//! plans is what it writes), waits a bounded time for another holder — saying whom
//! it waits for — and fails naming the holder when the wait is over. While the
//! apply runs, the lease is renewed in the background, and the backend asks it
//! before every write request (retries and resends included): a writer that was
//! stopped or cut off, whose lease lapsed, writes nothing more when it wakes, and
//! never takes the lease back, since another writer may have written meanwhile. At
//! the end the lease is given up, also after a failure or an interruption. `plan`
//! takes none.
//!
//! Where the lease lives is the backend's business ([`Backend::try_lease`]): a
//! marked contact group of a designated user on Google, the file lock locally.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::backend::{self, Backend, LeaseAttempt, LeaseHolder};

/// How long a lease lasts unless renewed, at least: a writer that dies holds the
/// tenant this long at most. It is longer when requests may take longer (see
/// [`Lease`]).
pub const MIN_TTL: Duration = Duration::from_secs(120);

/// Default of `--lock-timeout`: how long an apply waits for another writer.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(300);

/// Writes stop this long (plus the longest a request may take) before the lease
/// would lapse, in case clocks disagree.
const SLACK: Duration = Duration::from_secs(15);

/// How often a waiting writer asks again.
const POLL: Duration = Duration::from_secs(2);

/// Why the lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Someone else held it for the whole wait.
    #[error(
        "another writer holds this tenant: the writer lease is held by {holder}. Waited {}s \
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

/// Why the lease is no longer ours: for good, since another writer may have
/// written meanwhile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Lost {
    /// It could not be renewed before it would lapse.
    #[error(
        "the writer lease ran out: it could not be renewed in time, and another writer may have \
         taken it since"
    )]
    RanOut,
    /// Someone else has it now, or gave it up.
    #[error("the writer lease is no longer ours: {who}")]
    Taken {
        /// Who holds it now, or that it was given up.
        who: String,
    },
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

/// What the renewal task and the write checks share.
#[derive(Debug)]
struct Shared {
    /// Writes stop this long before the lease would lapse: a request sent just
    /// before that must be answered before the lease is anyone else's.
    margin: Duration,
    /// Until when the lease is ours, by this process's monotonic clock and by the
    /// wall clock the other writers judge it by (a suspended machine's monotonic
    /// clock stands still while the wall clock goes on); `None`: as long as this
    /// process lives.
    valid_until: Mutex<Option<(Instant, DateTime<Utc>)>>,
    /// Why it is no longer ours, once it is not: for good, since another writer may
    /// have written meanwhile.
    lost: Mutex<Option<Lost>>,
}

impl Shared {
    fn check(&self) -> Result<(), Lost> {
        let mut lost = self.lost.lock().expect("lease state");
        if let Some(why) = lost.clone() {
            return Err(why);
        }
        let margin = chrono::Duration::from_std(self.margin).unwrap_or(chrono::Duration::MAX);
        if let Some((until, wall)) = *self.valid_until.lock().expect("lease state")
            && (Instant::now() + self.margin >= until || Utc::now() + margin >= wall)
        {
            *lost = Some(Lost::RanOut);
            return Err(Lost::RanOut);
        }
        Ok(())
    }

    fn renewed(
        &self,
        asked: (Instant, DateTime<Utc>),
        ttl: Duration,
        expires: Option<DateTime<Utc>>,
    ) {
        let wall_ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        *self.valid_until.lock().expect("lease state") =
            expires.map(|e| (asked.0 + ttl, e.min(asked.1 + wall_ttl)));
    }
}

/// A held writer lease. Give it up with [`Lease::release`]; dropped, it stops
/// being renewed and lapses by itself.
///
/// Its length is at least [`MIN_TTL`] and four times the margin — the longest a
/// request may take plus some slack — so that it is renewed (every quarter of it)
/// well before writes would have to stop.
pub struct Lease {
    backend: Arc<dyn Backend>,
    holder: String,
    renewal: JoinHandle<()>,
    ttl: Duration,
    /// The expired lease this one took over, if any.
    pub took_over: Option<LeaseHolder>,
}

impl std::fmt::Debug for Lease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lease").field("holder", &self.holder).finish_non_exhaustive()
    }
}

/// Takes the writer lease as `holder`, waiting up to `wait` for another holder;
/// `waiting` is told whom we wait for, each time we ask. Once taken, the backend
/// asks the lease before every write request.
pub async fn acquire(
    backend: Arc<dyn Backend>,
    holder: String,
    wait: Duration,
    cancel: &CancellationToken,
    mut waiting: impl FnMut(&LeaseHolder, Duration),
) -> Result<Lease, Error> {
    let margin = backend.request_timeout() + SLACK;
    let ttl = MIN_TTL.max(margin * 4);
    let start = Instant::now();
    loop {
        let asked = (Instant::now(), Utc::now());
        let attempt = match backend.try_lease(&holder, ttl).await {
            Ok(attempt) => attempt,
            Err(e) => {
                // Whether the lease was taken is unknown (a lost answer, say): give it
                // up if the tenant names us, so that nobody waits for a writer that
                // is not there.
                if let Err(release) = backend.release_lease(&holder).await {
                    tracing::warn!(
                        "cannot give up the writer lease after a failed take: {release}"
                    );
                }
                return Err(Error::Backend(e));
            }
        };
        match attempt {
            LeaseAttempt::Taken { expires, took_over } => {
                let shared = Arc::new(Shared {
                    margin,
                    valid_until: Mutex::new(None),
                    lost: Mutex::new(None),
                });
                shared.renewed(asked, ttl, expires);
                let check = shared.clone();
                backend
                    .guard_writes(Some(Arc::new(move || check.check().map_err(|e| e.to_string()))));
                let renewal = tokio::spawn(renew(backend.clone(), holder.clone(), shared, ttl));
                return Ok(Lease { backend, holder, renewal, ttl, took_over });
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

async fn renew(backend: Arc<dyn Backend>, holder: String, shared: Arc<Shared>, ttl: Duration) {
    loop {
        tokio::time::sleep(ttl / 4).await;
        // A lease that ran out is not taken back, even if nobody took it.
        if shared.check().is_err() {
            return;
        }
        let asked = (Instant::now(), Utc::now());
        match backend.renew_lease(&holder, ttl).await {
            Ok(LeaseAttempt::Taken { expires, .. }) => shared.renewed(asked, ttl, expires),
            Ok(LeaseAttempt::Held(other)) => {
                let who = if other.holder.is_empty() {
                    "it was given up by someone else".to_owned()
                } else {
                    format!("{other} holds it now")
                };
                *shared.lost.lock().expect("lease state") = Some(Lost::Taken { who });
                return;
            }
            Err(e) => tracing::warn!("cannot renew the writer lease (will try again): {e}"),
        }
    }
}

impl Lease {
    /// How long it lasts unless renewed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Gives the lease up.
    pub async fn release(self) -> Result<(), backend::Error> {
        self.renewal.abort();
        self.backend.guard_writes(None);
        self.backend.release_lease(&self.holder).await
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(monotonic: Duration, wall: chrono::Duration) -> Shared {
        let shared = Shared {
            margin: Duration::from_secs(45),
            valid_until: Mutex::new(None),
            lost: Mutex::new(None),
        };
        *shared.valid_until.lock().unwrap() = Some((Instant::now() + monotonic, Utc::now() + wall));
        shared
    }

    #[test]
    fn writes_stop_a_margin_before_the_lease_lapses_and_never_resume() {
        let fresh = shared(Duration::from_secs(120), chrono::Duration::seconds(120));
        assert!(fresh.check().is_ok());
        let late = shared(Duration::from_secs(40), chrono::Duration::seconds(120));
        assert!(late.check().is_err(), "within the margin of the end");
        // A suspended machine: its monotonic clock stood still, the wall clock did
        // not, and the other writers go by the wall clock.
        let woke = shared(Duration::from_secs(120), chrono::Duration::seconds(-300));
        let why = woke.check().unwrap_err();
        assert!(why.to_string().contains("ran out"), "{why}");
        // Renewing afterwards does not make it ours again.
        woke.renewed(
            (Instant::now(), Utc::now()),
            Duration::from_secs(120),
            Some(Utc::now() + chrono::Duration::seconds(120)),
        );
        assert!(woke.check().is_err(), "a lapsed lease is lost for good");
    }
}
