//! The planner: one pure function of (desired, actual), fed in steps so that
//! memory stays bounded by the user in flight.
//!
//! [`Planner::new`] takes the plan input and what the directory said
//! ([`Resolution`]) and judges every source and destination: a source not found,
//! renamed or suspended, a destination not found or renamed, who is selected,
//! excluded, held back or skipped. The driver ([`crate::reader`]) then reads
//! what the planner asks for — each personal source's groups and, if the group is
//! there, its contacts ([`Planner::source_groups`], [`Planner::source_contacts`]);
//! then every active user's groups and, if [`Reads::needs_contacts`] says so, its
//! contacts ([`Planner::user`], [`Planner::unreadable`]) — and
//! [`Planner::finish`] applies the deletion guard and the orphan policy, sorts
//! and summarises. Everything the planner is given is hashed into the plan's
//! fingerprint, so a saved plan can tell whether the tenant moved since.
//!
//! The driver makes no choice: it reads what it is told to, in the order it is
//! told, and hands over what it read or why it could not.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use sha2::{Digest, Sha256};

mod converged;

pub use converged::Converged;

use super::changes::Interner;
use super::desired::DesiredSync;
use super::destination::{Actual, plan_adopted, plan_removed, plan_selected};
use super::reach::{Outcome, Reach};
use super::{
    Action, DestinationPlan, FullScan, Orphan, Plan, PlanError, PlanSource, Reason, Resource,
    SyncInput, SyncPlan,
};
use crate::input::PlanInput;
use chrono::{DateTime, Utc};

use crate::manifest::{OrphanPolicy, SyncType};
use crate::model::inventory::Inventory;
use crate::model::resolution::{
    DirectoryNames, Resolution, SourceResolution, SyncResolution, Unreadable, UserSchema,
};
use crate::model::{Contact, ContactGroup, DirectoryUser};

/// A plan being made.
pub struct Planner<'a> {
    input: &'a PlanInput,
    runs: Vec<Run<'a>>,
    fp: Sha256,
    /// Whether syncs whose manifest is gone are looked for (the whole set was read).
    find_orphans: bool,
    known: HashSet<&'a str>,
    orphans: BTreeMap<String, SyncPlan>,
    kept: Vec<Orphan>,
    errors: Vec<PlanError>,
    /// The plan's warnings (target groups that only look alike).
    warnings: Vec<String>,
    unreadable: usize,
    managed: usize,
    /// Per run, what it desires of a destination ([`converged::sync_digest`]),
    /// once the sources are read.
    sync_digests: Vec<String>,
}

/// What the driver reads for each active user, decided before the reads start (so
/// they can run concurrently while the planner works).
#[derive(Clone, Debug, Default)]
pub struct Reads {
    /// Users the inventory lists as holding state of a sync this run looks at, by
    /// id; `None`: a full scan, every active user is read.
    listed: Option<HashSet<String>>,
    /// Users some sync selects, by id: their contacts are read.
    selected: HashSet<String>,
    /// Syncs planned in this run: a user holding their state is read.
    planned: HashSet<String>,
    /// Every sync of the manifests, when orphans are looked for: a user holding
    /// state of any other sync is read.
    known: Option<HashSet<String>>,
}

impl Reads {
    /// Whether every active user is read (a full scan).
    pub fn full(&self) -> bool {
        self.listed.is_none()
    }

    /// Whether `user` is read at all: a sync selects it, the inventory lists it, or
    /// this is a full scan.
    pub fn reads_user(&self, user: &DirectoryUser) -> bool {
        self.listed.as_ref().is_none_or(|l| l.contains(&user.id))
            || self.selected.contains(&user.id)
    }

    /// Whether `user`, whose contact groups are `groups`, needs its contacts read:
    /// a sync selects it, or has left state there (a sync planned now, or one whose
    /// manifest is gone).
    /// A user the inventory lists is read whole, so the run can tell whether it
    /// still holds anything.
    pub fn needs_contacts(&self, user: &DirectoryUser, groups: &[ContactGroup]) -> bool {
        self.selected.contains(&user.id)
            || self.listed.as_ref().is_some_and(|l| l.contains(&user.id))
            || groups.iter().filter_map(|g| g.owner()).any(|owner| {
                self.planned.contains(owner)
                    || self.known.as_ref().is_some_and(|known| !known.contains(owner))
            })
    }
}

