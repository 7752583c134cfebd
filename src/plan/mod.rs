//! The plan: for every sync and destination user, the exact changes that make the
//! destination match the manifests — and the planner that computes them.
//!
//! The planner is pure and synchronous (no tokio, no I/O, no backend): it takes the
//! desired state of a sync ([`desired::DesiredSync`]) and the actual state of one
//! destination, and returns that destination's part of the plan. Reading actual
//! state one user at a time is [`crate::reader`]'s job; executing a plan is
//! [`crate::apply`]'s, which makes no decision of its own: every change carries the
//! operation ([`Op`]) that carries it out.

pub mod changes;
pub mod desired;
pub mod destination;
pub mod diff;
pub mod directory_extra;
pub mod error;
pub mod json;
pub mod planner;
pub mod reach;
pub mod render;
pub mod survey;

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{ContactSync, Located};
use crate::model::{ClientData, ContactGroup, ContactUpdate, PersonFields};

pub use changes::Changes;
pub use diff::FieldChange;
pub use error::PlanError;

/// The planner's input lives with the run's other inputs; named here too, as the
/// planner's.
pub use crate::input::PlanInput;

/// The `formatVersion` of the plan's JSON document.
pub const FORMAT_VERSION: &str = "1";

/// `contact-sync adopt`: a destination that already has a contact group with the
/// sync's target name, not written by contact-sync, gets that group marked as the
/// sync's instead of a `targetGroupConflict`. The contacts in it that match a
/// source contact (by e-mail address, else by name) are marked as the copies of
/// that contact and brought in line with it; the others are left alone, as every
/// unmarked contact is. Only the destinations with such a group are planned.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Adopt {
    /// The sync.
    pub sync: String,
    /// Only these destinations (lower-case addresses); every one with such a group
    /// when empty.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub users: BTreeSet<String>,
}

/// When a run reads every active user of the tenant (a full scan) rather than the
/// users its syncs select and the inventory lists: the full scan finds state the
/// inventory does not list (left by a run that lost its inventory, or restored by
/// hand) and rebuilds the inventory. A missing or damaged inventory always makes
/// a full scan.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FullScan {
    /// Only when the inventory cannot be used.
    #[default]
    Never,
    /// Every run (`--full-scan`).
    Always,
    /// When the inventory's last full scan is older than this many seconds (the
    /// reconcile loop).
    OlderThan(u64),
}

impl FullScan {
    /// Whether it is the default, [`FullScan::Never`] (left out of saved plans).
    pub fn is_never(&self) -> bool {
        *self == FullScan::Never
    }
}

/// One sync's manifest with the `file:line:col` of the values errors point at.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncInput {
    /// The manifest.
    pub manifest: ContactSync,
    /// `file:line:col` by JSON pointer (`/spec/destinations/users/0`).
    pub locations: BTreeMap<String, String>,
}

impl SyncInput {
    /// Captures a validated manifest with the positions of the values that plan
    /// errors point at.
    pub fn from_located(sync: &Located<ContactSync>) -> Self {
        let spec = &sync.value.spec;
        let mut pointers: Vec<String> = [
            "/metadata/name",
            "/spec/source/user",
            "/spec/source/contactGroup",
            "/spec/target/groupName",
        ]
        .map(String::from)
        .to_vec();
        let lists = [
            ("/spec/destinations/users", spec.destinations.users.len()),
            ("/spec/destinations/groups", spec.destinations.groups.len()),
            ("/spec/destinations/orgUnits", spec.destinations.org_units.len()),
            ("/spec/destinations/domains", spec.destinations.domains.len()),
            ("/spec/destinations/exclude/users", spec.destinations.exclude.users.len()),
            ("/spec/destinations/exclude/groups", spec.destinations.exclude.groups.len()),
            ("/spec/destinations/exclude/orgUnits", spec.destinations.exclude.org_units.len()),
            (
                "/spec/source/directory/groups",
                spec.source.directory.as_ref().map_or(0, |d| d.groups.len()),
            ),
            (
                "/spec/source/directory/orgUnits",
                spec.source.directory.as_ref().map_or(0, |d| d.org_units.len()),
            ),
            (
                "/spec/source/directory/domains",
                spec.source.directory.as_ref().map_or(0, |d| d.domains.len()),
            ),
        ];
        for (list, len) in lists {
            pointers.extend((0..len).map(|i| format!("{list}/{i}")));
        }
        pointers.extend(directory_extra::pointers(&sync.value));
        let locations = pointers
            .into_iter()
            .filter(|p| sync.doc.root.locate(p, false).1)
            .map(|p| {
                let at = sync.location(&p).to_string();
                (p, at)
            })
            .collect();
        Self { manifest: sync.value.clone(), locations }
    }

