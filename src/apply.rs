//! Executing a plan verbatim: every change carries its operation, apply only
//! batches them per destination and sends them in a fixed order — target group,
//! new contacts, updates, photos, memberships, deletions, group deletions.
//!
//! One failing destination does not stop the others: each destination's outcome is
//! collected into the report, and any failure makes the command exit 1.
//!
//! An apply is asked for with [`Apply`]: its check refuses what must not be
//! applied, and [`Checked::run`] applies the rest and says how it ended — for
//! `apply` and `reconcile` alike.
//!
//! An interruption (the `cancel` token of [`Checked::run`]) lets the users in flight
//! finish and starts no other. Whether this process may still write at all is the
//! backend's to ask, before every request: see [`crate::lease`].

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::backend::{self, Backend};

use crate::model::inventory::{Inventory, StoredInventory};
use crate::model::photo::{self, PhotoLocation, PhotoMarker, SourcePhoto};
use crate::model::{ClientData, ContactUpdate, NewContact, PersonFields};
use crate::plan::survey::BeforeError;
use crate::plan::{Action, Adopt, Change, ContactRef, DestinationPlan, GroupRef, Op, Plan};

/// What applying one destination did.
#[derive(Clone, Debug, Default)]
pub struct DestinationReport {
    /// The sync.
    pub sync: String,
    /// The destination user.
    pub user: String,
    /// Contacts and groups created.
    pub added: usize,
    /// Contacts and groups updated.
    pub changed: usize,
    /// Contacts and groups deleted.
    pub deleted: usize,
    /// Why it failed, if it did.
    pub error: Option<backend::Error>,
}

/// Why nothing was applied: the inventory could not first list every user about
/// to receive synced contacts.
#[derive(Clone, Debug, thiserror::Error)]
pub enum InventoryError {
    /// No inventory can be computed that keeps it true.
    #[error(transparent)]
    Before(#[from] BeforeError),
    /// Writing it failed.
    #[error(
        "cannot record the users about to receive synced contacts in the inventory: {}",
        crate::text::error_chain(source)
    )]
    Record {
        #[source]
        source: backend::Error,
    },
}

/// Why the inventory was not brought up to date after the changes: harmless, it
/// still lists every user holding synced contacts (and more).
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "the inventory was not brought up to date after the changes ({}); it still lists every user \
     holding synced contacts, so the next run reads a few more users",
    crate::text::error_chain(source)
)]
pub struct InventoryNotUpdated {
    /// Why writing it failed.
    #[source]
    pub source: backend::Error,
}

/// What an apply did, destination by destination.
#[derive(Clone, Debug, Default)]
pub struct Report {
    /// Per destination, in plan order.
    pub destinations: Vec<DestinationReport>,
    /// Syncs not applied because of plan errors (deletion guard, source errors).
    pub held_back: Vec<String>,
    /// Why the writes could not be made durable, if so (nothing was applied then).
    pub commit_error: Option<backend::Error>,
    /// Destinations not started because the apply was interrupted.
    pub not_started: usize,
    /// Why nothing was applied because the inventory could not be brought up to
    /// date first (it must list every user about to receive synced contacts).
    pub inventory_error: Option<InventoryError>,
    /// The inventory as it stands after the run (`None`: the backend keeps none, or
    /// it could not be read).
    pub inventory: Option<crate::model::inventory::Inventory>,
    /// Why the inventory could not be updated after the changes, if so: harmless
    /// (it still lists every user holding synced contacts, and more), said as a
    /// warning.
    pub inventory_warning: Option<InventoryNotUpdated>,
}

impl Report {
    /// Totals: (added, changed, deleted) over destinations that succeeded.
    pub fn totals(&self) -> (usize, usize, usize) {
        self.destinations
            .iter()
            .filter(|d| d.error.is_none())
            .fold((0, 0, 0), |(a, c, d), r| (a + r.added, c + r.changed, d + r.deleted))
    }

