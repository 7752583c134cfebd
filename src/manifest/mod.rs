//! Manifest types: the `ContactSync` and `Workspace` documents admins write, exactly
//! as the manifest format fixes them.
//!
//! These types are the single source of truth for the format: serde reads them, and
//! schemars generates `schemas/contact-sync.schema.json` from them, so every doc
//! comment on a field becomes the description an editor shows. Rules a JSON Schema
//! cannot express (e-mail syntax, cron syntax, uniqueness across files…) live in
//! [`crate::validate`]; loading files into spanned documents lives in [`load`].

pub mod fields;
pub mod load;

use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use fields::FieldsSpec;
pub use load::{Document, LoadError, Located, ManifestSet};

/// The only `apiVersion` this release understands.
pub const API_VERSION: &str = "contact-sync/v1";

/// Target group name of a directory sync when `target.groupName` is not set.
pub const DEFAULT_DIRECTORY_GROUP: &str = "Directory";

/// `apiVersion` of a manifest document.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApiVersion {
    /// `contact-sync/v1`.
    #[serde(rename = "contact-sync/v1")]
    V1,
}

/// Kind of a contact sync document: always `ContactSync`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactSyncKind {
    /// A contact sync.
    ContactSync,
}

/// Kind of a workspace document: always `Workspace`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkspaceKind {
    /// The workspace document.
    Workspace,
}

/// A contact sync: copies a source user's contact group (or the domain directory)
/// into a target contact group of every destination user.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactSync {
    /// Always `contact-sync/v1`.
    pub api_version: ApiVersion,
    /// Always `ContactSync` for a sync.
    pub kind: ContactSyncKind,
    /// Name and description of the sync.
    pub metadata: Metadata,
    /// What is copied, to whom, and when.
    pub spec: ContactSyncSpec,
}

/// Name and description of a manifest.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// Unique name across all manifests: lower-case letters, digits and `-`, 1 to 63
    /// characters. It is written into every synced contact, so renaming a sync
    /// replaces its contacts.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9-]+$"))]
    pub name: String,
    /// Free text for people reading the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The body of a contact sync.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContactSyncSpec {
    /// `personal` (default) copies one user's contact group; `directory` copies the
    /// domain directory.
    #[serde(rename = "type", default)]
    pub sync_type: SyncType,
    /// Where the contacts come from. A personal sync names `user` and
    /// `contactGroup`; a directory sync names `directory` instead.
    pub source: Source,
    /// The contact group the copies are kept in, in every destination.
    #[serde(default)]
    pub target: Target,
    /// Who receives the contacts: at least one of users, groups, orgUnits, domains.
    pub destinations: Destinations,
    /// When the sync runs under `reconcile`: `nightly` (default, at the Workspace's
    /// `nightlyAt`), `manual` (only when triggered), or a 5-field cron expression
    /// such as `30 6 * * 1-5`.
    #[serde(default)]
    pub schedule: Schedule,
    /// Run as soon as `reconcile` first sees the sync, instead of waiting for its
    /// schedule. Default `true`.
    #[serde(default = "default_true")]
    pub run_on_create: bool,
    /// A suspended sync is still planned, but never applied. Default `false`.
    #[serde(default)]
    pub suspend: bool,
    /// Which Person fields are copied: `include: [...]` or `exclude: [...]`, each
    /// entry a field (`birthdays`), `FIELD.TYPE` (`phoneNumbers.mobile`) or
    /// `photo`. Default: the Workspace's `fields`, else every field. `names` and
    /// the first e-mail address are always copied.
    // Not nullable in the schema: a bad entry is reported as itself, not as
    // "no branch of anyOf matched" of the whole selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "FieldsSpec")]
    pub fields: Option<FieldsSpec>,
}

fn default_true() -> bool {
    true
}

/// What a sync copies. `personal`: one user's contact group. `directory`: the users
/// of the domain directory.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum SyncType {
    /// Copy a user's personal contact group.
    #[default]
    Personal,
    /// Copy the domain directory.
    Directory,
}

impl fmt::Display for SyncType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SyncType::Personal => "personal",
            SyncType::Directory => "directory",
        })
    }
}

/// The source of a sync. Personal syncs set `user` and `contactGroup`; directory
/// syncs set `directory`. `contact-sync validate` reports a mix-up.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Source {
    /// Personal syncs: the primary e-mail address of the user whose contacts are
    /// copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(email)]
    pub user: Option<String>,
    /// Personal syncs: the name of the source user's contact group to copy, as the
    /// Contacts app shows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub contact_group: Option<String>,
    /// Directory syncs: which directory users become contacts. All lists empty means
    /// every user of the customer's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
}

