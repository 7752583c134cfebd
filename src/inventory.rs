//! The driver that reads the tenant for the planner: resolve the directory
//! ([`crate::directory`]), read what the planner asks for — the personal sources,
//! then every active user, concurrently, one at a time into the planner — and
//! hand back the plan. Every decision is the planner's
//! ([`crate::plan::planner`]); this module only reads, in the order it is told.
//! Memory is bounded by the source groups and the users in flight, not by the
//! tenant.

use futures::StreamExt;

use crate::backend::{self, Backend};
use crate::model::{Contact, ContactGroup, DirectoryUser};
use crate::plan::planner::{Planner, Reads};
use crate::plan::{Plan, PlanInput};
use crate::text::error_chain;

/// The plan for `input` against the tenant behind `backend`.
///
/// Only listing the directory is fatal: a sync whose source or selectors cannot be
/// read is held back, and a user whose contacts cannot be read is an error of that
/// user — the rest is planned.
pub async fn plan(backend: &dyn Backend, input: &PlanInput) -> backend::Result<Plan> {
    let resolution = crate::directory::resolve(backend, input).await?;
    let mut planner = Planner::new(input, &resolution);
    for (sync, source) in planner.source_reads() {
        let groups = backend.contact_groups(&source).await.map_err(|e| error_chain(&e));
        if planner.source_groups(sync, groups) {
            let contacts = backend.contacts(&source).await.map_err(|e| error_chain(&e));
            planner.source_contacts(sync, contacts);
        }
    }
    let wanted = planner.reads();
    let reads = futures::stream::iter(resolution.users.iter().filter(|u| !u.inactive()))
        .map(|user| read_user(backend, user, &wanted))
        .buffered(backend.concurrency());
    futures::pin_mut!(reads);
    while let Some((user, read)) = reads.next().await {
        match read {
            Ok(None) => {}
            Ok(Some((groups, contacts))) => planner.user(user, &groups, &contacts),
            Err(e) => planner.unreadable(user, &error_chain(&e)),
        }
    }
    Ok(planner.finish())
}

/// One user's groups and, if the planner wants them, contacts (`None`: no sync
/// selects the user and none has left state there).
type UserRead = backend::Result<Option<(Vec<ContactGroup>, Vec<Contact>)>>;

async fn read_user<'u>(
    backend: &dyn Backend,
    user: &'u DirectoryUser,
    wanted: &Reads,
) -> (&'u DirectoryUser, UserRead) {
    let read = async {
        let groups = backend.contact_groups(&user.primary_email).await?;
        if !wanted.needs_contacts(user, &groups) {
            return Ok(None);
        }
        let contacts = backend.contacts(&user.primary_email).await?;
        Ok(Some((groups, contacts)))
    };
    (user, read.await)
}
