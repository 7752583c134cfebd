//! Whom a sync's destination selectors reach, and why: every user a selector
//! names or lists, with the selectors that reach it (`by address`, `via group
//! accounting@…`, `via org unit /Accounting`), and whether it is a destination, or
//! excluded (by which rule), or skipped (suspended, archived); and the addresses and
//! groups that resolve to nobody, or to a renamed user. The planner selects
//! destinations from this ([`crate::plan::planner`]), and `contact-sync resolve`
//! prints it: one judgement for both.

use std::collections::BTreeMap;

use serde::Serialize;

use super::PlanError;
use crate::manifest::Destinations;
use crate::model::DirectoryUser;
use crate::model::resolution::{DirectoryNames, SyncResolution};

/// A selector that reaches a user.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "selector", content = "value", rename_all = "camelCase")]
pub enum Via {
    /// `destinations.users`, by address or alias.
    Address(String),
    /// `destinations.groups`: a member (nested groups included).
    Group(String),
    /// `destinations.orgUnits`: a user of the unit or a sub-unit.
    OrgUnit(String),
    /// `destinations.domains`.
    Domain(String),
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Address(a) => write!(f, "by address {a}"),
            Via::Group(g) => write!(f, "via group {g}"),
            Via::OrgUnit(o) => write!(f, "via org unit {o}"),
            Via::Domain(d) => write!(f, "via domain {d}"),
        }
    }
}

/// What becomes of a user a selector reaches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "reason", rename_all = "camelCase")]
pub enum Outcome {
    /// A destination: it gets the sync's contacts.
    Destination,
    /// Left out by a rule: `exclude.users ann@…`, `exclude.groups …`,
    /// `exclude.orgUnits /…`, or because it is the sync's source user.
    Excluded(String),
    /// Not synced while it is suspended or archived; its synced contacts are kept.
    Skipped(String),
}

/// One user a selector reaches.
#[derive(Clone, Debug)]
pub struct Reached {
    /// The user.
    pub user: DirectoryUser,
    /// The selectors that reach it, in manifest order.
    pub via: Vec<Via>,
    /// What becomes of it.
    pub outcome: Outcome,
}

/// A selector entry that reaches nobody it may: an address or group the directory
/// does not know, an address of a renamed user. It holds that entry back.
#[derive(Clone, Debug)]
pub struct Unresolved {
    /// The address or group as the manifest names it.
    pub address: String,
    /// The renamed user's id, for a rename: the planner leaves that user alone.
    pub renamed: Option<String>,
    /// The error, with the manifest line to change.
    pub error: PlanError,
    /// The entry names no user (a group, org unit or domain that reaches nobody,
    /// an exclusion that names nobody): an error of the whole sync, which holds it
    /// back, rather than of one destination.
    pub of_sync: bool,
}

/// Whom one sync's selectors reach.
#[derive(Clone, Debug, Default)]
pub struct Reach {
    /// Every user reached, by primary address.
    pub users: Vec<Reached>,
    /// Entries that reach nobody they may.
    pub unresolved: Vec<Unresolved>,
}

/// The closest of `candidates` to `name`, if one is close.
pub fn suggest(name: &str, candidates: Option<&Vec<String>>) -> Option<String> {
    let candidates = candidates?.iter().map(String::as_str);
    crate::validate::did_you_mean(name, candidates).map(str::to_owned)
}

/// The users reached so far, by id: each with the selectors that reach it.
type ReachedBy<'u> = BTreeMap<String, (&'u DirectoryUser, Vec<Via>)>;

fn add<'u>(reached: &mut ReachedBy<'u>, user: &'u DirectoryUser, via: Via) {
    reached.entry(user.id.clone()).or_insert_with(|| (user, Vec::new())).1.push(via);
}

