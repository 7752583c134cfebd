//! Reading the actual state and feeding the planner, one user at a time.
//!
//! The desired contacts of each sync are derived once (the source group is read
//! once per sync); then every active user of the directory is visited: its contact
//! groups are read (one cheap call) to learn which syncs have left state there, and
//! only users that a sync selects or has state in get their contacts read, planned
//! and dropped. Memory is bounded by the source groups and the user in flight, not
//! by the tenant. Everything read is hashed into the plan's fingerprint, so a saved
//! plan can tell whether the tenant moved since.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use futures::StreamExt;
use sha2::{Digest, Sha256};

use crate::backend::{self, Backend, UserScope};
use crate::manifest::{OrphanPolicy, SyncType};
use crate::model::{ContactGroup, DirectoryUser};
use crate::plan::desired::DesiredSync;
use crate::plan::destination::{Actual, plan_removed, plan_selected};
use crate::plan::{
    Action, DestinationPlan, ErrorKind, Orphan, Plan, PlanError, PlanInput, Reason, Resource,
    SyncInput, SyncPlan,
};

/// The plan for `input` against the tenant behind `backend`.
///
/// Only listing the directory is fatal: a sync whose source or selectors cannot be
/// read is held back with an `api` error, and a user whose contacts cannot be read
/// is an error of that user (and of every sync that selects it) — the rest is
/// planned. Orphans are pruned only from the whole picture: not when the manifest
/// set is partial, and not when a user could not be read.
pub async fn plan(backend: &dyn Backend, input: &PlanInput) -> backend::Result<Plan> {
    let mut fp = Sha256::new();
    let mut users = backend.users(UserScope::All).await?;
    users.sort_by_key(|a| a.primary_email.to_lowercase());
    for u in &users {
        feed(
            &mut fp,
            &[&u.id, &u.primary_email, &u.suspended.to_string(), &u.archived.to_string()],
        );
    }
    let directory = Directory::new(&users);

    let mut runs = Vec::new();
    for sync in &input.syncs {
        runs.push(Run::prepare(backend, sync, &directory, &mut fp).await);
    }

    let find_orphans = input.partial.is_none();
    let mut orphans: BTreeMap<String, SyncPlan> = BTreeMap::new();
    let mut kept = Vec::new();
    let mut errors = Vec::new();
    let mut unreadable = 0;
    let mut managed = 0;
    let known: HashSet<&str> = input.known_syncs.iter().map(String::as_str).collect();
    // Who needs a full read, decided from the groups alone: computed before the
    // reads start so they can run concurrently while the planner works.
    let selected: HashSet<String> = runs
        .iter()
        .filter(|r| r.desired.is_some())
        .flat_map(|r| r.selected.iter().cloned())
        .collect();
    let planned: HashSet<String> =
        runs.iter().filter(|r| r.desired.is_some()).map(|r| r.name().to_owned()).collect();
    let wanted = |owner: &str| planned.contains(owner) || (find_orphans && !known.contains(owner));
    let reads = futures::stream::iter(users.iter().filter(|u| !u.inactive()))
        .map(|user| read_user(backend, user, selected.contains(&user.id), &wanted))
        .buffered(backend.concurrency());
    futures::pin_mut!(reads);
    while let Some(read) = reads.next().await {
        let (user, groups, contacts) = match read {
            UserRead::NotInvolved => continue,
            UserRead::Failed(user, e) => {
                unreadable += 1;
                let mut error = PlanError::new(
                    ErrorKind::Api,
                    format!(
                        "cannot read the contacts of {}: {e}; nothing is changed for this user \
                         in this run",
                        user.primary_email
                    ),
                );
                error.email = Some(user.primary_email.clone());
                let mut selecting = runs.iter_mut().filter(|r| r.selects(&user.id)).peekable();
                if selecting.peek().is_none() {
                    errors.push(error);
                    continue;
                }
                for run in selecting {
                    let dest = DestinationPlan::error(&user.primary_email, error.clone());
                    run.plan.destinations.push(dest);
                }
                continue;
            }
            UserRead::Read(user, groups, contacts) => (user, groups, contacts),
        };
        feed_user(&mut fp, user, &groups, &contacts);
        managed += contacts.iter().filter(|c| c.owner().is_some()).count();
        let actual = Actual {
            user: &user.primary_email,
            id: &user.id,
            groups: &groups,
            contacts: &contacts,
        };
        for run in &mut runs {
            run.plan_user(user, &actual);
        }
        if find_orphans {
            let owners: BTreeSet<&str> = groups
                .iter()
                .filter_map(|g| g.owner())
                .chain(contacts.iter().filter_map(|c| c.owner()))
                .filter(|o| !known.contains(o))
                .collect();
            for owner in owners {
                match input.orphans {
                    OrphanPolicy::Delete => {
                        let plan = orphans.entry(owner.to_owned()).or_insert_with(|| SyncPlan {
                            name: owner.to_owned(),
                            source: "(manifest deleted)".into(),
                            orphaned: true,
                            ..SyncPlan::default()
                        });
                        plan.destinations.push(plan_removed(owner, &actual, Reason::SyncDeleted));
                    }
                    OrphanPolicy::Keep => kept.push(Orphan {
                        sync: owner.to_owned(),
                        user: user.primary_email.clone(),
                        contacts: actual.marked_contacts(owner).count(),
                        groups: actual.marked_groups(owner).len(),
                    }),
                }
            }
        }
    }

    let (orphans, kept, notes) = crate::plan::settle_orphans(
        orphans.into_values().collect(),
        kept,
        unreadable,
        managed,
        input,
    );
    let mut plan =
        Plan { format_version: "1".into(), orphans: kept, errors, notes, ..Plan::default() };
    for run in runs {
        plan.syncs.push(run.finish(input));
    }
    plan.syncs.extend(orphans);
    plan.syncs.sort_by(|a, b| a.name.cmp(&b.name));
    plan.fingerprint = hex::encode(fp.finalize());
    plan.summarize();
    Ok(plan)
}

