//! The desired state of a sync: the contacts every destination should have, derived
//! once per sync from the source (a user's contact group, or the directory).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::SyncInput;
use crate::model::fields::{FieldSelection, MARKER_FIELDS};
use crate::model::normalize::{content_hash, normalize};
use crate::model::photo::SourcePhoto;
use crate::model::{
    ClientData, Contact, DirectoryUser, MARKER_HASH, MARKER_SOURCE, MARKER_SYNC, PersonFields,
    contact_id, directory_map, display_name, primary_email,
};

/// Marker value of `contact-sync/source-user` for directory syncs.
pub const DIRECTORY_SOURCE: &str = "directory";

/// What every destination of one sync should have.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredSync {
    /// The sync's name.
    pub name: String,
    /// Name of the target contact group.
    pub target_group: String,
    /// Whether synced contacts also go into My Contacts.
    pub add_to_my_contacts: bool,
    /// Immutable id of the source user (`directory` for directory syncs).
    pub source_user_id: String,
    /// The source address, for messages.
    pub source_label: String,
    /// Where `target.groupName` (or the default it comes from) is written.
    pub target_location: String,
    /// The contacts, by source key (`<source user id>/<contact id>`).
    pub contacts: BTreeMap<String, DesiredContact>,
    /// Source keys of directory users left out because they are hidden from the
    /// Global Address List (copies made before they were hidden are deleted).
    pub hidden: BTreeSet<String>,
    /// Which fields of the source contacts are copied (`spec.fields`, or the
    /// Workspace's), already applied to `contacts`.
    pub selection: FieldSelection,
    /// Whether the sync copies photos (see [`copies_photo`]); when it does not,
    /// copies' photos are left as they are.
    pub photos: bool,
}

/// One contact as every destination should have it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredContact {
    /// `<source user id>/<source contact id>`.
    pub source_key: String,
    /// Normalised Person fields, shared by every destination's create of this
    /// contact (a plan holds each body once, not once per destination).
    pub fields: Arc<PersonFields>,
    /// [`content_hash`] of `fields`.
    pub hash: String,
    /// Display name.
    pub name: String,
    /// First e-mail address.
    pub email: Option<String>,
    /// The `contact-sync/fields` marker: the selection `fields` were made under
    /// (`None` when every field is copied).
    pub selection: Option<String>,
    /// The source's photo, if it has one and the sync copies photos.
    pub photo: Option<SourcePhoto>,
}

impl DesiredContact {
    /// The contact as `selection` copies it: fields left out are dropped before
    /// anything is normalised or hashed, so they never reach a plan.
    fn new(source_key: String, fields: &PersonFields, selection: &FieldSelection) -> Self {
        let fields = normalize(&selection.apply(fields));
        Self {
            hash: content_hash(&fields),
            name: display_name(&fields),
            email: primary_email(&fields).map(str::to_owned),
            source_key,
            fields: Arc::new(fields),
            selection: selection.marker(),
            photo: None,
        }
    }

    /// The `clientData` markers of this contact written by `sync`.
    pub fn markers(&self, sync: &str) -> Vec<ClientData> {
        vec![
            ClientData { key: MARKER_SYNC.into(), value: sync.into() },
            ClientData { key: MARKER_SOURCE.into(), value: self.source_key.clone() },
            ClientData { key: MARKER_HASH.into(), value: self.hash.clone() },
        ]
        .into_iter()
        .chain(
            self.selection
                .iter()
                .map(|s| ClientData { key: MARKER_FIELDS.into(), value: s.clone() }),
        )
        .collect()
    }
}

impl DesiredSync {
    fn empty(input: &SyncInput, source_user_id: &str, source_label: String) -> Self {
        let target_pointer = target_pointer(input);
        Self {
            name: input.name().to_owned(),
            target_group: input.manifest.target_group_name().to_owned(),
            add_to_my_contacts: input.manifest.spec.target.add_to_my_contacts,
            source_user_id: source_user_id.to_owned(),
            source_label,
            target_location: input.at(target_pointer),
            contacts: BTreeMap::new(),
            hidden: BTreeSet::new(),
            selection: selection(input),
            photos: copies_photo(input),
        }
    }