/// The users of the directory that a directory sync copies, as contacts.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DirectorySource {
    /// Copy the users of these domains.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Copy the users of these org units (sub-units included), e.g. `/Sales`.
    #[serde(default)]
    #[schemars(inner(pattern(r"^/")))]
    pub org_units: Vec<String>,
    /// Copy the members of these Google groups (nested groups included), by address.
    #[serde(default)]
    #[schemars(inner(email))]
    pub groups: Vec<String>,
    /// Also copy the domain's shared (external) contacts, as the People API lists
    /// them in the domain directory. Default `false`. On the google backend the
    /// service account needs the `directory.readonly` scope.
    #[serde(default, skip_serializing_if = "is_false")]
    pub shared_contacts: bool,
    /// Custom schema fields of the Directory to copy into every user's contact,
    /// e.g. `{schema: EmployeeInfo, field: EmployeeNumber, as: "Employee number"}`.
    /// On the google backend the service account needs the
    /// `admin.directory.userschema.readonly` scope.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub custom_fields: Vec<CustomField>,
}

fn is_false(b: &bool) -> bool {
    !b
}

/// One custom schema field of the Directory, copied into the contact.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomField {
    /// The custom schema's name, as the Admin console's API name shows it, e.g.
    /// `EmployeeInfo`.
    #[schemars(length(min = 1))]
    pub schema: String,
    /// The field's name in that schema, e.g. `EmployeeNumber`.
    #[schemars(length(min = 1))]
    pub field: String,
    /// The label the contact shows the value under: the key of a `userDefined`
    /// entry, or the type of an `externalIds` entry.
    #[serde(rename = "as")]
    #[schemars(length(min = 1))]
    pub label: String,
    /// Where the value goes: `userDefined` (default, a custom field of the contact)
    /// or `externalId` (an external id). A multi-valued field gives one entry per
    /// value.
    #[serde(default)]
    pub into: CustomFieldInto,
}

/// The People field a custom schema field becomes.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum CustomFieldInto {
    /// A `userDefined` entry: `{key: <as>, value}`.
    #[default]
    UserDefined,
    /// An `externalIds` entry: `{value, type: <as>}`.
    ExternalId,
}

/// The contact group every destination receives.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// Name of the contact group created in each destination. Default: the source's
    /// `contactGroup`, or `Directory` for a directory sync. Changing it renames the
    /// group in place.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub group_name: Option<String>,
    /// Also put every synced contact in the destination's "My Contacts". Default
    /// `false`.
    #[serde(default)]
    pub add_to_my_contacts: bool,
}

/// Selectors for the destination users; the union of all of them, minus `exclude`
/// and minus the source user.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Destinations {
    /// Users by primary e-mail address. A renamed user is reported, not followed.
    #[serde(default)]
    #[schemars(inner(email))]
    pub users: Vec<String>,
    /// Members of these Google groups, by group address; nested groups included.
    #[serde(default)]
    #[schemars(inner(email))]
    pub groups: Vec<String>,
    /// Users of these org units, e.g. `/Accounting`; sub-units included.
    #[serde(default)]
    #[schemars(inner(pattern(r"^/")))]
    pub org_units: Vec<String>,
    /// Every user of these domains.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Users, group members and org units to leave out of the selection.
    #[serde(default)]
    pub exclude: Exclude,
}

/// What to leave out of the destination selection.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Exclude {
    /// Users to leave out, by e-mail address.
    #[serde(default)]
    #[schemars(inner(email))]
    pub users: Vec<String>,
    /// Leave out the members of these Google groups (nested groups included).
    #[serde(default)]
    #[schemars(inner(email))]
    pub groups: Vec<String>,
    /// Leave out the users of these org units (sub-units included).
    #[serde(default)]
    #[schemars(inner(pattern(r"^/")))]
    pub org_units: Vec<String>,
}

impl Destinations {
    /// Whether no selector names anyone.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.groups.is_empty()
            && self.org_units.is_empty()
            && self.domains.is_empty()
    }
}

/// When a sync runs under `reconcile`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Every night at the Workspace's `nightlyAt`.
    #[default]
    Nightly,
    /// Only when triggered (`POST /syncs/{name}/run`, or `apply`).
    Manual,
    /// A 5-field cron expression: minute hour day-of-month month day-of-week.
    Cron(String),
}