    /// The last line of an apply: `Apply complete: …` only when everything planned was
    /// applied; otherwise `Apply failed: …`, saying what failed and what was applied.
    pub fn summary(&self, plan_errors: usize) -> String {
        let report = self;
        let total = report.destinations.len() + report.not_started;
        let destinations = |n: usize| if n == 1 { "destination" } else { "destinations" };
        if report.inventory_error.is_some() {
            return "Apply failed: nothing was applied. Fix the error above and run apply again."
                .to_owned();
        }
        if report.commit_error.is_some() {
            return format!(
                "Apply failed: nothing was saved; 0 of {total} {} applied. Fix the error above and \
                 run apply again.",
                destinations(total)
            );
        }
        let failed = report.destinations.iter().filter(|d| d.error.is_some()).count();
        let mut problems = Vec::new();
        if failed > 0 {
            problems.push(format!("{failed} of {total} {} failed", destinations(total)));
        }
        if report.not_started > 0 {
            problems.push(format!(
                "{} of {total} not started (interrupted; run apply again to finish)",
                report.not_started
            ));
        }
        if !report.held_back.is_empty() {
            let names: Vec<String> =
                report.held_back.iter().map(|s| crate::text::printable(s).into_owned()).collect();
            problems.push(format!(
                "{} not applied because the plan has errors for {}: {}",
                if names.len() == 1 {
                    "1 sync".to_owned()
                } else {
                    format!("{} syncs", names.len())
                },
                if names.len() == 1 { "it" } else { "them" },
                names.join(", ")
            ));
        }
        if plan_errors > 0 && report.held_back.is_empty() {
            problems.push(format!(
                "the plan has {} (above)",
                if plan_errors == 1 {
                    "1 error".to_owned()
                } else {
                    format!("{plan_errors} errors")
                }
            ));
        }
        let (added, changed, deleted) = report.totals();
        if problems.is_empty() {
            format!("Apply complete: {added} added, {changed} changed, {deleted} deleted.")
        } else {
            format!(
                "Apply failed: {}. Applied: {added} added, {changed} changed, {deleted} deleted.",
                problems.join("; ")
            )
        }
    }

    /// Whether anything failed or was held back.
    pub fn failed(&self) -> bool {
        self.commit_error.is_some()
            || self.inventory_error.is_some()
            || self.not_started > 0
            || !self.held_back.is_empty()
            || self.destinations.iter().any(|d| d.error.is_some())
    }
}

/// Why an apply refuses to write anything.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The plan made now is not the saved one.
    #[error(
        "the saved plan {} is stale: applying it now would not do what it says — the tenant \
         changed since it was made, or the file was edited. Nothing was applied; run plan \
         again.\n{diff}",
        path.display()
    )]
    Stale {
        /// The saved plan.
        path: PathBuf,
        /// How the plan now differs from it.
        diff: String,
    },
    /// `adopt --user` named users the adoption plan does not take over.
    #[error(
        "nothing to adopt for {}: not a destination of sync {sync}, or no contact group of its \
         target name there that contact-sync did not write (`contact-sync plan` and \
         `contact-sync resolve` show which). Nothing was applied.",
        users.join(", ")
    )]
    NothingToAdopt {
        /// The sync adopted.
        sync: String,
        /// The users named that it does not take over.
        users: Vec<String>,
    },
}

/// What is asked of one apply: the plan made now, and what it must agree with.
#[derive(Clone, Copy)]
pub struct Apply<'a> {
    plan: &'a Plan,
    saved: Option<(&'a Path, &'a Plan)>,
    adopt: Option<&'a Adopt>,
}

/// An apply whose plan was checked: [`Checked::run`] applies it.
#[derive(Clone, Copy)]
pub struct Checked<'a>(Apply<'a>);

/// Whether an apply did all it was asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Everything planned was applied, and the plan has no errors.
    Success,
    /// Something failed, was held back or left unstarted.
    Failed,
}

/// What one apply came to.
#[derive(Debug)]
pub struct Outcome {
    /// What was applied, destination by destination.
    pub report: Report,
    /// Whether it did all it was asked.
    pub exit: Exit,
}

impl<'a> Apply<'a> {
    /// An apply of `plan`, made just now under the writer lease.
    pub fn new(plan: &'a Plan) -> Self {
        Self { plan, saved: None, adopt: None }
    }

    /// Applies `plan` only if it is `saved`, the plan saved at `path`, change for change.
    pub fn saved(self, path: &'a Path, saved: &'a Plan) -> Self {
        Self { saved: Some((path, saved)), ..self }
    }