    /// `file:line:col` of the value at `pointer`, or of the sync when unknown.
    pub fn at(&self, pointer: &str) -> String {
        self.locations
            .get(pointer)
            .or_else(|| self.locations.get("/metadata/name"))
            .cloned()
            .unwrap_or_default()
    }

    /// The sync's name.
    pub fn name(&self) -> &str {
        &self.manifest.metadata.name
    }
}

/// A complete plan.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Always "1".
    pub format_version: String,
    /// Counts over every sync that would be applied.
    pub summary: Summary,
    /// Per sync, sorted by name.
    pub syncs: Vec<SyncPlan>,
    /// Contacts of syncs whose manifest is gone, kept because `orphans: keep`.
    pub orphans: Vec<Orphan>,
    /// Errors that belong to no sync: a user read only to look for orphans whose
    /// contacts could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<PlanError>,
    /// What the run did not do and why (orphans not looked for, not pruned).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// What is planned but likely not meant (target groups of two syncs that
    /// only look alike at one destination).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Hash of the actual state the plan was computed from.
    pub fingerprint: String,
    /// What the run read, for keeping the inventory true (not part of the plan's
    /// documents).
    #[serde(skip)]
    pub survey: survey::Survey,
}

/// Counts of a plan. Contacts and groups alike; a membership change is an update.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Creations.
    pub create: usize,
    /// Updates.
    pub update: usize,
    /// Deletions.
    pub delete: usize,
    /// Errors: of the plan, of syncs and of destinations.
    pub errors: usize,
    /// Changes planned for syncs an error holds back (a deletion guard, a missing
    /// source…): shown, not applied, and not in the counts above.
    #[serde(default, rename = "heldBack", skip_serializing_if = "is_zero")]
    pub held_back: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl Summary {
    /// Whether the plan changes anything.
    pub fn has_changes(&self) -> bool {
        self.create + self.update + self.delete > 0
    }
}

/// A sync's source, as plans and `resolve` report it. In JSON: `{"user": …,
/// "contactGroup": …}` for a personal sync, `{"directory": {"domains": […],
/// "orgUnits": […], "groups": […]}}` for a directory sync (all empty: the whole
/// directory), `null` for the contacts of a deleted manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PlanSource {
    /// A user's contact group; `user` is the primary address once resolved.
    Contacts {
        /// The source user's address.
        user: String,
        /// The name of the source contact group.
        #[serde(rename = "contactGroup")]
        contact_group: String,
    },
    /// The domain directory, narrowed by the selectors.
    Directory {
        /// The selectors.
        directory: DirectoryScope,
    },
    /// The manifest is gone (orphaned contacts).
    #[default]
    Deleted,
}

/// Which directory users a directory sync copies.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryScope {
    /// Domains whose users are copied.
    pub domains: Vec<String>,
    /// Org units (sub-units included) whose users are copied.
    pub org_units: Vec<String>,
    /// Google groups whose members are copied.
    pub groups: Vec<String>,
}

impl PlanSource {
    /// The source a manifest declares, before it is resolved.
    pub fn of(source: &crate::manifest::Source) -> Self {
        match (&source.user, &source.directory) {
            (_, Some(d)) => Self::Directory {
                directory: DirectoryScope {
                    domains: d.domains.clone(),
                    org_units: d.org_units.clone(),
                    groups: d.groups.clone(),
                },
            },
            (Some(user), None) => Self::Contacts {
                user: user.clone(),
                contact_group: source.contact_group.clone().unwrap_or_default(),
            },
            (None, None) => Self::Directory { directory: DirectoryScope::default() },
        }
    }
}

