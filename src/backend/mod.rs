//! The one trait both backends implement: the directory reads and the per-user
//! contact reads and writes that planning and applying need.
//!
//! It is shaped after the Google APIs so the google backend fits without changing
//! the planner: reads return whole lists (the backend follows page tokens), writes
//! take whole lists (the backend cuts them into batches of the API's limits), and
//! every update carries the etag it was planned against, so a write over a change
//! made since is refused rather than lost.

pub mod google;
pub mod local;
pub mod store;
pub mod tenant;

use async_trait::async_trait;

use crate::model::{ClientData, Contact, ContactGroup, DirectoryUser};
pub use crate::model::{ContactUpdate, NewContact};

/// Which users to list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserScope {
    /// Every user of the customer.
    All,
    /// Users whose primary address is in this domain.
    Domain(String),
    /// Users of this org unit and its sub-units.
    OrgUnit(String),
}

/// What can go wrong talking to a backend.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The user, group or contact does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// A contact group of that name exists already.
    #[error("a contact group named \"{name}\" already exists for {user}")]
    GroupExists {
        /// The user.
        user: String,
        /// The group name.
        name: String,
    },
    /// The resource changed since it was read (stale etag).
    #[error("{what} changed since it was read (stale etag); plan again")]
    Stale {
        /// What changed.
        what: String,
    },
    /// A request the backend refuses (bad input, too large a batch…).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The local workspace file could not be read or written.
    #[error("{0}")]
    Store(String),
    /// An HTTP API answered with an error.
    #[error("{status} {message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// Google's error message.
        message: String,
    },
}

/// Result of backend calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A tenant: the directory, and every user's contacts and contact groups.
#[async_trait]
pub trait Backend: Send + Sync {
    /// Looks a user up by primary address, alias or immutable id. After a rename the
    /// old address is an alias, so the user comes back with the new address.
    async fn user(&self, key: &str) -> Result<Option<DirectoryUser>>;

    /// Lists users, suspended and archived ones included.
    async fn users(&self, scope: UserScope) -> Result<Vec<DirectoryUser>>;

    /// Primary addresses of the users in a Google group, nested groups expanded;
    /// `None` when there is no such group.
    async fn group_members(&self, group: &str) -> Result<Option<Vec<String>>>;

    /// A user's contact groups, system groups included, with `clientData`.
    async fn contact_groups(&self, user: &str) -> Result<Vec<ContactGroup>>;

    /// All of a user's contacts with fields, memberships and `clientData`.
    async fn contacts(&self, user: &str) -> Result<Vec<Contact>>;

    /// Creates contacts; returns them as stored, in order.
    async fn create_contacts(&self, user: &str, contacts: Vec<NewContact>) -> Result<Vec<Contact>>;

    /// Updates contacts; each must carry its current etag.
    async fn update_contacts(
        &self,
        user: &str,
        updates: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>>;

    /// Deletes contacts.
    async fn delete_contacts(&self, user: &str, resource_names: Vec<String>) -> Result<()>;

    /// Creates a contact group; fails with [`Error::GroupExists`] on a name in use.
    async fn create_group(
        &self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
    ) -> Result<ContactGroup>;

    /// Renames a group and replaces its `clientData`; `group.etag` must be current.
    async fn update_group(&self, user: &str, group: ContactGroup) -> Result<ContactGroup>;

    /// Deletes a group, keeping its member contacts.
    async fn delete_group(&self, user: &str, resource_name: &str) -> Result<()>;

    /// Adds contacts to and removes contacts from a group.
    async fn modify_members(
        &self,
        user: &str,
        group: &str,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> Result<()>;

    /// Makes the writes so far durable. The local backend rewrites its file here;
    /// backends whose writes are durable as they happen do nothing.
    async fn commit(&self) -> Result<()>;

    /// How many users may be read or written at once. One user's writes are always
    /// sent one after another.
    fn concurrency(&self) -> usize {
        1
    }
}
