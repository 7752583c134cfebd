//! Planning one destination user for one sync: pure, from the desired state and the
//! user's actual contact groups and contacts (ownership, drift and pruning).
//!
//! Only marked contacts and groups (`clientData` `contact-sync/sync` = this sync)
//! are ever changed. Everything else a destination has — its own contacts, even
//! those it put in the target group — is read but never touched.

use std::collections::BTreeMap;

use super::desired::{DesiredContact, DesiredSync};
use super::diff::{changed_fields, diff};
use super::{
    Action, Change, ContactRef, DestinationPlan, FieldChange, GroupRef, Op, PlanError, Reason,
    Resource,
};
use crate::model::fields::MARKER_FIELDS;
use crate::model::normalize::{content_hash, normalize, same_content};
use crate::model::photo::{MARKER_PHOTO, PhotoMarker};
use crate::model::{
    ClientData, Contact, ContactGroup, ContactUpdate, MARKER_HASH, MARKER_SOURCE,
    MARKER_SOURCE_USER, MARKER_SYNC, MY_CONTACTS, client_data,
};

/// One user's actual state, as read from the backend.
#[derive(Clone, Copy, Debug)]
pub struct Actual<'a> {
    /// The user's primary address.
    pub user: &'a str,
    /// The user's immutable id.
    pub id: &'a str,
    /// Every contact group of the user.
    pub groups: &'a [ContactGroup],
    /// Every contact of the user.
    pub contacts: &'a [Contact],
}

impl Actual<'_> {
    /// Contacts marked as written by `sync`.
    pub fn marked_contacts(&self, sync: &str) -> impl Iterator<Item = &Contact> {
        self.contacts.iter().filter(move |c| c.owner() == Some(sync))
    }

    /// Groups marked as written by `sync`, by resource name.
    pub fn marked_groups(&self, sync: &str) -> Vec<&ContactGroup> {
        let mut groups: Vec<&ContactGroup> =
            self.groups.iter().filter(|g| g.owner() == Some(sync)).collect();
        groups.sort_by(|a, b| a.resource_name.cmp(&b.resource_name));
        groups
    }
}

/// Plans a selected destination: target group, then contacts.
pub fn plan_selected(sync: &DesiredSync, actual: &Actual) -> DestinationPlan {
    let mut changes = Vec::new();
    let group = match plan_group(sync, actual, &mut changes) {
        Ok(group) => group,
        Err(error) => return DestinationPlan::error(actual.user, *error),
    };
    plan_contacts(sync, actual, &group, &BTreeMap::new(), &mut changes);
    sort_changes(&mut changes);
    DestinationPlan::with_changes(actual.user, changes)
}

/// Plans a selected destination for `contact-sync adopt`: its contact group of
/// the target name that contact-sync did not write is marked as the sync's, and
/// the unmarked contacts in it that match a source contact (by e-mail address,
/// else by name) become that contact's copies, brought in line with it. Every
/// other unmarked contact is left alone. A group of that name written for another
/// sync is not taken: the conflict stays an error.
pub fn plan_adopted(sync: &DesiredSync, actual: &Actual) -> DestinationPlan {
    let Some(found) =
        actual.groups.iter().find(|g| g.name == sync.target_group && g.owner().is_none())
    else {
        return plan_selected(sync, actual);
    };
    let mut adopted_group = found.clone();
    adopted_group.client_data.retain(|d| !d.key.starts_with("contact-sync/"));
    adopted_group.client_data.extend(group_markers(sync));
    let mut changes = vec![Change {
        action: Action::Update,
        resource: Resource::Group,
        name: sync.target_group.clone(),
        email: None,
        reason: Reason::Adopted,
        fields: vec![FieldChange {
            field: "clientData[contact-sync/sync]".into(),
            before: None,
            after: Some(sync.name.clone().into()),
        }],
        op: Op::UpdateGroup { group: adopted_group },
    }];
    let group = GroupRef::Existing(found.resource_name.clone());
    let matches = matching_contacts(sync, actual, &found.resource_name);
    plan_contacts(sync, actual, &group, &matches, &mut changes);
    sort_changes(&mut changes);
    DestinationPlan::with_changes(actual.user, changes)
}