/// Judges `dest` against what the directory said of it (`found`, with `lookup`
/// finding a group member by address or alias, and `names` what a "did you mean"
/// is chosen from); `source_id` is the sync's source user, never its own
/// destination; `at` gives a JSON pointer's manifest location.
pub fn reach<'u>(
    dest: &Destinations,
    found: &'u SyncResolution,
    lookup: &dyn Fn(&str) -> Option<&'u DirectoryUser>,
    names: Option<&DirectoryNames>,
    source_id: Option<&str>,
    at: &dyn Fn(&str) -> String,
) -> Reach {
    let judge = Judge { dest, found, lookup, names, source_id, at };
    let mut reached = ReachedBy::new();
    let mut unresolved = Vec::new();
    judge.by_address(&mut reached, &mut unresolved);
    judge.by_group(&mut reached, &mut unresolved);
    judge.empty_scopes(&mut unresolved);
    judge.exclusions(&mut unresolved);
    judge.by_scope(&mut reached);
    Reach { users: judge.outcomes(reached), unresolved }
}

/// What [`reach`] judges by.
struct Judge<'a, 'u> {
    dest: &'a Destinations,
    found: &'u SyncResolution,
    lookup: &'a dyn Fn(&str) -> Option<&'u DirectoryUser>,
    names: Option<&'a DirectoryNames>,
    source_id: Option<&'a str>,
    at: &'a dyn Fn(&str) -> String,
}