impl Schedule {
    fn as_str(&self) -> &str {
        match self {
            Schedule::Nightly => "nightly",
            Schedule::Manual => "manual",
            Schedule::Cron(expr) => expr,
        }
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Schedule {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Schedule {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(match s.as_str() {
            "nightly" => Schedule::Nightly,
            "manual" => Schedule::Manual,
            _ => Schedule::Cron(s),
        })
    }
}

impl JsonSchema for Schedule {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Schedule".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "`nightly`, `manual`, or a 5-field cron expression (minute hour \
                            day-of-month month day-of-week), e.g. `30 6 * * 1-5`.",
            "pattern": r"^(nightly|manual|\S+(\s+\S+)+)$",
            "examples": ["nightly", "manual", "0 6 * * 1-5"],
            "default": "nightly"
        })
    }
}

/// The workspace document: where the actual state lives and how syncs behave
/// tenant-wide. At most one per set of manifests.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Workspace {
    /// Always `contact-sync/v1`.
    pub api_version: ApiVersion,
    /// Always `Workspace` for the workspace document.
    pub kind: WorkspaceKind,
    /// Name and description of the workspace.
    pub metadata: Metadata,
    /// Backend and tenant-wide settings.
    pub spec: WorkspaceSpec,
}

/// The body of the workspace document.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkspaceSpec {
    /// Where users, groups and contacts live: `local` (a YAML file standing in for a
    /// tenant) or `google` (a Google Workspace tenant).
    pub backend: BackendKind,
    /// Settings of the `local` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalBackend>,
    /// Settings of the `google` backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub google: Option<GoogleBackend>,
    /// Local time of day, `HH:MM`, at which `nightly` syncs run. Default `02:00`.
    #[serde(default = "default_nightly_at")]
    #[schemars(pattern(r"^([01][0-9]|2[0-3]):[0-5][0-9]$"))]
    pub nightly_at: String,
    /// IANA time zone of `nightlyAt` and of cron schedules, e.g. `Europe/Berlin`.
    /// Default `UTC`.
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// What happens to the contacts of a sync whose manifest is gone: `delete`
    /// (default) removes them everywhere, `keep` leaves them and lists them in the
    /// plan.
    #[serde(default)]
    pub orphans: OrphanPolicy,
    /// Deletion guard: a run that would delete more than this percentage of a sync's
    /// managed contacts is refused unless `--allow-deletes` is given. Default 50.
    #[serde(default = "default_max_delete_percent")]
    #[schemars(range(min = 0, max = 100))]
    pub max_delete_percent: u8,
    /// Webhooks `reconcile` posts to when a run needs a person: it failed, it was held
    /// back by a drift error or the deletion guard, or it deleted many contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
    /// The field selection of every sync that sets no `fields` of its own
    /// (`include: [...]` or `exclude: [...]`). Default: every field.
    // Not nullable in the schema: a bad entry is reported as itself, not as
    // "no branch of anyOf matched" of the whole selection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "FieldsSpec")]
    pub fields: Option<FieldsSpec>,
}

/// A webhook that `reconcile` posts to.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Notification {
    /// Where to post: an `https://` URL (plain `http://` only to a loopback address).
    #[schemars(url)]
    pub url: String,
    /// `json` (default): a JSON object with the event, the sync, the reason, the
    /// manifest line to change and a summary; `slack`: a Slack-compatible incoming
    /// webhook message (`{"text": …}`).
    #[serde(default)]
    pub format: NotificationFormat,
    /// Which events to post (default: all): `failure` (a run failed), `drift` (a
    /// rename, an identity change, a target group conflict), `deleteGuard` (the
    /// deletion guard held a run back), `deletions` (a run deleted more than
    /// `deletionsOver` contacts).
    #[serde(default = "all_events")]
    pub events: Vec<NotificationEvent>,
    /// For `deletions`: how many contact deletions in one run are worth a message.
    /// Default 50.
    #[serde(default = "default_deletions_over")]
    pub deletions_over: u32,
}

/// The body a webhook gets.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum NotificationFormat {
    /// A JSON object.
    #[default]
    Json,
    /// A Slack incoming-webhook message.
    Slack,
}

/// What a notification is about.
#[derive(
    Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord,
)]
#[serde(rename_all = "camelCase")]
pub enum NotificationEvent {
    /// A run failed (and is retried with backoff).
    Failure,
    /// A rename, an identity change or a target group conflict holds a sync back.
    Drift,
    /// The deletion guard held a run back.
    DeleteGuard,
    /// A run deleted more than `deletionsOver` contacts.
    Deletions,
}

fn all_events() -> Vec<NotificationEvent> {
    vec![
        NotificationEvent::Failure,
        NotificationEvent::Drift,
        NotificationEvent::DeleteGuard,
        NotificationEvent::Deletions,
    ]
}

fn default_deletions_over() -> u32 {
    50
}