/// The unmarked contacts in `group` that match a source contact, by its source
/// key: the same first e-mail address (ignoring case), else the same display name;
/// each contact matches one source contact at most.
fn matching_contacts<'a>(
    sync: &DesiredSync,
    actual: &Actual<'a>,
    group: &str,
) -> BTreeMap<String, &'a Contact> {
    let mut unclaimed: Vec<(&'a Contact, Option<String>, String)> = actual
        .contacts
        .iter()
        .filter(|c| c.owner().is_none() && c.memberships.iter().any(|m| m == group))
        .map(|c| {
            let fields = normalize(&c.fields);
            let email = crate::model::primary_email(&fields).map(str::to_lowercase);
            (c, email, crate::model::display_name(&fields))
        })
        .collect();
    unclaimed.sort_by(|a, b| a.0.resource_name.cmp(&b.0.resource_name));
    let mut matches = BTreeMap::new();
    let by_email = |want: &DesiredContact, c: &(&Contact, Option<String>, String)| {
        want.email.as_ref().is_some_and(|e| c.1.as_deref() == Some(e.to_lowercase().as_str()))
    };
    let by_name = |want: &DesiredContact, c: &(&Contact, Option<String>, String)| {
        !want.name.is_empty() && c.2 == want.name
    };
    for rule in [&by_email as &dyn Fn(&DesiredContact, &_) -> bool, &by_name] {
        for (key, want) in &sync.contacts {
            if matches.contains_key(key) {
                continue;
            }
            if let Some(i) = unclaimed.iter().position(|c| rule(want, c)) {
                matches.insert(key.clone(), unclaimed.remove(i).0);
            }
        }
    }
    matches
}

/// Plans a user who is no longer a destination of `sync` (or whose sync's manifest
/// is gone): every marked contact and group of the sync goes.
pub fn plan_removed(sync: &str, actual: &Actual, reason: Reason) -> DestinationPlan {
    let mut changes: Vec<Change> =
        actual.marked_contacts(sync).map(|c| delete_contact(c, reason)).collect();
    changes.extend(actual.marked_groups(sync).into_iter().map(|g| delete_group(g, reason)));
    sort_changes(&mut changes);
    DestinationPlan::with_changes(actual.user, changes)
}

/// Groups first, then contacts; by name within each.
fn sort_changes(changes: &mut [Change]) {
    changes.sort_by(|a, b| (a.resource, &a.name, a.action).cmp(&(b.resource, &b.name, b.action)));
}

/// Makes sure the target group exists under its name; returns it (new when the
/// plan creates it).
fn plan_group(
    sync: &DesiredSync,
    actual: &Actual,
    changes: &mut Vec<Change>,
) -> Result<GroupRef, Box<PlanError>> {
    let marked = actual.marked_groups(&sync.name);
    let conflict =
        actual.groups.iter().find(|g| g.name == sync.target_group && g.owner() != Some(&sync.name));
    let conflict_error = |g: &ContactGroup| PlanError::TargetGroupConflict {
        sync: sync.name.clone(),
        user: actual.user.to_owned(),
        group: g.name.clone(),
        at: sync.target_location.clone(),
        // The run's paths are the planner's to add (see its finish).
        rerun: String::new(),
    };
    let Some((group, duplicates)) = marked.split_first() else {
        if let Some(g) = conflict {
            return Err(Box::new(conflict_error(g)));
        }
        changes.push(Change {
            action: Action::Create,
            resource: Resource::Group,
            name: sync.target_group.clone(),
            email: None,
            reason: Reason::Missing,
            fields: Vec::new(),
            op: Op::CreateGroup {
                name: sync.target_group.clone(),
                client_data: group_markers(sync),
            },
        });
        return Ok(GroupRef::NewTarget);
    };
    let written_for = client_data(&group.client_data, MARKER_SOURCE_USER).unwrap_or_default();
    if written_for != sync.source_user_id {
        return Err(Box::new(PlanError::SourceIdentityChanged {
            sync: sync.name.clone(),
            user: actual.user.to_owned(),
            copied_from: written_for.to_owned(),
            source: sync.source_label.clone(),
            source_id: sync.source_user_id.clone(),
            group: group.name.clone(),
        }));
    }
    if group.name != sync.target_group {
        if let Some(g) = conflict {
            return Err(Box::new(conflict_error(g)));
        }
        let mut renamed = (*group).clone();
        renamed.name = sync.target_group.clone();
        changes.push(Change {
            action: Action::Update,
            resource: Resource::Group,
            name: sync.target_group.clone(),
            email: None,
            reason: Reason::SourceChanged,
            fields: vec![FieldChange {
                field: "name".into(),
                before: Some(group.name.clone().into()),
                after: Some(sync.target_group.clone().into()),
            }],
            op: Op::UpdateGroup { group: renamed },
        });
    }
    changes.extend(duplicates.iter().map(|g| delete_group(g, Reason::Duplicate)));
    Ok(GroupRef::Existing(group.resource_name.clone()))
}

