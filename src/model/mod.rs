//! Domain types shared by the planner and the backends: directory users, contacts,
//! contact groups and the ownership markers contact-sync writes into `clientData`.
//!
//! They mirror the People API and Admin SDK shapes closely (a contact's fields are
//! kept as the People API's JSON, keyed by Person field name) so the Google backend
//! maps them one to one, while the planner never depends on a backend.
//! [`normalize`] says when two contacts' contents are the same, for the planner
//! (drift) and for the google backend (did a resent update land?) alike.

pub mod directory_map;
pub mod fields;
pub mod inventory;
pub mod normalize;
pub mod photo;
pub mod resolution;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `clientData` key on contacts and groups: the name of the sync that wrote them.
pub const MARKER_SYNC: &str = "contact-sync/sync";
/// `clientData` key on contacts: `<source user id>/<source contact id>`.
pub const MARKER_SOURCE: &str = "contact-sync/source";
/// `clientData` key on contacts: hash of the content as contact-sync last wrote it.
pub const MARKER_HASH: &str = "contact-sync/hash";
/// `clientData` key on target groups: the source user's immutable id.
pub const MARKER_SOURCE_USER: &str = "contact-sync/source-user";

/// `clientData` key of the contact group that holds a tenant's writer lease (google
/// backend); its value is always `writer`. The group carries no `contact-sync/sync`
/// marker, so no plan ever touches it.
pub const MARKER_LEASE: &str = "contact-sync/lease";
/// `clientData` key on the lease group: who holds the lease (empty: nobody).
pub const MARKER_LEASE_HOLDER: &str = "contact-sync/lease-holder";
/// `clientData` key on the lease group: when the holder took it (RFC 3339).
pub const MARKER_LEASE_SINCE: &str = "contact-sync/lease-since";
/// `clientData` key on the lease group: when it lapses unless renewed (RFC 3339).
pub const MARKER_LEASE_EXPIRES: &str = "contact-sync/lease-expires";

/// Resource name of the system group "My Contacts".
pub const MY_CONTACTS: &str = "contactGroups/myContacts";

/// The Person fields contact-sync compares and writes: every writable field of the
/// People API except `memberships` and `clientData`, which are handled on their own.
pub const PERSON_FIELDS: &[&str] = &[
    "addresses",
    "biographies",
    "birthdays",
    "calendarUrls",
    "emailAddresses",
    "events",
    "externalIds",
    "genders",
    "imClients",
    "interests",
    "locales",
    "locations",
    "miscKeywords",
    "names",
    "nicknames",
    "occupations",
    "organizations",
    "phoneNumbers",
    "relations",
    "sipAddresses",
    "urls",
    "userDefined",
];

/// Person fields that accept a single item.
pub const SINGLETON_FIELDS: &[&str] = &["names", "biographies", "birthdays", "genders"];

/// A user of the directory (Admin SDK `users` resource, the fields used).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    /// Immutable id.
    pub id: String,
    /// Current primary address.
    pub primary_email: String,
    /// Other addresses, including old primaries after a rename.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Org unit, e.g. `/Accounting/Payroll`.
    #[serde(default)]
    pub org_unit_path: String,
    /// Suspended users are skipped as destinations.
    #[serde(default)]
    pub suspended: bool,
    /// Archived users are skipped as destinations.
    #[serde(default)]
    pub archived: bool,
    /// Given name.
    #[serde(default)]
    pub given_name: String,
    /// Family name.
    #[serde(default)]
    pub family_name: String,
    /// Phone numbers, in the Directory's shape (`UserPhone`: `value`, `type`,
    /// `customType`, `primary`); [`directory_map`] makes People items of them, as
    /// of the other lists below.
    #[serde(default)]
    pub phones: Vec<Value>,
    /// Organizations (`UserOrganization`: `name`, `title`, `department`,
    /// `description`, `fullTimeEquivalent`…).
    #[serde(default)]
    pub organizations: Vec<Value>,
    /// Addresses (`UserAddress`: `streetAddress`, `locality`, `formatted`…).
    #[serde(default)]
    pub addresses: Vec<Value>,
    /// Relations (`UserRelation`: `value`, `type` such as `manager`).
    #[serde(default)]
    pub relations: Vec<Value>,
    /// Locations (`UserLocation`: `area`, `buildingId`, `floorName`, `deskCode`…).
    #[serde(default)]
    pub locations: Vec<Value>,
    /// External ids (`UserExternalId`: `value`, `type`).
    #[serde(default)]
    pub external_ids: Vec<Value>,
    /// Instant messengers (`UserIm`: `im`, `protocol`, `customProtocol`, `type`).
    #[serde(default)]
    pub ims: Vec<Value>,
    /// Websites (`UserWebsite`: `value`, `type`).
    #[serde(default)]
    pub websites: Vec<Value>,
    /// Whether the user is in the Global Address List (true unless an admin hid
    /// them). Directory syncs never copy a hidden user.
    #[serde(default = "yes")]
    pub include_in_global_address_list: bool,
    /// Custom schema fields (`customSchemas`: schema name → field name → a value,
    /// or a list of `{value, type, customType}` for a multi-valued field), as the
    /// Directory gives them to a read that asks for those schemas; see
    /// [`directory_map::custom_items`].
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom_schemas: BTreeMap<String, Value>,
    /// `thumbnailPhotoEtag`: set when the user has a directory photo, and changes
    /// with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_photo_etag: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for DirectoryUser {
    fn default() -> Self {
        Self {
            id: String::new(),
            primary_email: String::new(),
            aliases: Vec::new(),
            org_unit_path: String::new(),
            suspended: false,
            archived: false,
            given_name: String::new(),
            family_name: String::new(),
            phones: Vec::new(),
            organizations: Vec::new(),
            addresses: Vec::new(),
            relations: Vec::new(),
            locations: Vec::new(),
            external_ids: Vec::new(),
            ims: Vec::new(),
            websites: Vec::new(),
            include_in_global_address_list: true,
            custom_schemas: BTreeMap::new(),
            thumbnail_photo_etag: None,
        }
    }
}

