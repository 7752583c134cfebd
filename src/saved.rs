//! Plans saved by `plan --out` and applied by `apply PLAN.json`: exactly what was
//! reviewed, or nothing.
//!
//! The file holds the plan with its operations, the manifests as the planner saw
//! them, where the tenant is, and a checksum over all of it. `apply PLAN.json`
//! refuses a file of another format version or whose checksum does not match (it
//! was edited), then — holding the writer lease — plans again from the saved
//! manifests against the tenant as it is now, and applies only if the fresh plan
//! is the saved one, change for change: a tenant that moved since is refused, and
//! so is a plan edited with its checksum recomputed, unless the edit is what the
//! saved manifests would plan anyway. (The checksum has no key: it proves the file
//! intact, not who made it; the re-plan is what proves the operations.)
//!
//! Format 2 holds each distinct change list once and each contact body once, so
//! its size grows with what differs between destinations, not with contacts ×
//! destinations (a first sync of 1,000 contacts to 4,000 users is one list):
//!
//! ```text
//! { "formatVersion": "3", "summary": {…},
//!   "syncs": [ { "name", "source", "suspended", "orphaned", "errors", "users",
//!       "destinations": [ { "user", "status", "error", "skipped", "changes": 0 } ] } ],
//!   "orphans": [], "errors": [], "notes": [], "fingerprint": "…",
//!   "changeLists": [ [ { "action", "resource", "name", "email", "reason", "fields",
//!       "op": { "type": "createContact", "body": 0, "memberships", "clientData" } } ] ],
//!   "bodies": [ { Person fields } ],
//!   "input": {…}, "target": {…}, "checksum": "sha256:…" }
//! ```
//!
//! A destination's `changes` is an index into `changeLists`; a contact creation's
//! `body`, an index into `bodies`. Reading the file back shares them again, as the
//! plan that was saved did. The checksum is SHA-256 over the compact JSON of the
//! file with an empty `checksum`.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::backend::open::Target;
use crate::input::PlanInput;
use crate::model::photo::SourcePhoto;
use crate::model::{ClientData, ContactGroup, ContactUpdate, PersonFields};
use crate::plan::changes::Interner;
use crate::plan::render::{self, Style};
use crate::plan::{
    Action, Change, Changes, ContactRef, DestinationPlan, FieldChange, GroupRef, Op, Orphan, Plan,
    PlanError, PlanSource, Reason, Resource, Status, Summary, SyncPlan,
};

/// Why a saved plan cannot be written or read back.
#[derive(Debug, thiserror::Error)]
pub enum SavedError {
    /// The file could not be written.
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file could not be read.
    #[error("cannot read the saved plan {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a saved plan, or a damaged one.
    #[error("{} is not a plan saved by `contact-sync plan --out`", path.display())]
    NotAPlan {
        path: PathBuf,
        #[source]
        source: Malformed,
    },
    /// Saved by an earlier contact-sync, in an earlier format.
    #[error(
        "{} was saved by an earlier contact-sync, in formatVersion {version:?}; this one reads \
         saved plans of formatVersion {FORMAT_VERSION:?} only. Nothing was applied; make the plan \
         again with this version: contact-sync plan --out {}",
        path.display(),
        path.display()
    )]
    EarlierFormat { path: PathBuf, version: String },
    /// A plan as `plan --format json` prints it: for reading, not for applying.
    #[error(
        "{} is a plan printed by `contact-sync plan --format json`, for reading: it holds \
         neither the manifests nor a checksum, so it cannot be applied. Nothing was applied; \
         save a plan to apply with: contact-sync plan --out {}",
        path.display(),
        path.display()
    )]
    JsonPlan { path: PathBuf },
    /// Of a format this version does not read.
    #[error(
        "{} has formatVersion {version:?}, and this contact-sync reads saved plans of \
         formatVersion {FORMAT_VERSION:?} only. Nothing was applied; make the plan again with \
         this version (contact-sync plan --out)",
        path.display()
    )]
    OtherFormat { path: PathBuf, version: String },
    /// Its checksum does not match: it was edited.
    #[error(
        "{} was changed after `plan --out` saved it (its checksum does not match), so it is not \
         the plan that was reviewed. Nothing was applied; make the plan again",
        path.display()
    )]
    Edited { path: PathBuf },
}