fn group_markers(sync: &DesiredSync) -> Vec<ClientData> {
    vec![
        ClientData { key: MARKER_SYNC.into(), value: sync.name.clone() },
        ClientData { key: MARKER_SOURCE_USER.into(), value: sync.source_user_id.clone() },
    ]
}

/// The contacts of a destination: `adopted` are unmarked contacts that become the
/// copies of the source contacts they are keyed by (`contact-sync adopt`).
fn plan_contacts(
    sync: &DesiredSync,
    actual: &Actual,
    group: &GroupRef,
    adopted: &BTreeMap<String, &Contact>,
    changes: &mut Vec<Change>,
) {
    let mut present: BTreeMap<&str, Vec<&Contact>> = BTreeMap::new();
    for c in actual.marked_contacts(&sync.name) {
        let key = client_data(&c.client_data, MARKER_SOURCE).unwrap_or_default();
        present.entry(key).or_default().push(c);
    }
    let group_names: BTreeMap<&str, &str> =
        actual.groups.iter().map(|g| (g.resource_name.as_str(), g.name.as_str())).collect();
    let own = sync.own_entry(actual.id);
    for (key, want) in &sync.contacts {
        if own.as_ref() == Some(key) {
            continue;
        }
        let Some(mut copies) = present.remove(key.as_str()) else {
            match adopted.get(key) {
                Some(have) => {
                    // Unmarked: an update always marks it, so there is one.
                    if let Some(mut change) = update_contact(sync, want, have, group, &group_names)
                    {
                        change.reason = Reason::Adopted;
                        changes.push(change);
                    }
                    changes.extend(photo_change(sync, want, Some(have)));
                }
                None => {
                    changes.push(create_contact(sync, want, group));
                    changes.extend(photo_change(sync, want, None));
                }
            }
            continue;
        };
        // Keep the copy that already matches, else the oldest resource name.
        copies.sort_by_key(|c| {
            (!same_content(&normalize(&c.fields), &want.fields), c.resource_name.clone())
        });
        let (keep, extra) = copies.split_first().expect("entries are never empty");
        changes.extend(extra.iter().map(|c| delete_contact(c, Reason::Duplicate)));
        if let Some(change) = update_contact(sync, want, keep, group, &group_names) {
            changes.push(change);
        }
        changes.extend(photo_change(sync, want, Some(keep)));
    }
    for (key, stale) in present {
        let reason = if own.as_deref() == Some(key) {
            Reason::OwnEntry
        } else if sync.hidden.contains(key) {
            Reason::Hidden
        } else {
            Reason::RemovedFromSource
        };
        changes.extend(stale.into_iter().map(|c| delete_contact(c, reason)));
    }
}

fn wanted_memberships(sync: &DesiredSync, group: &GroupRef) -> Vec<GroupRef> {
    let mut m = vec![group.clone()];
    if sync.add_to_my_contacts {
        m.push(GroupRef::Existing(MY_CONTACTS.to_owned()));
    }
    m
}

fn create_contact(sync: &DesiredSync, want: &DesiredContact, group: &GroupRef) -> Change {
    Change {
        action: Action::Create,
        resource: Resource::Contact,
        name: want.name.clone(),
        email: want.email.clone(),
        reason: Reason::Missing,
        fields: Vec::new(),
        op: Op::CreateContact {
            fields: want.fields.clone(),
            memberships: wanted_memberships(sync, group),
            client_data: want.markers(&sync.name),
        },
    }
}

/// The update that brings `have` in line with `want`, if any: content, markers and
/// the two memberships contact-sync manages (target group, My Contacts).
fn update_contact(
    sync: &DesiredSync,
    want: &DesiredContact,
    have: &Contact,
    group: &GroupRef,
    group_names: &BTreeMap<&str, &str>,
) -> Option<Change> {
    let (reason, mut fields, update) = match content_update(sync, want, have) {
        Some((reason, fields, update)) => (reason, fields, Some(update)),
        None => (Reason::Membership, Vec::new(), None),
    };
    let moves = memberships(sync, have, group, group_names);
    if update.is_none() && moves.is_none() {
        return None;
    }
    let (add_to, remove_from) = match moves {
        Some(Moves { add_to, remove_from, field }) => {
            fields.push(field);
            (add_to, remove_from)
        }
        None => (Vec::new(), Vec::new()),
    };
    let op = Op::UpdateContact {
        update,
        resource_name: have.resource_name.clone(),
        add_to,
        remove_from,
    };
    Some(updating(want, reason, fields, op))
}

