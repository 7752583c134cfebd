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
//! No write is sent twice blindly (see `http::Resend`): a create whose answer was
//! lost is followed by a read by resource name of its target group's contacts
//! (never a listing, which may trail writes: `current`), and only what has no copy
//! with the same markers yet is sent again; a 409 on a group that carries the same
//! markers is the group we made; a delete that finds nothing is done; an update
//! that meets a stale etag is checked against the contact as it now is (`writes`).
//! The writer lease lives in `lease`.

pub mod auth;
mod current;
mod http;
mod inventory;
mod lease;
mod pace;
mod writes;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use backon::Retryable;
use reqwest::Method;
use serde_json::{Value, json};

pub use self::auth::{DEFAULT_TOKEN_URI, ServiceAccountKey};
pub use self::http::RetryPolicy;
use self::http::{Body, Client, Failure, Request, Resend};
use super::{Backend, Error, LeaseAttempt, Refusal, Result, SyncTokens, UserScope, WriteGuard};
use crate::model::inventory::{Inventory, StoredInventory};
use crate::model::{
    ClientData, Contact, ContactGroup, ContactUpdate, DirectoryUser, NewContact, PERSON_FIELDS,
    PersonFields,
};

use crate::google_api::check_endpoint;
pub use crate::google_api::{
    CONTACTS, CONTACTS_READONLY, DIRECTORY_READONLY, DIRECTORY_URL, MEMBERS_READONLY, PEOPLE_URL,
    USERS_READONLY, USERSCHEMA_READONLY,
};

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
    /// Read only: tokens carry [`CONTACTS_READONLY`], and no write is sent.
    pub read_only: bool,
    /// Per-user write quotas that writes are paced by.
    pub quotas: pace::Quotas,
    /// Where the API requests sent are counted.
    pub requests: std::sync::Arc<crate::backend::open::RequestCounts>,
}

impl Config {
    /// The configuration of the Workspace's `spec.google`, with the key file it
    /// resolves to: Google's endpoints where none is given, `stateUser` defaulting
    /// to `adminUser`.
    pub fn new(
        settings: &crate::manifest::GoogleBackend,
        credentials: PathBuf,
        read_only: bool,
    ) -> Self {
        let endpoints = &settings.endpoints;
        Self {
            customer: settings.customer.clone(),
            admin_user: settings.admin_user.clone(),
            state_user: settings.state_user.clone().unwrap_or_else(|| settings.admin_user.clone()),
            credentials,
            people_url: endpoints.people.clone().unwrap_or_else(|| PEOPLE_URL.into()),
            directory_url: endpoints.directory.clone().unwrap_or_else(|| DIRECTORY_URL.into()),
            token_url: endpoints.token.clone(),
            concurrency: settings.concurrency as usize,
            timeout: Duration::from_secs(u64::from(settings.request_timeout_seconds)),
            retry: RetryPolicy {
                max_attempts: settings.retry.max_attempts,
                base_delay: Duration::from_millis(u64::from(settings.retry.base_delay_ms)),
                ..RetryPolicy::default()
            },
            read_only,
            quotas: pace::Quotas {
                window: Duration::from_secs(u64::from(settings.quota.window_seconds)),
                critical_writes: settings.quota.critical_writes,
                deletes_and_group_writes: settings.quota.deletes_and_group_writes,
            },
            requests: std::sync::Arc::default(),
        }
    }
}