    /// The adoption the plan was made for, if any.
    pub fn adopt(self, adopt: Option<&'a Adopt>) -> Self {
        Self { adopt, ..self }
    }

    /// Refuses a plan that is not the saved one, or that does not adopt what
    /// `adopt --user` named.
    pub fn check(self) -> Result<Checked<'a>, Refusal> {
        if let Some((path, saved)) = self.saved
            && let Some(diff) = crate::saved::differences(saved, self.plan, 60)
        {
            return Err(Refusal::Stale { path: path.to_owned(), diff });
        }
        if let Some(adopt) = self.adopt {
            let users = adoption_gaps(self.plan, adopt);
            if !users.is_empty() {
                return Err(Refusal::NothingToAdopt { sync: adopt.sync.clone(), users });
            }
        }
        Ok(Checked(self))
    }
}

impl Checked<'_> {
    /// What to say before the plan is shown: an adoption that takes nothing over.
    pub fn note(&self) -> Option<String> {
        let adopt = self.0.adopt.filter(|_| !self.0.plan.summary.has_changes())?;
        Some(format!(
            "Nothing to adopt: no destination of sync {} has a contact group of its target name \
             that contact-sync did not write.",
            adopt.sync
        ))
    }

    /// Applies the plan until `cancel` is cancelled; `progress` is called after each
    /// destination. Without changes too: the inventory may need bringing up to date
    /// (after a full scan, or when a user turned out to hold nothing).
    pub async fn run(
        self,
        backend: &dyn Backend,
        cancel: &CancellationToken,
        progress: &(dyn Fn(&DestinationReport) + Sync),
    ) -> Outcome {
        let plan = self.0.plan;
        let report = apply_with(backend, plan, cancel, progress).await;
        // With nothing to change only the inventory can fail.
        let failed = if plan.summary.has_changes() {
            report.failed()
        } else {
            report.inventory_error.is_some()
        };
        let exit = if failed || plan.summary.errors > 0 { Exit::Failed } else { Exit::Success };
        Outcome { report, exit }
    }
}

/// What `adopt --user` named that the adoption plan does not take over: a user
/// that is not a destination of the sync, or has no group of its target name to
/// take (or already has the sync's own).
fn adoption_gaps(plan: &Plan, adopt: &Adopt) -> Vec<String> {
    let planned: HashSet<String> = plan
        .syncs
        .iter()
        .filter(|s| s.name == adopt.sync)
        .flat_map(|s| &s.destinations)
        .map(|d| d.user.to_lowercase())
        .collect();
    adopt.users.iter().filter(|u| !planned.contains(*u)).cloned().collect()
}

/// Number of destinations apply will touch, for progress display.
pub fn work(plan: &Plan) -> usize {
    plan.to_apply().count()
}

/// Applies `plan` unchecked, never interrupted (tests, benchmarks); `progress` is
/// called after each destination.
pub async fn apply(
    backend: &dyn Backend,
    plan: &Plan,
    progress: &(dyn Fn(&DestinationReport) + Sync),
) -> Report {
    apply_with(backend, plan, &CancellationToken::new(), progress).await
}

/// Applies `plan` until `cancel` is cancelled; `progress` is called after each
/// destination.
///
/// Users are applied concurrently (up to the backend's concurrency); all of one
/// user's changes, across syncs, are sent one after another.
async fn apply_with(
    backend: &dyn Backend,
    plan: &Plan,
    cancel: &CancellationToken,
    progress: &(dyn Fn(&DestinationReport) + Sync),
) -> Report {
    let mut report = Report::default();
    let (stored, before) = match record_before(backend, plan).await {
        Ok(recorded) => recorded,
        Err(e) => {
            report.inventory_error = Some(e);
            return report;
        }
    };
    report.held_back = plan.held_back().map(str::to_owned).collect();
    let (by_user, total) = by_user(plan);
    let mut results = apply_users(backend, by_user, cancel, progress).await;
    report.not_started = total - results.len();
    results.sort_by_key(|(order, _)| *order);
    report.destinations = results.into_iter().map(|(_, r)| r).collect();
    if let Err(e) = backend.commit().await {
        report.commit_error = Some(e);
    }
    record_after(backend, plan, stored, before, &mut report).await;
    report
}