/// An update of the copy of `want`, for `reason`, showing `fields`, done by `op`.
fn updating(want: &DesiredContact, reason: Reason, fields: Vec<FieldChange>, op: Op) -> Change {
    Change {
        action: Action::Update,
        resource: Resource::Contact,
        name: want.name.clone(),
        email: want.email.clone(),
        reason,
        fields,
        op,
    }
}

/// The update of a copy's content and markers, when its content or its hash
/// marker is not what the sync wants now: why, the fields that change, and the
/// update to send.
fn content_update(
    sync: &DesiredSync,
    want: &DesiredContact,
    have: &Contact,
) -> Option<(Reason, Vec<FieldChange>, ContactUpdate)> {
    let actual = normalize(&have.fields);
    let marker_hash = client_data(&have.client_data, MARKER_HASH).unwrap_or_default();
    let written_under = client_data(&have.client_data, MARKER_FIELDS);
    let content_differs = !same_content(&actual, &want.fields);
    if !content_differs && marker_hash == want.hash {
        return None;
    }
    // A copy as contact-sync wrote it, under another selection than the sync's
    // now: the selection is why it changes (a destination's own edit still
    // shows as one).
    let reason = if content_differs && content_hash(&actual) != marker_hash {
        Reason::EditedOutside
    } else if written_under != want.selection.as_deref() {
        Reason::FieldsChanged
    } else {
        Reason::SourceChanged
    };
    let mut mask = changed_fields(&actual, &want.fields);
    mask.push("clientData".into());
    // Other applications' clientData entries are kept, and the photo marker (the
    // photo is written on its own).
    let mut data: Vec<ClientData> = have
        .client_data
        .iter()
        .filter(|d| !d.key.starts_with("contact-sync/") || d.key == MARKER_PHOTO)
        .cloned()
        .collect();
    data.extend(want.markers(&sync.name));
    let update = ContactUpdate {
        resource_name: have.resource_name.clone(),
        etag: have.etag.clone(),
        // Every synced field's value, not only the changed ones': a backend may
        // send updates with different masks in one request under the union of
        // their masks, and a field named by the mask but absent is cleared.
        fields: (*want.fields).clone(),
        update_mask: mask,
        client_data: data,
    };
    Some((reason, diff(&actual, &want.fields), update))
}

/// How a copy's managed memberships move: the groups it joins, those it leaves,
/// and the change as the plan shows it.
struct Moves {
    add_to: Vec<GroupRef>,
    remove_from: Vec<String>,
    field: FieldChange,
}

/// The memberships contact-sync manages — the target group (a new one holds
/// nobody yet) and My Contacts — as the sync wants them, if they are not so.
fn memberships(
    sync: &DesiredSync,
    have: &Contact,
    group: &GroupRef,
    group_names: &BTreeMap<&str, &str>,
) -> Option<Moves> {
    let managed = |rn: &str| rn == MY_CONTACTS || *group == GroupRef::Existing(rn.to_owned());
    let wanted = wanted_memberships(sync, group);
    let has: Vec<&str> =
        have.memberships.iter().map(String::as_str).filter(|m| managed(m)).collect();
    let holds = |g: &GroupRef| matches!(g, GroupRef::Existing(rn) if has.contains(&rn.as_str()));
    let add_to: Vec<GroupRef> = wanted.iter().filter(|g| !holds(g)).cloned().collect();
    let remove_from: Vec<String> = has
        .iter()
        .filter(|m| !wanted.contains(&GroupRef::Existing(m.to_string())))
        .map(|m| m.to_string())
        .collect();
    if add_to.is_empty() && remove_from.is_empty() {
        return None;
    }
    let name = |rn: &str| group_names.get(rn).copied().unwrap_or(rn).to_owned();
    let label = |g: &GroupRef| match g {
        GroupRef::NewTarget => sync.target_group.clone(),
        GroupRef::Existing(rn) => name(rn),
    };
    let field = FieldChange {
        field: "memberships".into(),
        before: Some(has.iter().map(|rn| name(rn)).collect()),
        after: Some(wanted.iter().map(label).collect()),
    };
    Some(Moves { add_to, remove_from, field })
}

