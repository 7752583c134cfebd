//! The google backend: the Admin SDK Directory API and the People API over reqwest,
//! authenticated as a service account with domain-wide delegation.
//!
//! Directory reads act as the Workspace's `adminUser` with the two read-only
//! directory scopes; People calls act as each source or destination user with the
//! contacts scope (two token sets, as Google refuses a request naming a scope the
//! admin did not grant). Reads follow page tokens at the largest page sizes; writes
//! are cut into batches at the APIs' limits (create/update 200, delete 500,
//! members.modify 1000). Apply runs users concurrently, up to `concurrency`, and
//! one user's writes one after another, as Google asks.
//!
//! No write is sent twice blindly (see [`http::Resend`]): a create whose answer was
//! lost is followed by a re-read of the user's contacts or groups, and only what has
//! no copy with the same markers yet is sent again; a 409 on a group that carries
//! the same markers is the group we made; a delete that finds nothing is done; an
//! update that meets a stale etag is checked against the contact as it now is. The
//! writer lease lives in [`lease`].

pub mod auth;
mod http;
mod lease;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};

pub use self::auth::{DEFAULT_TOKEN_URI, ServiceAccountKey};
pub use self::http::RetryPolicy;
use self::http::{Client, Failure, Request, Resend};
use super::{Backend, Error, LeaseAttempt, Result, UserScope, WriteGuard};
use crate::model::normalize::{normalize, same_content};
use crate::model::{
    ClientData, Contact, ContactGroup, ContactUpdate, DirectoryUser, MARKER_SOURCE, MARKER_SYNC,
    NewContact, PERSON_FIELDS, PersonFields, client_data,
};

/// People API scope (`sub` = each source or destination user).
pub const CONTACTS: &str = "https://www.googleapis.com/auth/contacts";
/// Directory users, read-only (`sub` = the admin).
pub const USERS_READONLY: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
/// Directory group members, read-only (`sub` = the admin).
pub const MEMBERS_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly";

/// Google's People API.
pub const PEOPLE_URL: &str = "https://people.googleapis.com";
/// Google's Admin SDK.
pub const DIRECTORY_URL: &str = "https://admin.googleapis.com";

/// Limits of the batch methods.
const CREATE_BATCH: usize = 200;
const UPDATE_BATCH: usize = 200;
const DELETE_BATCH: usize = 500;
const MODIFY_BATCH: usize = 1000;

/// Everything the backend needs, resolved from the Workspace document.
#[derive(Debug, Clone)]
pub struct Config {
    /// `my_customer` or a customer id.
    pub customer: String,
    /// Impersonated for directory reads.
    pub admin_user: String,
    /// The user whose contact groups hold the writer lease.
    pub state_user: String,
    /// Service-account key file.
    pub credentials: PathBuf,
    /// People API base URL.
    pub people_url: String,
    /// Directory API base URL.
    pub directory_url: String,
    /// Token URL overriding the key file's.
    pub token_url: Option<String>,
    /// Users in flight at once.
    pub concurrency: usize,
    /// Timeout of one request.
    pub timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
}

/// A Google Workspace tenant.
pub struct GoogleBackend {
    client: Client,
    config: Config,
    /// Asked before every write request while an apply holds the writer lease.
    write_guard: std::sync::Mutex<Option<WriteGuard>>,
}

impl std::fmt::Debug for GoogleBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoogleBackend")
            .field("client", &self.client)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn directory_scopes() -> String {
    format!("{USERS_READONLY} {MEMBERS_READONLY}")
}