/// Which users a run reads beyond those its syncs select: `None` for every user (a
/// full scan: asked for, due, or the inventory is missing or unusable); otherwise
/// the users the inventory lists as holding state of a sync of the run, or — when
/// the run sees the whole manifest set — of a sync whose manifest is gone.
pub fn scope(
    input: &PlanInput,
    inventory: Option<&Inventory>,
    now: DateTime<Utc>,
) -> Option<BTreeSet<String>> {
    let inventory = inventory?;
    let due = match input.full_scan {
        FullScan::Never => false,
        FullScan::Always => true,
        FullScan::OlderThan(secs) => inventory
            .scanned
            .is_none_or(|t| (now - t).num_seconds() >= i64::try_from(secs).unwrap_or(i64::MAX)),
    };
    if due {
        return None;
    }
    let planned: HashSet<&str> = input.syncs.iter().map(SyncInput::name).collect();
    let known: HashSet<&str> = input.known_syncs.iter().map(String::as_str).collect();
    let orphans = input.partial.is_none();
    let looked_at = |sync: &str| planned.contains(sync) || (orphans && !known.contains(sync));
    Some(inventory.holding(looked_at).map(str::to_owned).collect())
}

/// Whom one sync's selectors reach ([`Planner::reaches`]).
#[derive(Clone, Debug)]
pub struct SyncReach {
    /// The sync.
    pub name: String,
    /// Its source, as the manifest names it.
    pub source: PlanSource,
    /// What holds the whole sync back: its source not found, renamed or
    /// suspended, its selectors unreadable.
    pub source_errors: Vec<PlanError>,
    /// For a directory sync, how many users it copies and how many are hidden.
    pub source_note: Option<String>,
    /// For a directory sync with `sharedContacts: true`, how many of the domain's
    /// shared contacts it adds.
    pub shared_contacts: Option<usize>,
    /// Whom its destination selectors reach, or why they could not be read.
    pub reach: Result<Reach, Unreadable>,
}

/// The directory indexed by address and alias.
struct Directory<'r> {
    by_email: HashMap<String, &'r DirectoryUser>,
    /// The directory's names, when a selector reached nobody.
    names: Option<&'r DirectoryNames>,
}

impl<'r> Directory<'r> {
    fn new(resolution: &'r Resolution) -> Self {
        let users = &resolution.users;
        let mut by_email = HashMap::new();
        for u in users {
            by_email.insert(u.primary_email.to_lowercase(), u);
            for a in &u.aliases {
                by_email.entry(a.to_lowercase()).or_insert(u);
            }
        }
        Self { by_email, names: resolution.names.as_ref() }
    }

    fn get(&self, email: &str) -> Option<&'r DirectoryUser> {
        self.by_email.get(&email.to_lowercase()).copied()
    }
}

impl<'a> Planner<'a> {
    /// Judges every sync's source and destinations from what the directory said.
    pub fn new(input: &'a PlanInput, resolution: &'a Resolution) -> Self {
        let mut fp = Sha256::new();
        for u in &resolution.users {
            feed(
                &mut fp,
                &[&u.id, &u.primary_email, &u.suspended.to_string(), &u.archived.to_string()],
            );
        }
        let directory = Directory::new(resolution);
        let mut runs: Vec<Run> = input
            .syncs
            .iter()
            .zip(&resolution.syncs)
            .map(|(sync, resolved)| Run::judge(sync, resolved, &directory))
            .collect();
        hold_shared_targets(&mut runs, resolution);
        let warnings = look_alike_targets(&runs, resolution);
        if let Some(adopt) = &input.adopt {
            for run in runs.iter_mut().filter(|r| r.name() == adopt.sync) {
                run.adopt = Some(adopt.users.clone());
            }
        }
        Self {
            input,
            runs,
            fp,
            find_orphans: input.partial.is_none(),
            known: input.known_syncs.iter().map(String::as_str).collect(),
            orphans: BTreeMap::new(),
            kept: Vec::new(),
            errors: Vec::new(),
            warnings,
            unreadable: 0,
            managed: 0,
            sync_digests: Vec::new(),
        }
    }