/// A Google Workspace tenant.
pub struct GoogleBackend {
    client: Client,
    config: Config,
    /// Asked before every write request while an apply holds the writer lease.
    write_guard: std::sync::Mutex<Option<WriteGuard>>,
    /// Spends each user's write quotas, waiting rather than drawing a 429.
    pacer: pace::Pacer,
    /// People API requests in flight, at most the configured concurrency: taken
    /// after the pacer's wait, so a user waiting for its quota keeps no other
    /// user from sending.
    slots: tokio::sync::Semaphore,
    /// What the last listings showed, and the groups this process created.
    seen: current::Seen,
    /// The custom schemas user reads ask for (`projection=custom`).
    custom_schemas: std::sync::Mutex<BTreeSet<String>>,
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
        for (what, url) in [
            ("spec.google.endpoints.people", Some(&config.people_url)),
            ("spec.google.endpoints.directory", Some(&config.directory_url)),
            ("spec.google.endpoints.token", config.token_url.as_ref()),
        ] {
            if let Some(url) = url {
                check_endpoint(url).map_err(|why| {
                    Error::Invalid(Refusal::Endpoint { setting: what.to_owned(), why })
                })?;
            }
        }
        let key = ServiceAccountKey::load(&config.credentials)?;
        if config.token_url.is_none()
            && let Some(uri) = &key.token_uri
        {
            check_endpoint(uri).map_err(|why| {
                let setting = format!("token_uri of the key file {}", config.credentials.display());
                Error::Invalid(Refusal::Endpoint { setting, why })
            })?;
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("contact-sync/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Client(std::sync::Arc::new(e)))?;
        let auth = auth::Authenticator::new(key, config.token_url.clone(), http.clone())?;
        Ok(Self {
            client: Client::new(http, auth, config.retry, config.requests.clone()),
            pacer: pace::Pacer::new(config.quotas),
            slots: tokio::sync::Semaphore::new(config.concurrency.max(1)),
            config,
            write_guard: std::sync::Mutex::new(None),
            seen: current::Seen::default(),
            custom_schemas: std::sync::Mutex::new(BTreeSet::new()),
        })
    }

    /// `projection=custom` and `customFieldMask` for the custom schemas asked
    /// for, if any (`projection=basic`, the default, carries none).
    fn projection(&self) -> Vec<(&'static str, String)> {
        let schemas = self.custom_schemas.lock().expect("custom schemas lock");
        if schemas.is_empty() {
            return Vec::new();
        }
        let mask = schemas.iter().cloned().collect::<Vec<_>>().join(",");
        vec![("projection", "custom".to_owned()), ("customFieldMask", mask)]
    }

    /// A read-only call as the admin with `scope` alone, in a token of its own:
    /// a scope only some syncs need is asked for only when they run, so a key
    /// not delegated it serves every other sync.
    async fn admin_read(
        &self,
        scope: &str,
        url: &str,
        query: &[(&str, String)],
    ) -> Result<Value, Failure> {
        self.client
            .call(Request {
                subject: &self.config.admin_user,
                scopes: scope,
                method: &Method::GET,
                url,
                query,
                body: None,
                resend: Resend::Safe,
                guard: None,
            })
            .await
    }

    async fn people(
        &self,
        user: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        self.people_call(user, method, path, query, || body, Resend::Safe, true).await
    }

    /// A People API call that must not be sent twice blindly (a create).
    async fn people_create<'b>(
        &self,
        user: &str,
        path: &str,
        body: impl FnOnce() -> Body<'b> + Send,
        guarded: bool,
    ) -> Result<Value, Failure> {
        let body = || Some(body());
        self.people_call(user, Method::POST, path, &[], body, Resend::Never, guarded).await
    }