/// What is wrong inside a file that is not a saved plan.
#[derive(Debug, thiserror::Error)]
pub enum Malformed {
    /// Not the JSON of a saved plan.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// The change lists were not read from the file.
    #[error("change lists not read from a file")]
    NoChangeLists,
    /// A destination's change list index points nowhere.
    #[error("destination {0} refers to no change list")]
    NoChangeList(String),
    /// A contact creation's body index points nowhere.
    #[error("\"{0}\" refers to no contact body")]
    NoBody(String),
}

/// The saved-plan format this version reads and writes.
pub const FORMAT_VERSION: &str = "3";

/// Formats earlier versions saved plans in ("2": a sync's `source` was a string).
const EARLIER_FORMATS: [&str; 2] = ["1", "2"];

/// A plan saved by `plan --out`.
#[derive(Debug)]
pub struct SavedPlan {
    /// The plan, with its operations and the fingerprint.
    pub plan: Plan,
    /// The manifests as the planner saw them.
    pub input: PlanInput,
    /// The tenant.
    pub target: Target,
    /// SHA-256 over the rest of the file, as written.
    pub checksum: String,
}

impl SavedPlan {
    /// A saved plan with its checksum.
    pub fn new(plan: Plan, input: PlanInput, target: Target) -> Self {
        let mut saved = Self { plan, input, target, checksum: String::new() };
        let tables = Tables::new(&saved.plan);
        saved.checksum = File::of(&saved, &tables).digest();
        saved
    }

    /// Writes the plan atomically (it is read back by `apply`), private to its
    /// owner unless it replaces a file that was not; streamed, not built in memory.
    pub fn save(&self, path: &Path) -> Result<(), SavedError> {
        let tables = Tables::new(&self.plan);
        let file = File::of(self, &tables);
        crate::fsutil::write_atomic_with(path, |w| {
            serde_json::to_writer_pretty(&mut *w, &file).map_err(std::io::Error::other)?;
            w.write_all(b"\n")
        })
        .map_err(|source| SavedError::Write { path: path.to_owned(), source })
    }

    /// Reads a saved plan; refuses one of another format or that was edited.
    pub fn load(path: &Path) -> Result<Self, SavedError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| SavedError::Read { path: path.to_owned(), source })?;
        let not_a_plan = |e: Malformed| SavedError::NotAPlan { path: path.to_owned(), source: e };
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Version {
            format_version: Option<String>,
            checksum: Option<serde::de::IgnoredAny>,
        }
        let version: Version =
            serde_json::from_str(&text).map_err(|e| not_a_plan(Malformed::Json(e)))?;
        let saved = version.checksum.is_some();
        let version = version.format_version.unwrap_or_else(|| "(none)".into());
        // Every saved plan has a checksum; the JSON a plan prints has none.
        if !saved && version == "1" {
            return Err(SavedError::JsonPlan { path: path.to_owned() });
        }
        if EARLIER_FORMATS.contains(&version.as_str()) {
            return Err(SavedError::EarlierFormat { path: path.to_owned(), version });
        }
        if version != FORMAT_VERSION {
            return Err(SavedError::OtherFormat { path: path.to_owned(), version });
        }
        let mut file: File<'static> =
            serde_json::from_str(&text).map_err(|e| not_a_plan(Malformed::Json(e)))?;
        drop(text);
        let checksum = std::mem::take(&mut file.checksum).into_owned();
        if checksum.is_empty() || checksum != file.digest() {
            return Err(SavedError::Edited { path: path.to_owned() });
        }
        let mut saved = file.into_saved().map_err(not_a_plan)?;
        saved.checksum = checksum;
        Ok(saved)
    }
}

/// A plan's distinct change lists and contact bodies, numbered as the file
/// numbers them: lists in the order destinations first use them, bodies in the
/// order the lists first use them.
struct Tables {
    lists: Interner,
    /// Per sync, per destination: the index of its list.
    destinations: Vec<Vec<usize>>,
    bodies: Vec<Arc<PersonFields>>,
    /// Indexes into `bodies` by the body's address (the plan holds each one, so an
    /// address stays its body's while the plan is saved).
    body_index: HashMap<usize, usize>,
}

