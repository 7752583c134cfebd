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
    /// to, or why they could not be read.
    pub syncs: Vec<Result<SyncResolution, Unreadable>>,
    /// The names the directory has, read only when a selector reached nobody:
    /// what a "did you mean" is chosen from (`None`: nothing reached nobody).
    pub names: Option<DirectoryNames>,
}

/// What the backend said when asked, so that the model need not know the backend.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync>;

/// What of the tenant a sync needs could not be read, and the backend's error as
/// its source. A plan shows the cause's words alone ([`Unreadable::cause`]): the
/// sync it is reported under says what was read.
#[derive(Clone, Debug, thiserror::Error)]
pub enum Unreadable {
    /// The directory entries a sync's selectors name (users, groups, org units,
    /// domains, schemas, shared contacts).
    #[error("cannot read what the selectors of sync {sync} name")]
    Selectors {
        /// The sync.
        sync: String,
        /// The backend's error.
        #[source]
        cause: Cause,
    },
    /// A personal source's contact groups.
    #[error("cannot read the contact groups of {user}")]
    ContactGroups {
        /// The source user.
        user: String,
        /// The backend's error.
        #[source]
        cause: Cause,
    },
    /// A user's contacts: a personal source's, or what a destination holds (its
    /// contact groups and contacts).
    #[error("cannot read the contacts of {user}")]
    Contacts {
        /// The source user.
        user: String,
        /// The backend's error.
        #[source]
        cause: Cause,
    },
}

impl Unreadable {
    /// The backend's error.
    pub fn cause(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        match self {
            Unreadable::Selectors { cause, .. }
            | Unreadable::ContactGroups { cause, .. }
            | Unreadable::Contacts { cause, .. } => cause.as_ref(),
        }
    }
}

/// The names the directory has, from one listing of every user: contact-sync
/// knows an org unit or a domain by the users in it (no org unit scope is
/// delegated), so a unit no user is in, nor in a unit below it, is unknown to it.
#[derive(Clone, Debug, Default)]
pub struct DirectoryNames {
    /// Every user's primary address.
    pub addresses: Vec<String>,
    /// Every org unit path a user is in, with the units above it.
    pub org_units: Vec<String>,
    /// Every domain of a user's address or alias, in lower case.
    pub domains: Vec<String>,
}

impl DirectoryNames {
    /// The names in `users`.
    pub fn of(users: &[DirectoryUser]) -> Self {
        use std::collections::BTreeSet;
        let mut units = BTreeSet::new();
        let mut domains = BTreeSet::new();
        for u in users {
            let path = if u.org_unit_path.is_empty() { "/" } else { u.org_unit_path.as_str() };
            let mut at = path.trim_end_matches('/');
            while !at.is_empty() {
                units.insert(at.to_owned());
                at = at.rsplit_once('/').map_or("", |(up, _)| up);
            }
            units.insert("/".to_owned());
            for a in std::iter::once(&u.primary_email).chain(&u.aliases) {
                if let Some((_, d)) = a.rsplit_once('@') {
                    domains.insert(d.to_lowercase());
                }
            }
        }
        let mut addresses: Vec<String> = users.iter().map(|u| u.primary_email.clone()).collect();
        addresses.sort();
        Self {
            addresses,
            org_units: units.into_iter().collect(),
            domains: domains.into_iter().collect(),
        }
    }
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
        /// Per `source.directory.orgUnits` entry, how many users it listed.
        #[serde(default)]
        org_units: Vec<usize>,
        /// Per `source.directory.domains` entry, how many users it listed.
        #[serde(default)]
        domains: Vec<usize>,
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
    /// Per `destinations.orgUnits` entry, how many users it listed.
    pub org_units: Vec<usize>,
    /// Per `destinations.domains` entry, how many users it listed.
    pub domains: Vec<usize>,
}

/// What `destinations.exclude` resolved to.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Exclusion {
    /// Per `exclude.users` entry: the user, if any.
    pub users: Vec<Option<DirectoryUser>>,
    /// Per `exclude.groups` entry: its members' addresses (`None`: no such group).
    pub groups: Vec<Option<Vec<String>>>,
    /// Per `exclude.orgUnits` entry, how many users are in it (it is matched by
    /// path; the count tells a unit the directory knows).
    pub org_units: Vec<usize>,
}
