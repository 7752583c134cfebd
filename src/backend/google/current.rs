//! Reads that cannot be stale, and what the last listings showed.
//!
//! Google's listings (`contactGroups.list`, `people.connections.list`) may trail
//! writes: Google documents a propagation delay of up to several minutes. A
//! decision to send a create again must therefore never rest on a listing. Reads
//! by resource name — `contactGroups.get` (with `maxMembers`, the group's member
//! resource names) and `people:batchGet` — are answered from the records
//! themselves, so they show every write that was answered, and every write whose
//! answer was lost but landed. Those are the reads this module makes.
//!
//! Every copy contact-sync makes is created in its target group, so a group's
//! members, read by name, are where any copy made so far is found. To know when
//! that check is needed, the backend keeps, per user, a fingerprint of each group's
//! members as the last full listing of the user's contacts showed them (a hash per
//! group: no contact data), and the groups it created itself in this process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use reqwest::Method;
use sha2::{Digest, Sha256};

use super::{GoogleBackend, contact_from, group_from, person_fields};
use crate::backend::{Error, Result};
use crate::model::{Contact, ContactGroup, MY_CONTACTS};

/// The most member names one `contactGroups.get` is asked for: Google's limit of
/// contacts per user, so that every member comes back.
const MAX_MEMBERS: usize = 25_000;
/// Limit of `people:batchGet`.
const GET_BATCH: usize = 200;
/// The group fields every group read asks for.
pub(super) const GROUP_FIELDS: &str = "clientData,groupType,metadata,name";

/// A fingerprint of a group's members.
type Fingerprint = [u8; 32];

/// What this process knows of each user's groups.
#[derive(Debug, Default)]
pub(super) struct Seen {
    /// Per user (lowercase), per group resource name: the members' fingerprint in
    /// the user's last full contacts listing. A group the listing showed no
    /// member of is absent; a user never listed is absent.
    listed: Mutex<HashMap<String, HashMap<String, Fingerprint>>>,
    /// `(user, group)` created by this process, with an answer: nobody else has
    /// put contacts in them since (the writer lease keeps other writers out).
    created: Mutex<HashSet<(String, String)>>,
}

fn fingerprint<'a>(members: impl IntoIterator<Item = &'a str>) -> Fingerprint {
    let mut sorted: Vec<&str> = members.into_iter().collect();
    sorted.sort_unstable();
    let mut hash = Sha256::new();
    for m in sorted {
        hash.update(m.as_bytes());
        hash.update([0]);
    }
    hash.finalize().into()
}

impl Seen {
    /// Records what a full listing of `user`'s contacts showed.
    pub(super) fn listed(&self, user: &str, contacts: &[Contact]) {
        let mut members: HashMap<&str, Vec<&str>> = HashMap::new();
        for c in contacts {
            for g in &c.memberships {
                members.entry(g.as_str()).or_default().push(c.resource_name.as_str());
            }
        }
        let groups = members.into_iter().map(|(g, m)| (g.to_owned(), fingerprint(m))).collect();
        self.listed.lock().expect("seen lock").insert(user.to_lowercase(), groups);
    }

    /// Records a group this process created and was answered for.
    pub(super) fn created(&self, user: &str, group: &str) {
        self.created.lock().expect("seen lock").insert((user.to_lowercase(), group.to_owned()));
    }

    /// Whether `group` of `user` was created by this process (and takes its first
    /// contacts now: asked once, it is then forgotten).
    fn take_created(&self, user: &str, group: &str) -> bool {
        self.created.lock().expect("seen lock").remove(&(user.to_lowercase(), group.to_owned()))
    }

    /// Whether the last listing of `user` showed exactly `members` in `group`.
    fn listing_showed(&self, user: &str, group: &str, members: &[String]) -> bool {
        let listed = self.listed.lock().expect("seen lock");
        let Some(groups) = listed.get(&user.to_lowercase()) else { return false };
        let shown = groups.get(group).copied().unwrap_or_else(|| fingerprint([]));
        shown == fingerprint(members.iter().map(String::as_str))
    }
}

/// The target group new copies go into: their first membership other than My
/// Contacts (My Contacts itself when they have no other).
pub(super) fn target_group(memberships: &[String]) -> Option<&str> {
    memberships
        .iter()
        .find(|g| g.as_str() != MY_CONTACTS)
        .or_else(|| memberships.first())
        .map(String::as_str)
}