/// The photo change that gives `have` (`None`: the copy this plan creates) the
/// source's photo, or takes a photo the source lost away, if any. A copy whose
/// marker names the source photo's version, and that still has a photo, is up
/// to date: nothing is downloaded or sent for it.
fn photo_change(
    sync: &DesiredSync,
    want: &DesiredContact,
    have: Option<&Contact>,
) -> Option<Change> {
    if !sync.photos {
        return None;
    }
    let marker = have.and_then(|c| PhotoMarker::of(&c.client_data));
    let has_photo = have.is_some_and(|c| c.photo.is_some());
    let (reason, has) = match (&want.photo, &marker) {
        (None, None) => return None,
        (Some(p), Some(m)) if m.version == p.version && has_photo => return None,
        (Some(_), None) if have.is_none() => (Reason::Missing, None),
        // The photo was taken off the copy by someone else: it is sent again.
        (Some(_), Some(_)) if !has_photo => (Reason::EditedOutside, None),
        // Removing: `has` says whether there is still a photo to remove.
        (None, Some(m)) => (Reason::SourceChanged, has_photo.then(|| m.hash.clone())),
        (_, m) => (Reason::SourceChanged, m.as_ref().map(|m| m.hash.clone())),
    };
    let contact = match have {
        Some(c) => ContactRef::Existing(c.resource_name.clone()),
        None => ContactRef::New(want.source_key.clone()),
    };
    let field = FieldChange {
        field: "photo".into(),
        before: marker.as_ref().filter(|_| has_photo).map(|m| m.version.clone().into()),
        after: want.photo.as_ref().map(|p| p.version.clone().into()),
    };
    let op = Op::ContactPhoto {
        contact,
        planned: have.map(|c| (c.etag.clone(), c.client_data.clone())),
        photo: want.photo.clone(),
        has,
    };
    Some(updating(want, reason, vec![field], op))
}

fn delete_contact(c: &Contact, reason: Reason) -> Change {
    let fields = normalize(&c.fields);
    Change {
        action: Action::Delete,
        resource: Resource::Contact,
        name: crate::model::display_name(&fields),
        email: crate::model::primary_email(&fields).map(str::to_owned),
        reason,
        fields: Vec::new(),
        op: Op::DeleteContact { resource_name: c.resource_name.clone() },
    }
}

