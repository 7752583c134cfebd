//! The driver that reads the tenant for the planner: read the inventory, resolve
//! the directory ([`crate::directory`]) for the users the run needs, read what the
//! planner asks for — the personal sources, then the users the planner wants read (those its syncs select and
//! those the inventory lists as holding their state; every active user on a full
//! scan), concurrently, one at a time into the planner — and hand back the plan
//! with what was read ([`Survey`]). Every decision is the planner's
//! ([`crate::plan::planner`]); this module only reads, in the order it is told.
//! Memory is bounded by the source groups and the users in flight, not by the
//! tenant.

use std::sync::Arc;

use futures::StreamExt;

use crate::backend::{self, Backend};
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
    let reads = futures::stream::iter(to_read)
        .map(|user| read_user(backend, user, &wanted))
        .buffered(backend.concurrency());
    futures::pin_mut!(reads);
    let mut done = 0;
    while let Some((user, read)) = reads.next().await {
        done += 1;
        progress(done, total);
        match read {
            Ok((groups, contacts)) => {
                survey.seen.insert(user.id.clone(), Seen::of(user, &groups, contacts.as_deref()));
                if let Some(contacts) = contacts {
                    planner.user(user, &groups, &contacts);
                }
            }
            Err(e) => {
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
    for (sync, source) in planner.source_reads() {
        let groups = backend
            .contact_groups(&source)
            .await
            .map_err(|e| Unreadable::ContactGroups { user: source.clone(), cause: cause(e) });
        if planner.source_groups(sync, groups) {
            let contacts = backend
                .contacts(&source)
                .await
                .map_err(|e| Unreadable::Contacts { user: source.clone(), cause: cause(e) });
            planner.source_contacts(sync, contacts);
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

/// One user's groups and, if the planner wants them, contacts (`None`: no sync
/// selects the user, the inventory does not list it and none has left state there).
type UserRead = backend::Result<(Vec<ContactGroup>, Option<Vec<Contact>>)>;

async fn read_user<'u>(
    backend: &dyn Backend,
    user: &'u DirectoryUser,
    wanted: &Reads,
) -> (&'u DirectoryUser, UserRead) {
    let read = async {
        let groups = backend.contact_groups(&user.primary_email).await?;
        if !wanted.needs_contacts(user, &groups) {
            return Ok((groups, None));
        }
        let contacts = backend.contacts(&user.primary_email).await?;
        Ok((groups, Some(contacts)))
    };
    (user, read.await)
}