    /// Per sync, in input order: whom its selectors reach and why, and what was
    /// found wrong with its source — what `contact-sync resolve` shows, from the
    /// same judgement the plan is made of. Reads nothing more.
    pub fn reaches(&self, resolution: &Resolution) -> Vec<SyncReach> {
        let directory = Directory::new(resolution);
        self.runs
            .iter()
            .zip(&resolution.syncs)
            .map(|(run, resolved)| {
                let reach = resolved.as_ref().map(|r| run.reach(r, &directory));
                // The selector errors among the plan's are the reach's own.
                let of_reach = |e: &PlanError| {
                    reach.as_ref().is_ok_and(|r| r.unresolved.iter().any(|u| u.error == *e))
                };
                let source_errors: Vec<PlanError> =
                    run.plan.errors.iter().filter(|e| !of_reach(e)).cloned().collect();
                (run, reach, source_errors)
            })
            .map(|(run, reach, source_errors)| SyncReach {
                name: run.name().to_owned(),
                source: PlanSource::of(&run.input.manifest.spec.source),
                source_errors,
                source_note: run
                    .desired()
                    .filter(|_| run.input.manifest.spec.sync_type == SyncType::Directory)
                    .map(|d| {
                        let shared = super::directory_extra::shared_count(d.contacts.keys());
                        let adds = if run.shares_contacts() {
                            format!(" and adds {shared} shared contacts of the domain")
                        } else {
                            String::new()
                        };
                        format!(
                            "copies {} users of the directory{adds}; {} hidden from the Global \
                             Address List, and the suspended and archived, are not copied",
                            d.contacts.len() - shared,
                            d.hidden.len()
                        )
                    }),
                shared_contacts: run
                    .desired()
                    .filter(|_| run.shares_contacts())
                    .map(|d| super::directory_extra::shared_count(d.contacts.keys())),
                reach: reach.map_err(Clone::clone),
            })
            .collect()
    }

    /// The personal sources to read, as (sync index, source address): each one's
    /// contact groups, then — if [`Planner::source_groups`] says so — its contacts.
    pub fn source_reads(&self) -> Vec<(usize, String)> {
        self.runs
            .iter()
            .enumerate()
            .filter_map(|(i, run)| match &run.state {
                SourceState::Read { user, .. } => Some((i, user.primary_email.clone())),
                _ => None,
            })
            .collect()
    }

    /// Takes the contact groups of sync `i`'s source (or why they could not be
    /// read); returns whether its contacts are needed (the source group is there).
    pub fn source_groups(
        &mut self,
        i: usize,
        groups: Result<Vec<ContactGroup>, Unreadable>,
    ) -> bool {
        let run = &mut self.runs[i];
        match groups {
            Err(e) => {
                run.unreadable_source(&e);
                false
            }
            Ok(groups) => run.found_group(groups),
        }
    }

    /// Takes the contacts of sync `i`'s source (or why they could not be read).
    pub fn source_contacts(&mut self, i: usize, contacts: Result<Vec<Contact>, Unreadable>) {
        let run = &mut self.runs[i];
        match contacts {
            Err(e) => run.unreadable_source(&e),
            Ok(contacts) => run.desire(contacts),
        }
    }

    /// Ends the sources: from now on the planner takes users. Returns what to read
    /// of each active user, given what [`scope`] said: the inventory's users this
    /// run looks at, or `None` for a full scan.
    pub fn reads(&mut self, scope: Option<&BTreeSet<String>>) -> Reads {
        for run in &mut self.runs {
            // A source whose contacts were never given (its group was missing) has
            // its error already; any other pending state is a driver's mistake,
            // planned as nothing rather than guessed at.
            if matches!(run.state, SourceState::Read { .. } | SourceState::Group { .. }) {
                run.state = SourceState::Held;
            }
            for parts in run.source_fp.drain(..) {
                let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
                feed(&mut self.fp, &parts);
            }
        }
        self.sync_digests = self.runs.iter().map(converged::sync_digest).collect();
        let planned: Vec<&Run> = self.runs.iter().filter(|r| r.desired().is_some()).collect();
        let planned_names: HashSet<String> = planned.iter().map(|r| r.name().to_owned()).collect();
        Reads {
            listed: scope.map(|ids| ids.iter().cloned().collect()),
            selected: planned.iter().flat_map(|r| r.selected.iter().cloned()).collect(),
            planned: planned_names,
            known: self.find_orphans.then(|| self.known.iter().map(|s| (*s).to_owned()).collect()),
        }
    }

