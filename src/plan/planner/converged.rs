//! Planning a user from what an earlier full read of it concluded, when neither
//! the user nor what is desired of it changed since: the read cache's side of the
//! planner. The planner stays pure: the driver asks [`Planner::desired_digest`]
//! before it reads, tells whether the incremental listings came back empty, and
//! hands either the full read ([`Planner::user`], which says whether the user was
//! [`Converged`]) or the earlier conclusion ([`Planner::cached`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Planner, Run, SourceState, feed};
use crate::model::{Contact, ContactGroup, DirectoryUser};
use crate::plan::{DestinationPlan, Status};

/// What a full read of one user concluded when nothing was to change there:
/// enough to plan it again without reading it. No contact data: digests and
/// counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Converged {
    /// [`Planner::desired_digest`] of the user when it was read.
    pub desired: String,
    /// The digest of its groups' and contacts' etags, which the plan's
    /// fingerprint takes.
    pub state: String,
    /// Marked groups and contacts, by the sync that marked them.
    pub owners: BTreeMap<String, usize>,
    /// Marked contacts, by sync (what the deletion guard counts as managed).
    pub managed: BTreeMap<String, usize>,
    /// Contacts with any marker.
    pub owned: usize,
}

/// The digest of `user`'s groups' and contacts' etags.
pub(super) fn state_digest(groups: &[ContactGroup], contacts: &[Contact]) -> String {
    let mut fp = Sha256::new();
    for g in groups {
        feed(&mut fp, &[&g.resource_name, &g.etag]);
    }
    for c in contacts {
        feed(&mut fp, &[&c.resource_name, &c.etag]);
    }
    hex::encode(fp.finalize())
}

/// The digest of what `run` wants of every destination: its target group, the
/// contacts and how they are copied. Two runs with one digest plan the same
/// changes for a destination in the same state.
pub(super) fn sync_digest(run: &Run<'_>) -> String {
    let SourceState::Desired(d) = &run.state else { return "not planned".into() };
    let mut fp = Sha256::new();
    let flags = format!("{}|{}|{:?}", d.add_to_my_contacts, d.photos, d.selection.marker());
    feed(&mut fp, &[&d.name, &d.target_group, &d.source_user_id, &flags]);
    for c in d.contacts.values() {
        let extra = format!("{:?}|{:?}", c.selection, c.photo);
        feed(&mut fp, &[&c.source_key, &c.hash, &extra]);
    }
    for key in &d.hidden {
        feed(&mut fp, &["hidden", key]);
    }
    hex::encode(fp.finalize())
}

impl Planner<'_> {
    /// The digest of what this run desires of `user`, given the syncs whose
    /// groups or contacts it holds (`owners`): the user as the directory has it,
    /// and for each sync that selects it, holds it back or has state there, how
    /// and what. A user whose digest is the one its earlier full read concluded
    /// under, and whose listings did not change, would be planned the same.
    pub fn desired_digest(&self, user: &DirectoryUser, owners: &BTreeMap<String, usize>) -> String {
        let mut fp = Sha256::new();
        let orphans = format!("{:?}|{}", self.input.orphans, self.find_orphans);
        feed(&mut fp, &["user", &user.id, &user.primary_email, &orphans]);
        for (run, digest) in self.runs.iter().zip(&self.sync_digests) {
            let state = if run.selected.contains(&user.id) {
                "selected"
            } else if run.held.contains(&user.id) {
                "held"
            } else if owners.contains_key(run.name()) {
                "holds state"
            } else {
                continue;
            };
            feed(&mut fp, &[run.name(), state, digest]);
        }
        for owner in owners.keys().filter(|o| !self.known.contains(o.as_str())) {
            feed(&mut fp, &["unknown sync", owner]);
        }
        hex::encode(fp.finalize())
    }

    /// Plans a user read in full, as [`Planner::user`] does, and says whether it
    /// came out converged: nothing to change for any sync, no error, no orphan.
    pub fn user_read(
        &mut self,
        user: &DirectoryUser,
        groups: &[ContactGroup],
        contacts: &[Contact],
    ) -> Option<Converged> {
        let before: Vec<usize> = self.runs.iter().map(|r| r.plan.destinations.len()).collect();
        let orphans =
            (self.orphans.values().map(|o| o.destinations.len()).sum::<usize>(), self.kept.len());
        let owned = contacts.iter().filter(|c| c.owner().is_some()).count();
        let state = self.user(user, groups, contacts);
        let quiet = |d: &DestinationPlan| {
            d.status == Status::UpToDate && d.error.is_none() && d.changes.is_empty()
        };
        let converged =
            self.runs.iter().zip(&before).all(|(r, &n)| r.plan.destinations[n..].iter().all(quiet))
                && orphans
                    == (
                        self.orphans.values().map(|o| o.destinations.len()).sum::<usize>(),
                        self.kept.len(),
                    )
                && self.runs.iter().all(|r| r.adopt.is_none());
        if !converged {
            return None;
        }
        let seen = crate::plan::survey::Seen::of(user, groups, Some(contacts));
        let managed = self
            .runs
            .iter()
            .filter(|r| r.desired().is_some())
            .map(|r| {
                let marked = contacts.iter().filter(|c| c.owner() == Some(r.name())).count();
                (r.name().to_owned(), marked)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        Some(Converged {
            desired: self.desired_digest(user, &seen.owners),
            state,
            owners: seen.owners,
            managed,
            owned,
        })
    }

    /// Plans `user` from an earlier full read's conclusion: up to date for every
    /// sync that selects it, its marked contacts counted as managed.
    pub fn cached(&mut self, user: &DirectoryUser, converged: &Converged) {
        feed(&mut self.fp, &["user", &user.id, &converged.state]);
        self.managed += converged.owned;
        for run in &mut self.runs {
            if run.desired().is_none() {
                continue;
            }
            run.managed += converged.managed.get(run.name()).copied().unwrap_or(0);
            if run.selected.contains(&user.id) {
                let planned =
                    DestinationPlan::with_changes(&user.primary_email, Default::default());
                run.plan.destinations.push(planned);
            }
        }
    }
}