/// One user's destinations, across syncs, with their place in plan order.
type UserWork<'a> = Vec<(usize, &'a str, &'a DestinationPlan)>;

/// The destinations to apply, user by user, and how many there are.
fn by_user(plan: &Plan) -> (Vec<UserWork<'_>>, usize) {
    let mut by_user: BTreeMap<String, UserWork<'_>> = BTreeMap::new();
    let mut total = 0;
    for (order, (sync, dest)) in plan.to_apply().enumerate() {
        by_user.entry(dest.user.to_lowercase()).or_default().push((order, sync, dest));
        total = order + 1;
    }
    (by_user.into_values().collect(), total)
}

/// Applies each user's destinations, users concurrently (up to the backend's
/// [`Backend::users_in_flight`]), one user's one after another; once `cancel` is cancelled no
/// other user starts. What was applied, with each destination's place in plan
/// order.
async fn apply_users(
    backend: &dyn Backend,
    by_user: Vec<UserWork<'_>>,
    cancel: &CancellationToken,
    progress: &(dyn Fn(&DestinationReport) + Sync),
) -> Vec<(usize, DestinationReport)> {
    let photos = Photos::default();
    let photos = &photos;
    futures::stream::iter(by_user)
        .map(|work| async move {
            let mut done = Vec::with_capacity(work.len());
            // An interruption lets the user in flight finish: all of its syncs.
            if cancel.is_cancelled() {
                return done;
            }
            for (order, sync, dest) in work {
                let r = apply_one(backend, photos, sync, dest).await;
                progress(&r);
                done.push((order, r));
            }
            done
        })
        .buffer_unordered(backend.users_in_flight())
        .concat()
        .await
}

/// The inventory first lists every user about to receive synced contacts, so that
/// whatever happens next, later runs know to read them: the inventory as stored
/// now, and as computed before the changes.
async fn record_before(
    backend: &dyn Backend,
    plan: &Plan,
) -> Result<(Option<StoredInventory>, Option<Inventory>), InventoryError> {
    let mut stored = plan.survey.stored.clone();
    let before = plan.survey.before(plan, chrono::Utc::now())?;
    if let (Some(old), Some(new)) = (&stored, &before) {
        let now = backend
            .write_inventory(old, new)
            .await
            .map_err(|source| InventoryError::Record { source })?;
        stored = Some(now);
    }
    Ok((stored, before))
}

/// The inventory after the changes: users that now hold nothing come off it.
async fn record_after(
    backend: &dyn Backend,
    plan: &Plan,
    stored: Option<StoredInventory>,
    before: Option<Inventory>,
    report: &mut Report,
) {
    let applied: HashSet<(String, String)> = report
        .destinations
        .iter()
        .filter(|d| d.error.is_none() && report.commit_error.is_none())
        .map(|d| (d.sync.clone(), d.user.to_lowercase()))
        .collect();
    let after = plan.survey.after(plan, before.as_ref(), &applied);
    report.inventory = before.or_else(|| plan.survey.listed().cloned());
    if let (Some(old), Some(new)) = (&stored, after) {
        match backend.write_inventory(old, &new).await {
            Ok(_) => report.inventory = Some(new),
            Err(e) => {
                report.inventory_warning = Some(InventoryNotUpdated { source: e });
            }
        }
    }
}

async fn apply_one(
    backend: &dyn Backend,
    photos: &Photos,
    sync: &str,
    dest: &DestinationPlan,
) -> DestinationReport {
    let mut r =
        DestinationReport { sync: sync.to_owned(), user: dest.user.clone(), ..Default::default() };
    match apply_destination(backend, photos, &dest.user, &dest.changes).await {
        Ok(()) => {
            for c in &dest.changes {
                match c.action {
                    Action::Create => r.added += 1,
                    Action::Update => r.changed += 1,
                    Action::Delete => r.deleted += 1,
                }
            }
        }
        Err(e) => r.error = Some(e),
    }
    r
}

