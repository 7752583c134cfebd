//! The writer lease of a Google tenant: a contact group of the state user
//! (`spec.google.stateUser`, default `adminUser`) named "contact-sync lease", whose
//! `clientData` says who holds the lease, since when and until when.
//!
//! It is taken and renewed by compare-and-swap: every update carries the etag the
//! group was read with, so of two writers racing for it one wins and the other is
//! refused as stale, reads again and sees the winner. A lease that is not renewed
//! lapses at its expiry and may then be taken over, so a writer that died (or was
//! stopped) holds the tenant for at most one lease period. The group carries no
//! `contact-sync/sync` marker: no plan ever changes or deletes it.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::GoogleBackend;
use crate::backend::{Backend, Error, LeaseAttempt, LeaseHolder, Result};
use crate::model::{
    ClientData, ContactGroup, MARKER_LEASE, MARKER_LEASE_EXPIRES, MARKER_LEASE_HOLDER,
    MARKER_LEASE_SINCE, client_data,
};

/// The lease group's name, as the state user sees it in Google Contacts.
pub const LEASE_GROUP: &str = "contact-sync lease";

/// Races lost in a row before giving up (each loss means another writer won).
const MAX_RACES: u32 = 5;

/// The lease as the group records it.
fn recorded(group: &ContactGroup) -> LeaseHolder {
    let time = |key| {
        client_data(&group.client_data, key)
            .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
            .map(|t| t.with_timezone(&Utc))
    };
    LeaseHolder {
        holder: client_data(&group.client_data, MARKER_LEASE_HOLDER).unwrap_or_default().to_owned(),
        since: time(MARKER_LEASE_SINCE),
        expires: time(MARKER_LEASE_EXPIRES),
    }
}

/// Whether a recorded lease still binds others at `now`.
fn live(lease: &LeaseHolder, now: DateTime<Utc>) -> bool {
    !lease.holder.is_empty() && lease.expires.is_some_and(|e| e > now)
}

fn markers(holder: &str, since: Option<DateTime<Utc>>, expires: DateTime<Utc>) -> Vec<ClientData> {
    let entry = |key: &str, value: String| ClientData { key: key.into(), value };
    vec![
        entry(MARKER_LEASE, "writer".into()),
        entry(MARKER_LEASE_HOLDER, holder.into()),
        entry(MARKER_LEASE_SINCE, since.map(|t| t.to_rfc3339()).unwrap_or_default()),
        entry(MARKER_LEASE_EXPIRES, expires.to_rfc3339()),
    ]
}

/// The lease group as it is now. The listing finds it; a read by name then gives
/// its current holder and etag, since a listing may trail the last writes (a
/// release moments ago, our own take whose answer was lost).
async fn lease_group(backend: &GoogleBackend) -> Result<Option<ContactGroup>> {
    let user = &backend.config.state_user;
    let groups = backend.contact_groups(user).await?;
    let Some(listed) =
        groups.into_iter().find(|g| client_data(&g.client_data, MARKER_LEASE).is_some())
    else {
        return Ok(None);
    };
    Ok(backend.group_now(user, &listed.resource_name).await?.map(|(g, _)| g))
}

/// Takes or renews the lease for `holder`, unless another holder's is live.
pub async fn try_lease(
    backend: &GoogleBackend,
    holder: &str,
    ttl: Duration,
) -> Result<LeaseAttempt> {
    change(backend, holder, ttl, Mode::Take).await
}

/// Renews `holder`'s lease if the group still names `holder`.
pub async fn renew(backend: &GoogleBackend, holder: &str, ttl: Duration) -> Result<LeaseAttempt> {
    change(backend, holder, ttl, Mode::Renew).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Take a free or lapsed lease, or renew ours.
    Take,
    /// Renew ours only: once another name was recorded, it is not ours to take back.
    Renew,
}

async fn change(
    backend: &GoogleBackend,
    holder: &str,
    ttl: Duration,
    mode: Mode,
) -> Result<LeaseAttempt> {
    let user = backend.config.state_user.clone();
    let ttl = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    for _ in 0..MAX_RACES {
        let now = Utc::now();
        let expires = now + ttl;
        let Some(group) = lease_group(backend).await? else {
            if mode == Mode::Renew {
                let nobody = LeaseHolder { holder: String::new(), since: None, expires: None };
                return Ok(LeaseAttempt::Held(nobody));
            }
            let data = markers(holder, Some(now), expires);
            match backend.create_group_checked(&user, LEASE_GROUP, data, false).await {
                Ok(_) => {
                    return Ok(LeaseAttempt::Taken { expires: Some(expires), took_over: None });
                }
                // Another writer made it first, or a group of that name is in the way.
                Err(Error::GroupExists { .. }) => {
                    let groups = backend.contact_groups(&user).await?;
                    let squatter = groups.iter().any(|g| {
                        g.name == LEASE_GROUP && client_data(&g.client_data, MARKER_LEASE).is_none()
                    });
                    if squatter {
                        return Err(Error::Invalid(crate::backend::Refusal::GroupTaken {
                            user: user.clone(),
                            name: LEASE_GROUP.to_owned(),
                            record: "writer lease",
                        }));
                    }
                    // Another writer's lease group: read it again.
                    continue;
                }
                Err(e) => return Err(e),
            }
        };
        let current = recorded(&group);
        let ours = current.holder == holder;
        if !ours && (mode == Mode::Renew || live(&current, now)) {
            return Ok(LeaseAttempt::Held(current));
        }
        let since = if ours { current.since } else { Some(now) };
        let took_over = (!ours && !current.holder.is_empty()).then(|| current.clone());
        let data = markers(holder, since, expires);
        match backend.update_group_checked(&user, &group, LEASE_GROUP, data, false).await {
            Ok(_) => return Ok(LeaseAttempt::Taken { expires: Some(expires), took_over }),
            // Someone else wrote the group since it was read: read it again.
            Err(Error::Stale { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Api {
        status: 409,
        message: format!(
            "the writer lease in {user}'s contact group \"{LEASE_GROUP}\" changed under every \
             attempt to take it; another writer is racing for it"
        ),
    })
}

/// Gives the lease up if `holder` has it: the group stays, naming nobody.
pub async fn release(backend: &GoogleBackend, holder: &str) -> Result<()> {
    let user = backend.config.state_user.clone();
    for _ in 0..MAX_RACES {
        let Some(group) = lease_group(backend).await? else { return Ok(()) };
        if recorded(&group).holder != holder {
            return Ok(());
        }
        let data = markers("", None, Utc::now());
        match backend.update_group_checked(&user, &group, LEASE_GROUP, data, false).await {
            Ok(_) => return Ok(()),
            Err(Error::Stale { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_binds_until_it_expires_and_a_released_one_binds_nobody() {
        let now = Utc::now();
        let group = |holder: &str, expires: DateTime<Utc>| ContactGroup {
            client_data: markers(holder, Some(now), expires),
            ..ContactGroup::default()
        };
        let held = recorded(&group("ci #1", now + chrono::Duration::seconds(60)));
        assert_eq!(held.holder, "ci #1");
        assert!(live(&held, now));
        assert!(!live(&held, now + chrono::Duration::seconds(61)), "expired");
        assert!(!live(&recorded(&group("", now + chrono::Duration::seconds(60))), now), "released");
    }
}
