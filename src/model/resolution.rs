//! What the directory said about the users and groups a run's syncs name: data
//! only. Which of it is an error, who is selected, excluded, held back or skipped
//! is the planner's to judge ([`crate::plan::planner`]); reading it is
//! [`crate::directory`]'s.

use serde::Serialize;

use super::{Contact, DirectoryUser};

/// The directory as one run saw it.
#[derive(Clone, Debug, Default)]
pub struct Resolution {
    /// The users the run needs, sorted by primary address (lower case): every user
    /// of the customer on a full scan; otherwise those the syncs name and list,
    /// their groups' members, and the users the inventory lists.
    pub users: Vec<DirectoryUser>,
    /// Per sync of the plan input, in its order: what the sync's selectors resolved
    /// to, or why they could not be read (the backend's words).
    pub syncs: Vec<Result<SyncResolution, String>>,
}

/// What one sync's source and destination selectors resolved to.
#[derive(Clone, Debug, Serialize)]
pub struct SyncResolution {
    /// The source.
    pub source: SourceResolution,
    /// `destinations.users`, `groups`, `orgUnits` and `domains`.
    pub destinations: Selection,
    /// `destinations.exclude.users` and `groups` (org units are matched by path).
    pub exclude: Exclusion,
}

/// What a sync's source resolved to.
#[derive(Clone, Debug, Serialize)]
pub enum SourceResolution {
    /// A personal sync: the user `source.user` names, looked up by address or
    /// alias (`None`: no such user); boxed, as a user with its Directory lists
    /// is large beside the other variant.
    Personal(Option<Box<DirectoryUser>>),
    /// A directory sync: the users its domains and org units list (everyone when it
    /// names neither and no group), and per `source.directory.groups` entry its
    /// members' addresses (`None`: no such group).
    Directory {
        /// Users listed by domain or org unit.
        listed: Vec<DirectoryUser>,
        /// Members of each group, in manifest order.
        groups: Vec<Option<Vec<String>>>,
        /// The Directory's custom schemas, when the sync copies custom fields
        /// (`None`: it copies none, and they were not read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        schemas: Option<Vec<UserSchema>>,
        /// The domain's shared contacts, when the sync copies them (`None`: not
        /// read).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shared: Option<Vec<Contact>>,
    },
}

/// A custom schema of the Directory: its name and its fields' names.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct UserSchema {
    /// `schemaName`.
    pub name: String,
    /// Each field's `fieldName`.
    pub fields: Vec<String>,
}

/// What `destinations` resolved to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Selection {
    /// Per `destinations.users` entry: the user the address names (by address or
    /// alias), if any.
    pub users: Vec<Option<DirectoryUser>>,
    /// Per `destinations.groups` entry: its members' addresses (`None`: no such
    /// group).
    pub groups: Vec<Option<Vec<String>>>,
    /// The users of `destinations.orgUnits` and `destinations.domains`.
    pub scoped: Vec<DirectoryUser>,
}

/// What `destinations.exclude` resolved to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exclusion {
    /// Per `exclude.users` entry: the user, if any.
    pub users: Vec<Option<DirectoryUser>>,
    /// Per `exclude.groups` entry: its members' addresses (none for no such group).
    pub groups: Vec<Vec<String>>,
}