fn default_nightly_at() -> String {
    "02:00".into()
}

fn default_time_zone() -> String {
    "UTC".into()
}

fn default_max_delete_percent() -> u8 {
    50
}

/// Which backend holds the actual state: `local` or `google`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum BackendKind {
    /// A local YAML file standing in for a tenant.
    Local,
    /// A Google Workspace tenant, through the Admin SDK and People APIs.
    Google,
}

/// What happens to the contacts of a sync whose manifest is gone: `delete` or `keep`.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum OrphanPolicy {
    /// Delete them from every destination.
    #[default]
    Delete,
    /// Keep them, and list them under `orphans` in the plan.
    Keep,
}

/// Settings of the local backend.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalBackend {
    /// Path of the local workspace file (the stand-in tenant), relative to the folder
    /// of this manifest. That file is not read as a manifest.
    #[schemars(length(min = 1))]
    pub path: String,
}

/// Settings of the google backend.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GoogleBackend {
    /// Customer whose directory is read. Default `my_customer` (the service
    /// account's own).
    #[serde(default = "default_customer")]
    pub customer: String,
    /// Admin user impersonated for Directory API reads.
    #[schemars(email)]
    pub admin_user: String,
    /// User whose contact groups hold the writer lease (a contact group named
    /// "contact-sync lease" that says which apply is writing, so that two never write
    /// at once) and the inventory of the users holding synced contacts ("contact-sync
    /// inventory"). Default: `adminUser`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(email)]
    pub state_user: Option<String>,
    /// Service-account key file (JSON). Default: `$GOOGLE_APPLICATION_CREDENTIALS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<String>,
    /// Base URLs to use instead of Google's, e.g. for `contact-sync emulator`.
    #[serde(default)]
    pub endpoints: Endpoints,
    /// How many API requests are in flight at once, and users read at once. Apply
    /// works on more users than this (up to 256), so that a user waiting for its
    /// per-user quota window holds no request slot. Default 8.
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 64))]
    pub concurrency: u32,
    /// Timeout of one API request, in seconds. Default 30.
    #[serde(default = "default_timeout")]
    #[schemars(range(min = 1, max = 600))]
    pub request_timeout_seconds: u32,
    /// Retries of failed requests (429, 5xx, rate-limit 403).
    #[serde(default)]
    pub retry: Retry,
    /// Google's per-user write quotas, which writes are paced by so that a run
    /// waits for a user's quota instead of drawing 429s. The defaults are Google's
    /// published defaults; raise them if your project was granted more.
    #[serde(default)]
    pub quota: Quota,
}

/// Per-user write quotas of the People API.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Quota {
    /// The quota window in seconds. Default 60.
    #[serde(default = "default_window")]
    #[schemars(range(min = 1, max = 3600))]
    pub window_seconds: u32,
    /// Critical write units per user and window; a batch create or update of up to
    /// 200 contacts costs 6. Default 30.
    #[serde(default = "default_units")]
    #[schemars(range(min = 6))]
    pub critical_writes: u32,
    /// Contact delete and contact group write units per user and window; a batch
    /// delete costs 10, a group write 1. Default 30.
    #[serde(default = "default_units")]
    #[schemars(range(min = 10))]
    pub deletes_and_group_writes: u32,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            window_seconds: default_window(),
            critical_writes: default_units(),
            deletes_and_group_writes: default_units(),
        }
    }
}

fn default_window() -> u32 {
    60
}

fn default_units() -> u32 {
    30
}

fn default_concurrency() -> u32 {
    8
}

fn default_timeout() -> u32 {
    30
}

/// How failed requests are retried: exponential backoff with jitter from
/// `baseDelayMs`, or the server's `Retry-After`, which waits out a quota window.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Retry {
    /// Attempts in all, the first included. Default 8.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1, max = 20))]
    pub max_attempts: u32,
    /// First backoff in milliseconds; it doubles per attempt, up to 65 s. Default 1000.
    #[serde(default = "default_base_delay")]
    #[schemars(range(min = 1, max = 60000))]
    pub base_delay_ms: u32,
}

impl Default for Retry {
    fn default() -> Self {
        Self { max_attempts: default_attempts(), base_delay_ms: default_base_delay() }
    }
}

fn default_attempts() -> u32 {
    8
}

fn default_base_delay() -> u32 {
    1000
}

fn default_customer() -> String {
    "my_customer".into()
}

/// Base URL overrides of the google backend. Unset fields use Google's endpoints.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Endpoints {
    /// Base URL of the People API, default `https://people.googleapis.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub people: Option<String>,
    /// Base URL of the Admin SDK Directory API, default `https://admin.googleapis.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub directory: Option<String>,
    /// OAuth token URL; overrides the key file's `token_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(url)]
    pub token: Option<String>,
}