impl<'u> Judge<'_, 'u> {
    /// `destinations.users`: each reached by address, unless unknown or renamed.
    fn by_address(&self, reached: &mut ReachedBy<'u>, unresolved: &mut Vec<Unresolved>) {
        let users = self.dest.users.iter().zip(&self.found.destinations.users);
        for (i, (address, user)) in users.enumerate() {
            let at = (self.at)(&format!("/spec/destinations/users/{i}"));
            match user {
                None => unresolved.push(Unresolved {
                    address: address.clone(),
                    renamed: None,
                    error: PlanError::DestinationNotFound {
                        email: address.clone(),
                        suggestion: suggest(address, self.names.map(|n| &n.addresses)),
                        at,
                    },
                    of_sync: false,
                }),
                Some(u) if !u.primary_email.eq_ignore_ascii_case(address) => {
                    unresolved.push(Unresolved {
                        address: address.clone(),
                        renamed: Some(u.id.clone()),
                        error: PlanError::DestinationRenamed {
                            email: address.clone(),
                            renamed_to: u.primary_email.clone(),
                            at,
                        },
                        of_sync: false,
                    });
                }
                Some(u) => add(reached, u, Via::Address(address.clone())),
            }
        }
    }

    /// `destinations.groups`: their members, unless the group is unknown.
    fn by_group(&self, reached: &mut ReachedBy<'u>, unresolved: &mut Vec<Unresolved>) {
        let groups = self.dest.groups.iter().zip(&self.found.destinations.groups);
        for (i, (group, members)) in groups.enumerate() {
            match members {
                None => unresolved.push(Unresolved {
                    address: group.clone(),
                    renamed: None,
                    error: PlanError::DestinationGroupNotFound {
                        group: group.clone(),
                        at: (self.at)(&format!("/spec/destinations/groups/{i}")),
                    },
                    of_sync: true,
                }),
                Some(members) => {
                    for user in members.iter().filter_map(|m| (self.lookup)(m)) {
                        add(reached, user, Via::Group(group.clone()));
                    }
                }
            }
        }
    }

    /// The entry `name` (the `i`th of `key`, a `what`) that reaches nobody.
    fn nobody(&self, key: &str, what: &str, name: &str, i: usize) -> Unresolved {
        // Groups are not listed (no scope reads them): no suggestion for one.
        let candidates = self.names.and_then(|n| match what {
            "org unit" => Some(&n.org_units),
            "domain" => Some(&n.domains),
            "user" => Some(&n.addresses),
            _ => None,
        });
        let pointer = key.replace('.', "/");
        Unresolved {
            address: name.to_owned(),
            renamed: None,
            error: PlanError::SelectorNotFound {
                key: key.to_owned(),
                what: what.to_owned(),
                name: name.to_owned(),
                suggestion: suggest(name, candidates),
                at: (self.at)(&format!("/spec/{pointer}/{i}")),
            },
            of_sync: true,
        }
    }

    /// `destinations.orgUnits` and `destinations.domains` with no user in them.
    fn empty_scopes(&self, unresolved: &mut Vec<Unresolved>) {
        let selection = &self.found.destinations;
        for (i, (unit, count)) in self.dest.org_units.iter().zip(&selection.org_units).enumerate() {
            if *count == 0 {
                unresolved.push(self.nobody("destinations.orgUnits", "org unit", unit, i));
            }
        }
        for (i, (domain, count)) in self.dest.domains.iter().zip(&selection.domains).enumerate() {
            if *count == 0 {
                unresolved.push(self.nobody("destinations.domains", "domain", domain, i));
            }
        }
    }

    /// Exclusions that reach nobody, or name a renamed user.
    fn exclusions(&self, unresolved: &mut Vec<Unresolved>) {
        let (exclude, found) = (&self.dest.exclude, &self.found.exclude);
        for (i, (address, user)) in exclude.users.iter().zip(&found.users).enumerate() {
            match user {
                None => {
                    unresolved.push(self.nobody("destinations.exclude.users", "user", address, i));
                }
                // Still excluded (by the alias, below) until the manifest is fixed.
                Some(u) if !u.primary_email.eq_ignore_ascii_case(address) => {
                    unresolved.push(Unresolved {
                        address: address.clone(),
                        renamed: Some(u.id.clone()),
                        error: PlanError::ExcludedRenamed {
                            email: address.clone(),
                            renamed_to: u.primary_email.clone(),
                            at: (self.at)(&format!("/spec/destinations/exclude/users/{i}")),
                        },
                        of_sync: false,
                    });
                }
                Some(_) => {}
            }
        }
        for (i, (group, members)) in exclude.groups.iter().zip(&found.groups).enumerate() {
            if members.is_none() {
                unresolved.push(self.nobody("destinations.exclude.groups", "group", group, i));
            }
        }
        for (i, (unit, count)) in exclude.org_units.iter().zip(&found.org_units).enumerate() {
            if *count == 0 {
                unresolved.push(self.nobody("destinations.exclude.orgUnits", "org unit", unit, i));
            }
        }
    }

    /// The users the org units and domains listed, via each that holds them.
    fn by_scope(&self, reached: &mut ReachedBy<'u>) {
        let dest = self.dest;
        for user in &self.found.destinations.scoped {
            for unit in &dest.org_units {
                if crate::model::in_org_unit(&user.org_unit_path, unit) {
                    add(reached, user, Via::OrgUnit(unit.clone()));
                }
            }
            for domain in &dest.domains {
                let in_domain =
                    std::iter::once(&user.primary_email).chain(&user.aliases).any(|a| {
                        a.rsplit_once('@').is_some_and(|(_, d)| d.eq_ignore_ascii_case(domain))
                    });
                if in_domain {
                    add(reached, user, Via::Domain(domain.clone()));
                }
            }
            // Listed by the directory under one of them, however it matched.
            if !reached.contains_key(&user.id) {
                let via = dest.org_units.first().map(|o| Via::OrgUnit(o.clone()));
                let via = via.or_else(|| dest.domains.first().map(|d| Via::Domain(d.clone())));
                if let Some(via) = via {
                    add(reached, user, via);
                }
            }
        }
    }

    /// The rule that excludes `user`, if one does.
    fn excluded_by(&self, user: &DirectoryUser) -> Option<String> {
        if Some(user.id.as_str()) == self.source_id {
            return Some("the sync's source user".to_owned());
        }
        let (exclude, found) = (&self.dest.exclude, &self.found.exclude);
        for (address, found) in exclude.users.iter().zip(&found.users) {
            if found.as_ref().is_some_and(|f| f.id == user.id) {
                return Some(format!("exclude.users {address}"));
            }
        }
        for (group, members) in exclude.groups.iter().zip(&found.groups) {
            if members.iter().flatten().filter_map(|m| (self.lookup)(m)).any(|m| m.id == user.id) {
                return Some(format!("exclude.groups {group}"));
            }
        }
        exclude
            .org_units
            .iter()
            .find(|unit| crate::model::in_org_unit(&user.org_unit_path, unit))
            .map(|unit| format!("exclude.orgUnits {unit}"))
    }

    /// What becomes of each user reached, sorted by primary address.
    fn outcomes(&self, reached: ReachedBy<'u>) -> Vec<Reached> {
        let mut users: Vec<Reached> = reached
            .into_values()
            .map(|(user, via)| {
                let outcome = match self.excluded_by(user) {
                    Some(rule) => Outcome::Excluded(rule),
                    None if user.suspended => Outcome::Skipped("suspended".into()),
                    None if user.archived => Outcome::Skipped("archived".into()),
                    None => Outcome::Destination,
                };
                Reached { user: user.clone(), via, outcome }
            })
            .collect();
        users.sort_by_key(|r| r.user.primary_email.to_lowercase());
        users
    }
}