impl GoogleBackend {
    /// `contactGroups.get` of `group` with its members' resource names; `None` when
    /// there is no such group. A read by resource name: never stale.
    pub(super) async fn group_now(
        &self,
        user: &str,
        group: &str,
    ) -> Result<Option<(ContactGroup, Vec<String>)>> {
        let query = [("maxMembers", MAX_MEMBERS.to_string()), ("groupFields", GROUP_FIELDS.into())];
        match self.people(user, Method::GET, group, &query, None).await {
            Ok(v) => {
                let members = v["memberResourceNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect();
                Ok(Some((group_from(&v), members)))
            }
            Err(f) if f.status == 404 => Ok(None),
            Err(f) => Err(f.into_error(&format!("reading group {group} of {user}"))),
        }
    }

    /// `people:batchGet` of `names`, 200 at a time; contacts that are gone are
    /// left out. A read by resource name: never stale.
    pub(super) async fn contacts_now(&self, user: &str, names: &[String]) -> Result<Vec<Contact>> {
        let mut found = Vec::with_capacity(names.len());
        for chunk in names.chunks(GET_BATCH) {
            let mut query: Vec<(&str, String)> = vec![("personFields", person_fields())];
            query.extend(chunk.iter().map(|rn| ("resourceNames", rn.clone())));
            let v = self
                .people(user, Method::GET, "people:batchGet", &query, None)
                .await
                .map_err(|f| f.into_error(&format!("reading contacts of {user} by name")))?;
            for r in v["responses"].as_array().into_iter().flatten() {
                if r["person"].is_object() {
                    found.push(contact_from(&r["person"]));
                }
            }
        }
        Ok(found)
    }

    /// The contacts now in `group` of `user`, read by name (two reads at least:
    /// the group's members, then the members).
    pub(super) async fn members_now(&self, user: &str, group: &str) -> Result<Vec<Contact>> {
        match self.group_now(user, group).await? {
            Some((_, members)) => self.contacts_now(user, &members).await,
            None => Err(Error::NotFound { what: format!("contact group {group} of {user}") }),
        }
    }

    /// Before new copies go into `group`: the contacts already in it that the plan
    /// may not have seen, read by name; `None` when the plan saw them all — the
    /// group was created by this process, or its members are exactly what the last
    /// listing showed (one `contactGroups.get` tells).
    pub(super) async fn unseen_members(
        &self,
        user: &str,
        group: &str,
    ) -> Result<Option<Vec<Contact>>> {
        if self.seen.take_created(user, group) {
            return Ok(None);
        }
        let Some((_, members)) = self.group_now(user, group).await? else {
            return Ok(None);
        };
        if self.seen.listing_showed(user, group, &members) {
            return Ok(None);
        }
        Ok(Some(self.contacts_now(user, &members).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(rn: &str, groups: &[&str]) -> Contact {
        Contact {
            resource_name: rn.into(),
            memberships: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Contact::default()
        }
    }

    #[test]
    fn a_listing_vouches_only_for_the_members_it_showed() {
        let seen = Seen::default();
        let g = "contactGroups/g1";
        assert!(!seen.listing_showed("ann@x", g, &[]), "never listed: no word on it");
        seen.listed(
            "Ann@x",
            &[contact("people/c1", &[g]), contact("people/c2", &[g, MY_CONTACTS])],
        );
        assert!(seen.listing_showed("ann@x", g, &["people/c2".into(), "people/c1".into()]));
        assert!(
            !seen.listing_showed("ann@x", g, &["people/c1".into()]),
            "a member gone since: the listing trailed"
        );
        assert!(
            !seen.listing_showed(
                "ann@x",
                g,
                &["people/c1".into(), "people/c2".into(), "people/c3".into()]
            ),
            "a member the listing did not show"
        );
        assert!(seen.listing_showed("ann@x", "contactGroups/empty", &[]), "listed, no members");
    }

    #[test]
    fn a_created_group_is_vouched_for_once() {
        let seen = Seen::default();
        seen.created("ann@x", "contactGroups/g1");
        assert!(seen.take_created("ANN@x", "contactGroups/g1"));
        assert!(!seen.take_created("ann@x", "contactGroups/g1"));
    }

    #[test]
    fn copies_go_into_their_target_group_not_my_contacts() {
        let m = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(target_group(&m(&[MY_CONTACTS, "contactGroups/t"])), Some("contactGroups/t"));
        assert_eq!(target_group(&m(&[MY_CONTACTS])), Some(MY_CONTACTS));
        assert_eq!(target_group(&[]), None);
    }
}
