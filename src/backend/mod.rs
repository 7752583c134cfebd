//! The one trait both backends implement: the directory reads and the per-user
//! contact reads and writes that planning and applying need.
//!
//! It is shaped after the Google APIs so the google backend fits without changing
//! the planner: reads return whole lists (the backend follows page tokens), writes
//! take whole lists (the backend cuts them into batches of the API's limits), and
//! every update carries the etag it was planned against, so a write over a change
//! made since is refused rather than lost.
//!
//! Writes are safe to run again after a failure whose outcome is unknown: a backend
//! never sends a create twice blindly (it re-reads the user's marked contacts and
//! groups and sends what is missing), treats a delete of something already gone as
//! done, and re-reads a contact whose update meets a stale etag. One writer at a
//! time holds the tenant's writer lease ([`Backend::try_lease`]).

pub mod google;
pub mod local;
pub mod open;
pub mod refusal;
pub mod store;
pub mod tenant;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::model::inventory::{Inventory, StoredInventory};
use crate::model::resolution::UserSchema;
use crate::model::{ClientData, Contact, ContactGroup, DirectoryUser};
pub use crate::model::{ContactUpdate, NewContact};
pub use refusal::Refusal;
pub use store::StoreError;

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

impl std::fmt::Display for UserScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UserScope::All => write!(f, "all users"),
            UserScope::Domain(d) => write!(f, "users of domain {d}"),
            UserScope::OrgUnit(ou) => write!(f, "users of org unit {ou}"),
        }
    }
}

/// What can go wrong talking to a backend.
#[derive(Clone, Debug, thiserror::Error)]
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
    /// A request the backend refuses before sending it: what was asked, of what.
    #[error("invalid request: {0}")]
    Invalid(Refusal),
    /// The local tenant (its database, workspace file or lock) could not be read
    /// or written: which file, and the cause.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The writer lease was lost or ran out; nothing more was sent.
    #[error("stopped writing: {0}")]
    LeaseLost(String),
    /// An HTTP API answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// What was asked, what came back (with the status and the attempts made),
        /// in words.
        message: String,
    },
    /// No answer came back: the server could not be reached, the connection was
    /// lost, or the request timed out (after the retries it says).
    #[error("{message}")]
    Unreachable {
        /// What was asked and what went wrong, in words.
        message: String,
    },
    /// The service-account key cannot be read or used.
    #[error("{message}")]
    Credentials {
        /// What is wrong with it and what to do.
        message: String,
        /// The reading error, if that was it.
        #[source]
        cause: Option<std::sync::Arc<std::io::Error>>,
    },
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client")]
    Client(#[source] std::sync::Arc<reqwest::Error>),
}

/// Who holds the writer lease of a tenant, as recorded there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseHolder {
    /// Who: `ann@build-7 pid 4242 (contact-sync apply) #1a2b3c`.
    pub holder: String,
    /// When they took it.
    pub since: Option<DateTime<Utc>>,
    /// When it lapses unless renewed; `None` for a lock that lasts as long as the
    /// process holding it (the local backend's file lock).
    pub expires: Option<DateTime<Utc>>,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let time = |t: &DateTime<Utc>| t.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        write!(f, "{}", self.holder)?;
        if let Some(since) = &self.since {
            write!(f, " since {}", time(since))?;
        }
        if let Some(expires) = &self.expires {
            write!(f, " (lease valid until {})", time(expires))?;
        }
        Ok(())
    }
}

/// The answer to a request for the writer lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseAttempt {
    /// Taken or renewed.
    Taken {
        /// Until when, unless renewed; `None`: as long as this process lives.
        expires: Option<DateTime<Utc>>,
        /// The holder of an expired lease that was taken over.
        took_over: Option<LeaseHolder>,
    },
    /// Another holder's lease is live.
    Held(LeaseHolder),
}

/// Says whether this process may still write (it holds the writer lease, with
/// time to spare); a backend asks it before every write request it sends, retries
/// and resends included.
pub type WriteGuard = Arc<dyn Fn() -> std::result::Result<(), String> + Send + Sync>;