/// `contact-sync resolve --format json` (`formatVersion` "1"): per sync its name,
/// source, `sourceNote`, the `users` its selectors reach and how, and every
/// error in one place, `errors` — the source's, each selector value's that names
/// nobody (with its `address`), and why the selectors could not be read.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReachDocument<'a> {
    format_version: &'static str,
    syncs: Vec<SyncView<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncView<'a> {
    name: &'a str,
    source: &'a super::PlanSource,
    errors: Vec<ErrorView<'a>>,
    source_note: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_contacts: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    users: Option<Vec<ReachedView<'a>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ReachedView<'a> {
    user: &'a str,
    org_unit: &'a str,
    via: &'a [Via],
    #[serde(flatten)]
    outcome: &'a Outcome,
}

#[derive(Serialize)]
struct ErrorView<'a> {
    kind: super::ErrorKind,
    message: String,
    #[serde(with = "super::error::position")]
    location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
}

impl<'a> ErrorView<'a> {
    fn new(error: &'a PlanError, address: Option<&'a str>) -> Self {
        Self {
            kind: error.kind(),
            message: error.message(),
            location: error.location().map(str::to_owned),
            address,
        }
    }

    /// The selectors could not be read (an API error).
    fn unreadable(why: String) -> Self {
        Self { kind: super::ErrorKind::Api, message: why, location: None, address: None }
    }
}

impl<'a> ReachDocument<'a> {
    /// The document for `reaches`.
    pub fn new(reaches: &'a [super::planner::SyncReach]) -> Self {
        let syncs = reaches
            .iter()
            .map(|sync| SyncView {
                name: &sync.name,
                source: &sync.source,
                errors: errors(sync),
                source_note: sync.source_note.as_deref(),
                shared_contacts: sync.shared_contacts,
                users: sync.reach.as_ref().ok().map(|r| {
                    r.users
                        .iter()
                        .map(|u| ReachedView {
                            user: &u.user.primary_email,
                            org_unit: &u.user.org_unit_path,
                            via: &u.via,
                            outcome: &u.outcome,
                        })
                        .collect()
                }),
            })
            .collect();
        Self { format_version: "1", syncs }
    }
}

/// Every error of a sync: its source's, then its selectors'.
fn errors(sync: &super::planner::SyncReach) -> Vec<ErrorView<'_>> {
    let mut all: Vec<ErrorView<'_>> =
        sync.source_errors.iter().map(|e| ErrorView::new(e, None)).collect();
    match &sync.reach {
        Ok(reach) => {
            all.extend(reach.unresolved.iter().map(|u| ErrorView::new(&u.error, Some(&u.address))))
        }
        Err(e) => all.push(ErrorView::unreadable(crate::text::error_chain(e.cause()))),
    }
    all
}