impl ContactSync {
    /// The name of the contact group this sync writes in every destination.
    pub fn target_group_name(&self) -> &str {
        if let Some(name) = &self.spec.target.group_name {
            return name;
        }
        match self.spec.sync_type {
            SyncType::Personal => self.spec.source.contact_group.as_deref().unwrap_or(""),
            SyncType::Directory => DEFAULT_DIRECTORY_GROUP,
        }
    }
}

/// The JSON Schema of a manifest document, as committed in
/// `schemas/contact-sync.schema.json`: one of `ContactSync` or `Workspace`.
pub fn json_schema() -> serde_json::Value {
    // `Option` fields come out as nullable: `groupName: ~` means the same as
    // leaving the key out, for serde and for the schema alike.
    let mut generator = schemars::generate::SchemaSettings::draft2020_12().into_generator();
    let contact_sync = generator.subschema_for::<ContactSync>();
    let workspace = generator.subschema_for::<Workspace>();
    let defs = generator.take_definitions(true);
    serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://contact-sync.dev/schemas/contact-sync.schema.json",
        "title": "contact-sync manifest",
        "description": "A contact-sync manifest document: a ContactSync or the Workspace.",
        "oneOf": [contact_sync, workspace],
        "$defs": defs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_design() {
        let sync: ContactSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "contact-sync/v1",
            "kind": "ContactSync",
            "metadata": {"name": "s"},
            "spec": {
                "source": {"user": "a@example.com", "contactGroup": "Sales"},
                "destinations": {"users": ["b@example.com"]}
            }
        }))
        .unwrap();
        assert_eq!(sync.spec.sync_type, SyncType::Personal);
        assert_eq!(sync.spec.schedule, Schedule::Nightly);
        assert!(sync.spec.run_on_create);
        assert!(!sync.spec.suspend);
        assert!(!sync.spec.target.add_to_my_contacts);
        assert_eq!(sync.target_group_name(), "Sales");

        let ws: Workspace = serde_json::from_value(serde_json::json!({
            "apiVersion": "contact-sync/v1",
            "kind": "Workspace",
            "metadata": {"name": "w"},
            "spec": {"backend": "google", "google": {"adminUser": "admin@example.com"}}
        }))
        .unwrap();
        assert_eq!(ws.spec.nightly_at, "02:00");
        assert_eq!(ws.spec.time_zone, "UTC");
        assert_eq!(ws.spec.orphans, OrphanPolicy::Delete);
        assert_eq!(ws.spec.max_delete_percent, 50);
        assert_eq!(ws.spec.google.unwrap().customer, "my_customer");
    }

    #[test]
    fn directory_syncs_default_to_the_directory_group() {
        let mut sync: ContactSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "contact-sync/v1", "kind": "ContactSync",
            "metadata": {"name": "d"},
            "spec": {"type": "directory", "source": {"directory": {}},
                     "destinations": {"domains": ["example.com"]}}
        }))
        .unwrap();
        assert_eq!(sync.target_group_name(), "Directory");
        sync.spec.target.group_name = Some("Staff".into());
        assert_eq!(sync.target_group_name(), "Staff");
    }

    #[test]
    fn schedule_round_trips() {
        for (text, schedule) in [
            ("nightly", Schedule::Nightly),
            ("manual", Schedule::Manual),
            ("0 6 * * 1-5", Schedule::Cron("0 6 * * 1-5".into())),
        ] {
            let parsed: Schedule = serde_json::from_value(text.into()).unwrap();
            assert_eq!(parsed, schedule);
            assert_eq!(serde_json::to_value(&parsed).unwrap(), text);
        }
    }

    #[test]
    fn every_property_has_a_description_and_objects_are_closed() {
        fn walk(v: &serde_json::Value, path: &str, missing: &mut Vec<String>) {
            let Some(obj) = v.as_object() else { return };
            if obj.get("type") == Some(&"object".into()) && obj.contains_key("properties") {
                if obj.get("additionalProperties") != Some(&false.into()) {
                    missing.push(format!("{path}: additionalProperties is not false"));
                }
                for (name, prop) in obj["properties"].as_object().unwrap() {
                    if prop.get("description").is_none() {
                        missing.push(format!("{path}/properties/{name}: no description"));
                    }
                }
            }
            for (k, child) in obj {
                walk(child, &format!("{path}/{k}"), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&json_schema(), "", &mut missing);
        assert!(missing.is_empty(), "{missing:#?}");
    }
}
