//! What a run read of the tenant, for keeping the inventory
//! ([`crate::model::inventory`]) true: which users were read, what state of which
//! sync each was seen to hold, and the inventory as it was found.
//!
//! The inventory apply writes is computed here, in two steps that can only make
//! it list more, never less, than is true:
//!
//! - [`Survey::before`], written before any change is sent: what was listed, plus
//!   what the run saw, plus every destination about to receive a contact or group;
//! - [`Survey::after`], written once the changes are made: a user the run read whole
//!   (groups and contacts) is listed for exactly the syncs it still holds state of
//!   — what it was seen to hold, plus what was created, minus what was deleted, a
//!   destination whose writes failed keeping its entry; users the run did not read
//!   keep theirs, and users gone from the directory are dropped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{Action, Plan, Reason, Status};
use crate::model::inventory::{Inventory, StoredInventory};
use crate::model::{Contact, ContactGroup, DirectoryUser};

/// Why no inventory can be written before the changes (so nothing is applied).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BeforeError {
    /// The inventory could not be read, so no write can keep it true.
    #[error(
        "the inventory of the users holding synced contacts could not be read ({why}), so it \
         could not be kept true; nothing was applied"
    )]
    Unreadable {
        /// Why it could not be read.
        why: String,
    },
    /// A destination with changes was not read by this run, so it cannot be listed.
    #[error(
        "{user} is about to receive contacts of {sync} but was not read by this run, so the \
         inventory could not list it; nothing was applied"
    )]
    NotRead {
        /// The destination user.
        user: String,
        /// The sync whose contacts it is about to receive.
        sync: String,
    },
}

/// What a run read.
#[derive(Clone, Debug, Default)]
pub struct Survey {
    /// The inventory as read; `None` when the backend keeps none (every user is
    /// read).
    pub stored: Option<StoredInventory>,
    /// Why the inventory could not be read, if so (the run then read every user,
    /// and apply refuses to write: it could not keep the inventory true).
    pub unreadable: Option<String>,
    /// Whether every active user was read.
    pub full: bool,
    /// The users read, by id.
    pub seen: BTreeMap<String, Seen>,
    /// Users the inventory lists that are gone from the directory.
    pub gone: Vec<String>,
    /// Users read in full (their groups, and their contacts if needed).
    pub read_full: usize,
    /// Users planned from the read cache, after incremental listings said that
    /// nothing changed there.
    pub read_incremental: usize,
}

/// Two plans are the same plan whatever their runs read: what was read is not
/// part of what is planned (a saved plan carries no survey, its re-plan does).
impl PartialEq for Survey {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// One user as the run read it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    /// Primary address.
    pub email: String,
    /// Marked groups and contacts seen, by the sync that marked them.
    pub owners: BTreeMap<String, usize>,
    /// Whether its contacts were read too (else only its groups were).
    pub complete: bool,
}

impl Seen {
    /// A user as read: its groups and, if they were read, its contacts.
    pub fn of(user: &DirectoryUser, groups: &[ContactGroup], contacts: Option<&[Contact]>) -> Self {
        let mut owners: BTreeMap<String, usize> = BTreeMap::new();
        let marked = groups.iter().filter_map(|g| g.owner());
        for owner in marked.chain(contacts.unwrap_or_default().iter().filter_map(|c| c.owner())) {
            *owners.entry(owner.to_owned()).or_default() += 1;
        }
        Self { email: user.primary_email.clone(), owners, complete: contacts.is_some() }
    }
}

impl Survey {
    /// The inventory as found, if it could be used.
    pub fn listed(&self) -> Option<&Inventory> {
        self.stored.as_ref().and_then(|s| s.inventory.as_ref())
    }

    /// A note saying why this run read every user, when it did so because the
    /// inventory is damaged or could not be read (`None` otherwise: a tenant with no
    /// inventory yet is read whole without a word, as every first run is).
    pub fn why_full(&self) -> Option<String> {
        let stored = self.stored.as_ref()?;
        let what = "the inventory of the users holding synced contacts";
        if let Some(why) = &self.unreadable {
            return Some(format!(
                "Every user was read: {what} could not be read ({why}). Apply refuses to write \
                 until it can be read."
            ));
        }
        if let Some(why) = &stored.damaged {
            return Some(format!(
                "Every user was read: {what} is damaged ({why}). Apply rewrites it from what \
                 it reads."
            ));
        }
        None
    }