impl std::fmt::Display for PlanSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Contacts { user, contact_group } => write!(f, "{user} / \"{contact_group}\""),
            Self::Directory { .. } => f.write_str("the directory"),
            Self::Deleted => f.write_str("(manifest deleted)"),
        }
    }
}

/// The plan of one sync.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPlan {
    /// The sync's name.
    pub name: String,
    /// Where the contacts come from (shown as `salesuser@example.com / "Sales
    /// Contacts"`, `the directory`, or for an orphan `(manifest deleted)`).
    pub source: PlanSource,
    /// A suspended sync is planned but not applied.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspended: bool,
    /// The manifest is gone; its contacts are deleted (`orphans: delete`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orphaned: bool,
    /// Errors that hold back the whole sync.
    pub errors: Vec<PlanError>,
    /// How many users the sync selects (skipped and held-back ones not counted).
    pub users: usize,
    /// Per destination user, sorted by address.
    pub destinations: Vec<DestinationPlan>,
}

impl SyncPlan {
    /// Whether apply may run this sync's changes.
    pub fn applicable(&self) -> bool {
        !self.suspended && self.errors.is_empty()
    }
}

/// The plan of one destination user within one sync.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationPlan {
    /// The user's primary address (or the address the manifest names, for errors).
    pub user: String,
    /// `changes`, `upToDate`, `error` or `skipped`.
    pub status: Status,
    /// Why the destination is held back, when `status` is `error`.
    pub error: Option<PlanError>,
    /// Why the destination is skipped, when `status` is `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// The changes, groups first, then contacts by name; shared with every other
    /// destination of the sync whose changes are the same.
    pub changes: Changes,
}

impl DestinationPlan {
    /// A destination with the given changes (status from whether there are any).
    pub fn with_changes(user: &str, changes: Vec<Change>) -> Self {
        let status = if changes.is_empty() { Status::UpToDate } else { Status::Changes };
        Self { user: user.to_owned(), status, error: None, skipped: None, changes: changes.into() }
    }

    /// A destination held back by an error.
    pub fn error(user: &str, error: PlanError) -> Self {
        Self {
            user: user.to_owned(),
            status: Status::Error,
            error: Some(error),
            skipped: None,
            changes: Changes::default(),
        }
    }

    /// A destination that is skipped (suspended or archived).
    pub fn skipped(user: &str, why: &str) -> Self {
        Self {
            user: user.to_owned(),
            status: Status::Skipped,
            error: None,
            skipped: Some(why.to_owned()),
            changes: Changes::default(),
        }
    }
}

/// State of a destination in a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Status {
    /// Has changes.
    Changes,
    /// Nothing to do.
    UpToDate,
    /// Held back by an error.
    Error,
    /// Suspended or archived.
    Skipped,
}

/// One change to one contact or group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// `create`, `update` or `delete`.
    pub action: Action,
    /// `contact` or `group`.
    pub resource: Resource,
    /// Display name of the contact, or the group's name.
    pub name: String,
    /// The contact's first e-mail address, for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Why.
    pub reason: Reason,
    /// Changed values (updates).
    pub fields: Vec<FieldChange>,
    /// How apply carries it out. Left out of `--format json` ([`Plan::to_json`]).
    pub op: Op,
}

/// What a change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Create.
    Create,
    /// Update.
    Update,
    /// Delete.
    Delete,
}

/// What a change is made to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Resource {
    /// The target contact group.
    Group,
    /// A contact.
    Contact,
}

/// Why a change is made (the `reason` of the plan JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// Not in the destination yet.
    Missing,
    /// Changed at the source (or in the manifest).
    SourceChanged,
    /// Edited by the destination user; reverted.
    EditedOutside,
    /// No longer in the source group.
    RemovedFromSource,
    /// The user is no longer a destination of the sync.
    DestinationRemoved,
    /// The sync's manifest is gone.
    SyncDeleted,
    /// A second copy of one source contact.
    Duplicate,
    /// Group memberships differ.
    Membership,
    /// A directory sync's copy of a user now hidden from the Global Address List.
    Hidden,
    /// A directory sync's copy of the destination user itself.
    OwnEntry,
    /// Taken over by `contact-sync adopt`: marked as the sync's from now on.
    Adopted,
    /// The sync's field selection (`spec.fields`) changed since the copy was
    /// written: it loses or gains fields.
    FieldsChanged,
}