impl Tables {
    fn new(plan: &Plan) -> Self {
        let mut lists = Interner::default();
        let destinations = plan
            .syncs
            .iter()
            .map(|s| s.destinations.iter().map(|d| lists.index(&d.changes)).collect())
            .collect();
        let mut bodies = Vec::new();
        let mut body_index = HashMap::new();
        for change in lists.lists().iter().flat_map(|l| l.iter()) {
            if let Op::CreateContact { fields, .. } = &change.op {
                body_index.entry(Arc::as_ptr(fields) as usize).or_insert_with(|| {
                    bodies.push(fields.clone());
                    bodies.len() - 1
                });
            }
        }
        Self { lists, destinations, bodies, body_index }
    }
}

/// The file. Written, it borrows the plan and its [`Tables`]; read, it owns what
/// it holds, and [`File::into_saved`] turns it into the plan again.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct File<'a> {
    format_version: Cow<'a, str>,
    summary: Summary,
    syncs: Vec<SyncFile<'a>>,
    orphans: Cow<'a, [Orphan]>,
    errors: Cow<'a, [PlanError]>,
    notes: Cow<'a, [String]>,
    fingerprint: Cow<'a, str>,
    change_lists: Lists<'a>,
    bodies: Vec<Cow<'a, PersonFields>>,
    input: Cow<'a, PlanInput>,
    target: Cow<'a, Target>,
    #[serde(default)]
    checksum: Cow<'a, str>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SyncFile<'a> {
    name: Cow<'a, str>,
    source: Cow<'a, PlanSource>,
    suspended: bool,
    orphaned: bool,
    errors: Cow<'a, [PlanError]>,
    users: usize,
    destinations: Vec<DestinationFile<'a>>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DestinationFile<'a> {
    user: Cow<'a, str>,
    status: Status,
    error: Option<Cow<'a, PlanError>>,
    skipped: Option<Cow<'a, str>>,
    /// Index into `changeLists`.
    changes: usize,
}

/// `changeLists`: written from the plan's lists one change at a time (no copy of
/// them), read into owned changes.
enum Lists<'a> {
    Plan { lists: &'a [Changes], bodies: &'a HashMap<usize, usize> },
    Read(Vec<Vec<ChangeFile<'a>>>),
}

impl Serialize for Lists<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct List<'a>(&'a [Change], &'a HashMap<usize, usize>);
        impl Serialize for List<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.iter().map(|c| ChangeFile::of(c, self.1)))
            }
        }
        match self {
            Lists::Plan { lists, bodies } => {
                serializer.collect_seq(lists.iter().map(|l| List(l, bodies)))
            }
            Lists::Read(lists) => lists.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Lists<'_> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Lists::Read)
    }
}

/// A [`Change`] with its contact body (if it creates a contact) by index.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangeFile<'a> {
    action: Action,
    resource: Resource,
    name: Cow<'a, str>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    email: Option<Cow<'a, str>>,
    reason: Reason,
    fields: Cow<'a, [FieldChange]>,
    op: OpFile<'a>,
}

/// An [`Op`] with its contact body by index.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase", tag = "type")]
enum OpFile<'a> {
    CreateGroup {
        name: Cow<'a, str>,
        client_data: Cow<'a, [ClientData]>,
    },
    UpdateGroup {
        group: Cow<'a, ContactGroup>,
    },
    DeleteGroup {
        resource_name: Cow<'a, str>,
    },
    CreateContact {
        /// Index into `bodies`.
        body: usize,
        memberships: Cow<'a, [GroupRef]>,
        client_data: Cow<'a, [ClientData]>,
    },
    UpdateContact {
        update: Option<Cow<'a, ContactUpdate>>,
        resource_name: Cow<'a, str>,
        add_to: Cow<'a, [GroupRef]>,
        remove_from: Cow<'a, [String]>,
    },
    DeleteContact {
        resource_name: Cow<'a, str>,
    },
    ContactPhoto {
        contact: Cow<'a, ContactRef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        planned: Option<Cow<'a, (String, Vec<ClientData>)>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        photo: Option<Cow<'a, SourcePhoto>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        has: Option<Cow<'a, str>>,
    },
}

