//! Listings that trail writes (`emulator --list-lag SECS`): for that long after a
//! user's last write, `contactGroups.list` and `people.connections.list` answer
//! with the user's groups and contacts as they were before the first of those
//! writes. Google documents such a propagation delay for listings ("writes may
//! have a propagation delay of several minutes for sync requests"); reads by
//! resource name (`contactGroups.get`, `people.get`, `people:batchGet`) stay
//! current, as they are served from the record itself. A client that decides a
//! resend from a listing is caught by it; one that checks with a read by name is
//! not.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::backend::Result;
use crate::backend::store::Store;
use crate::model::{Contact, ContactGroup};

/// What the listings of one user show while they trail.
#[derive(Clone)]
pub struct Listing {
    /// The user's groups, each with its members' resource names.
    pub groups: Vec<(ContactGroup, Vec<String>)>,
    /// The user's contacts.
    pub contacts: Vec<Contact>,
    /// The sync journal's position of the state shown (the full listing's
    /// `nextSyncToken` stands there, before the writes it does not show yet).
    pub position: Option<u64>,
}

struct Trailing {
    /// Until when the listings show `listing` (in the past: not yet, or no more).
    until: Instant,
    listing: Listing,
}

/// The trailing listings of every user who wrote lately.
pub struct Lag {
    lag: Duration,
    users: Mutex<HashMap<String, Trailing>>,
}

impl Lag {
    /// Listings trail writes by `lag` (zero: they never do).
    pub fn new(lag: Duration) -> Self {
        Self { lag, users: Mutex::default() }
    }

    /// Before one of `user`'s writes: keeps what the listings show now, unless they
    /// already trail an earlier write. `position` gives the sync journal's
    /// position of what they show, when they start trailing.
    pub fn before_write(
        &self,
        user: &str,
        store: &Store,
        position: impl FnOnce() -> Result<u64>,
    ) -> Result<()> {
        if self.lag.is_zero() {
            return Ok(());
        }
        let mut users = self.users.lock().expect("lag lock");
        let now = Instant::now();
        if users.get(&key(user)).is_some_and(|t| t.until > now) {
            return Ok(());
        }
        let mut listing = snapshot(user, store)?;
        listing.position = Some(position()?);
        users.insert(key(user), Trailing { until: now, listing });
        Ok(())
    }

    /// After one of `user`'s writes succeeded: the listings trail it for the lag.
    pub fn after_write(&self, user: &str) {
        if self.lag.is_zero() {
            return;
        }
        if let Some(t) = self.users.lock().expect("lag lock").get_mut(&key(user)) {
            t.until = Instant::now() + self.lag;
        }
    }

    /// What `user`'s listings show while they trail; `None`: the current state.
    pub fn listing(&self, user: &str) -> Option<Listing> {
        let mut users = self.users.lock().expect("lag lock");
        match users.get(&key(user)) {
            Some(t) if t.until > Instant::now() => Some(t.listing.clone()),
            Some(_) => {
                users.remove(&key(user));
                None
            }
            None => None,
        }
    }
}

fn key(user: &str) -> String {
    user.to_lowercase()
}

/// A user's groups, each with its members' resource names.
pub fn groups_with_members(user: &str, store: &Store) -> Result<Vec<(ContactGroup, Vec<String>)>> {
    store
        .contact_groups(user)?
        .into_iter()
        .map(|g| {
            let members = store.group_contacts(user, &g.resource_name)?;
            Ok((g, members))
        })
        .collect()
}

fn snapshot(user: &str, store: &Store) -> Result<Listing> {
    Ok(Listing {
        groups: groups_with_members(user, store)?,
        contacts: store.contacts(user)?,
        position: None,
    })
}