/// One destination's operations as apply sends them: batched, in dependency
/// order — the target group, new contacts, updates, memberships, deletions, group
/// deletions. Building them decides nothing; sending them is [`apply_destination`]
/// (or, for the planner's tests, the same steps on an in-memory store).
#[derive(Debug, Default)]
pub struct Batches<'a> {
    /// Target group creations and renames, in plan order.
    pub groups: Vec<GroupWrite<'a>>,
    /// New contacts: fields, groups, markers.
    pub creates: Vec<(&'a PersonFields, &'a [GroupRef], &'a [ClientData])>,
    /// Field updates, one batch.
    pub updates: Vec<ContactUpdate>,
    /// Per group: contacts to add, contacts to remove.
    pub members: BTreeMap<GroupRef, (Vec<String>, Vec<String>)>,
    /// Contacts to delete, one batch.
    pub deletes: Vec<String>,
    /// Groups to delete (their contacts are kept).
    pub delete_groups: Vec<String>,
    /// Photo writes ([`Op::ContactPhoto`]), in plan order.
    pub photos: Vec<PhotoWrite<'a>>,
}

/// One target group write of the plan ([`Op::CreateGroup`], [`Op::UpdateGroup`]),
/// its parts borrowed.
#[derive(Clone, Copy, Debug)]
pub enum GroupWrite<'a> {
    /// Create it, with this name and these markers.
    Create {
        /// Group name.
        name: &'a str,
        /// Markers.
        client_data: &'a [ClientData],
    },
    /// Rename it: the group as it should be, with the etag it was planned against.
    Update {
        /// The group.
        group: &'a crate::model::ContactGroup,
    },
}

/// One photo write of the plan ([`Op::ContactPhoto`]), its parts borrowed.
#[derive(Clone, Copy, Debug)]
pub struct PhotoWrite<'a> {
    /// The contact.
    pub contact: &'a ContactRef,
    /// Its etag and `clientData` as planned (a new contact has none yet).
    pub planned: Option<&'a (String, Vec<ClientData>)>,
    /// The source photo to copy; `None` removes the photo.
    pub photo: Option<&'a SourcePhoto>,
    /// The bytes hash of the photo the contact has, by its marker.
    pub has: Option<&'a str>,
}

impl<'a> Batches<'a> {
    /// The batches of `changes`.
    pub fn of(changes: &'a [Change]) -> Self {
        let mut b = Self::default();
        for change in changes {
            match &change.op {
                Op::CreateGroup { name, client_data } => {
                    b.groups.push(GroupWrite::Create { name, client_data });
                }
                Op::UpdateGroup { group } => b.groups.push(GroupWrite::Update { group }),
                Op::CreateContact { fields, memberships, client_data } => {
                    b.creates.push((fields, memberships, client_data));
                }
                Op::UpdateContact { update, resource_name, add_to, remove_from } => {
                    b.updates.extend(update.clone());
                    for g in add_to {
                        b.members.entry(g.clone()).or_default().0.push(resource_name.clone());
                    }
                    for g in remove_from {
                        let group = GroupRef::Existing(g.clone());
                        b.members.entry(group).or_default().1.push(resource_name.clone());
                    }
                }
                Op::DeleteContact { resource_name } => b.deletes.push(resource_name.clone()),
                Op::DeleteGroup { resource_name } => b.delete_groups.push(resource_name.clone()),
                Op::ContactPhoto { contact, planned, photo, has } => b.photos.push(PhotoWrite {
                    contact,
                    planned: planned.as_ref(),
                    photo: photo.as_ref(),
                    has: has.as_deref(),
                }),
            }
        }
        b
    }

    /// The new contacts, with the target group created meanwhile (`created`).
    pub fn new_contacts(&self, created: Option<&str>) -> backend::Result<Vec<NewContact<'a>>> {
        self.creates
            .iter()
            .map(|&(fields, memberships, client_data)| {
                Ok(NewContact {
                    fields: std::borrow::Cow::Borrowed(fields),
                    memberships: memberships
                        .iter()
                        .map(|g| resolve(g, created))
                        .collect::<backend::Result<_>>()?,
                    client_data: client_data.to_vec(),
                })
            })
            .collect()
    }
}

/// The resource name of `group`, the target group created meanwhile being
/// `created`.
pub fn resolve(group: &GroupRef, created: Option<&str>) -> backend::Result<String> {
    match group {
        GroupRef::Existing(rn) => Ok(rn.clone()),
        GroupRef::NewTarget => created
            .map(str::to_owned)
            .ok_or_else(|| backend::Error::Invalid(backend::Refusal::UncreatedTargetGroup)),
    }
}

