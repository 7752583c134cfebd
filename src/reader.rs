//! The driver that reads the tenant for the planner: read the inventory, resolve
//! the directory ([`crate::directory`]) for the users the run needs, read what the
//! planner asks for — the personal sources, then the users the planner wants read (those its syncs select and
//! those the inventory lists as holding their state; every active user on a full
//! scan), concurrently, one at a time into the planner — and hand back the plan
//! with what was read ([`Survey`]). Every decision is the planner's
//! ([`crate::plan::planner`]); this module only reads, in the order it is told.
//! Memory is bounded by the source groups and the users in flight, not by the
//! tenant.

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;

use crate::backend::{self, Backend, SyncTokens};
use crate::cache::{Entry, ReadCache};
use crate::input::PlanInput;
use crate::model::inventory::StoredInventory;
use crate::model::resolution::{Cause, Unreadable};
use crate::model::{Contact, ContactGroup, DirectoryUser};
use crate::plan::Plan;
use crate::plan::planner::{self, Planner, Reads};
use crate::plan::survey::{Seen, Survey};
use crate::text::error_chain;

/// The plan for `input` against the tenant behind `backend`.
///
/// Only listing the directory is fatal: a sync whose source or selectors cannot be
/// read is held back, and a user whose contacts cannot be read is an error of that
/// user — the rest is planned. An inventory that cannot be read makes the run read
/// every user.
pub async fn plan(backend: &dyn Backend, input: &PlanInput) -> backend::Result<Plan> {
    plan_with(backend, input, &|_, _| {}).await
}