    /// A personal sync: the source user's contacts that are members of `group`.
    pub fn personal(
        input: &SyncInput,
        source: &DirectoryUser,
        group: &str,
        contacts: &[Contact],
    ) -> Self {
        let label = format!(
            "{} / \"{}\"",
            source.primary_email,
            input.manifest.spec.source.contact_group.as_deref().unwrap_or_default()
        );
        let mut desired = Self::empty(input, &source.id, label);
        for c in contacts.iter().filter(|c| c.memberships.iter().any(|m| m == group)) {
            let key = format!("{}/{}", source.id, contact_id(&c.resource_name));
            let mut want = DesiredContact::new(key.clone(), &c.fields, &desired.selection);
            if desired.photos {
                want.photo = c
                    .photo
                    .as_deref()
                    .map(|url| SourcePhoto::of_contact(&source.primary_email, url));
            }
            desired.contacts.insert(key, want);
        }
        desired
    }

    /// A directory sync: one contact per active directory user who is in the
    /// Global Address List. (Each destination is left out of its own copy of the
    /// directory: see [`DesiredSync::own_entry`].)
    pub fn directory(input: &SyncInput, users: &[DirectoryUser]) -> Self {
        let mut desired = Self::empty(input, DIRECTORY_SOURCE, "the directory".into());
        let custom = super::directory_extra::custom_fields(&input.manifest);
        for u in users.iter().filter(|u| !u.inactive()) {
            let key = directory_key(&u.id);
            if u.include_in_global_address_list {
                let mut person = directory_person(u, &desired.selection);
                directory_map::add_custom(&mut person, u, &custom);
                let mut want = DesiredContact::new(key.clone(), &person, &desired.selection);
                if desired.photos {
                    want.photo =
                        u.thumbnail_photo_etag.as_deref().map(|e| SourcePhoto::of_user(&u.id, e));
                }
                desired.contacts.insert(key, want);
            } else {
                desired.hidden.insert(key);
            }
        }
        desired
    }

    /// Adds the domain's shared contacts to a directory sync, each keyed
    /// `shared/<contact id>` (see [`super::directory_extra::shared_key`]) and
    /// normalised like a personal sync's contacts.
    pub fn add_shared(&mut self, shared: &[Contact]) {
        for c in shared {
            let key = super::directory_extra::shared_key(&c.resource_name);
            self.contacts.insert(key.clone(), DesiredContact::new(key, &c.fields, &self.selection));
        }
    }

    /// The source key of the directory entry of the destination user `id`, which a
    /// directory sync does not copy to that user; `None` for personal syncs.
    pub fn own_entry(&self, id: &str) -> Option<String> {
        (self.source_user_id == DIRECTORY_SOURCE).then(|| directory_key(id))
    }
}

/// The JSON pointer of where `input`'s target group name comes from:
/// `target.groupName`, or the default's `source.contactGroup`.
pub fn target_pointer(input: &SyncInput) -> &'static str {
    if input.manifest.spec.target.group_name.is_some() {
        "/spec/target/groupName"
    } else {
        "/spec/source/contactGroup"
    }
}

/// Whether `input`'s sync copies the source photos to its copies: unless its
/// field selection (`spec.fields`, or the Workspace's) leaves `photo` out.
pub fn copies_photo(input: &SyncInput) -> bool {
    selection(input).copies_photo()
}

/// The fields `input`'s sync copies (`spec.fields`; every field without one).
fn selection(input: &SyncInput) -> FieldSelection {
    input
        .manifest
        .spec
        .fields
        .as_ref()
        .map(crate::manifest::FieldsSpec::selection)
        .unwrap_or_default()
}

/// A directory user's source key: `directory/<user id>`.
fn directory_key(id: &str) -> String {
    format!("{DIRECTORY_SOURCE}/{id}")
}

/// The contact a directory user becomes: its Directory fields mapped to People
/// fields, the items a company address book shows (see [`directory_map`]), and
/// the items of a type that `selection` includes by name (`phoneNumbers.mobile`).
pub fn directory_person(u: &DirectoryUser, selection: &FieldSelection) -> PersonFields {
    directory_map::person_with(u, |field, kind| {
        let named = match kind {
            directory_map::Kind::Word(word) => word.people,
            directory_map::Kind::Custom(text) | directory_map::Kind::Unknown(text) => Some(*text),
            directory_map::Kind::Untyped => None,
        };
        field.by_default(kind) || named.is_some_and(|ty| selection.opts_in(field.people, ty))
    })
}