impl GoogleBackend {
    /// Loads the key and prepares the HTTP client.
    pub fn new(config: Config) -> Result<Self> {
        let key = ServiceAccountKey::load(&config.credentials)?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Store(format!("cannot build the HTTP client: {e}")))?;
        let auth = auth::Authenticator::new(key, config.token_url.clone(), http.clone())?;
        Ok(Self {
            client: Client::new(http, auth, config.retry),
            config,
            write_guard: std::sync::Mutex::new(None),
        })
    }

    async fn people(
        &self,
        user: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        self.people_call(user, method, path, query, body, Resend::Safe, true).await
    }

    /// A People API call that must not be sent twice blindly (a create).
    async fn people_create(
        &self,
        user: &str,
        path: &str,
        body: &Value,
        guarded: bool,
    ) -> Result<Value, Failure> {
        self.people_call(user, Method::POST, path, &[], Some(body), Resend::Never, guarded).await
    }

    /// A People API call; a write asks the write guard first unless `guarded` is
    /// false (the lease's own writes: they are what keeps the guard satisfied).
    #[allow(clippy::too_many_arguments)]
    async fn people_call(
        &self,
        user: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
        resend: Resend,
        guarded: bool,
    ) -> Result<Value, Failure> {
        let url = format!("{}/v1/{path}", self.config.people_url.trim_end_matches('/'));
        let guard = (guarded && method != Method::GET)
            .then(|| self.write_guard.lock().expect("write guard lock").clone())
            .flatten();
        let request = Request {
            subject: user,
            scopes: CONTACTS,
            method: &method,
            url: &url,
            query,
            body,
            resend,
            guard: guard.as_ref(),
        };
        self.client.call(request).await
    }

    async fn directory(&self, path: &str, query: &[(&str, String)]) -> Result<Value, Failure> {
        let url = format!(
            "{}/admin/directory/v1/{path}",
            self.config.directory_url.trim_end_matches('/')
        );
        let scopes = directory_scopes();
        self.client
            .call(Request {
                subject: &self.config.admin_user,
                scopes: &scopes,
                method: &Method::GET,
                url: &url,
                query,
                body: None,
                resend: Resend::Safe,
                guard: None,
            })
            .await
    }

    /// Follows `nextPageToken` through every page, collecting `items_key`.
    async fn all_pages<F, Fut>(&self, items_key: &str, mut fetch: F) -> Result<Vec<Value>, Failure>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Value, Failure>>,
    {
        let mut items = Vec::new();
        let mut token = None;
        loop {
            let page = fetch(token).await?;
            items.extend(page[items_key].as_array().cloned().unwrap_or_default());
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_owned()),
                _ => return Ok(items),
            }
        }
    }
}

fn with_page(
    mut query: Vec<(&'static str, String)>,
    token: Option<String>,
) -> Vec<(&'static str, String)> {
    if let Some(t) = token {
        query.push(("pageToken", t));
    }
    query
}

fn person_fields() -> String {
    let mut fields: Vec<&str> = PERSON_FIELDS.to_vec();
    fields.extend(["memberships", "clientData"]);
    fields.join(",")
}

fn user_from(v: &Value) -> DirectoryUser {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    DirectoryUser {
        id: s(&v["id"]),
        primary_email: s(&v["primaryEmail"]),
        aliases: v["aliases"].as_array().into_iter().flatten().map(s).collect(),
        org_unit_path: s(&v["orgUnitPath"]),
        suspended: v["suspended"].as_bool().unwrap_or(false),
        archived: v["archived"].as_bool().unwrap_or(false),
        given_name: s(&v["name"]["givenName"]),
        family_name: s(&v["name"]["familyName"]),
        phones: v["phones"].as_array().cloned().unwrap_or_default(),
        organizations: v["organizations"].as_array().cloned().unwrap_or_default(),
    }
}

fn client_data_from(v: &Value) -> Vec<ClientData> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some(ClientData { key: d["key"].as_str()?.into(), value: d["value"].as_str()?.into() })
        })
        .collect()
}

fn group_from(v: &Value) -> ContactGroup {
    ContactGroup {
        resource_name: v["resourceName"].as_str().unwrap_or_default().into(),
        etag: v["etag"].as_str().unwrap_or_default().into(),
        name: v["name"].as_str().unwrap_or_default().into(),
        client_data: client_data_from(&v["clientData"]),
        system: v["groupType"] == "SYSTEM_CONTACT_GROUP",
    }
}