impl DirectoryUser {
    /// Whether the user is suspended or archived.
    pub fn inactive(&self) -> bool {
        self.suspended || self.archived
    }
}

/// One `clientData` entry.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientData {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// Looks a key up in a `clientData` list.
pub fn client_data<'a>(data: &'a [ClientData], key: &str) -> Option<&'a str> {
    data.iter().find(|d| d.key == key).map(|d| d.value.as_str())
}

/// A contact's writable Person fields, keyed by field name, as the People API's JSON.
pub type PersonFields = BTreeMap<String, Value>;

/// A contact of a user (People API `Person` from `connections.list`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// `people/c…`.
    pub resource_name: String,
    /// Current etag; updates must carry it.
    pub etag: String,
    /// Writable Person fields (see [`PERSON_FIELDS`]).
    pub fields: PersonFields,
    /// Resource names of the contact groups the contact belongs to.
    pub memberships: Vec<String>,
    /// `clientData`, where the ownership markers live.
    pub client_data: Vec<ClientData>,
    /// The URL of the contact's own photo (the People `photos` item of its
    /// `CONTACT` source that is not a default one), if it has one; it changes
    /// when the photo does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo: Option<String>,
}

impl Contact {
    /// The sync that owns this contact, if it carries a marker.
    pub fn owner(&self) -> Option<&str> {
        client_data(&self.client_data, MARKER_SYNC)
    }

    /// A short name for plans: the display name or, failing that, the first e-mail.
    pub fn display_name(&self) -> String {
        display_name(&self.fields)
    }
}

/// A short name for a set of Person fields: given and family name, else the
/// unstructured name, organization, e-mail or phone.
pub fn display_name(fields: &PersonFields) -> String {
    let first = |field: &str, keys: &[&str]| -> Option<String> {
        let item = fields.get(field)?.as_array()?.first()?;
        let parts: Vec<&str> = keys.iter().filter_map(|k| item.get(*k)?.as_str()).collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    };
    first("names", &["givenName", "familyName"])
        .or_else(|| first("names", &["unstructuredName"]))
        .or_else(|| first("organizations", &["name"]))
        .or_else(|| first("emailAddresses", &["value"]))
        .or_else(|| first("phoneNumbers", &["value"]))
        .unwrap_or_else(|| "(no name)".to_owned())
}

/// The first e-mail address of a set of Person fields.
pub fn primary_email(fields: &PersonFields) -> Option<&str> {
    fields.get("emailAddresses")?.as_array()?.first()?.get("value")?.as_str()
}

/// A contact group of a user (People API `ContactGroup`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ContactGroup {
    /// `contactGroups/…`.
    pub resource_name: String,
    /// Current etag.
    pub etag: String,
    /// The name the user sees.
    pub name: String,
    /// `clientData`, where the ownership markers live.
    #[serde(default)]
    pub client_data: Vec<ClientData>,
    /// Whether this is a system group (My Contacts, Starred…), which cannot be
    /// renamed or deleted.
    #[serde(default)]
    pub system: bool,
}

impl ContactGroup {
    /// The sync that owns this group, if it carries a marker.
    pub fn owner(&self) -> Option<&str> {
        client_data(&self.client_data, MARKER_SYNC)
    }
}

/// The People API's contact id: `people/c123` → `c123`.
pub fn contact_id(resource_name: &str) -> &str {
    resource_name.rsplit('/').next().unwrap_or(resource_name)
}

/// A contact to create. Its fields are borrowed from the plan while apply sends
/// it (a user's copies are not cloned for the request), owned elsewhere.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewContact<'a> {
    /// Person fields.
    pub fields: std::borrow::Cow<'a, PersonFields>,
    /// Resource names of the groups it belongs to.
    pub memberships: Vec<String>,
    /// `clientData`, with the ownership markers.
    pub client_data: Vec<ClientData>,
}

/// An update of one contact: every field named in `update_mask` is replaced by the
/// value in `fields`, or cleared if `fields` lacks it (the People API's semantics).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactUpdate {
    /// The contact.
    pub resource_name: String,
    /// The etag the update was planned against.
    pub etag: String,
    /// New values of the masked fields.
    pub fields: PersonFields,
    /// Person field names to replace; may include `clientData`.
    pub update_mask: Vec<String>,
    /// New `clientData`, when the mask names it.
    pub client_data: Vec<ClientData>,
}

/// First 16 hex digits of the SHA-256 of `parts` (each part delimited): stable ids,
/// etags and content hashes.
pub fn short_hash(parts: &[&str]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    hex::encode(&h.finalize()[..8])
}

/// Whether org unit `unit` is `parent` or one of its sub-units (case-insensitive,
/// as Google's org unit paths are; `/` contains every unit).
pub fn in_org_unit(unit: &str, parent: &str) -> bool {
    let unit = unit.trim_end_matches('/').to_lowercase();
    let parent = parent.trim_end_matches('/').to_lowercase();
    parent.is_empty() || unit == parent || unit.starts_with(&format!("{parent}/"))
}