impl Reason {
    /// The words the text plan shows after a change.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Missing => "",
            Reason::SourceChanged => "changed in source",
            Reason::EditedOutside => "edited outside contact-sync",
            Reason::RemovedFromSource => "removed from source group",
            Reason::DestinationRemoved => "no longer a destination",
            Reason::SyncDeleted => "sync deleted",
            Reason::Duplicate => "duplicate",
            Reason::Membership => "membership",
            Reason::Hidden => "hidden from the Global Address List",
            Reason::OwnEntry => "the user's own entry",
            Reason::Adopted => "adopted",
            Reason::FieldsChanged => "field selection changed",
        }
    }
}

/// A contact group an operation refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum GroupRef {
    /// The target group the same destination's plan creates: its resource name is
    /// known once apply has created it.
    NewTarget,
    /// A group that exists, by resource name.
    Existing(String),
}

/// The backend operation behind a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Op {
    /// Create the target group.
    CreateGroup {
        /// Group name.
        name: String,
        /// Markers.
        client_data: Vec<ClientData>,
    },
    /// Rename the target group (name and markers as they should be).
    UpdateGroup {
        /// The group as it should be, with the etag it was planned against.
        group: ContactGroup,
    },
    /// Delete a group, keeping its contacts.
    DeleteGroup {
        /// The group.
        resource_name: String,
    },
    /// Create a contact.
    CreateContact {
        /// Person fields (shared with the desired state and every other
        /// destination's create of the same contact).
        fields: std::sync::Arc<PersonFields>,
        /// The groups it goes in.
        memberships: Vec<GroupRef>,
        /// `clientData`, with the ownership markers.
        client_data: Vec<ClientData>,
    },
    /// Update a contact's fields and/or memberships.
    UpdateContact {
        /// Field update, if fields or markers change.
        update: Option<ContactUpdate>,
        /// The contact.
        resource_name: String,
        /// Groups to add the contact to.
        add_to: Vec<GroupRef>,
        /// Groups to remove the contact from.
        remove_from: Vec<String>,
    },
    /// Delete a contact.
    DeleteContact {
        /// The contact.
        resource_name: String,
    },
    /// Copy the source's photo to a contact (`photo`), or remove the contact's
    /// photo (`None`), then record it in the contact's `contact-sync/photo`
    /// marker (see [`crate::model::photo`]).
    ContactPhoto {
        /// The contact.
        contact: ContactRef,
        /// Its etag and `clientData` as planned (a new contact has none yet).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned: Option<(String, Vec<ClientData>)>,
        /// The source photo to copy; `None` removes the photo.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        photo: Option<crate::model::photo::SourcePhoto>,
        /// The bytes hash of the photo the contact has, by its marker: bytes of
        /// this hash are not sent again; `None` on a removal: the contact has no
        /// photo left, only its marker goes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        has: Option<String>,
    },
}

/// A contact an operation refers to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ContactRef {
    /// A contact that exists, by resource name.
    Existing(String),
    /// The contact the same destination's plan creates, by its source key.
    New(String),
}

/// Error kinds (the `kind` of the plan JSON).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ErrorKind {
    /// The source user's address is now an alias.
    SourceRenamed,
    /// No user has the source address.
    SourceNotFound,
    /// The source user is suspended.
    SourceSuspended,
    /// The source user has no contact group of that name.
    SourceGroupNotFound,
    /// The source resolves to another user than the one that wrote the contacts.
    SourceIdentityChanged,
    /// A destination address in `destinations.users` is now an alias.
    DestinationRenamed,
    /// A destination user or group does not exist.
    DestinationNotFound,
    /// The destination has a group of the target name that contact-sync did not create.
    TargetGroupConflict,
    /// The run would delete too much.
    DeleteGuard,
    /// A backend call failed.
    Api,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 10] = [
        Self::SourceRenamed,
        Self::SourceNotFound,
        Self::SourceSuspended,
        Self::SourceGroupNotFound,
        Self::SourceIdentityChanged,
        Self::DestinationRenamed,
        Self::DestinationNotFound,
        Self::TargetGroupConflict,
        Self::DeleteGuard,
        Self::Api,
    ];
}