/// What one user's read produced.
enum UserRead<'u> {
    /// No sync selects the user and it holds no state of one: not read further.
    NotInvolved,
    /// Its groups and contacts.
    Read(&'u DirectoryUser, Vec<ContactGroup>, Vec<crate::model::Contact>),
    /// A read failed (after the backend's retries).
    Failed(&'u DirectoryUser, backend::Error),
}

/// Reads a user's groups and, if a sync selects the user or has left state there,
/// its contacts.
async fn read_user<'u>(
    backend: &dyn Backend,
    user: &'u DirectoryUser,
    selected: bool,
    wanted: &impl Fn(&str) -> bool,
) -> UserRead<'u> {
    let groups = match backend.contact_groups(&user.primary_email).await {
        Ok(groups) => groups,
        Err(e) => return UserRead::Failed(user, e),
    };
    if !selected && !groups.iter().filter_map(|g| g.owner()).any(wanted) {
        return UserRead::NotInvolved;
    }
    match backend.contacts(&user.primary_email).await {
        Ok(contacts) => UserRead::Read(user, groups, contacts),
        Err(e) => UserRead::Failed(user, e),
    }
}

fn feed(fp: &mut Sha256, parts: &[&str]) {
    for p in parts {
        fp.update(p.as_bytes());
        fp.update([0]);
    }
    fp.update([1]);
}

fn feed_user(
    fp: &mut Sha256,
    user: &DirectoryUser,
    groups: &[ContactGroup],
    contacts: &[crate::model::Contact],
) {
    feed(fp, &["user", &user.id]);
    for g in groups {
        feed(fp, &[&g.resource_name, &g.etag]);
    }
    for c in contacts {
        feed(fp, &[&c.resource_name, &c.etag]);
    }
}

/// The directory, indexed for group and selector resolution.
struct Directory<'a> {
    by_email: HashMap<String, &'a DirectoryUser>,
}

impl<'a> Directory<'a> {
    fn new(users: &'a [DirectoryUser]) -> Self {
        let mut by_email = HashMap::new();
        for u in users {
            by_email.insert(u.primary_email.to_lowercase(), u);
            for a in &u.aliases {
                by_email.entry(a.to_lowercase()).or_insert(u);
            }
        }
        Self { by_email }
    }