/// The source photos one apply downloads, by version: each is downloaded once
/// per run, whichever destinations it goes to, and only if one needs it.
#[derive(Default)]
pub struct Photos {
    cells: Mutex<HashMap<String, Arc<PhotoCell>>>,
}

/// One source photo, once downloaded (`None`: it was gone).
type PhotoCell = OnceCell<Option<Arc<Photo>>>;

/// A downloaded source photo.
#[derive(Debug)]
pub struct Photo {
    /// The bytes.
    pub bytes: Vec<u8>,
    /// [`photo::photo_hash`] of them.
    pub hash: String,
}

impl Photos {
    /// The bytes of `photo` (`None`: it is gone), downloaded on first use.
    pub async fn get(
        &self,
        backend: &dyn Backend,
        photo: &SourcePhoto,
    ) -> backend::Result<Option<Arc<Photo>>> {
        let cell = self
            .cells
            .lock()
            .expect("photo cache lock")
            .entry(photo.version.clone())
            .or_default()
            .clone();
        cell.get_or_try_init(|| async {
            let bytes = match &photo.location {
                PhotoLocation::Contact { user, url } => backend.contact_photo(user, url).await?,
                PhotoLocation::Directory { user_id } => backend.user_photo(user_id).await?,
            };
            Ok::<_, backend::Error>(bytes.map(|bytes| {
                let hash = photo::photo_hash(&bytes);
                Arc::new(Photo { bytes, hash })
            }))
        })
        .await
        .cloned()
    }
}