fn contact_from(v: &Value) -> Contact {
    let fields: PersonFields = PERSON_FIELDS
        .iter()
        .filter_map(|f| v.get(*f).map(|val| ((*f).to_owned(), val.clone())))
        .collect();
    Contact {
        resource_name: v["resourceName"].as_str().unwrap_or_default().into(),
        etag: v["etag"].as_str().unwrap_or_default().into(),
        fields,
        memberships: v["memberships"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| {
                m["contactGroupMembership"]["contactGroupResourceName"].as_str().map(str::to_owned)
            })
            .collect(),
        client_data: client_data_from(&v["clientData"]),
    }
}

fn person_json(
    fields: &PersonFields,
    client_data: &[ClientData],
) -> serde_json::Map<String, Value> {
    let mut person: serde_json::Map<String, Value> =
        fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !client_data.is_empty() {
        person.insert("clientData".into(), json!(client_data));
    }
    person
}

#[async_trait]
impl Backend for GoogleBackend {
    async fn user(&self, key: &str) -> Result<Option<DirectoryUser>> {
        match self
            .directory(
                &format!("users/{}", urlencoding::encode(key)),
                &[("viewType", "admin_view".into())],
            )
            .await
        {
            Ok(v) => Ok(Some(user_from(&v))),
            Err(f) if f.status == 404 => Ok(None),
            Err(f) => Err(f.into_error(&format!("user {key}"))),
        }
    }

    async fn users(&self, scope: UserScope) -> Result<Vec<DirectoryUser>> {
        let mut base =
            vec![("maxResults", "500".to_owned()), ("viewType", "admin_view".to_owned())];
        match &scope {
            UserScope::All => base.push(("customer", self.config.customer.clone())),
            UserScope::Domain(d) => base.push(("domain", d.clone())),
            UserScope::OrgUnit(ou) => {
                base.push(("customer", self.config.customer.clone()));
                base.push(("query", format!("orgUnitPath='{ou}'")));
            }
        }
        let users = self
            .all_pages("users", |token| {
                let query = with_page(base.clone(), token);
                async move { self.directory("users", &query).await }
            })
            .await
            .map_err(|f| f.into_error(&format!("listing {scope}")))?;
        Ok(users.iter().map(user_from).collect())
    }

    async fn group_members(&self, group: &str) -> Result<Option<Vec<String>>> {
        let path = format!("groups/{}/members", urlencoding::encode(group));
        let base =
            vec![("includeDerivedMembership", "true".to_owned()), ("maxResults", "200".to_owned())];
        let members = self
            .all_pages("members", |token| {
                let query = with_page(base.clone(), token);
                let path = path.clone();
                async move { self.directory(&path, &query).await }
            })
            .await;
        match members {
            Ok(m) => Ok(Some(
                m.iter()
                    .filter(|m| m["type"] == "USER")
                    .filter_map(|m| m["email"].as_str().map(str::to_owned))
                    .collect(),
            )),
            Err(f) if f.status == 404 => Ok(None),
            Err(f) => Err(f.into_error(&format!("members of {group}"))),
        }
    }

    async fn contact_groups(&self, user: &str) -> Result<Vec<ContactGroup>> {
        let base = vec![
            ("pageSize", "1000".to_owned()),
            ("groupFields", "clientData,groupType,metadata,name".to_owned()),
        ];
        let groups = self
            .all_pages("contactGroups", |token| {
                let query = with_page(base.clone(), token);
                async move { self.people(user, Method::GET, "contactGroups", &query, None).await }
            })
            .await
            .map_err(|f| f.into_error(&format!("contact groups of {user}")))?;
        Ok(groups.iter().map(group_from).collect())
    }