    /// A People API call; a write asks the write guard first unless `guarded` is
    /// false (the lease's own writes: they are what keeps the guard satisfied).
    /// The body is built once the user's quota allows the request and one of the
    /// concurrency's request slots is held: a user waiting for either holds no
    /// request body in memory. A batch of new contacts is made piece by piece
    /// while it is sent ([`Body::Pieces`]), so the slots hold a few pieces each,
    /// not their batches: what an apply holds does not grow with the concurrency.
    #[allow(clippy::too_many_arguments)]
    async fn people_call<'b, B: Into<Body<'b>>>(
        &self,
        user: &str,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: impl FnOnce() -> Option<B> + Send,
        resend: Resend,
        guarded: bool,
    ) -> Result<Value, Failure> {
        let url = format!("{}/v1/{path}", self.config.people_url.trim_end_matches('/'));
        if self.config.read_only && method != Method::GET {
            return Err(Failure::refused(
                "this run only reads (it holds the contacts.readonly scope); nothing was sent"
                    .into(),
            ));
        }
        if let Some((bucket, cost)) = pace::cost(&method, path) {
            self.pacer.spend(user, bucket, cost).await;
        }
        let _slot = self.slots.acquire().await.expect("the slots are never closed");
        let guard = (guarded && method != Method::GET)
            .then(|| self.write_guard.lock().expect("write guard lock").clone())
            .flatten();
        let body: Option<Body<'b>> = body().map(Into::into);
        let request = Request {
            subject: user,
            scopes: if self.config.read_only { CONTACTS_READONLY } else { CONTACTS },
            method: &method,
            url: &url,
            query,
            body: body.as_ref(),
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
    async fn all_pages<F, Fut>(&self, items_key: &str, fetch: F) -> Result<Vec<Value>, Failure>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Value, Failure>>,
    {
        Ok(self.pages(items_key, fetch, false).await?.0)
    }

    /// [`Self::all_pages`], with the `nextSyncToken` of the last page; when
    /// `until_first` is set, stops at the first page that lists anything.
    async fn pages<F, Fut>(
        &self,
        items_key: &str,
        mut fetch: F,
        until_first: bool,
    ) -> Result<(Vec<Value>, Option<String>), Failure>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: std::future::Future<Output = Result<Value, Failure>>,
    {
        let mut items = Vec::new();
        let mut token = None;
        loop {
            let mut page = fetch(token).await?;
            if let Value::Array(listed) = page[items_key].take() {
                items.extend(listed);
            }
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() && (!until_first || items.is_empty()) => {
                    token = Some(t.to_owned());
                }
                _ => {
                    let sync = page["nextSyncToken"].as_str().filter(|t| !t.is_empty());
                    return Ok((items, sync.map(str::to_owned)));
                }
            }
        }
    }

    /// A user's contact groups, and the listing's sync token.
    async fn list_groups(
        &self,
        user: &str,
        since: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), Failure> {
        let mut base = vec![
            ("pageSize", "1000".to_owned()),
            ("groupFields", current::GROUP_FIELDS.to_owned()),
        ];
        base.extend(since.map(|t| ("syncToken", t.to_owned())));
        let fetch = |token| {
            let query = with_page(base.clone(), token);
            async move { self.people(user, Method::GET, "contactGroups", &query, None).await }
        };
        self.pages("contactGroups", fetch, since.is_some()).await
    }

    /// A user's contacts and, when `synced`, the listing's sync token; `since`
    /// lists only what changed since that token (deleted contacts too).
    async fn list_connections(
        &self,
        user: &str,
        synced: bool,
        since: Option<&str>,
    ) -> Result<(Vec<Value>, Option<String>), Failure> {
        let mut base = vec![("pageSize", "1000".to_owned()), ("personFields", person_fields())];
        if synced {
            // An incremental listing must repeat the parameters of the one that
            // gave its token.
            base.push(("requestSyncToken", "true".to_owned()));
        }
        base.extend(since.map(|t| ("syncToken", t.to_owned())));
        let fetch = |token| {
            let query = with_page(base.clone(), token);
            async move { self.people(user, Method::GET, "people/me/connections", &query, None).await }
        };
        self.pages("connections", fetch, since.is_some()).await
    }
}

impl GoogleBackend {
    /// Downloads a contact photo by its URL: only from the hosts of the configured
    /// endpoints or from googleusercontent.com, and never with a token (photo URLs
    /// need none). A 404 is a photo that is gone.
    async fn download_photo(&self, url: &str) -> Result<Option<Vec<u8>>> {
        if !photo_host_allowed(url, &[&self.config.people_url, &self.config.directory_url]) {
            return Err(Error::Invalid(Refusal::PhotoHost { url: url.to_owned() }));
        }
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let fetch = || async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            match self.client.http.get(url).send().await {
                Ok(r) if r.status().as_u16() == 404 => Ok(None),
                Ok(r) if r.status().is_success() => match r.bytes().await {
                    Ok(b) => Ok(Some(b.to_vec())),
                    Err(e) => Err((503, http::describe(&e))),
                },
                Ok(r) => Err((r.status().as_u16(), format!("HTTP {}", r.status()))),
                Err(e) => Err((503, http::describe(&e))),
            }
        };
        let fetched = fetch
            .retry(self.client.retry.waits())
            .when(|(status, _): &(u16, String)| *status == 429 || *status >= 500)
            .await;
        fetched.map_err(|(status, why)| {
            let attempt = attempts.into_inner();
            Error::Api {
                status,
                message: format!("downloading the photo {url}: {why} (after {attempt} attempts)"),
            }
        })
    }
}