    /// Takes one user's contact groups and contacts and plans it for every sync
    /// (and, when orphans are looked for, for every sync whose manifest is gone).
    /// Returns the digest of the groups' and contacts' etags, which the plan's
    /// fingerprint takes.
    pub fn user(
        &mut self,
        user: &DirectoryUser,
        groups: &[ContactGroup],
        contacts: &[Contact],
    ) -> String {
        let state = converged::state_digest(groups, contacts);
        feed(&mut self.fp, &["user", &user.id, &state]);
        self.managed += contacts.iter().filter(|c| c.owner().is_some()).count();
        let actual = Actual { user: &user.primary_email, id: &user.id, groups, contacts };
        for run in &mut self.runs {
            run.plan_user(user, &actual);
        }
        if !self.find_orphans {
            return state;
        }
        let owners: BTreeSet<&str> = groups
            .iter()
            .filter_map(|g| g.owner())
            .chain(contacts.iter().filter_map(|c| c.owner()))
            .filter(|o| !self.known.contains(o))
            .collect();
        for owner in owners {
            match self.input.orphans {
                OrphanPolicy::Delete => {
                    let plan = self.orphans.entry(owner.to_owned()).or_insert_with(|| SyncPlan {
                        name: owner.to_owned(),
                        source: PlanSource::Deleted,
                        orphaned: true,
                        ..SyncPlan::default()
                    });
                    plan.destinations.push(plan_removed(owner, &actual, Reason::SyncDeleted));
                }
                OrphanPolicy::Keep => self.kept.push(Orphan {
                    sync: owner.to_owned(),
                    user: user.primary_email.clone(),
                    contacts: actual.marked_contacts(owner).count(),
                    groups: actual.marked_groups(owner).len(),
                }),
            }
        }
        state
    }

    /// A user whose groups or contacts could not be read: an error of every sync
    /// that selects it (or of the plan, if none does), nothing changed for it, and
    /// no orphan pruned anywhere (what the run did not see, it does not delete).
    pub fn unreadable(&mut self, user: &DirectoryUser, why: &Unreadable) {
        self.unreadable += 1;
        let why = crate::text::error_chain(why.cause());
        let error = PlanError::UserUnreadable { email: user.primary_email.clone(), why };
        let mut selecting = self.runs.iter_mut().filter(|r| r.selects(&user.id)).peekable();
        if selecting.peek().is_none() {
            self.errors.push(error);
            return;
        }
        for run in selecting {
            run.plan.destinations.push(DestinationPlan::error(&user.primary_email, error.clone()));
        }
    }

    /// The plan: deletion guards, the orphan policy, sorted and summarised.
    pub fn finish(self) -> Plan {
        let (orphans, kept, notes) = super::settle_orphans(
            self.orphans.into_values().collect(),
            self.kept,
            self.unreadable,
            self.managed,
            self.input,
        );
        let mut plan = Plan {
            format_version: "1".into(),
            orphans: kept,
            errors: self.errors,
            notes,
            warnings: self.warnings,
            ..Plan::default()
        };
        for run in self.runs {
            plan.syncs.push(run.finish(self.input));
        }
        plan.syncs.extend(orphans);
        plan.syncs.sort_by(|a, b| a.name.cmp(&b.name));
        plan.fingerprint = hex::encode(self.fp.finalize());
        plan.summarize();
        plan
    }
}