    fn get(&self, email: &str) -> Option<&'a DirectoryUser> {
        self.by_email.get(&email.to_lowercase()).copied()
    }
}

/// One sync being planned.
struct Run<'a> {
    input: &'a SyncInput,
    /// `None` when a source error holds the whole sync back.
    desired: Option<DesiredSync>,
    plan: SyncPlan,
    /// Selected destinations, by user id.
    selected: HashSet<String>,
    /// Users that are not planned and not pruned (renamed, inactive).
    held: HashSet<String>,
    /// Marked contacts seen, for the deletion guard.
    managed: usize,
}

impl<'a> Run<'a> {
    /// Resolves the sync's source and destinations. A read that fails holds the
    /// whole sync back (its destinations are unknown, so nothing may be pruned).
    async fn prepare(
        backend: &dyn Backend,
        input: &'a SyncInput,
        directory: &Directory<'_>,
        fp: &mut Sha256,
    ) -> Run<'a> {
        let manifest = &input.manifest;
        let mut run = Run {
            input,
            desired: None,
            plan: SyncPlan {
                name: input.name().to_owned(),
                suspended: manifest.spec.suspend,
                ..SyncPlan::default()
            },
            selected: HashSet::new(),
            held: HashSet::new(),
            managed: 0,
        };
        if let Err(e) = run.resolve(backend, directory, fp).await {
            run.desired = None;
            run.selected.clear();
            run.plan.destinations.clear();
            let mut error = PlanError::new(
                ErrorKind::Api,
                format!(
                    "cannot read what the sync needs: {e}; nothing is changed for this sync in this run"
                ),
            );
            error.location = Some(input.at("/metadata/name"));
            run.plan.errors.push(error);
        }
        run.plan.source = run.desired.as_ref().map_or_else(
            || manifest.spec.source.user.clone().unwrap_or_else(|| "the directory".into()),
            |d| d.source_label.clone(),
        );
        run
    }

    async fn resolve(
        &mut self,
        backend: &dyn Backend,
        directory: &Directory<'_>,
        fp: &mut Sha256,
    ) -> backend::Result<()> {
        let source_id = match self.input.manifest.spec.sync_type {
            SyncType::Personal => self.resolve_personal(backend, fp).await?,
            SyncType::Directory => self.resolve_directory(backend, directory, fp).await?,
        };
        self.select(backend, directory, source_id.as_deref()).await
    }

    fn name(&self) -> &str {
        self.input.name()
    }

    fn selects(&self, id: &str) -> bool {
        self.desired.is_some() && self.selected.contains(id)
    }

    fn source_error(&mut self, kind: ErrorKind, pointer: &str, message: String) {
        let mut e = PlanError::new(kind, message);
        e.email = self.input.manifest.spec.source.user.clone();
        e.location = Some(self.input.at(pointer));
        self.plan.errors.push(e);
    }

    /// Reads the source user and group; returns the source user's id.
    async fn resolve_personal(
        &mut self,
        backend: &dyn Backend,
        fp: &mut Sha256,
    ) -> backend::Result<Option<String>> {
        let spec = &self.input.manifest.spec;
        let address = spec.source.user.clone().unwrap_or_default();
        let group_name = spec.source.contact_group.clone().unwrap_or_default();
        let at_user = self.input.at("/spec/source/user");
        let Some(user) = backend.user(&address).await? else {
            let message = format!(
                "source user {address} not found in the directory; fix source.user in {at_user}"
            );
            self.source_error(ErrorKind::SourceNotFound, "/spec/source/user", message);
            return Ok(None);
        };
        if !user.primary_email.eq_ignore_ascii_case(&address) {
            let message = format!(
                "source user {address} was renamed to {}; update source.user in {at_user}",
                user.primary_email
            );
            self.source_error(ErrorKind::SourceRenamed, "/spec/source/user", message);
            self.plan.errors.last_mut().expect("just pushed").renamed_to =
                Some(user.primary_email.clone());
            return Ok(Some(user.id));
        }
        if user.inactive() {
            let message = format!(
                "source user {address} is suspended or archived; nothing is synced until it is active again"
            );
            self.source_error(ErrorKind::SourceSuspended, "/spec/source/user", message);
            return Ok(Some(user.id));
        }
        let groups = backend.contact_groups(&user.primary_email).await?;
        let Some(group) = groups.iter().find(|g| g.name == group_name) else {
            let names = groups.iter().map(|g| g.name.as_str());
            let hint = crate::validate::did_you_mean(&group_name, names)
                .map(|n| format!(" (did you mean \"{n}\"?)"))
                .unwrap_or_default();
            let message = format!(
                "{address} has no contact group \"{group_name}\"{hint}; fix source.contactGroup in {}",
                self.input.at("/spec/source/contactGroup")
            );
            self.source_error(ErrorKind::SourceGroupNotFound, "/spec/source/contactGroup", message);
            return Ok(Some(user.id));
        };
        let contacts = backend.contacts(&user.primary_email).await?;
        feed(fp, &["source", &user.id, &group.resource_name, &group.etag]);
        for c in contacts.iter().filter(|c| c.memberships.contains(&group.resource_name)) {
            feed(fp, &[&c.resource_name, &c.etag]);
        }
        self.desired =
            Some(DesiredSync::personal(self.input, &user, &group.resource_name, &contacts));
        Ok(Some(user.id))
    }

    /// Collects the directory users a directory sync copies.
    async fn resolve_directory(
        &mut self,
        backend: &dyn Backend,
        directory: &Directory<'_>,
        fp: &mut Sha256,
    ) -> backend::Result<Option<String>> {
        let source = self.input.manifest.spec.source.directory.clone().unwrap_or_default();
        let mut users: BTreeMap<String, DirectoryUser> = BTreeMap::new();
        let everyone =
            source.domains.is_empty() && source.org_units.is_empty() && source.groups.is_empty();
        let mut scopes: Vec<UserScope> =
            source.domains.iter().cloned().map(UserScope::Domain).collect();
        scopes.extend(source.org_units.iter().cloned().map(UserScope::OrgUnit));
        if everyone {
            scopes.push(UserScope::All);
        }
        for scope in scopes {
            users.extend(backend.users(scope).await?.into_iter().map(|u| (u.id.clone(), u)));
        }
        for (i, group) in source.groups.iter().enumerate() {
            let Some(members) = backend.group_members(group).await? else {
                let message = format!(
                    "group {group} not found; fix source.directory.groups in {}",
                    self.input.at(&format!("/spec/source/directory/groups/{i}"))
                );
                self.source_error(
                    ErrorKind::SourceNotFound,
                    &format!("/spec/source/directory/groups/{i}"),
                    message,
                );
                return Ok(None);
            };
            users.extend(
                members.iter().filter_map(|m| directory.get(m)).map(|u| (u.id.clone(), u.clone())),
            );
        }
        let users: Vec<DirectoryUser> = users.into_values().collect();
        for u in &users {
            feed(
                fp,
                &[
                    "source",
                    &u.id,
                    &u.given_name,
                    &u.family_name,
                    &serde_json::json!([u.phones, u.organizations]).to_string(),
                    if u.include_in_global_address_list { "listed" } else { "hidden" },
                ],
            );
        }
        self.desired = Some(DesiredSync::directory(self.input, &users));
        Ok(None)
    }

    /// Resolves the destinations: selectors minus exclusions minus the source user.
    async fn select(
        &mut self,
        backend: &dyn Backend,
        directory: &Directory<'_>,
        source_id: Option<&str>,
    ) -> backend::Result<()> {
        let dest = self.input.manifest.spec.destinations.clone();
        let mut candidates: BTreeMap<String, DirectoryUser> = BTreeMap::new();
        for (i, address) in dest.users.iter().enumerate() {
            let at = self.input.at(&format!("/spec/destinations/users/{i}"));
            match backend.user(address).await? {
                None => {
                    let message =
                        format!("not found in the directory; fix destinations.users in {at}");
                    self.hold_back(ErrorKind::DestinationNotFound, address, at, message, None);
                }
                Some(u) if !u.primary_email.eq_ignore_ascii_case(address) => {
                    let message = format!(
                        "renamed to {}; update destinations.users in {at}",
                        u.primary_email
                    );
                    self.held.insert(u.id.clone());
                    self.hold_back(
                        ErrorKind::DestinationRenamed,
                        address,
                        at,
                        message,
                        Some(u.primary_email),
                    );
                }
                Some(u) => {
                    candidates.insert(u.id.clone(), u);
                }
            }
        }
        for (i, group) in dest.groups.iter().enumerate() {
            match backend.group_members(group).await? {
                None => {
                    let at = self.input.at(&format!("/spec/destinations/groups/{i}"));
                    let message = format!("group not found; fix destinations.groups in {at}");
                    self.hold_back(ErrorKind::DestinationNotFound, group, at, message, None);
                }
                Some(members) => {
                    candidates.extend(
                        members
                            .iter()
                            .filter_map(|m| directory.get(m))
                            .map(|u| (u.id.clone(), u.clone())),
                    );
                }
            }
        }
        let mut scopes: Vec<UserScope> =
            dest.org_units.iter().cloned().map(UserScope::OrgUnit).collect();
        scopes.extend(dest.domains.iter().cloned().map(UserScope::Domain));
        for scope in scopes {
            candidates.extend(backend.users(scope).await?.into_iter().map(|u| (u.id.clone(), u)));
        }

        let mut excluded: HashSet<String> = HashSet::new();
        for address in &dest.exclude.users {
            if let Some(u) = backend.user(address).await? {
                excluded.insert(u.id);
            }
        }
        for group in &dest.exclude.groups {
            for m in backend.group_members(group).await?.unwrap_or_default() {
                excluded.extend(directory.get(&m).map(|u| u.id.clone()));
            }
        }
        for u in candidates.into_values() {
            let excluded = excluded.contains(&u.id)
                || Some(u.id.as_str()) == source_id
                || dest
                    .exclude
                    .org_units
                    .iter()
                    .any(|ou| crate::model::in_org_unit(&u.org_unit_path, ou));
            if excluded {
                continue;
            }
            if u.inactive() {
                let why = if u.suspended { "suspended" } else { "archived" };
                self.held.insert(u.id.clone());
                self.plan.destinations.push(DestinationPlan::skipped(&u.primary_email, why));
            } else {
                self.selected.insert(u.id);
            }
        }
        Ok(())
    }

    /// Records a destination held back by an error about `address` (as the manifest
    /// names it at `location`).
    fn hold_back(
        &mut self,
        kind: ErrorKind,
        address: &str,
        location: String,
        message: String,
        renamed_to: Option<String>,
    ) {
        let mut e = PlanError::new(kind, message);
        e.email = Some(address.to_owned());
        e.renamed_to = renamed_to;
        e.location = Some(location);
        self.plan.destinations.push(DestinationPlan::error(address, e));
    }

    /// Plans `user` for this sync if it is selected, or has state to prune.
    fn plan_user(&mut self, user: &DirectoryUser, actual: &Actual) {
        let Some(desired) = &self.desired else { return };
        let name = desired.name.as_str();
        self.managed += actual.marked_contacts(name).count();
        if self.selected.contains(&user.id) {
            self.plan.destinations.push(plan_selected(desired, actual));
        } else if !self.held.contains(&user.id)
            && (actual.marked_contacts(name).next().is_some()
                || !actual.marked_groups(name).is_empty())
        {
            self.plan.destinations.push(plan_removed(name, actual, Reason::DestinationRemoved));
        }
    }

    /// Sorts destinations and applies the deletion guard.
    fn finish(mut self, input: &PlanInput) -> SyncPlan {
        self.plan.users = if self.desired.is_some() { self.selected.len() } else { 0 };
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
        if !input.allow_deletes && self.managed > 0 && deletes * 100 > pct * self.managed {
            let mut e = PlanError::new(
                ErrorKind::DeleteGuard,
                format!(
                    "would delete {deletes} of {} managed contacts ({}%), more than maxDeletePercent \
                     {pct}%; nothing is applied for this sync. If this is intended (an emptied \
                     source group?), run again with --allow-deletes",
                    self.managed,
                    deletes * 100 / self.managed
                ),
            );
            e.location = Some(self.input.at("/metadata/name"));
            self.plan.errors.push(e);
        }
        self.plan
    }
}