/// Whether `url` is HTTPS on googleusercontent.com, or on the scheme, host and
/// port of one of `endpoints`: the only places a photo is downloaded from.
fn photo_host_allowed(url: &str, endpoints: &[&str]) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    let Some(host) = url.host_str().map(str::to_ascii_lowercase) else { return false };
    if url.scheme() == "https"
        && (host == "googleusercontent.com" || host.ends_with(".googleusercontent.com"))
    {
        return true;
    }
    endpoints.iter().any(|endpoint| {
        reqwest::Url::parse(endpoint).is_ok_and(|e| {
            e.scheme() == url.scheme()
                && e.host_str().map(str::to_ascii_lowercase).as_deref() == Some(host.as_str())
                && e.port_or_known_default() == url.port_or_known_default()
        })
    })
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
    fields.extend(["memberships", "clientData", "photos"]);
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
        phones: list(&v["phones"]),
        organizations: list(&v["organizations"]),
        addresses: list(&v["addresses"]),
        relations: list(&v["relations"]),
        locations: list(&v["locations"]),
        external_ids: list(&v["externalIds"]),
        ims: list(&v["ims"]),
        websites: list(&v["websites"]),
        // Absent means included (the API's default).
        include_in_global_address_list: v["includeInGlobalAddressList"].as_bool().unwrap_or(true),
        custom_schemas: v["customSchemas"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        thumbnail_photo_etag: v["thumbnailPhotoEtag"].as_str().map(str::to_owned),
    }
}

/// A Directory list field (typed `any` in the discovery document): its items, a
/// lone object as a list of one.
fn list(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Object(_) => vec![v.clone()],
        _ => Vec::new(),
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
        photo: own_photo(&v["photos"]),
    }
}