impl<'a> File<'a> {
    fn of(saved: &'a SavedPlan, tables: &'a Tables) -> Self {
        let plan = &saved.plan;
        let syncs = plan
            .syncs
            .iter()
            .zip(&tables.destinations)
            .map(|(s, lists)| SyncFile {
                name: Cow::Borrowed(&s.name),
                source: Cow::Borrowed(&s.source),
                suspended: s.suspended,
                orphaned: s.orphaned,
                errors: Cow::Borrowed(&s.errors),
                users: s.users,
                destinations: s
                    .destinations
                    .iter()
                    .zip(lists)
                    .map(|(d, &changes)| DestinationFile {
                        user: Cow::Borrowed(&d.user),
                        status: d.status,
                        error: d.error.as_ref().map(Cow::Borrowed),
                        skipped: d.skipped.as_deref().map(Cow::Borrowed),
                        changes,
                    })
                    .collect(),
            })
            .collect();
        File {
            format_version: Cow::Borrowed(FORMAT_VERSION),
            summary: plan.summary,
            syncs,
            orphans: Cow::Borrowed(&plan.orphans),
            errors: Cow::Borrowed(&plan.errors),
            notes: Cow::Borrowed(&plan.notes),
            fingerprint: Cow::Borrowed(&plan.fingerprint),
            change_lists: Lists::Plan { lists: tables.lists.lists(), bodies: &tables.body_index },
            bodies: tables.bodies.iter().map(|b| Cow::Borrowed(&**b)).collect(),
            input: Cow::Borrowed(&saved.input),
            target: Cow::Borrowed(&saved.target),
            checksum: Cow::Borrowed(&saved.checksum),
        }
    }