/// [`plan`], calling `progress(read, to_read)` as the users' contacts are read
/// (first with 0 once the directory is resolved and the sources are read).
pub async fn plan_with(
    backend: &dyn Backend,
    input: &PlanInput,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> backend::Result<Plan> {
    plan_cached(backend, input, progress, None).await
}

/// [`plan_with`], with the read cache (see [`crate::cache`]): a user whose
/// incremental listings say nothing changed since its last full read, and of whom
/// this run desires what that read was up to date with, is planned from the
/// cache; every other user is read in full, with sync tokens for next time, and
/// what it concluded is recorded. On a full scan, and for `adopt`, every user is
/// read in full.
pub async fn plan_cached(
    backend: &dyn Backend,
    input: &PlanInput,
    progress: &(dyn Fn(usize, usize) + Sync),
    cache: Option<&ReadCache>,
) -> backend::Result<Plan> {
    let mut survey = Survey::default();
    match backend.read_inventory().await {
        Ok(stored) => survey.stored = stored,
        Err(e) => {
            survey.stored = Some(StoredInventory::default());
            survey.unreadable = Some(error_chain(&e));
        }
    }
    let scope = planner::scope(input, survey.listed(), chrono::Utc::now());
    let resolution = crate::directory::resolve(backend, input, scope.as_ref()).await?;
    let mut planner = Planner::new(input, &resolution);
    read_sources(backend, &mut planner).await;
    let wanted = planner.reads(scope.as_ref());
    survey.full = wanted.full();
    let active: Vec<&DirectoryUser> = resolution.users.iter().filter(|u| !u.inactive()).collect();
    if let Some(listed) = survey.listed() {
        let ids: std::collections::HashSet<&str> =
            resolution.users.iter().map(|u| u.id.as_str()).collect();
        // Listings can lag: a user missing from it is gone only if a lookup by id
        // says so too.
        let looked_for = |id: &String| scope.as_ref().is_none_or(|s| s.contains(id));
        let missing: Vec<String> = listed
            .holders
            .keys()
            .filter(|id| looked_for(id) && !ids.contains(id.as_str()))
            .cloned()
            .collect();
        for id in missing {
            if let Ok(None) = backend.user(&id).await {
                survey.gone.push(id);
            }
        }
    }
    let to_read: Vec<&DirectoryUser> =
        active.into_iter().filter(|u| wanted.reads_user(u)).collect();
    let total = to_read.len();
    progress(0, total);
    // Which users may be planned from the cache, decided before the reads.
    let skippable = cache.filter(|_| !survey.full && input.adopt.is_none());
    let jobs: Vec<(&DirectoryUser, Option<Entry>)> = to_read
        .into_iter()
        .map(|u| {
            let entry = skippable
                .and_then(|c| c.get(&u.id))
                .filter(|e| e.converged.desired == planner.desired_digest(u, &e.converged.owners));
            (u, entry)
        })
        .collect();
    let synced = cache.is_some();
    let reads = futures::stream::iter(jobs)
        .map(|(user, entry)| read_user(backend, user, &wanted, synced, entry))
        .buffered(backend.concurrency());
    futures::pin_mut!(reads);
    let mut done = 0;
    while let Some((user, read)) = reads.next().await {
        done += 1;
        progress(done, total);
        match read {
            Ok(Read::Unchanged(entry)) => {
                survey.read_incremental += 1;
                let seen = Seen {
                    email: user.primary_email.clone(),
                    owners: entry.converged.owners.clone(),
                    complete: true,
                };
                survey.seen.insert(user.id.clone(), seen);
                planner.cached(user, &entry.converged);
                cache.inspect(|c| c.put(&user.id, entry));
            }
            Ok(Read::Full { groups, contacts, tokens }) => {
                survey.read_full += 1;
                survey.seen.insert(user.id.clone(), Seen::of(user, &groups, contacts.as_deref()));
                let converged =
                    contacts.and_then(|contacts| planner.user_read(user, &groups, &contacts));
                if let Some(cache) = cache {
                    match converged.zip(tokens) {
                        Some((converged, tokens)) => {
                            cache.put(&user.id, Entry { tokens, converged })
                        }
                        None => cache.forget(&user.id),
                    }
                }
            }
            Err(e) => {
                survey.read_full += 1;
                cache.inspect(|c| c.forget(&user.id));
                let email = user.primary_email.clone();
                planner.unreadable(user, &Unreadable::Contacts { user: email, cause: Arc::new(e) });
            }
        }
    }
    let mut plan = planner.finish();
    plan.notes.extend(survey.why_full());
    plan.survey = survey;
    Ok(plan)
}

/// Gives the planner each personal source's contact groups and, when it asks
/// for them (the source group is there), its contacts.
async fn read_sources(backend: &dyn Backend, planner: &mut Planner<'_>) {
    let cause = |e: backend::Error| -> Cause { Arc::new(e) };
    // Each source user is read once per run, however many syncs copy from it.
    let mut groups_of: HashMap<String, Result<Vec<ContactGroup>, Unreadable>> = HashMap::new();
    let mut contacts_of: HashMap<String, Result<Vec<Contact>, Unreadable>> = HashMap::new();
    for (sync, source) in planner.source_reads() {
        let key = source.to_lowercase();
        if !groups_of.contains_key(&key) {
            let groups = backend
                .contact_groups(&source)
                .await
                .map_err(|e| Unreadable::ContactGroups { user: source.clone(), cause: cause(e) });
            groups_of.insert(key.clone(), groups);
        }
        if planner.source_groups(sync, groups_of[&key].clone()) {
            if !contacts_of.contains_key(&key) {
                let contacts = backend
                    .contacts(&source)
                    .await
                    .map_err(|e| Unreadable::Contacts { user: source.clone(), cause: cause(e) });
                contacts_of.insert(key.clone(), contacts);
            }
            planner.source_contacts(sync, contacts_of[&key].clone());
        }
    }
}

/// Whom each sync of `input` reaches, and why ([`Planner::reaches`]): directory
/// reads only — the syncs' selectors and the members of their groups — and no
/// contact.
pub async fn reach(
    backend: &dyn Backend,
    input: &PlanInput,
) -> backend::Result<Vec<planner::SyncReach>> {
    let none = std::collections::BTreeSet::new();
    let resolution = crate::directory::resolve(backend, input, Some(&none)).await?;
    Ok(Planner::new(input, &resolution).reaches(&resolution))
}

/// What was read of one user.
enum Read {
    /// Its groups and, if the planner wants them (`None`: no sync selects the
    /// user, the inventory does not list it and none has left state there), its
    /// contacts, with the listings' sync tokens when asked for and given.
    Full { groups: Vec<ContactGroup>, contacts: Option<Vec<Contact>>, tokens: Option<SyncTokens> },
    /// Nothing changed since its cache entry, which now carries the new tokens.
    Unchanged(Entry),
}

async fn read_user<'u>(
    backend: &dyn Backend,
    user: &'u DirectoryUser,
    wanted: &Reads,
    synced: bool,
    entry: Option<Entry>,
) -> (&'u DirectoryUser, backend::Result<Read>) {
    let email = &user.primary_email;
    if let Some(mut entry) = entry {
        match backend.unchanged_since(email, &entry.tokens).await {
            Ok(Some(tokens)) => {
                entry.tokens = tokens;
                return (user, Ok(Read::Unchanged(entry)));
            }
            Ok(None) => {}
            // Only a full read tells: it says what is wrong, if anything still is.
            Err(e) => {
                tracing::debug!("incremental read of {email} failed ({e}); reading it in full")
            }
        }
    }
    let read = async {
        if !synced {
            let groups = backend.contact_groups(email).await?;
            if !wanted.needs_contacts(user, &groups) {
                return Ok(Read::Full { groups, contacts: None, tokens: None });
            }
            let contacts = backend.contacts(email).await?;
            return Ok(Read::Full { groups, contacts: Some(contacts), tokens: None });
        }
        let (groups, groups_token) = backend.contact_groups_synced(email).await?;
        if !wanted.needs_contacts(user, &groups) {
            return Ok(Read::Full { groups, contacts: None, tokens: None });
        }
        let (contacts, contacts_token) = backend.contacts_synced(email).await?;
        let tokens = groups_token
            .zip(contacts_token)
            .map(|(groups, contacts)| SyncTokens { groups, contacts });
        Ok(Read::Full { groups, contacts: Some(contacts), tokens })
    };
    (user, read.await)
}