/// The name of every error kind, as the plan JSON and the metrics spell it.
pub fn error_kind_names() -> impl Iterator<Item = String> {
    ErrorKind::ALL
        .into_iter()
        .filter_map(|k| serde_json::to_value(k).ok().and_then(|v| v.as_str().map(str::to_owned)))
}

/// What becomes of the syncs whose manifest is gone that a run found — `found`,
/// their deletions under `orphans: delete`; `kept`, their list under `keep`:
/// nothing when a user could not be read (what the run did not see, it does not
/// delete), else the deletions under the guard (`guard_orphans`). A partial
/// manifest set found none, since it did not look. Returns the orphan syncs to plan,
/// the list to show and the notes that say what was not done.
pub fn settle_orphans(
    mut found: Vec<SyncPlan>,
    mut kept: Vec<Orphan>,
    unreadable: usize,
    managed: usize,
    input: &PlanInput,
) -> (Vec<SyncPlan>, Vec<Orphan>, Vec<String>) {
    let mut notes = Vec::new();
    if let Some(why) = &input.partial {
        notes.push(format!("Syncs whose manifest was deleted were not looked for: {why}."));
    } else if unreadable > 0 {
        found.clear();
        kept.clear();
        notes.push(format!(
            "Syncs whose manifest was deleted were neither pruned nor listed: the contacts of {} \
             could not be read, and what this run did not see it does not delete.",
            if unreadable == 1 { "1 user".to_owned() } else { format!("{unreadable} users") }
        ));
    }
    guard_orphans(&mut found, managed, input.max_delete_percent, input.allow_deletes);
    (found, kept, notes)
}

/// The deletion guard over syncs whose manifest is gone: when their contact
/// deletions would be more than `max_delete_percent` of all the contacts
/// contact-sync manages (`managed`, every marked contact the run read), each of
/// them is held back with a `deleteGuard` error. It stops a lost manifest folder,
/// or a run pointed at the wrong one, from emptying every destination.
fn guard_orphans(
    orphans: &mut [SyncPlan],
    managed: usize,
    max_delete_percent: u8,
    allow_deletes: bool,
) {
    let deletes_of = |s: &SyncPlan| {
        s.destinations
            .iter()
            .flat_map(|d| &d.changes)
            .filter(|c| c.resource == Resource::Contact && c.action == Action::Delete)
            .count()
    };
    let deletes: usize = orphans.iter().map(deletes_of).sum();
    let pct = usize::from(max_delete_percent);
    if allow_deletes || deletes == 0 || deletes * 100 <= pct * managed {
        return;
    }
    let error = PlanError::OrphanDeleteGuard {
        deletes,
        managed,
        max_percent: pct,
        syncs: orphans.iter().map(|s| s.name.clone()).collect(),
    };
    for sync in orphans {
        sync.errors.push(error.clone());
    }
}

/// Contacts of a deleted sync left in place because `orphans: keep`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Orphan {
    /// The deleted sync's name.
    pub sync: String,
    /// The user who has them.
    pub user: String,
    /// How many contacts.
    pub contacts: usize,
    /// How many groups.
    pub groups: usize,
}

impl Plan {
    /// The destinations apply writes to, with their sync's name, in plan order:
    /// those with changes, of the syncs neither suspended nor held back.
    pub fn to_apply(&self) -> impl Iterator<Item = (&str, &DestinationPlan)> {
        self.syncs.iter().filter(|s| s.applicable()).flat_map(|s| {
            let changed = s.destinations.iter().filter(|d| d.status == Status::Changes);
            changed.map(move |d| (s.name.as_str(), d))
        })
    }