/// The URL of a person's own photo: the one of its `CONTACT` source that is not
/// a default (a generated letter), if any.
fn own_photo(photos: &Value) -> Option<String> {
    photos
        .as_array()?
        .iter()
        .find(|p| {
            p["metadata"]["source"]["type"] == "CONTACT" && !p["default"].as_bool().unwrap_or(false)
        })
        .and_then(|p| p["url"].as_str())
        .map(str::to_owned)
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
                &[vec![("viewType", "admin_view".into())], self.projection()].concat(),
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
        base.extend(self.projection());
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

    fn want_custom_schemas(&self, schemas: &[String]) {
        self.custom_schemas.lock().expect("custom schemas lock").extend(schemas.iter().cloned());
    }

    async fn user_schemas(&self) -> Result<Vec<crate::model::resolution::UserSchema>> {
        let url = format!(
            "{}/admin/directory/v1/customer/{}/schemas",
            self.config.directory_url.trim_end_matches('/'),
            urlencoding::encode(&self.config.customer)
        );
        let answer = self
            .admin_read(USERSCHEMA_READONLY, &url, &[])
            .await
            .map_err(|f| f.into_error("the custom user schemas"))?;
        Ok(answer["schemas"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|schema| crate::model::resolution::UserSchema {
                name: schema["schemaName"].as_str().unwrap_or_default().to_owned(),
                fields: schema["fields"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f["fieldName"].as_str().map(str::to_owned))
                    .collect(),
            })
            .collect())
    }

    async fn shared_contacts(&self) -> Result<Vec<Contact>> {
        let url = format!(
            "{}/v1/people:listDirectoryPeople",
            self.config.people_url.trim_end_matches('/')
        );
        let base = vec![
            ("sources", "DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT".to_owned()),
            ("readMask", PERSON_FIELDS.join(",")),
            ("pageSize", "1000".to_owned()),
        ];
        let people = self
            .all_pages("people", |token| {
                let query = with_page(base.clone(), token);
                let url = url.clone();
                async move { self.admin_read(DIRECTORY_READONLY, &url, &query).await }
            })
            .await
            .map_err(|f| f.into_error("the domain's shared contacts"))?;
        // Read-only items (photos, metadata) are not Person fields contact-sync
        // writes: `contact_from` keeps those only.
        Ok(people
            .iter()
            .map(|p| Contact {
                memberships: Vec::new(),
                client_data: Vec::new(),
                ..contact_from(p)
            })
            .collect())
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
        Ok(self.contact_groups_synced(user).await?.0)
    }

    async fn contacts(&self, user: &str) -> Result<Vec<Contact>> {
        let (people, _) = self
            .list_connections(user, false, None)
            .await
            .map_err(|f| f.into_error(&format!("contacts of {user}")))?;
        let contacts: Vec<Contact> = people.iter().map(contact_from).collect();
        self.seen.listed(user, &contacts);
        Ok(contacts)
    }

    async fn contact_groups_synced(
        &self,
        user: &str,
    ) -> Result<(Vec<ContactGroup>, Option<String>)> {
        let (groups, token) = self
            .list_groups(user, None)
            .await
            .map_err(|f| f.into_error(&format!("contact groups of {user}")))?;
        Ok((groups.iter().map(group_from).collect(), token))
    }

    async fn contacts_synced(&self, user: &str) -> Result<(Vec<Contact>, Option<String>)> {
        let (people, token) = self
            .list_connections(user, true, None)
            .await
            .map_err(|f| f.into_error(&format!("contacts of {user}")))?;
        let contacts: Vec<Contact> = people.iter().map(contact_from).collect();
        self.seen.listed(user, &contacts);
        Ok((contacts, token))
    }

    async fn unchanged_since(&self, user: &str, tokens: &SyncTokens) -> Result<Option<SyncTokens>> {
        // A refused token (expired: 400 FAILED_PRECONDITION, EXPIRED_SYNC_TOKEN;
        // unknown: 400 INVALID_ARGUMENT) only means a full read.
        let refused = |f: &Failure| f.status == 400;
        let groups = match self.list_groups(user, Some(&tokens.groups)).await {
            Ok((changed, _)) if !changed.is_empty() => return Ok(None),
            Ok((_, token)) => token,
            Err(f) if refused(&f) => return Ok(None),
            Err(f) => return Err(f.into_error(&format!("changes of the contact groups of {user}"))),
        };
        let contacts = match self.list_connections(user, true, Some(&tokens.contacts)).await {
            Ok((changed, _)) if !changed.is_empty() => return Ok(None),
            Ok((_, token)) => token,
            Err(f) if refused(&f) => return Ok(None),
            Err(f) => return Err(f.into_error(&format!("changes of the contacts of {user}"))),
        };
        Ok(groups.zip(contacts).map(|(groups, contacts)| SyncTokens { groups, contacts }))
    }

    async fn create_contacts(
        &self,
        user: &str,
        contacts: Vec<NewContact<'_>>,
    ) -> Result<Vec<Contact>> {
        // The plan was made from listings, which may trail earlier writes: copies
        // made meanwhile are looked for by name first, and not made twice.
        let (mut created, contacts) = self.not_made_yet(user, contacts).await?;
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
        // One request carries one updateMask: each batch of 200 goes under the
        // union of its updates' masks. Every update carries the values of all the
        // synced fields (the planner's contract), so a field another update of the
        // batch changes is written back as it is, not cleared.
        let mut updated = Vec::new();
        for chunk in updates.chunks(UPDATE_BATCH) {
            let mask: BTreeSet<&str> =
                chunk.iter().flat_map(|u| u.update_mask.iter().map(String::as_str)).collect();
            let mask = mask.into_iter().collect::<Vec<_>>().join(",");
            updated.extend(self.update_batch(user, &mask, chunk.to_vec()).await?);
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
        self.create_group_checked(user, name, client_data, true).await
    }

    async fn update_group(&self, user: &str, group: ContactGroup) -> Result<ContactGroup> {
        self.update_group_checked(user, &group, &group.name, group.client_data.clone(), true).await
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

    async fn read_inventory(&self) -> Result<Option<StoredInventory>> {
        inventory::read(self).await.map(Some)
    }

    async fn write_inventory(
        &self,
        old: &StoredInventory,
        new: &Inventory,
    ) -> Result<StoredInventory> {
        inventory::write(self, old, new).await
    }

    async fn contact_photo(&self, _user: &str, url: &str) -> Result<Option<Vec<u8>>> {
        self.download_photo(url).await
    }

    async fn user_photo(&self, user_key: &str) -> Result<Option<Vec<u8>>> {
        let path = format!("users/{}/photos/thumbnail", urlencoding::encode(user_key));
        match self.directory(&path, &[]).await {
            Ok(v) => {
                let data = v["photoData"].as_str().unwrap_or_default();
                crate::model::photo::decode_base64(data).map(Some).ok_or_else(|| Error::Api {
                    status: 200,
                    message: format!("the directory photo of {user_key} is not base64"),
                })
            }
            Err(f) if f.status == 404 => Ok(None),
            Err(f) => Err(f.into_error(&format!("the directory photo of {user_key}"))),
        }
    }

    async fn set_contact_photo(
        &self,
        user: &str,
        resource_name: &str,
        bytes: &[u8],
    ) -> Result<Contact> {
        if let Some(why) = crate::model::photo::refusal(bytes) {
            let resource_name = resource_name.to_owned();
            return Err(Error::Invalid(Refusal::Photo { resource_name, why }));
        }
        let body = json!({
            "photoBytes": crate::model::photo::encode_base64(bytes),
            "personFields": person_fields(),
        });
        // Safe to send again after a lost answer: it sets the same bytes.
        let path = format!("{resource_name}:updateContactPhoto");
        let v = self.people(user, Method::PATCH, &path, &[], Some(&body)).await.map_err(|f| {
            f.into_error(&format!("setting the photo of {resource_name} of {user}"))
        })?;
        Ok(contact_from(&v["person"]))
    }

    async fn delete_contact_photo(&self, user: &str, resource_name: &str) -> Result<Contact> {
        let path = format!("{resource_name}:deleteContactPhoto");
        let query = [("personFields", person_fields())];
        let v = self.people(user, Method::DELETE, &path, &query, None).await.map_err(|f| {
            f.into_error(&format!("removing the photo of {resource_name} of {user}"))
        })?;
        Ok(contact_from(&v["person"]))
    }

    fn concurrency(&self) -> usize {
        self.config.concurrency.max(1)
    }

    fn users_in_flight(&self) -> usize {
        USERS_IN_FLIGHT.max(self.concurrency())
    }
}

/// Users an apply works on at once. More than the requests in flight (the
/// concurrency): most of them wait for their per-user quota window, and a wait
/// takes no request slot. Each holds at most one batch, so memory is bounded by
/// this, not by the concurrency.
const USERS_IN_FLIGHT: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_are_fetched_only_from_google_or_the_configured_endpoints() {
        let endpoints = ["https://people.googleapis.com", "http://127.0.0.1:8089"];
        let allowed = |url: &str| photo_host_allowed(url, &endpoints);
        assert!(allowed("https://lh3.googleusercontent.com/a/photo.jpg?sz=100"));
        assert!(allowed("http://127.0.0.1:8089/_photos/ann%40example.com/c1/v1"));
        assert!(!allowed("http://lh3.googleusercontent.com/a/photo.jpg"), "HTTPS only");
        assert!(!allowed("https://googleusercontent.com.evil.test/a.jpg"));
        assert!(!allowed("https://evil.test/a.jpg"));
        assert!(!allowed("http://127.0.0.1:9999/_photos/x"), "another port is another host");
        assert!(!allowed("not a url"));
    }
}