    /// The inventory to write before any change: `None` when nothing needs writing
    /// (no inventory is kept, or it already lists all of this); an error when the
    /// inventory could not be read, so no write can keep it true.
    /// A full scan is recorded here, at `now`: what it saw is in.
    pub fn before(
        &self,
        plan: &Plan,
        now: DateTime<Utc>,
    ) -> Result<Option<Inventory>, BeforeError> {
        if self.stored.is_none() {
            return Ok(None);
        }
        if let Some(why) = &self.unreadable {
            return Err(BeforeError::Unreadable { why: why.clone() });
        }
        let old = self.listed().cloned().unwrap_or_default();
        let mut new = old.clone();
        for (id, seen) in &self.seen {
            if !seen.owners.is_empty() {
                new.holders.entry(id.clone()).or_default().extend(seen.owners.keys().cloned());
            }
        }
        let ids = self.ids();
        for (sync, user, _, _) in writes(plan).filter(|w| w.2 > 0) {
            // Every destination with changes was read; one that was not cannot be
            // recorded, so nothing is sent rather than state left unlisted.
            let Some(id) = ids.get(user.to_lowercase().as_str()) else {
                return Err(BeforeError::NotRead { user: user.to_owned(), sync: sync.to_owned() });
            };
            new.holders.entry((*id).to_owned()).or_default().insert(sync.to_owned());
        }
        for id in &self.gone {
            new.holders.remove(id);
        }
        if self.full {
            new.scanned = Some(now);
        }
        Ok((self.listed() != Some(&new)).then_some(new))
    }

    /// The inventory to write once the changes are made, given which destinations
    /// (sync, user address) were applied in full, and the one written before
    /// (`None`: the inventory as found). `None` when nothing needs writing.
    pub fn after(
        &self,
        plan: &Plan,
        written: Option<&Inventory>,
        applied: &HashSet<(String, String)>,
    ) -> Option<Inventory> {
        if self.stored.is_none() || self.unreadable.is_some() {
            return None;
        }
        let current = written.or(self.listed());
        let mut new = current.cloned().unwrap_or_default();
        let ids = self.ids();
        let mut changed: HashMap<&str, BTreeMap<&str, (usize, usize, bool)>> = HashMap::new();
        for (sync, user, creates, deletes) in writes(plan) {
            if let Some(id) = ids.get(user.to_lowercase().as_str()) {
                let done = applied.contains(&(sync.to_owned(), user.to_lowercase()));
                changed.entry(id).or_default().insert(sync, (creates, deletes, done));
            }
        }
        for (id, seen) in &self.seen {
            if !seen.complete {
                continue;
            }
            let mut holds: BTreeSet<String> = BTreeSet::new();
            let writes = changed.remove(id.as_str()).unwrap_or_default();
            for (sync, &count) in &seen.owners {
                match writes.get(sync.as_str()) {
                    Some(&(creates, deletes, true)) if count + creates <= deletes => {}
                    _ => {
                        holds.insert(sync.clone());
                    }
                }
            }
            for (sync, (creates, _, _)) in writes {
                if creates > 0 {
                    holds.insert(sync.to_owned());
                }
            }
            if holds.is_empty() {
                new.holders.remove(id);
            } else {
                new.holders.insert(id.clone(), holds);
            }
        }
        for id in &self.gone {
            new.holders.remove(id);
        }
        (current != Some(&new)).then_some(new)
    }

    /// Users read, by lowercase address.
    fn ids(&self) -> HashMap<String, &str> {
        self.seen.iter().map(|(id, s)| (s.email.to_lowercase(), id.as_str())).collect()
    }
}