    /// The syncs held back because the plan has errors for them (the deletion
    /// guard, source errors): apply writes nothing of theirs.
    pub fn held_back(&self) -> impl Iterator<Item = &str> {
        self.syncs.iter().filter(|s| !s.errors.is_empty()).map(|s| s.name.as_str())
    }

    /// Recomputes the summary from the syncs: the counts are of what apply would do.
    pub fn summarize(&mut self) {
        let mut s = Summary { errors: self.errors.len(), ..Summary::default() };
        for sync in &self.syncs {
            s.errors += sync.errors.len();
            s.errors += sync.destinations.iter().filter(|d| d.error.is_some()).count();
            if sync.suspended {
                continue;
            }
            if !sync.errors.is_empty() {
                s.held_back += sync.destinations.iter().map(|d| d.changes.len()).sum::<usize>();
                continue;
            }
            for change in sync.destinations.iter().flat_map(|d| &d.changes) {
                match change.action {
                    Action::Create => s.create += 1,
                    Action::Update => s.update += 1,
                    Action::Delete => s.delete += 1,
                }
            }
        }
        self.summary = s;
    }

    /// The plan as `--format json` shows it ([`json`]), as a JSON tree: without
    /// the operations, and with field values hidden when `redact` is set.
    pub fn to_json(&self, redact: bool) -> serde_json::Value {
        json::to_value(self, redact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(max_delete_percent: u8, allow_deletes: bool) -> PlanInput {
        PlanInput {
            syncs: Vec::new(),
            known_syncs: Vec::new(),
            approved_deletes: Default::default(),
            rerun: String::new(),
            partial: None,
            orphans: crate::manifest::OrphanPolicy::Delete,
            max_delete_percent,
            allow_deletes,
            full_scan: FullScan::Never,
            adopt: None,
        }
    }

    /// An orphaned sync whose plan deletes `n` contacts of one user.
    fn orphan(n: usize) -> SyncPlan {
        let delete = Change {
            action: Action::Delete,
            resource: Resource::Contact,
            name: "Ada".into(),
            email: None,
            reason: Reason::SyncDeleted,
            fields: Vec::new(),
            op: Op::DeleteContact { resource_name: "people/c1".into() },
        };
        SyncPlan {
            name: "gone".into(),
            orphaned: true,
            destinations: vec![DestinationPlan::with_changes("ann@example.com", vec![delete; n])],
            ..SyncPlan::default()
        }
    }

    #[test]
    fn orphans_are_deleted_only_under_the_guard() {
        // 3 of 10 managed contacts: within 50 %.
        let (found, _, notes) = settle_orphans(vec![orphan(3)], vec![], 0, 10, &input(50, false));
        assert!(found[0].errors.is_empty() && notes.is_empty());
        // 6 of 10: refused, unless deletes are allowed.
        let (found, _, _) = settle_orphans(vec![orphan(6)], vec![], 0, 10, &input(50, false));
        assert_eq!(found[0].errors[0].kind(), ErrorKind::DeleteGuard);
        assert!(!found[0].applicable());
        let (found, _, _) = settle_orphans(vec![orphan(6)], vec![], 0, 10, &input(50, true));
        assert!(found[0].errors.is_empty());
    }

    #[test]
    fn a_run_that_could_not_read_a_user_prunes_no_orphan() {
        let kept = vec![Orphan { sync: "gone".into(), user: "bob".into(), contacts: 1, groups: 0 }];
        let (found, kept, notes) = settle_orphans(vec![orphan(1)], kept, 2, 10, &input(50, true));
        assert!(found.is_empty() && kept.is_empty());
        assert!(notes[0].contains("the contacts of 2 users could not be read"), "{notes:?}");
    }

    #[test]
    fn a_partial_run_says_it_did_not_look() {
        let mut input = input(50, false);
        input.partial = Some("--sync a narrowed the run".into());
        let (_, _, notes) = settle_orphans(vec![], vec![], 0, 10, &input);
        assert_eq!(
            notes,
            ["Syncs whose manifest was deleted were not looked for: --sync a narrowed the run."]
        );
    }
}