/// Two syncs that select one destination and name the same target group would
/// write into one group (the second create meets a 409, and every later plan
/// sees the other sync's group as a conflict): at such a destination neither is
/// planned, and each says which other sync it collides with, and where.
fn hold_shared_targets(runs: &mut [Run<'_>], resolution: &Resolution) {
    let mut by_target: BTreeMap<(String, &str), Vec<usize>> = BTreeMap::new();
    for (i, run) in runs.iter().enumerate() {
        let group = run.input.manifest.target_group_name();
        for id in &run.selected {
            by_target.entry((id.clone(), group)).or_default().push(i);
        }
    }
    let email: HashMap<&str, &str> =
        resolution.users.iter().map(|u| (u.id.as_str(), u.primary_email.as_str())).collect();
    let at = |run: &Run<'_>| run.input.at(super::desired::target_pointer(run.input));
    let mut held = Vec::new();
    for ((id, group), syncs) in by_target.into_iter().filter(|(_, s)| s.len() > 1) {
        let user = email.get(id.as_str()).copied().unwrap_or(id.as_str()).to_owned();
        for &i in &syncs {
            let j = syncs.iter().copied().find(|&j| j != i).unwrap_or(i);
            let error = PlanError::TargetGroupShared {
                user: user.clone(),
                group: group.to_owned(),
                other: runs[j].name().to_owned(),
                other_at: at(&runs[j]),
                at: at(&runs[i]),
            };
            held.push((i, id.clone(), user.clone(), error));
        }
    }
    for (i, id, user, error) in held {
        let run = &mut runs[i];
        run.selected.remove(&id);
        run.held.insert(id);
        run.hold_back(&user, error);
    }
}

/// Two syncs whose target groups differ only in case, white space or invisible
/// characters ("Sales" and "sales ") give a destination both: two groups that
/// look the same in Google Contacts. Not an error — each is its own group — but
/// a warning per pair of syncs, naming the users that get both.
fn look_alike_targets(runs: &[Run<'_>], resolution: &Resolution) -> Vec<String> {
    let mut by_folded: BTreeMap<(&str, String), BTreeSet<(&str, &str)>> = BTreeMap::new();
    for run in runs {
        let group = run.input.manifest.target_group_name();
        for id in &run.selected {
            let key = (id.as_str(), crate::text::fold_group_name(group));
            by_folded.entry(key).or_default().insert((group, run.name()));
        }
    }
    let email: HashMap<&str, &str> =
        resolution.users.iter().map(|u| (u.id.as_str(), u.primary_email.as_str())).collect();
    let mut pairs: BTreeMap<[(&str, &str); 2], Vec<&str>> = BTreeMap::new();
    for ((id, _), targets) in &by_folded {
        let targets: Vec<&(&str, &str)> = targets.iter().collect();
        for (i, a) in targets.iter().enumerate() {
            for b in targets.iter().skip(i + 1).filter(|b| b.0 != a.0) {
                pairs.entry([**a, **b]).or_default().push(email.get(id).copied().unwrap_or(id));
            }
        }
    }
    pairs
        .into_iter()
        .map(|([(name_a, sync_a), (name_b, sync_b)], mut users)| {
            users.sort_unstable();
            let shown = match users.as_slice() {
                [one] => (*one).to_owned(),
                [first, second] => format!("{first} and {second}"),
                [first, rest @ ..] => format!("{first} and {} more", rest.len()),
                [] => String::new(),
            };
            format!(
                "the target groups \"{}\" of sync {sync_a} and \"{}\" of sync {sync_b} \
                 differ only in case, white space or invisible characters: {shown} get both, \
                 and cannot tell them apart; give one of them a clearly different \
                 target.groupName",
                crate::text::printable(name_a),
                crate::text::printable(name_b),
            )
        })
        .collect()
}

fn feed(fp: &mut Sha256, parts: &[&str]) {
    for p in parts {
        fp.update(p.as_bytes());
        fp.update([0]);
    }
    fp.update([1]);
}

/// Where a sync's source stands.
#[derive(Debug)]
enum SourceState {
    /// The personal source user is fine: its groups are to be read.
    Read { user: DirectoryUser, group_name: String },
    /// Its group is there: its contacts are to be read.
    Group { user: DirectoryUser, group: ContactGroup },
    /// The sync is planned from this.
    Desired(Box<DesiredSync>),
    /// A source error (or a read that failed) holds the sync back.
    Held,
}

/// One sync being planned.
struct Run<'a> {
    input: &'a SyncInput,
    state: SourceState,
    plan: SyncPlan,
    /// Selected destinations, by user id.
    selected: HashSet<String>,
    /// Users that are not planned and not pruned (renamed, inactive).
    held: HashSet<String>,
    /// Marked contacts seen, for the deletion guard.
    managed: usize,
    /// What of the source goes into the fingerprint, in order.
    source_fp: Vec<Vec<String>>,
    /// The destinations' distinct change lists.
    shared: Interner,
    /// `contact-sync adopt` of this sync: the destinations named (all when empty).
    adopt: Option<BTreeSet<String>>,
}

impl<'a> Run<'a> {
    /// Judges the sync's source and destinations.
    fn judge(
        input: &'a SyncInput,
        resolved: &Result<SyncResolution, Unreadable>,
        directory: &Directory<'_>,
    ) -> Self {
        let manifest = &input.manifest;
        let mut run = Run {
            input,
            state: SourceState::Held,
            plan: SyncPlan {
                name: input.name().to_owned(),
                suspended: manifest.spec.suspend,
                source: PlanSource::of(&manifest.spec.source),
                ..SyncPlan::default()
            },
            selected: HashSet::new(),
            held: HashSet::new(),
            managed: 0,
            source_fp: Vec::new(),
            shared: Interner::default(),
            adopt: None,
        };
        match resolved {
            Err(e) => run.unreadable_source(e),
            Ok(resolved) => {
                run.judge_source(&resolved.source, directory);
                run.select(resolved, directory);
            }
        }
        run
    }

    fn name(&self) -> &str {
        self.input.name()
    }

    fn desired(&self) -> Option<&DesiredSync> {
        match &self.state {
            SourceState::Desired(d) => Some(d),
            _ => None,
        }
    }

    /// Whether this is a directory sync that adds the domain's shared contacts.
    fn shares_contacts(&self) -> bool {
        let spec = &self.input.manifest.spec;
        spec.sync_type == SyncType::Directory
            && spec.source.directory.as_ref().is_some_and(|d| d.shared_contacts)
    }

    fn selects(&self, id: &str) -> bool {
        self.desired().is_some() && self.selected.contains(id)
    }

    /// A read the sync needs failed: the whole sync is held back (its destinations
    /// are unknown, so nothing may be pruned).
    fn unreadable_source(&mut self, unreadable: &Unreadable) {
        self.state = SourceState::Held;
        self.selected.clear();
        self.plan.destinations.clear();
        self.source_fp.clear();
        let at = self.input.at("/metadata/name");
        let why = crate::text::error_chain(unreadable.cause());
        self.plan.errors.push(PlanError::SyncUnreadable { why, at });
        self.plan.source = PlanSource::of(&self.input.manifest.spec.source);
    }

    /// Judges the source.
    fn judge_source(&mut self, source: &SourceResolution, directory: &Directory<'_>) {
        match source {
            SourceResolution::Personal(user) => self.judge_personal(user.as_deref()),
            SourceResolution::Directory { listed, groups, org_units, domains, schemas, shared } => {
                if let Some(schemas) = schemas
                    && !self.judge_custom_fields(schemas)
                {
                    return;
                }
                if !self.judge_scopes(org_units, domains, directory.names) {
                    return;
                }
                self.judge_directory(listed, groups, directory);
                if let (Some(shared), SourceState::Desired(desired)) = (shared, &mut self.state) {
                    for c in shared {
                        self.source_fp.push(
                            ["shared", &c.resource_name, &c.etag].map(str::to_owned).to_vec(),
                        );
                    }
                    desired.add_shared(shared);
                }
            }
        }
    }

    fn judge_personal(&mut self, user: Option<&DirectoryUser>) {
        let spec = &self.input.manifest.spec;
        let address = spec.source.user.clone().unwrap_or_default();
        let at = self.input.at("/spec/source/user");
        let Some(user) = user else {
            self.plan.errors.push(PlanError::SourceNotFound { email: address, at });
            return;
        };
        if !user.primary_email.eq_ignore_ascii_case(&address) {
            let renamed_to = user.primary_email.clone();
            self.plan.errors.push(PlanError::SourceRenamed { email: address, renamed_to, at });
            return;
        }
        if user.inactive() {
            self.plan.errors.push(PlanError::SourceSuspended { email: address, at });
            return;
        }
        let group_name = spec.source.contact_group.clone().unwrap_or_default();
        self.state = SourceState::Read { user: user.clone(), group_name };
    }

    /// The source user's groups: is the source group there?
    fn found_group(&mut self, groups: Vec<ContactGroup>) -> bool {
        let SourceState::Read { user, group_name } =
            std::mem::replace(&mut self.state, SourceState::Held)
        else {
            return false;
        };
        let Some(group) = groups.iter().find(|g| g.name == group_name) else {
            let names = groups.iter().map(|g| g.name.as_str());
            let suggestion = crate::validate::did_you_mean(&group_name, names).map(str::to_owned);
            self.plan.errors.push(PlanError::SourceGroupNotFound {
                email: self.input.manifest.spec.source.user.clone().unwrap_or_default(),
                group: group_name,
                suggestion,
                at: self.input.at("/spec/source/contactGroup"),
            });
            return false;
        };
        self.state = SourceState::Group { user, group: group.clone() };
        true
    }

    /// The source user's contacts: the sync's desired state.
    fn desire(&mut self, contacts: Vec<Contact>) {
        let SourceState::Group { user, group } =
            std::mem::replace(&mut self.state, SourceState::Held)
        else {
            return;
        };
        self.source_fp.push(
            ["source", &user.id, &group.resource_name, &group.etag].map(str::to_owned).to_vec(),
        );
        for c in contacts.iter().filter(|c| c.memberships.contains(&group.resource_name)) {
            self.source_fp.push(vec![c.resource_name.clone(), c.etag.clone()]);
        }
        let desired = DesiredSync::personal(self.input, &user, &group.resource_name, &contacts);
        self.plan.source = PlanSource::Contacts {
            user: user.primary_email.clone(),
            contact_group: self
                .input
                .manifest
                .spec
                .source
                .contact_group
                .clone()
                .unwrap_or_default(),
        };
        self.state = SourceState::Desired(Box::new(desired));
    }

    /// A directory sync's source: the users its selectors list, unless a group is
    /// missing.
    fn judge_directory(
        &mut self,
        listed: &[DirectoryUser],
        groups: &[Option<Vec<String>>],
        directory: &Directory<'_>,
    ) {
        let mut users: BTreeMap<String, DirectoryUser> =
            listed.iter().map(|u| (u.id.clone(), u.clone())).collect();
        let names = self
            .input
            .manifest
            .spec
            .source
            .directory
            .as_ref()
            .map(|d| d.groups.clone())
            .unwrap_or_default();
        for (i, members) in groups.iter().enumerate() {
            let Some(members) = members else {
                self.plan.errors.push(PlanError::SourceGroupOfDirectoryNotFound {
                    group: names.get(i).cloned().unwrap_or_default(),
                    at: self.input.at(&format!("/spec/source/directory/groups/{i}")),
                });
                return;
            };
            users.extend(
                members.iter().filter_map(|m| directory.get(m)).map(|u| (u.id.clone(), u.clone())),
            );
        }
        let users: Vec<DirectoryUser> = users.into_values().collect();
        for u in &users {
            self.source_fp.push(
                [
                    "source",
                    &u.id,
                    &crate::model::directory_map::mapped_source(u),
                    if u.include_in_global_address_list { "listed" } else { "hidden" },
                ]
                .map(str::to_owned)
                .to_vec(),
            );
        }
        let desired = DesiredSync::directory(self.input, &users);
        self.plan.source = PlanSource::of(&self.input.manifest.spec.source);
        self.state = SourceState::Desired(Box::new(desired));
    }

    /// A directory sync's org units and domains: one that lists no user holds
    /// the sync back, at its manifest line (copying fewer users than meant would
    /// delete the others' contacts everywhere).
    fn judge_scopes(
        &mut self,
        org_units: &[usize],
        domains: &[usize],
        names: Option<&DirectoryNames>,
    ) -> bool {
        let source = self.input.manifest.spec.source.directory.clone().unwrap_or_default();
        let mut fine = true;
        let lists = [
            ("orgUnits", "org unit", &source.org_units, org_units),
            ("domains", "domain", &source.domains, domains),
        ];
        for (key, what, entries, counts) in lists {
            for (i, (name, count)) in entries.iter().zip(counts).enumerate() {
                if *count > 0 {
                    continue;
                }
                let candidates = names.map(|n| match what {
                    "org unit" => &n.org_units,
                    _ => &n.domains,
                });
                self.plan.errors.push(PlanError::SelectorNotFound {
                    key: format!("source.directory.{key}"),
                    what: what.to_owned(),
                    name: name.clone(),
                    suggestion: super::reach::suggest(name, candidates),
                    at: self.input.at(&format!("/spec/source/directory/{key}/{i}")),
                });
                fine = false;
            }
        }
        fine
    }

    /// A directory sync's `customFields` against the Directory's custom schemas:
    /// an unknown schema or field holds the sync back, at its manifest line.
    fn judge_custom_fields(&mut self, schemas: &[UserSchema]) -> bool {
        let custom = self
            .input
            .manifest
            .spec
            .source
            .directory
            .as_ref()
            .map(|d| d.custom_fields.clone())
            .unwrap_or_default();
        let mut fine = true;
        for (i, c) in custom.iter().enumerate() {
            let at = |key: &str| {
                self.input.at(&format!("/spec/source/directory/customFields/{i}/{key}"))
            };
            let error = match schemas.iter().find(|s| s.name == c.schema) {
                None => PlanError::CustomFieldNotFound {
                    schema: c.schema.clone(),
                    field: None,
                    suggestion: crate::validate::did_you_mean(
                        &c.schema,
                        schemas.iter().map(|s| s.name.as_str()),
                    )
                    .map(str::to_owned),
                    at: at("schema"),
                },
                Some(schema) if !schema.fields.contains(&c.field) => {
                    PlanError::CustomFieldNotFound {
                        schema: c.schema.clone(),
                        field: Some(c.field.clone()),
                        suggestion: crate::validate::did_you_mean(
                            &c.field,
                            schema.fields.iter().map(String::as_str),
                        )
                        .map(str::to_owned),
                        at: at("field"),
                    }
                }
                Some(_) => continue,
            };
            self.plan.errors.push(error);
            fine = false;
        }
        fine
    }

    /// Resolves the destinations: selectors minus exclusions minus the source user
    /// ([`Run::reach`]).
    fn select(&mut self, resolved: &SyncResolution, directory: &Directory<'_>) {
        let reach = self.reach(resolved, directory);
        for unresolved in reach.unresolved {
            self.held.extend(unresolved.renamed);
            if unresolved.of_sync {
                // Not a user: an error of the sync, which holds it all back (a
                // typo must neither reach nor spare anyone, nor delete copies).
                self.plan.errors.push(unresolved.error);
            } else {
                self.hold_back(&unresolved.address, unresolved.error);
            }
        }
        for reached in reach.users {
            match reached.outcome {
                Outcome::Destination => {
                    self.selected.insert(reached.user.id);
                }
                Outcome::Skipped(why) => {
                    self.held.insert(reached.user.id.clone());
                    let skipped = DestinationPlan::skipped(&reached.user.primary_email, &why);
                    self.plan.destinations.push(skipped);
                }
                Outcome::Excluded(_) => {}
            }
        }
    }

    /// Whom the sync's selectors reach, and why: what the destinations are
    /// selected from, and what `contact-sync resolve` shows. A personal sync's
    /// source user (found, renamed or suspended) is never its own destination.
    fn reach(&self, resolved: &SyncResolution, directory: &Directory<'_>) -> Reach {
        let source_id = match &resolved.source {
            SourceResolution::Personal(user) => user.as_ref().map(|u| u.id.as_str()),
            SourceResolution::Directory { .. } => None,
        };
        let input = self.input;
        super::reach::reach(
            &input.manifest.spec.destinations,
            resolved,
            &|email| directory.get(email),
            directory.names,
            source_id,
            &|pointer| input.at(pointer),
        )
    }

    /// Records a destination held back by an error about `address` (as the manifest
    /// names it).
    fn hold_back(&mut self, address: &str, error: PlanError) {
        self.plan.destinations.push(DestinationPlan::error(address, error));
    }

    /// Plans `user` for this sync if it is selected, or has state to prune. The
    /// destination's changes are interned at once: destinations with the same
    /// changes (every one, on a first sync) hold one list between them.
    fn plan_user(&mut self, user: &DirectoryUser, actual: &Actual) {
        let SourceState::Desired(desired) = &self.state else { return };
        let name = desired.name.as_str();
        self.managed += actual.marked_contacts(name).count();
        if let Some(users) = &self.adopt {
            // An adoption plans the destinations named that have a group of the
            // target name and none of the sync's own; nobody else.
            let named = users.is_empty() || users.contains(&user.primary_email.to_lowercase());
            let conflict = actual.marked_groups(name).is_empty()
                && actual.groups.iter().any(|g| g.name == desired.target_group);
            if !(named && conflict && self.selected.contains(&user.id)) {
                return;
            }
            let mut planned = plan_adopted(desired, actual);
            planned.changes = self.shared.intern(planned.changes);
            self.plan.destinations.push(planned);
            return;
        }
        let mut planned = if self.selected.contains(&user.id) {
            plan_selected(desired, actual)
        } else if !self.held.contains(&user.id)
            && (actual.marked_contacts(name).next().is_some()
                || !actual.marked_groups(name).is_empty())
        {
            plan_removed(name, actual, Reason::DestinationRemoved)
        } else {
            return;
        };
        planned.changes = self.shared.intern(planned.changes);
        self.plan.destinations.push(planned);
    }

    /// Sorts destinations and applies the deletion guard.
    fn finish(mut self, input: &PlanInput) -> SyncPlan {
        for error in self.plan.destinations.iter_mut().filter_map(|d| d.error.as_mut()) {
            if let PlanError::TargetGroupConflict { rerun, .. } = error {
                rerun.clone_from(&input.rerun);
            }
        }
        let planned = self.desired().is_some();
        if !planned {
            // Held back: its selection planned nothing.
            self.selected.clear();
        }
        self.plan.users = if planned { self.selected.len() } else { 0 };
        self.plan.destinations.sort_by_key(|a| a.user.to_lowercase());
        let deletes = self
            .plan
            .destinations
            .iter()
            .flat_map(|d| &d.changes)
            .filter(|c| c.resource == Resource::Contact && c.action == Action::Delete)
            .filter(|c| {
                matches!(
                    c.reason,
                    Reason::RemovedFromSource | Reason::DestinationRemoved | Reason::Hidden
                )
            })
            .count();
        let pct = usize::from(input.max_delete_percent);
        let approved = input.approved_deletes.get(self.name()).copied();
        let over = self.managed > 0 && deletes * 100 > pct * self.managed;
        if over && !input.allow_deletes && approved != Some(deletes) {
            self.plan.errors.push(PlanError::DeleteGuard {
                sync: self.name().to_owned(),
                deletes,
                managed: self.managed,
                max_percent: pct,
                approved,
                at: self.input.at("/metadata/name"),
            });
        }
        self.plan
    }
}