    async fn contacts(&self, user: &str) -> Result<Vec<Contact>> {
        let base = vec![("pageSize", "1000".to_owned()), ("personFields", person_fields())];
        let people = self
            .all_pages("connections", |token| {
                let query = with_page(base.clone(), token);
                async move {
                    self.people(user, Method::GET, "people/me/connections", &query, None).await
                }
            })
            .await
            .map_err(|f| f.into_error(&format!("contacts of {user}")))?;
        Ok(people.iter().map(contact_from).collect())
    }

    async fn create_contacts(&self, user: &str, contacts: Vec<NewContact>) -> Result<Vec<Contact>> {
        let mut created = Vec::with_capacity(contacts.len());
        for chunk in contacts.chunks(CREATE_BATCH) {
            created.extend(self.create_batch(user, chunk).await?);
        }
        Ok(created)
    }

    async fn update_contacts(
        &self,
        user: &str,
        updates: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>> {
        // One request carries one updateMask: batch the updates that share a mask.
        let mut by_mask: BTreeMap<String, Vec<ContactUpdate>> = BTreeMap::new();
        for u in updates {
            let mut mask = u.update_mask.clone();
            mask.sort();
            by_mask.entry(mask.join(",")).or_default().push(u);
        }
        let mut updated = Vec::new();
        for (mask, group) in by_mask {
            for chunk in group.chunks(UPDATE_BATCH) {
                updated.extend(self.update_batch(user, &mask, chunk.to_vec()).await?);
            }
        }
        Ok(updated)
    }

    async fn delete_contacts(&self, user: &str, resource_names: Vec<String>) -> Result<()> {
        for chunk in resource_names.chunks(DELETE_BATCH) {
            self.delete_batch(user, chunk).await?;
        }
        Ok(())
    }

    async fn create_group(
        &self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
    ) -> Result<ContactGroup> {
        self.write_group(user, None, name, client_data, true).await
    }

    async fn update_group(&self, user: &str, group: ContactGroup) -> Result<ContactGroup> {
        self.write_group(user, Some(&group), &group.name, group.client_data.clone(), true).await
    }

    async fn delete_group(&self, user: &str, resource_name: &str) -> Result<()> {
        match self
            .people(
                user,
                Method::DELETE,
                resource_name,
                &[("deleteContacts", "false".into())],
                None,
            )
            .await
        {
            // Not there: deleted already (perhaps by an attempt whose answer was lost).
            Ok(_) => Ok(()),
            Err(f) if f.status == 404 => Ok(()),
            Err(f) => Err(f.into_error(&format!("deleting group {resource_name} of {user}"))),
        }
    }

    async fn modify_members(
        &self,
        user: &str,
        group: &str,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> Result<()> {
        // Adding a member twice or removing a non-member changes nothing: safe to resend.
        let path = format!("{group}/members:modify");
        let requests = add
            .chunks(MODIFY_BATCH)
            .map(|c| json!({ "resourceNamesToAdd": c }))
            .chain(remove.chunks(MODIFY_BATCH).map(|c| json!({ "resourceNamesToRemove": c })));
        for body in requests {
            self.people(user, Method::POST, &path, &[], Some(&body))
                .await
                .map_err(|f| f.into_error(&format!("changing members of {group} of {user}")))?;
        }
        Ok(())
    }

    async fn commit(&self) -> Result<()> {
        Ok(())
    }

    async fn try_lease(&self, holder: &str, ttl: Duration) -> Result<LeaseAttempt> {
        lease::try_lease(self, holder, ttl).await
    }

    async fn renew_lease(&self, holder: &str, ttl: Duration) -> Result<LeaseAttempt> {
        lease::renew(self, holder, ttl).await
    }

    fn guard_writes(&self, guard: Option<WriteGuard>) {
        *self.write_guard.lock().expect("write guard lock") = guard;
    }

    fn request_timeout(&self) -> Duration {
        self.config.timeout
    }

    async fn release_lease(&self, holder: &str) -> Result<()> {
        lease::release(self, holder).await
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency.max(1)
    }
}

/// The `(sync, source)` markers that identify a copy: two contacts with the same
/// pair are copies of one source contact by one sync.
fn copy_key(data: &[ClientData]) -> Option<(&str, &str)> {
    Some((client_data(data, MARKER_SYNC)?, client_data(data, MARKER_SOURCE)?))
}

/// Whether `have` carries every contact-sync marker of `want` with the same value
/// (other applications' entries aside).
fn same_markers(have: &[ClientData], want: &[ClientData]) -> bool {
    let ours = |d: &[ClientData]| -> Vec<ClientData> {
        let mut v: Vec<ClientData> =
            d.iter().filter(|e| e.key.starts_with("contact-sync/")).cloned().collect();
        v.sort();
        v
    };
    ours(have) == ours(want)
}

/// A write whose outcome is unknown and could not be checked: nothing was resent.
fn unknown_outcome(what: &str, e: Error) -> Error {
    Error::Api {
        status: 503,
        message: format!(
            "{what}: the answer was lost, and re-reading to see whether it landed failed ({e}); \
             nothing was sent again. The next run sees what landed and finishes the rest"
        ),
    }
}

impl GoogleBackend {
    /// Creates a contact group (`existing` is `None`) or renames it and replaces
    /// its markers (`existing`, with the etag it was read with). A write whose
    /// answer is lost is checked against the groups as they now are: the group is
    /// ours when it carries exactly the markers we sent, and then not sent again.
    async fn write_group(
        &self,
        user: &str,
        existing: Option<&ContactGroup>,
        name: &str,
        client_data: Vec<ClientData>,
        guarded: bool,
    ) -> Result<ContactGroup> {
        match existing {
            None => self.create_group_once(user, name, client_data, guarded).await,
            Some(group) => self.update_group_checked(user, group, name, client_data, guarded).await,
        }
    }

    async fn create_group_once(
        &self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
        guarded: bool,
    ) -> Result<ContactGroup> {
        let body = json!({
            "contactGroup": { "name": name, "clientData": client_data },
            "readGroupFields": "clientData,groupType,metadata,name",
        });
        let what = format!("creating group \"{name}\" of {user}");
        let mut round = 0;
        loop {
            round += 1;
            let failure = match self.people_create(user, "contactGroups", &body, guarded).await {
                Ok(v) => return Ok(group_from(&v)),
                Err(f) => f,
            };
            if failure.status != 409 && !failure.maybe_applied {
                return Err(failure.into_error(&what));
            }
            // A 409 or a lost answer: the group may be the one we asked for. It is
            // ours if it carries the same markers; then it is not made again. (A
            // moment's wait first, for what landed to show in a full read.)
            if failure.maybe_applied {
                tokio::time::sleep(self.client.backoff(round - 1)).await;
            }
            let groups = self.contact_groups(user).await.map_err(|e| unknown_outcome(&what, e))?;
            let ours =
                |g: &ContactGroup| g.name == name && same_markers(&g.client_data, &client_data);
            if let Some(g) = groups.into_iter().find(ours) {
                tracing::info!(user, name, "the group was created although its answer was lost");
                return Ok(g);
            }
            if failure.status == 409 {
                return Err(Error::GroupExists { user: user.to_owned(), name: name.to_owned() });
            }
            if round >= self.client.retry.max_attempts {
                return Err(failure.into_error(&format!("{what}: the answer was lost every time")));
            }
        }
    }

    async fn update_group_checked(
        &self,
        user: &str,
        group: &ContactGroup,
        name: &str,
        client_data: Vec<ClientData>,
        guarded: bool,
    ) -> Result<ContactGroup> {
        let body = json!({
            "contactGroup": {
                "resourceName": group.resource_name,
                "etag": group.etag,
                "name": name,
                "clientData": client_data,
            },
            "updateGroupFields": "name,clientData",
            "readGroupFields": "clientData,groupType,metadata,name",
        });
        let what = format!("updating group \"{name}\" of {user}");
        let path = &group.resource_name;
        let sent = self
            .people_call(user, Method::PUT, path, &[], Some(&body), Resend::Safe, guarded)
            .await;
        match sent {
            Ok(v) => Ok(group_from(&v)),
            Err(f) if f.status == 409 => {
                Err(Error::GroupExists { user: user.to_owned(), name: name.to_owned() })
            }
            // Stale after a resend: our own earlier attempt, whose answer was lost,
            // may have landed. Only then is it success; a change by anyone else is
            // refused as stale.
            Err(f) if f.is_stale() && f.attempts > 1 => {
                let now = self.contact_groups(user).await?;
                match now.into_iter().find(|g| g.resource_name == group.resource_name) {
                    Some(g) if g.name == name && same_markers(&g.client_data, &client_data) => {
                        Ok(g)
                    }
                    _ => Err(f.into_error(&what)),
                }
            }
            Err(f) => Err(f.into_error(&what)),
        }
    }

    /// One `batchCreateContacts`, sent again only for what did not land.
    ///
    /// When the answer is lost, the user's contacts are re-read: a contact whose
    /// `(sync, source)` markers are now there was created, the rest are sent again.
    async fn create_batch(&self, user: &str, chunk: &[NewContact]) -> Result<Vec<Contact>> {
        let what = format!("creating contacts of {user}");
        let mut pending: Vec<&NewContact> = chunk.iter().collect();
        let mut created = Vec::with_capacity(chunk.len());
        let mut round = 0;
        loop {
            round += 1;
            let body = json!({
                "contacts": pending.iter().map(|c| create_item(c)).collect::<Vec<_>>(),
                "readMask": person_fields(),
            });
            let sent = self.people_create(user, "people:batchCreateContacts", &body, true).await;
            let failure = match sent {
                Ok(response) => {
                    created.extend(
                        response["createdPeople"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|p| contact_from(&p["person"])),
                    );
                    return Ok(created);
                }
                Err(f) if f.maybe_applied => f,
                Err(f) => return Err(f.into_error(&what)),
            };
            if pending.iter().any(|c| copy_key(&c.client_data).is_none()) {
                return Err(Error::Api {
                    status: failure.status,
                    message: format!(
                        "{what}: {}; the contacts carry no contact-sync markers, so whether they \
                         were created cannot be checked, and they were not sent again",
                        failure.message
                    ),
                });
            }
            tracing::warn!(
                user,
                contacts = pending.len(),
                "the answer to a batch create was lost ({}); re-reading before sending what is missing",
                failure.message
            );
            // A moment's wait first, for what landed to show in a full read.
            tokio::time::sleep(self.client.backoff(round - 1)).await;
            let now = self.contacts(user).await.map_err(|e| unknown_outcome(&what, e))?;
            let mut landed: HashMap<(&str, &str), &Contact> =
                now.iter().filter_map(|c| Some((copy_key(&c.client_data)?, c))).collect();
            let before = pending.len();
            pending.retain(|c| {
                let key = copy_key(&c.client_data).expect("checked above");
                match landed.remove(&key) {
                    Some(found) => {
                        created.push(found.clone());
                        false
                    }
                    None => true,
                }
            });
            tracing::info!(
                user,
                landed = before - pending.len(),
                missing = pending.len(),
                "re-read"
            );
            if pending.is_empty() {
                return Ok(created);
            }
            if round >= self.client.retry.max_attempts {
                return Err(failure.into_error(&format!("{what}: the answer was lost every time")));
            }
        }
    }

    /// One `batchDeleteContacts`. A 404 means some are gone already (an earlier
    /// attempt landed, or the user deleted them): the rest are deleted.
    async fn delete_batch(&self, user: &str, chunk: &[String]) -> Result<()> {
        let what = format!("deleting contacts of {user}");
        let body = json!({ "resourceNames": chunk });
        match self.people(user, Method::POST, "people:batchDeleteContacts", &[], Some(&body)).await
        {
            Ok(_) => Ok(()),
            Err(f) if f.status == 404 => {
                let present: HashSet<String> =
                    self.contacts(user).await?.into_iter().map(|c| c.resource_name).collect();
                let left: Vec<&String> = chunk.iter().filter(|rn| present.contains(*rn)).collect();
                if left.is_empty() {
                    return Ok(());
                }
                let body = json!({ "resourceNames": left });
                self.people(user, Method::POST, "people:batchDeleteContacts", &[], Some(&body))
                    .await
                    .map(|_| ())
                    .map_err(|f| f.into_error(&what))
            }
            Err(f) => Err(f.into_error(&what)),
        }
    }

    /// One `batchUpdateContacts`. A stale etag means the contact changed since it
    /// was read — by its user, or by an earlier attempt of this very update whose
    /// answer was lost. Each contact is re-read: one that already holds what the
    /// update writes is done; the others are sent again with their current etag
    /// (the update wins over the user's edit of the same fields; fields outside the
    /// mask keep the edit, which the next plan reports).
    async fn update_batch(
        &self,
        user: &str,
        mask: &str,
        chunk: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>> {
        let what = format!("updating contacts of {user}");
        let response = match self.send_updates(user, mask, &chunk).await {
            Ok(v) => v,
            Err(f) if f.is_stale() => {
                tracing::info!(user, "stale etags; re-reading contacts");
                let mut current: HashMap<String, Contact> = self
                    .contacts(user)
                    .await?
                    .into_iter()
                    .map(|c| (c.resource_name.clone(), c))
                    .collect();
                let mut done = Vec::new();
                let mut retry = Vec::new();
                for mut u in chunk {
                    let now = current.remove(&u.resource_name).ok_or_else(|| Error::NotFound {
                        what: format!("contact {}", u.resource_name),
                    })?;
                    if holds(&now, &u) {
                        done.push(now);
                    } else {
                        u.etag = now.etag;
                        retry.push(u);
                    }
                }
                if retry.is_empty() {
                    return Ok(done);
                }
                let v =
                    self.send_updates(user, mask, &retry).await.map_err(|f| f.into_error(&what))?;
                done.extend(updated_people(&v));
                return Ok(done);
            }
            Err(f) => return Err(f.into_error(&what)),
        };
        Ok(updated_people(&response))
    }

    async fn send_updates(
        &self,
        user: &str,
        mask: &str,
        chunk: &[ContactUpdate],
    ) -> Result<Value, Failure> {
        let contacts: serde_json::Map<String, Value> = chunk
            .iter()
            .map(|u| {
                let mut person = person_json(&u.fields, &u.client_data);
                person.insert("etag".into(), u.etag.clone().into());
                (u.resource_name.clone(), Value::Object(person))
            })
            .collect();
        let body = json!({ "contacts": contacts, "updateMask": mask, "readMask": person_fields() });
        self.people(user, Method::POST, "people:batchUpdateContacts", &[], Some(&body)).await
    }
}

fn updated_people(response: &Value) -> Vec<Contact> {
    response["updateResult"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .map(|r| contact_from(&r["person"]))
        .collect()
}

/// Whether `contact` already holds every field (and the markers) `update` writes.
fn holds(contact: &Contact, update: &ContactUpdate) -> bool {
    update.update_mask.iter().all(|field| {
        if field == "clientData" {
            return same_markers(&contact.client_data, &update.client_data);
        }
        let pick = |fields: &PersonFields| -> PersonFields {
            fields.get(field).map(|v| (field.clone(), v.clone())).into_iter().collect()
        };
        same_content(&normalize(&pick(&contact.fields)), &normalize(&pick(&update.fields)))
    })
}

/// A `batchCreateContacts` item.
fn create_item(c: &NewContact) -> Value {
    let mut person = person_json(&c.fields, &c.client_data);
    let memberships: Vec<Value> = c
        .memberships
        .iter()
        .map(|rn| json!({ "contactGroupMembership": { "contactGroupResourceName": rn } }))
        .collect();
    person.insert("memberships".into(), Value::Array(memberships));
    json!({ "contactPerson": person })
}