fn delete_group(g: &ContactGroup, reason: Reason) -> Change {
    Change {
        action: Action::Delete,
        resource: Resource::Group,
        name: g.name.clone(),
        email: None,
        reason,
        fields: Vec::new(),
        op: Op::DeleteGroup { resource_name: g.resource_name.clone() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DirectoryUser;
    use crate::plan::SyncInput;

    fn directory_sync(users: &[DirectoryUser]) -> DesiredSync {
        let manifest = serde_json::from_value(serde_json::json!({
            "apiVersion": "contact-sync/v1", "kind": "ContactSync",
            "metadata": {"name": "staff"},
            "spec": {"type": "directory", "source": {"directory": {}},
                     "destinations": {"domains": ["example.com"]}}
        }))
        .unwrap();
        DesiredSync::directory(&SyncInput { manifest, locations: BTreeMap::new() }, users)
    }

    fn user(id: &str, name: &str, listed: bool) -> DirectoryUser {
        DirectoryUser {
            id: id.into(),
            primary_email: format!("{name}@example.com"),
            given_name: name.into(),
            include_in_global_address_list: listed,
            ..DirectoryUser::default()
        }
    }

    /// `plan_selected` for `dest`, which holds the sync's target group and `contacts`.
    fn planned(sync: &DesiredSync, dest: &DirectoryUser, contacts: &[Contact]) -> DestinationPlan {
        let group = ContactGroup {
            resource_name: "contactGroups/1".into(),
            etag: "e".into(),
            name: "Directory".into(),
            client_data: group_markers(sync),
            system: false,
        };
        let actual = Actual {
            user: &dest.primary_email,
            id: &dest.id,
            groups: std::slice::from_ref(&group),
            contacts,
        };
        plan_selected(sync, &actual)
    }

    /// What `plan_selected` does for `dest`, as `(action, name, reason)` of its contacts.
    fn contact_changes(
        sync: &DesiredSync,
        dest: &DirectoryUser,
        contacts: &[Contact],
    ) -> Vec<(Action, String, Reason)> {
        planned(sync, dest, contacts)
            .changes
            .iter()
            .filter(|c| c.resource == Resource::Contact)
            .map(|c| (c.action, c.name.clone(), c.reason))
            .collect()
    }

    /// A copy of `u` as an earlier apply wrote it into a destination.
    fn copy_of(sync: &DesiredSync, u: &DirectoryUser) -> Contact {
        let everyone =
            directory_sync(&[DirectoryUser { include_in_global_address_list: true, ..u.clone() }]);
        let want = everyone.contacts.values().next().unwrap();
        Contact {
            resource_name: format!("people/c{}", u.id),
            etag: "e".into(),
            fields: (*want.fields).clone(),
            memberships: vec!["contactGroups/1".into()],
            client_data: want.markers(&sync.name),
            photo: None,
        }
    }

    /// The photo ops `plan_selected` gives `dest` holding `contacts`.
    fn photo_ops(sync: &DesiredSync, dest: &DirectoryUser, contacts: &[Contact]) -> Vec<Op> {
        planned(sync, dest, contacts)
            .changes
            .iter()
            .filter(|c| matches!(c.op, Op::ContactPhoto { .. }))
            .map(|c| c.op.clone())
            .collect()
    }

    #[test]
    fn photos_follow_the_version_in_the_marker() {
        let (ann, mut bob) = (user("1", "ann", true), user("2", "bob", true));
        bob.thumbnail_photo_etag = Some("etag-1".into());
        let sync = directory_sync(&[ann.clone(), bob.clone()]);
        let want = sync.contacts.values().find(|c| c.name == "bob").unwrap();
        let version = want.photo.as_ref().unwrap().version.clone();
        let marker = PhotoMarker { version, hash: "h".into() };
        let mut copy = copy_of(&sync, &bob);
        copy.client_data.push(marker.entry());
        copy.photo = Some("url".into());
        // Up to date: nothing to download or send.
        assert_eq!(photo_ops(&sync, &ann, std::slice::from_ref(&copy)), []);
        // A new version: sent, unless the bytes turn out the same (`has`).
        bob.thumbnail_photo_etag = Some("etag-2".into());
        let newer = directory_sync(&[ann.clone(), bob.clone()]);
        let ops = photo_ops(&newer, &ann, std::slice::from_ref(&copy));
        assert!(
            matches!(&ops[..], [Op::ContactPhoto { photo: Some(_), has: Some(h), .. }] if h == "h")
        );
        // The source loses it; the copy lost it already: only the marker goes.
        bob.thumbnail_photo_etag = None;
        let gone = directory_sync(&[ann.clone(), bob.clone()]);
        copy.photo = None;
        let ops = photo_ops(&gone, &ann, std::slice::from_ref(&copy));
        assert!(matches!(&ops[..], [Op::ContactPhoto { photo: None, has: None, .. }]));
        // A sync that copies no photo leaves them alone.
        let mut off = newer.clone();
        off.photos = false;
        assert_eq!(photo_ops(&off, &ann, std::slice::from_ref(&copy)), []);
    }

    #[test]
    fn a_directory_sync_copies_neither_hidden_users_nor_the_destination_itself() {
        let (ann, bob, hal) =
            (user("1", "ann", true), user("2", "bob", true), user("3", "hal", false));
        let sync = directory_sync(&[ann.clone(), bob.clone(), hal.clone()]);
        assert_eq!(
            contact_changes(&sync, &ann, &[]),
            [(Action::Create, "bob".into(), Reason::Missing)]
        );
        assert_eq!(
            contact_changes(&sync, &bob, &[]),
            [(Action::Create, "ann".into(), Reason::Missing)]
        );
        // A hidden user still gets the directory.
        let hal_gets: Vec<String> =
            contact_changes(&sync, &hal, &[]).into_iter().map(|(_, name, _)| name).collect();
        assert_eq!(hal_gets, ["ann", "bob"]);
    }

    #[test]
    fn copies_of_hidden_users_and_of_the_destination_itself_are_deleted() {
        let (ann, bob, hal) =
            (user("1", "ann", true), user("2", "bob", true), user("3", "hal", false));
        let sync = directory_sync(&[ann.clone(), bob.clone(), hal.clone()]);
        let earlier = [copy_of(&sync, &ann), copy_of(&sync, &bob), copy_of(&sync, &hal)];
        assert_eq!(
            contact_changes(&sync, &ann, &earlier),
            [
                (Action::Delete, "ann".into(), Reason::OwnEntry),
                (Action::Delete, "hal".into(), Reason::Hidden),
            ]
        );
        assert_eq!(Reason::Hidden.describe(), "hidden from the Global Address List");
    }
}