/// Result of backend calls.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where a user's two listings (`contactGroups.list`, `people.connections.list`)
/// stood when last read: the People API's sync tokens. They only ever save reads
/// (see [`Backend::unchanged_since`]); no write rests on them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SyncTokens {
    /// `nextSyncToken` of the contact groups listing.
    pub groups: String,
    /// `nextSyncToken` of the connections listing.
    pub contacts: String,
}

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

    /// [`Backend::contact_groups`], with the listing's sync token where the
    /// backend has them (`None`: it has none, as the local backend).
    async fn contact_groups_synced(
        &self,
        user: &str,
    ) -> Result<(Vec<ContactGroup>, Option<String>)> {
        Ok((self.contact_groups(user).await?, None))
    }

    /// [`Backend::contacts`], with the listing's sync token where the backend has
    /// them.
    async fn contacts_synced(&self, user: &str) -> Result<(Vec<Contact>, Option<String>)> {
        Ok((self.contacts(user).await?, None))
    }

    /// Whether nothing of `user`'s contact groups and contacts changed since
    /// `tokens`, by incremental listings: `Some(tokens)` to use next time when
    /// both listings came back empty; `None` when anything is listed (a change, a
    /// deletion) or a token is refused (expired, of another tenant). An answer may
    /// trail recent writes (Google's propagation delay), so a caller asks only of
    /// users it has not written to since the tokens were taken.
    async fn unchanged_since(
        &self,
        _user: &str,
        _tokens: &SyncTokens,
    ) -> Result<Option<SyncTokens>> {
        Ok(None)
    }

    /// Creates contacts; returns each one's resource name, etag and markers
    /// (`clientData`) as stored — other fields may be left out (the google backend
    /// asks for no more). When an answer is lost, the backend re-reads and sends
    /// only the contacts whose markers are not there yet.
    async fn create_contacts(
        &self,
        user: &str,
        contacts: Vec<NewContact<'_>>,
    ) -> Result<Vec<Contact>>;

    /// Updates contacts; each must carry its current etag. Returns them as
    /// [`Backend::create_contacts`] does.
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

    /// Takes the tenant's writer lease for `holder` (or renews it if `holder` has it)
    /// for `ttl`, unless another holder's lease is live. Only the holder writes.
    async fn try_lease(&self, holder: &str, ttl: Duration) -> Result<LeaseAttempt>;

    /// Extends `holder`'s lease by `ttl` if `holder` still holds it; otherwise
    /// answers who does (or nobody) and takes nothing: a lease that lapsed is lost
    /// for good, since another writer may have written meanwhile.
    async fn renew_lease(&self, holder: &str, ttl: Duration) -> Result<LeaseAttempt>;

    /// Gives the writer lease up, if `holder` holds it.
    async fn release_lease(&self, holder: &str) -> Result<()>;

    /// The inventory of which users hold which sync's state, as the tenant records
    /// it (see [`crate::model::inventory`]); `None` when this backend keeps none
    /// (every run reads every user, as the local backend does: its reads cost no
    /// request).
    async fn read_inventory(&self) -> Result<Option<StoredInventory>> {
        Ok(None)
    }

    /// Replaces the inventory `old` (as read, or as last written) by `inventory`;
    /// returns it as stored now. Refused as [`Error::Stale`] when someone changed
    /// it since `old` was read.
    async fn write_inventory(
        &self,
        _old: &StoredInventory,
        _inventory: &Inventory,
    ) -> Result<StoredInventory> {
        Err(Error::Invalid(Refusal::NoInventory))
    }

    /// Has every later write request ask `guard` first (`None`: stop asking). Backends
    /// whose writes land only at [`Backend::commit`] need not.
    fn guard_writes(&self, _guard: Option<WriteGuard>) {}

    /// The longest one write request may take; a lease must outlast it.
    fn request_timeout(&self) -> Duration {
        Duration::ZERO
    }

    /// How many users may be read or written at once. One user's writes are always
    /// sent one after another.
    fn concurrency(&self) -> usize {
        1
    }

    /// How many users an apply works on at once (default: the concurrency). A
    /// backend that bounds its requests in flight itself may start more users,
    /// so that users waiting for a per-user quota do not hold the others up.
    fn users_in_flight(&self) -> usize {
        self.concurrency()
    }

    /// The Directory's custom user schemas, with their fields' names: what a
    /// directory sync's `customFields` are checked against.
    async fn user_schemas(&self) -> Result<Vec<UserSchema>>;

    /// Has every later read of users carry the custom fields of these schemas (in
    /// `customSchemas`), besides those asked for before. Backends that always
    /// carry them do nothing.
    fn want_custom_schemas(&self, schemas: &[String]);

    /// The domain's shared (external) contacts, as the People API's domain
    /// directory lists them: resource name, etag and Person fields.
    async fn shared_contacts(&self) -> Result<Vec<Contact>>;
    /// The bytes of `user`'s contact photo at `url` (the People `Photo.url` of a
    /// source contact); `None` when it is gone.
    async fn contact_photo(&self, user: &str, url: &str) -> Result<Option<Vec<u8>>>;

    /// The bytes of a directory user's photo (`users.photos.get`); `None` when the
    /// user has none.
    async fn user_photo(&self, user_key: &str) -> Result<Option<Vec<u8>>>;

    /// Sets a contact's photo to `bytes` (JPEG or PNG); returns the contact as it
    /// now is (its new etag, its `clientData`). Sending it again after a lost
    /// answer is safe: the same bytes are set twice.
    async fn set_contact_photo(
        &self,
        user: &str,
        resource_name: &str,
        bytes: &[u8],
    ) -> Result<Contact>;

    /// Removes a contact's photo; returns the contact as it now is. Removing a
    /// photo already gone is done.
    async fn delete_contact_photo(&self, user: &str, resource_name: &str) -> Result<Contact>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_words_in_errors() {
        // What an error says it was listing: never Rust's `OrgUnit("/Accounting")`.
        assert_eq!(
            UserScope::OrgUnit("/Accounting".into()).to_string(),
            "users of org unit /Accounting"
        );
        assert_eq!(
            UserScope::Domain("example.com".into()).to_string(),
            "users of domain example.com"
        );
        assert_eq!(UserScope::All.to_string(), "all users");
    }
}