/// Every destination with changes that apply would send: (sync, user, creations,
/// deletions).
fn writes(plan: &Plan) -> impl Iterator<Item = (&str, &str, usize, usize)> {
    plan.syncs.iter().filter(|s| s.applicable()).flat_map(|s| {
        s.destinations.iter().filter(|d| d.status == Status::Changes).map(move |d| {
            let count = |a: Action| d.changes.iter().filter(|c| c.action == a).count();
            // An adopted group or contact becomes the sync's as a create does.
            let adopted = d.changes.iter().filter(|c| c.reason == Reason::Adopted).count();
            let marks = count(Action::Create) + adopted;
            (s.name.as_str(), d.user.as_str(), marks, count(Action::Delete))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, DestinationPlan, Op, Reason, Resource, SyncPlan};

    fn change(action: Action) -> Change {
        Change {
            action,
            resource: Resource::Contact,
            name: "Ada".into(),
            email: None,
            reason: Reason::Missing,
            fields: Vec::new(),
            op: Op::DeleteContact { resource_name: "people/c1".into() },
        }
    }

    /// A plan of sync `s`: per user, its changes.
    fn plan(destinations: &[(&str, Vec<Action>)]) -> Plan {
        let destinations = destinations
            .iter()
            .map(|(user, actions)| {
                DestinationPlan::with_changes(user, actions.iter().map(|a| change(*a)).collect())
            })
            .collect();
        Plan {
            syncs: vec![SyncPlan { name: "s".into(), destinations, ..SyncPlan::default() }],
            ..Plan::default()
        }
    }

    fn seen(email: &str, owners: &[(&str, usize)], complete: bool) -> Seen {
        let owners = owners.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect();
        Seen { email: email.into(), owners, complete }
    }

    fn inventory(pairs: &[(&str, &str)]) -> Inventory {
        let mut inv = Inventory::default();
        for (id, sync) in pairs {
            inv.holders.entry((*id).to_owned()).or_default().insert((*sync).to_owned());
        }
        inv
    }

    fn survey(listed: Inventory, seen: Vec<(&str, Seen)>) -> Survey {
        Survey {
            stored: Some(StoredInventory { inventory: Some(listed), ..StoredInventory::default() }),
            seen: seen.into_iter().map(|(id, s)| (id.to_owned(), s)).collect(),
            ..Survey::default()
        }
    }

    fn applied(pairs: &[&str]) -> HashSet<(String, String)> {
        pairs.iter().map(|u| ("s".to_owned(), (*u).to_owned())).collect()
    }

    #[test]
    fn a_destination_about_to_receive_contacts_is_listed_before_anything_is_sent() {
        let s = survey(Inventory::default(), vec![("1", seen("ann@x", &[], true))]);
        let p = plan(&[("ann@x", vec![Action::Create, Action::Create])]);
        assert_eq!(s.before(&p, Utc::now()).unwrap(), Some(inventory(&[("1", "s")])));
        // Its writes failed: it stays listed (they may have landed).
        let after = s.after(&p, s.before(&p, Utc::now()).unwrap().as_ref(), &applied(&[]));
        assert_eq!(after, None, "nothing to change after the write before");
    }

    #[test]
    fn a_user_is_taken_off_only_once_everything_it_held_is_seen_deleted() {
        let s = survey(inventory(&[("1", "s")]), vec![("1", seen("ann@x", &[("s", 3)], true))]);
        let p = plan(&[("ann@x", vec![Action::Delete; 3])]);
        assert_eq!(s.before(&p, Utc::now()).unwrap(), None, "nothing to add");
        assert_eq!(s.after(&p, None, &applied(&["ann@x"])), Some(inventory(&[])));
        assert_eq!(s.after(&p, None, &applied(&[])), None, "failed: kept");
        let partly = plan(&[("ann@x", vec![Action::Delete; 2])]);
        assert_eq!(s.after(&partly, None, &applied(&["ann@x"])), None, "one left");
    }

    #[test]
    fn what_a_run_did_not_read_whole_keeps_its_entry() {
        let s = survey(
            inventory(&[("1", "s"), ("2", "gone-sync")]),
            vec![("2", seen("bob@x", &[], false))],
        );
        let p = plan(&[]);
        assert_eq!(s.after(&p, None, &applied(&[])), None);
        // Read whole and holding nothing: taken off.
        let s = survey(inventory(&[("1", "s")]), vec![("1", seen("ann@x", &[], true))]);
        assert_eq!(s.after(&p, None, &applied(&[])), Some(inventory(&[])));
    }

    #[test]
    fn a_destination_whose_group_is_adopted_is_listed_like_one_receiving_contacts() {
        let s = survey(Inventory::default(), vec![("1", seen("ann@x", &[], true))]);
        let mut adopt = change(Action::Update);
        adopt.reason = Reason::Adopted;
        let mut p = plan(&[]);
        p.syncs[0].destinations.push(DestinationPlan::with_changes("ann@x", vec![adopt]));
        assert_eq!(s.before(&p, Utc::now()).unwrap(), Some(inventory(&[("1", "s")])));
        let before = s.before(&p, Utc::now()).unwrap();
        assert_eq!(s.after(&p, before.as_ref(), &applied(&["ann@x"])), None, "and stays so");
    }

    #[test]
    fn an_unreadable_inventory_is_never_written() {
        let mut s = survey(Inventory::default(), vec![("1", seen("ann@x", &[], true))]);
        s.unreadable = Some("HTTP 500".into());
        let p = plan(&[("ann@x", vec![Action::Create])]);
        assert!(s.before(&p, Utc::now()).unwrap_err().to_string().contains("nothing was applied"));
        assert_eq!(s.after(&p, None, &applied(&["ann@x"])), None);
    }
}