/// One destination's photo writes: each copy gets the source photo's bytes
/// unless its marker holds their hash already, then its marker, in one batch
/// update of `clientData` written after the photos. A photo write whose answer
/// is lost is sent again as it is (setting the same bytes twice, or removing a
/// photo already gone, leaves the same contact); the marker is only written once
/// the photo is, so a run that stops between the two leaves the old marker, and
/// the next plan sends the photo again.
async fn apply_photos(
    backend: &dyn Backend,
    photos: &Photos,
    user: &str,
    writes: &[PhotoWrite<'_>],
    made: &[crate::model::Contact],
    updated: &[crate::model::Contact],
) -> backend::Result<()> {
    let known = Known::of(made, updated);
    let mut markers = Vec::new();
    for write in writes {
        if let Some(marker) = write_photo(backend, photos, user, write, &known).await? {
            markers.push(marker);
        }
    }
    if !markers.is_empty() {
        backend.update_contacts(user, markers).await?;
    }
    Ok(())
}

/// The contacts one destination's earlier batches wrote, as the photo writes
/// find them.
struct Known {
    /// Etag and `clientData` by resource name.
    now: HashMap<String, (String, Vec<ClientData>)>,
    /// Resource name of a new contact, by its source key.
    by_key: HashMap<String, String>,
}

impl Known {
    fn of(made: &[crate::model::Contact], updated: &[crate::model::Contact]) -> Self {
        let mut known = Self { now: HashMap::new(), by_key: HashMap::new() };
        for c in made.iter().chain(updated) {
            if let Some(key) =
                crate::model::client_data(&c.client_data, crate::model::MARKER_SOURCE)
            {
                known.by_key.insert(key.to_owned(), c.resource_name.clone());
            }
            known.now.insert(c.resource_name.clone(), (c.etag.clone(), c.client_data.clone()));
        }
        known
    }
}

/// Sends one photo write: its contact's marker update to write after it, or
/// `None` when the source photo is gone since the plan (the next plan takes it
/// off the copies).
async fn write_photo(
    backend: &dyn Backend,
    photos: &Photos,
    user: &str,
    write: &PhotoWrite<'_>,
    known: &Known,
) -> backend::Result<Option<ContactUpdate>> {
    let rn = match write.contact {
        ContactRef::Existing(rn) => rn.clone(),
        ContactRef::New(key) => known.by_key.get(key).cloned().ok_or_else(|| {
            backend::Error::Invalid(backend::Refusal::UncreatedContact { key: key.clone() })
        })?,
    };
    let Some(mut state) = known.now.get(&rn).cloned().or_else(|| write.planned.cloned()) else {
        let resource_name = rn;
        return Err(backend::Error::Invalid(backend::Refusal::UnknownContact { resource_name }));
    };
    let marker = match write.photo {
        Some(p) => {
            let Some(got) = photos.get(backend, p).await? else { return Ok(None) };
            if write.has != Some(got.hash.as_str()) {
                let c = backend.set_contact_photo(user, &rn, &got.bytes).await?;
                state = (c.etag, c.client_data);
            }
            Some(PhotoMarker { version: p.version.clone(), hash: got.hash.clone() })
        }
        // A photo someone else took off already leaves only the marker.
        None if write.has.is_none() => None,
        None => {
            let c = backend.delete_contact_photo(user, &rn).await?;
            state = (c.etag, c.client_data);
            None
        }
    };
    Ok(Some(ContactUpdate {
        resource_name: rn,
        etag: state.0,
        fields: PersonFields::new(),
        update_mask: vec!["clientData".into()],
        client_data: photo::with_marker(&state.1, marker.as_ref()),
    }))
}

/// Sends one destination's changes, batched, in dependency order.
async fn apply_destination(
    backend: &dyn Backend,
    photos: &Photos,
    user: &str,
    changes: &[Change],
) -> backend::Result<()> {
    let batches = Batches::of(changes);
    let mut created: Option<String> = None;
    for write in &batches.groups {
        match *write {
            GroupWrite::Create { name, client_data } => {
                let group = backend.create_group(user, name, client_data.to_vec()).await?;
                created = Some(group.resource_name);
            }
            GroupWrite::Update { group } => {
                backend.update_group(user, group.clone()).await?;
            }
        }
    }
    let created = created.as_deref();
    let creates = batches.new_contacts(created)?;
    let made = if creates.is_empty() {
        Vec::new()
    } else {
        backend.create_contacts(user, creates).await?
    };
    let updated = if batches.updates.is_empty() {
        Vec::new()
    } else {
        backend.update_contacts(user, batches.updates).await?
    };
    // Photos before memberships: a membership change changes the contacts'
    // etags, which the photo markers are written against.
    if !batches.photos.is_empty() {
        apply_photos(backend, photos, user, &batches.photos, &made, &updated).await?;
    }
    for (group, (add, remove)) in batches.members {
        backend.modify_members(user, &resolve(&group, created)?, add, remove).await?;
    }
    if !batches.deletes.is_empty() {
        backend.delete_contacts(user, batches.deletes).await?;
    }
    for group in &batches.delete_groups {
        backend.delete_group(user, group).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(user: &str, added: usize, error: Option<&str>) -> DestinationReport {
        DestinationReport {
            sync: "s".into(),
            user: user.into(),
            added,
            error: error.map(|e| backend::Error::Api { status: 500, message: e.to_owned() }),
            ..Default::default()
        }
    }

    #[test]
    fn the_last_line_accounts_for_every_failure() {
        let ok = Report {
            destinations: vec![done("a", 9, None), done("b", 9, None)],
            ..Default::default()
        };
        assert_eq!(ok.summary(0), "Apply complete: 18 added, 0 changed, 0 deleted.");

        // Nothing saved: no destination counts as applied, whatever it sent.
        let unsaved = Report {
            commit_error: Some(backend::Error::Store(backend::StoreError::ChangedOnDisk {
                path: "workspace.yaml".into(),
            })),
            ..ok.clone()
        };
        assert!(
            unsaved
                .summary(0)
                .starts_with("Apply failed: nothing was saved; 0 of 2 destinations applied.")
        );

        let partial = Report {
            destinations: vec![done("a", 9, None), done("b", 0, Some("HTTP 500"))],
            held_back: vec!["t".into()],
            not_started: 1,
            ..Default::default()
        };
        assert_eq!(
            partial.summary(1),
            "Apply failed: 1 of 3 destinations failed; 1 of 3 not started (interrupted; run apply \
             again to finish); 1 sync not applied because the plan has errors for it: t. \
             Applied: 9 added, 0 changed, 0 deleted."
        );
        assert!(ok.summary(2).starts_with("Apply failed: the plan has 2 errors (above)."));
    }
}