    /// SHA-256 of the compact JSON of the file, streamed into the hash (a saved
    /// plan can be large). The file's checksum is the digest of the file without
    /// one: made before the checksum is set, checked after it is taken out.
    fn digest(&self) -> String {
        struct Hashing(Sha256);
        impl std::io::Write for Hashing {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.update(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        debug_assert!(self.checksum.is_empty(), "the checksum covers the file without it");
        let mut hashing = Hashing(Sha256::new());
        serde_json::to_writer(&mut hashing, self).expect("plans serialize");
        format!("sha256:{}", hex::encode(hashing.0.finalize()))
    }

    /// The plan again, each list and body shared as when it was saved.
    fn into_saved(self) -> Result<SavedPlan, Malformed> {
        let bodies: Vec<Arc<PersonFields>> =
            self.bodies.into_iter().map(|b| Arc::new(b.into_owned())).collect();
        let Lists::Read(read) = self.change_lists else {
            return Err(Malformed::NoChangeLists);
        };
        let lists = read
            .into_iter()
            .map(|list| {
                let changes: Result<Vec<Change>, Malformed> =
                    list.into_iter().map(|c| c.into_change(&bodies)).collect();
                changes.map(Changes::from)
            })
            .collect::<Result<Vec<Changes>, Malformed>>()?;
        let syncs = self
            .syncs
            .into_iter()
            .map(|s| {
                let destinations = s
                    .destinations
                    .into_iter()
                    .map(|d| {
                        let changes = lists
                            .get(d.changes)
                            .cloned()
                            .ok_or_else(|| Malformed::NoChangeList(d.user.to_string()))?;
                        Ok(DestinationPlan {
                            user: d.user.into_owned(),
                            status: d.status,
                            error: d.error.map(Cow::into_owned),
                            skipped: d.skipped.map(Cow::into_owned),
                            changes,
                        })
                    })
                    .collect::<Result<_, Malformed>>()?;
                Ok(SyncPlan {
                    name: s.name.into_owned(),
                    source: s.source.into_owned(),
                    suspended: s.suspended,
                    orphaned: s.orphaned,
                    errors: s.errors.into_owned(),
                    users: s.users,
                    destinations,
                })
            })
            .collect::<Result<_, Malformed>>()?;
        let plan = Plan {
            format_version: crate::plan::FORMAT_VERSION.to_owned(),
            summary: self.summary,
            syncs,
            orphans: self.orphans.into_owned(),
            errors: self.errors.into_owned(),
            notes: self.notes.into_owned(),
            // Not in the file: `apply PLAN.json` re-plans and says them again.
            warnings: Vec::new(),
            fingerprint: self.fingerprint.into_owned(),
            // What a run read is the re-plan's to say, not the file's.
            survey: Default::default(),
        };
        Ok(SavedPlan {
            plan,
            input: self.input.into_owned(),
            target: self.target.into_owned(),
            checksum: self.checksum.into_owned(),
        })
    }
}

impl<'a> ChangeFile<'a> {
    fn of(c: &'a Change, bodies: &HashMap<usize, usize>) -> Self {
        let op = match &c.op {
            Op::CreateGroup { name, client_data } => OpFile::CreateGroup {
                name: Cow::Borrowed(name),
                client_data: Cow::Borrowed(client_data),
            },
            Op::UpdateGroup { group } => OpFile::UpdateGroup { group: Cow::Borrowed(group) },
            Op::DeleteGroup { resource_name } => {
                OpFile::DeleteGroup { resource_name: Cow::Borrowed(resource_name) }
            }
            Op::CreateContact { fields, memberships, client_data } => OpFile::CreateContact {
                body: bodies[&(Arc::as_ptr(fields) as usize)],
                memberships: Cow::Borrowed(memberships),
                client_data: Cow::Borrowed(client_data),
            },
            Op::UpdateContact { update, resource_name, add_to, remove_from } => {
                OpFile::UpdateContact {
                    update: update.as_ref().map(Cow::Borrowed),
                    resource_name: Cow::Borrowed(resource_name),
                    add_to: Cow::Borrowed(add_to),
                    remove_from: Cow::Borrowed(remove_from),
                }
            }
            Op::DeleteContact { resource_name } => {
                OpFile::DeleteContact { resource_name: Cow::Borrowed(resource_name) }
            }
            Op::ContactPhoto { contact, planned, photo, has } => OpFile::ContactPhoto {
                contact: Cow::Borrowed(contact),
                planned: planned.as_ref().map(Cow::Borrowed),
                photo: photo.as_ref().map(Cow::Borrowed),
                has: has.as_deref().map(Cow::Borrowed),
            },
        };
        Self {
            action: c.action,
            resource: c.resource,
            name: Cow::Borrowed(&c.name),
            email: c.email.as_deref().map(Cow::Borrowed),
            reason: c.reason,
            fields: Cow::Borrowed(&c.fields),
            op,
        }
    }

    fn into_change(self, bodies: &[Arc<PersonFields>]) -> Result<Change, Malformed> {
        let op = match self.op {
            OpFile::CreateGroup { name, client_data } => {
                Op::CreateGroup { name: name.into_owned(), client_data: client_data.into_owned() }
            }
            OpFile::UpdateGroup { group } => Op::UpdateGroup { group: group.into_owned() },
            OpFile::DeleteGroup { resource_name } => {
                Op::DeleteGroup { resource_name: resource_name.into_owned() }
            }
            OpFile::CreateContact { body, memberships, client_data } => Op::CreateContact {
                fields: bodies
                    .get(body)
                    .cloned()
                    .ok_or_else(|| Malformed::NoBody(self.name.to_string()))?,
                memberships: memberships.into_owned(),
                client_data: client_data.into_owned(),
            },
            OpFile::UpdateContact { update, resource_name, add_to, remove_from } => {
                Op::UpdateContact {
                    update: update.map(Cow::into_owned),
                    resource_name: resource_name.into_owned(),
                    add_to: add_to.into_owned(),
                    remove_from: remove_from.into_owned(),
                }
            }
            OpFile::DeleteContact { resource_name } => {
                Op::DeleteContact { resource_name: resource_name.into_owned() }
            }
            OpFile::ContactPhoto { contact, planned, photo, has } => Op::ContactPhoto {
                contact: contact.into_owned(),
                planned: planned.map(Cow::into_owned),
                photo: photo.map(Cow::into_owned),
                has: has.map(Cow::into_owned),
            },
        };
        Ok(Change {
            action: self.action,
            resource: self.resource,
            name: self.name.into_owned(),
            email: self.email.map(Cow::into_owned),
            reason: self.reason,
            fields: self.fields.into_owned(),
            op,
        })
    }
}

/// Whether `fresh` is the saved plan, change for change. Destinations that share
/// a list in both plans are compared once per pair of lists, not once each.
fn same_plan(saved: &Plan, fresh: &Plan) -> bool {
    let mut equal: HashSet<(usize, usize)> = HashSet::new();
    let mut same_changes = |a: &Changes, b: &Changes| {
        if Changes::ptr_eq(a, b) || equal.contains(&(a.addr(), b.addr())) {
            return true;
        }
        let same = a[..] == b[..];
        if same {
            equal.insert((a.addr(), b.addr()));
        }
        same
    };
    let mut same_destination = |a: &DestinationPlan, b: &DestinationPlan| {
        let DestinationPlan { user, status, error, skipped, changes } = a;
        *user == b.user
            && *status == b.status
            && *error == b.error
            && *skipped == b.skipped
            && same_changes(changes, &b.changes)
    };
    let mut same_sync = |a: &SyncPlan, b: &SyncPlan| {
        let SyncPlan { name, source, suspended, orphaned, errors, users, destinations } = a;
        *name == b.name
            && *source == b.source
            && *suspended == b.suspended
            && *orphaned == b.orphaned
            && *errors == b.errors
            && *users == b.users
            && destinations.len() == b.destinations.len()
            && destinations.iter().zip(&b.destinations).all(|(a, b)| same_destination(a, b))
    };
    saved.orphans == fresh.orphans
        && saved.errors == fresh.errors
        && saved.summary == fresh.summary
        && saved.syncs.len() == fresh.syncs.len()
        && saved.syncs.iter().zip(&fresh.syncs).all(|(a, b)| same_sync(a, b))
}

/// How `fresh` differs from the saved plan, as a diff of their text forms (at
/// most `max_lines` lines); `None` when they are the same plan.
pub fn differences(saved: &Plan, fresh: &Plan, max_lines: usize) -> Option<String> {
    if same_plan(saved, fresh) {
        return None;
    }
    let style = Style::default();
    let (before, after) = (render::text(saved, style), render::text(fresh, style));
    if before == after {
        return Some(format!("  {}\n", first_difference(saved, fresh)));
    }
    let diff = similar::TextDiff::from_lines(&before, &after);
    let mut out = "  --- the saved plan\n  +++ the plan now\n".to_owned();
    let mut lines = 0;
    for hunk in diff.unified_diff().context_radius(2).iter_hunks() {
        for line in hunk.to_string().lines() {
            if lines == max_lines {
                out.push_str("  …\n");
                return Some(out);
            }
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
            lines += 1;
        }
    }
    Some(out)
}

/// Where two plans that print alike differ: the first change whose operation (what
/// would be written) is not the same.
fn first_difference(saved: &Plan, fresh: &Plan) -> String {
    for (a, b) in saved.syncs.iter().zip(&fresh.syncs) {
        for (da, db) in a.destinations.iter().zip(&b.destinations) {
            for (ca, cb) in da.changes.iter().zip(&db.changes) {
                if ca != cb {
                    return format!(
                        "sync {}, {}: what would be written for \"{}\" is not what was saved",
                        a.name, da.user, ca.name
                    );
                }
            }
        }
    }
    "what would be written is not what was saved".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::open::BackendTarget;
    use crate::manifest::OrphanPolicy;

    /// A creation of the contact `body` (made as a saved plan reads it: the
    /// planner alone decides the reasons of changes).
    fn create(name: &str, body: &Arc<PersonFields>) -> Change {
        let mut change: Change = serde_json::from_value(serde_json::json!({
            "action": "create", "resource": "contact", "name": name, "reason": "missing",
            "fields": [],
            "op": { "type": "createContact", "fields": {}, "memberships": ["newTarget"],
                    "client_data": [] }
        }))
        .unwrap();
        if let Op::CreateContact { fields, .. } = &mut change.op {
            *fields = body.clone();
        }
        change
    }

    /// Three destinations sharing one list of creates, a fourth with its own list
    /// creating the same contact, a fifth up to date.
    fn sample() -> SavedPlan {
        let body: Arc<PersonFields> = Arc::new(
            serde_json::from_value(serde_json::json!({"names": [{"givenName": "Ada"}]})).unwrap(),
        );
        let shared = Changes::from(vec![create("Ada", &body)]);
        let with = |user: &str, changes: &Changes| {
            let mut d = DestinationPlan::with_changes(user, Vec::new());
            d.status = Status::Changes;
            d.changes = changes.clone();
            d
        };
        let mut destinations: Vec<DestinationPlan> =
            ["a", "b", "c"].iter().map(|u| with(u, &shared)).collect();
        let own = vec![create("Ada", &body), create("Ada again", &body)];
        destinations.push(DestinationPlan::with_changes("d", own));
        destinations.push(DestinationPlan::with_changes("e", Vec::new()));
        let mut plan = Plan {
            format_version: crate::plan::FORMAT_VERSION.into(),
            syncs: vec![SyncPlan {
                name: "s".into(),
                users: 5,
                destinations,
                ..SyncPlan::default()
            }],
            fingerprint: "f".into(),
            ..Plan::default()
        };
        plan.summarize();
        let input = PlanInput {
            syncs: Vec::new(),
            known_syncs: vec!["s".into()],
            approved_deletes: Default::default(),
            rerun: String::new(),
            partial: None,
            orphans: OrphanPolicy::Delete,
            max_delete_percent: 50,
            allow_deletes: false,
            full_scan: crate::plan::FullScan::Never,
            adopt: None,
        };
        let target = Target {
            name: "example".into(),
            backend: BackendTarget::Local { path: "/nowhere/tenant.yaml".into() },
            orphans: OrphanPolicy::Delete,
            max_delete_percent: 50,
            nightly_at: "02:00".into(),
            time_zone: "UTC".into(),
            notifications: Vec::new(),
        };
        SavedPlan::new(plan, input, target)
    }

    #[test]
    fn a_saved_plan_reads_back_as_the_plan_with_its_sharing() {
        let saved = sample();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.json");
        saved.save(&path).unwrap();

        let file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(file["formatVersion"], FORMAT_VERSION);
        assert_eq!(file["bodies"].as_array().unwrap().len(), 1, "each body once");
        let lists = file["changeLists"].as_array().unwrap();
        assert_eq!(lists.len(), 3, "each distinct list once: {lists:?}");
        let refs: Vec<u64> = file["syncs"][0]["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["changes"].as_u64().unwrap())
            .collect();
        assert_eq!(refs, [0, 0, 0, 1, 2]);

        let loaded = SavedPlan::load(&path).unwrap();
        assert_eq!(loaded.checksum, saved.checksum);
        assert!(same_plan(&loaded.plan, &saved.plan));
        assert_eq!(loaded.plan, saved.plan);
        let d = &loaded.plan.syncs[0].destinations;
        assert!(Changes::ptr_eq(&d[0].changes, &d[2].changes), "a shared list is shared again");
        let body = |c: &Change| match &c.op {
            Op::CreateContact { fields, .. } => Arc::as_ptr(fields),
            _ => unreachable!(),
        };
        assert_eq!(body(&d[0].changes[0]), body(&d[3].changes[1]), "one body for all");
        assert!(differences(&saved.plan, &loaded.plan, 10).is_none());
    }

    #[test]
    fn a_plan_that_differs_in_one_destination_is_not_the_saved_one() {
        let saved = sample();
        let mut fresh = sample().plan;
        fresh.syncs[0].destinations[1].changes = Vec::new().into();
        fresh.syncs[0].destinations[1].status = Status::UpToDate;
        fresh.summarize();
        let diff = differences(&saved.plan, &fresh, 20).expect("they differ");
        assert!(diff.contains("\n  +  2 users (b and e): up to date\n"), "{diff}");
    }
}
