//! `contact-sync emulator`: an HTTP server that speaks the parts of the Admin SDK
//! Directory API, the People API and Google's OAuth token endpoint that contact-sync
//! uses, served from a local workspace file — so the google backend is exercised
//! end to end (auth, pagination, batch limits, etags, quotas, faults) without
//! Google.
//!
//! It shares the local backend's store, not the Google client: requests and
//! responses are written from Google's discovery documents, so a client bug is not
//! mirrored here. The tenant is served from a database file beside the data file
//! (`.<name>.db`, see [`crate::backend::local::LocalBackend::open_mirrored`]),
//! seeded from it, where a write costs what it touches and is durable once
//! answered; rewriting a large YAML file after writes would make the emulator,
//! not the client, what tests measure. The data file is written back (atomically,
//! under the local backend's lock) when the emulator stops, and on
//! [`Background::flush`]; an edit of the data file while it serves is noticed by
//! its size and time, and loaded.

mod auth;
mod call;
mod conn;
mod directory;
mod directory_people;
pub mod discovery;
mod error;
mod lag;
mod people;
pub mod quota;
mod strict;
mod sync;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

use crate::backend::local::LocalBackend;

pub use auth::{CONTACTS, DELEGATED, MEMBERS_READONLY, USERS_READONLY};
use error::ApiError;

/// How the emulator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The workspace file served (and written).
    pub data: PathBuf,
    /// Quotas and their window.
    pub limits: quota::Limits,
    /// Share of API requests answered 500 or 503. Half of the writes among them
    /// are carried out first: the answer fails, not the write.
    pub fail_rate: f64,
    /// Share of successful writes whose connection is cut before the answer.
    pub drop_response_rate: f64,
    /// How long listings (`contactGroups.list`, `people.connections.list`) trail a
    /// user's writes; reads by resource name never do (see [`lag`]).
    pub list_lag: Duration,
    /// Delay added to every API request.
    pub latency: Duration,
    /// After every this many API requests, a burst of 429s (0: none).
    pub burst_every: u32,
    /// Length of a burst.
    pub burst_len: u32,
    /// Seed of the fault generator, so a failing run can be replayed.
    pub seed: u64,
    /// When set, token assertions must be signed by this key.
    pub trusted_key: Option<TrustedKey>,
    /// The scopes the tenant's admin granted the service account (domain-wide
    /// delegation); `None`: every scope contact-sync uses.
    pub delegated_scopes: Option<Vec<String>>,
    /// Accept requests Google would refuse (unknown paths, parameters and body
    /// fields, wrong types, bad masks), as the emulator did before it checked
    /// them against the discovery documents: for debugging a client only.
    pub lenient: bool,
    /// Check every successful answer against its response schema and count the
    /// ones that do not match (`invalidResponses` in `/_emulator/stats`).
    pub check_responses: bool,
    /// How long a sync token of `people.connections.list` and
    /// `contactGroups.list` is good for, counted from the full listing its chain
    /// started from (Google's: 7 days); an older one is answered 400
    /// `FAILED_PRECONDITION`, `EXPIRED_SYNC_TOKEN` (see [`sync`]).
    pub sync_token_ttl: Duration,
    /// How long writes stay out of incremental listings (those given a
    /// `syncToken`); the token such a listing returns stands before the oldest
    /// write it left out. Full listings stay current (see [`sync`]).
    pub sync_lag: Duration,
}

/// Google's sync token lifetime: 7 days.
pub const SYNC_TOKEN_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Config {
    /// Defaults: Google's quotas, no faults.
    pub fn new(data: PathBuf) -> Self {
        Self {
            data,
            limits: quota::Limits::default(),
            fail_rate: 0.0,
            drop_response_rate: 0.0,
            list_lag: Duration::ZERO,
            latency: Duration::ZERO,
            burst_every: 0,
            burst_len: 0,
            seed: 0,
            trusted_key: None,
            delegated_scopes: None,
            lenient: false,
            check_responses: false,
            sync_token_ttl: SYNC_TOKEN_TTL,
            sync_lag: Duration::ZERO,
        }
    }
}

/// Requests of one endpoint and status, and their bytes.
#[derive(Debug, Default, Clone, Copy)]
struct Traffic {
    count: u64,
    request_bytes: u64,
    response_bytes: u64,
}

struct Faults {
    rng: SmallRng,
    requests: u64,
    burst_left: u32,
}

/// Everything the handlers share.
pub struct Emulator {
    backend: LocalBackend,
    tokens: Mutex<auth::Tokens>,
    quotas: Mutex<quota::Quotas>,
    stats: Mutex<BTreeMap<(String, u16), Traffic>>,
    /// Writes whose answer was dropped, by endpoint.
    dropped: Mutex<BTreeMap<String, u64>>,
    faults: Mutex<Faults>,
    /// Listings that trail writes.
    lag: lag::Lag,
    /// The journals behind sync tokens.
    sync: sync::Sync,
    /// Requests refused by the front end, and problems of answers.
    checks: Mutex<strict::Checks>,
    config: Config,
    trusted_key: Option<TrustedKey>,
}

type SharedState = Arc<Emulator>;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The data file failed to load (the cause names the file).
    #[error(transparent)]
    Data(#[from] crate::backend::local::OpenError),
    /// Listening failed.
    #[error("cannot serve: {0}")]
    Io(std::io::Error),
    /// The tenant could not be written out.
    #[error("cannot write {}", path.display())]
    Export {
        /// Where it was to go.
        path: PathBuf,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// An emulator whose data file has loaded, ready to serve.
pub struct Loaded(SharedState);

/// Loads the data file: done before listening, so that an emulator that cannot
/// serve its data never announces that it serves.
pub fn load(config: Config) -> Result<Loaded, Error> {
    Ok(Loaded(load_state(config)?))
}

/// Writes the tenant `data` holds, as the emulator would serve it (with the writes
/// an earlier run made that were not yet written back to it), to `out`: a tenant
/// database when `out` ends in `.db`, `.sqlite` or `.sqlite3`, else a workspace
/// file. Changes nothing else; `out` is replaced atomically.
pub fn export(data: &std::path::Path, out: &std::path::Path) -> Result<(), Error> {
    use crate::backend::local;
    let served = local::LocalBackend::served(data)?;
    if local::is_database(out) {
        served.write_database(out).map_err(local::OpenError::Store)?;
    } else {
        served
            .write_yaml(out)
            .map_err(|source| Error::Export { path: out.to_path_buf(), source })?;
    }
    Ok(())
}

/// Loads the data file into the emulator's state.
fn load_state(config: Config) -> Result<SharedState, Error> {
    let backend = LocalBackend::open_mirrored(&config.data)?;
    let tenant = crate::fsutil::resolve(&config.data).unwrap_or_else(|_| config.data.clone());
    let sync = sync::Sync::new(
        &tenant.display().to_string(),
        config.sync_token_ttl,
        config.sync_lag,
        config.list_lag,
    );
    Ok(Arc::new(Emulator {
        backend,
        tokens: Mutex::default(),
        quotas: Mutex::new(quota::Quotas::new(config.limits.clone())),
        stats: Mutex::default(),
        dropped: Mutex::default(),
        faults: Mutex::new(Faults {
            rng: SmallRng::seed_from_u64(config.seed),
            requests: 0,
            burst_left: 0,
        }),
        checks: Mutex::default(),
        trusted_key: config.trusted_key.clone(),
        lag: lag::Lag::new(config.list_lag),
        sync,
        config,
    }))
}

/// The emulator's routes over its state.
fn router(state: SharedState) -> Router {
    let api = Router::new()
        .route("/admin/directory/v1/users", get(directory::list_users))
        .route("/admin/directory/v1/users/{user_key}", get(directory::get_user))
        .route("/admin/directory/v1/users/{user_key}/photos/thumbnail", get(directory::get_photo))
        .route("/admin/directory/v1/groups/{group_key}/members", get(directory::list_members))
        .route("/admin/directory/v1/customer/{customer_id}/schemas", get(directory::list_schemas))
        .route("/v1/people:listDirectoryPeople", get(directory_people::list_directory_people))
        .route("/v1/contactGroups", get(people::list_groups).post(people::create_group))
        .route(
            "/v1/contactGroups/{id}",
            get(people::get_group).put(people::update_group).delete(people::delete_group),
        )
        .route("/v1/contactGroups/{id}/members:modify", post(people::modify_members))
        .route("/v1/people/me/connections", get(people::connections))
        .route("/v1/people:batchGet", get(people::batch_get))
        .route("/v1/people:batchCreateContacts", post(people::batch_create))
        .route("/v1/people:batchUpdateContacts", post(people::batch_update))
        .route("/v1/people:batchDeleteContacts", post(people::batch_delete))
        // `people/{id}:updateContactPhoto` and `:deleteContactPhoto`.
        // A photo's base64 is larger than axum's default body limit: the photo's
        // own limit is the handler's to enforce, answered as Google answers it.
        .route(
            "/v1/people/{id}",
            patch(people::update_photo)
                .delete(people::delete_photo)
                .layer(axum::extract::DefaultBodyLimit::max(strict::BODY_LIMIT)),
        )
        .fallback(strict::unserved)
        .layer(axum::middleware::from_fn_with_state(state.clone(), faults))
        .layer(axum::middleware::from_fn_with_state(state.clone(), strict::front_end));
    Router::new()
        .route("/token", post(auth::token))
        .route("/_emulator/stats", get(stats))
        .route("/_photos/{*path}", get(people::photo_file))
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(state.clone(), count))
        .with_state(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then writes the tenant
/// back to the data file.
async fn serve_state(
    state: SharedState,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let app = router(state.clone()).into_make_service_with_connect_info::<conn::Cut>();
    let served =
        axum::serve(conn::CuttableListener(listener), app).with_graceful_shutdown(shutdown).await;
    let saved = tokio::task::spawn_blocking(move || state.save()).await;
    served?;
    if let Ok(Err(e)) = saved {
        tracing::warn!("{e}");
    }
    Ok(())
}

/// Serves a loaded emulator on `listener` until `shutdown` completes.
pub async fn serve_until(
    loaded: Loaded,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    serve_state(loaded.0, listener, shutdown).await
}

/// The public half of a service account's RSA key (DER), that token assertions
/// must be signed with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedKey(pub Vec<u8>);

/// The public key of a service-account key file (JSON) or PEM private key, to
/// check token assertions against.
pub fn public_key(path: &std::path::Path) -> Result<TrustedKey, crate::backend::Error> {
    use ring::signature::KeyPair;
    let text = std::fs::read_to_string(path).map_err(|e| crate::backend::Error::Credentials {
        message: format!("cannot read the key {}", path.display()),
        cause: Some(std::sync::Arc::new(e)),
    })?;
    let pem = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["private_key"].as_str().map(str::to_owned))
        .unwrap_or(text);
    let key = crate::google_api::rsa_key_pair(&pem).ok_or_else(|| {
        crate::backend::Error::Credentials {
            message: format!("{} holds no RSA private key", path.display()),
            cause: None,
        }
    })?;
    Ok(TrustedKey(key.public_key().as_ref().to_vec()))
}

/// Counts every request by endpoint and status, for `/_emulator/stats`, with the
/// bytes of its body read and of its answer's body.
async fn count(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    use axum::body::HttpBody;
    use futures::StreamExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    let endpoint = endpoint(&request);
    if endpoint.ends_with("/_emulator/stats") {
        return next.run(request).await;
    }
    let read = Arc::new(AtomicU64::new(0));
    let (parts, body) = request.into_parts();
    let counted = read.clone();
    let body = axum::body::Body::from_stream(body.into_data_stream().map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counted.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        }
        chunk
    }));
    let response = next.run(Request::from_parts(parts, body)).await;
    let hint = response.body().size_hint();
    let status = response.status().as_u16();
    let mut stats = state.stats.lock().expect("stats lock");
    let t = stats.entry((endpoint, status)).or_default();
    t.count += 1;
    t.request_bytes += read.load(Ordering::Relaxed);
    t.response_bytes += hint.exact().unwrap_or(hint.lower());
    drop(stats);
    response
}

/// A fault the emulator injects into one request.
enum Fault {
    /// Answered with this error; nothing is carried out.
    Refuse(ApiError),
    /// Carried out, then answered with this error.
    FailAfter(ApiError),
    /// Carried out, then the connection is cut before the answer.
    Drop,
}

/// Picks the fault for the next request, if any.
fn pick_fault(state: &Emulator, write: bool) -> Option<Fault> {
    let config = &state.config;
    let mut f = state.faults.lock().expect("faults lock");
    f.requests += 1;
    let every = u64::from(config.burst_every);
    if every > 0 && f.requests.is_multiple_of(every) {
        f.burst_left = config.burst_len;
    }
    if f.burst_left > 0 {
        f.burst_left -= 1;
        return Some(Fault::Refuse(ApiError::quota("Quota exceeded (injected burst).", 1)));
    }
    if config.fail_rate > 0.0 && f.rng.random_bool(config.fail_rate.min(1.0)) {
        let code = if f.rng.random_bool(0.5) {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        let after = write && f.rng.random_bool(0.5);
        let e = ApiError::fault(code);
        return Some(if after { Fault::FailAfter(e) } else { Fault::Refuse(e) });
    }
    if write
        && config.drop_response_rate > 0.0
        && f.rng.random_bool(config.drop_response_rate.min(1.0))
    {
        return Some(Fault::Drop);
    }
    None
}

/// Injects latency, 500/503 faults, 429 bursts and dropped answers into API
/// requests, and picks up edits made to the data file by others before serving.
async fn faults(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    state.reload_if_changed();
    if !state.config.latency.is_zero() {
        tokio::time::sleep(state.config.latency).await;
    }
    let write = request.method() != Method::GET;
    match pick_fault(&state, write) {
        None => next.run(request).await,
        Some(Fault::Refuse(e)) => e.into_response(),
        Some(Fault::FailAfter(e)) => {
            let response = next.run(request).await;
            if response.status().is_success() { e.into_response() } else { response }
        }
        Some(Fault::Drop) => {
            let cut = request.extensions().get::<ConnectInfo<conn::Cut>>().map(|c| c.0.clone());
            let endpoint = endpoint(&request);
            let response = next.run(request).await;
            if let (Some(cut), true) = (cut, response.status().is_success()) {
                cut.cut();
                *state.dropped.lock().expect("stats lock").entry(endpoint).or_default() += 1;
            }
            response
        }
    }
}

/// `METHOD /route/{param}` of a request, for statistics.
fn endpoint(request: &Request) -> String {
    format!(
        "{} {}",
        request.method(),
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or_else(|| request.uri().path().to_owned(), |p| p.as_str().to_owned())
    )
}

/// `GET /_emulator/stats`.
async fn stats(State(state): State<SharedState>) -> Response {
    let stats = state.stats.lock().expect("stats lock");
    let requests: Vec<_> = stats
        .iter()
        .map(|((endpoint, status), t)| {
            json!({
                "endpoint": endpoint,
                "status": status,
                "count": t.count,
                "requestBytes": t.request_bytes,
                "responseBytes": t.response_bytes,
            })
        })
        .collect();
    let total: u64 = stats.values().map(|t| t.count).sum();
    let request_bytes: u64 = stats.values().map(|t| t.request_bytes).sum();
    let response_bytes: u64 = stats.values().map(|t| t.response_bytes).sum();
    let dropped: Vec<_> = state
        .dropped
        .lock()
        .expect("stats lock")
        .iter()
        .map(|(endpoint, count)| json!({ "endpoint": endpoint, "count": count }))
        .collect();
    let mut body = json!({
        "total": total,
        "requestBytes": request_bytes,
        "responseBytes": response_bytes,
        "requests": requests,
        "droppedAnswers": dropped,
    });
    if let (Some(body), Value::Object(checks)) =
        (body.as_object_mut(), state.checks.lock().expect("checks lock").stats())
    {
        body.extend(checks);
    }
    axum::Json(body).into_response()
}

impl Emulator {
    /// Writes the tenant back to the data file, if anything changed.
    fn save(&self) -> Result<(), String> {
        self.backend
            .commit_now()
            .map_err(|e| format!("cannot write the emulator's tenant back: {e}"))
    }

    /// The immutable id of `user` (as the token names it), which sync tokens are
    /// bound to: an address the user is renamed from names the same user.
    fn user_id(store: &crate::backend::store::Store, user: &str) -> crate::backend::Result<String> {
        Ok(store.user(user)?.map_or_else(|| user.to_lowercase(), |u| u.id))
    }

    /// Brings `user`'s journal of `kind` up to date with the store: the journal
    /// position after it.
    fn observe(
        &self,
        store: &crate::backend::store::Store,
        user: &str,
        kind: sync::Kind,
    ) -> crate::backend::Result<u64> {
        let id = Self::user_id(store, user)?;
        Ok(match kind {
            sync::Kind::Contacts => self.sync.observe_contacts(&id, &store.contacts(user)?),
            sync::Kind::Groups => {
                self.sync.observe_groups(&id, &lag::groups_with_members(user, store)?)
            }
        })
    }

    /// After one of `user`'s writes, with a sync lag: journals what it changed now,
    /// for the kinds a token was asked for, so that the lag counts from the write.
    fn journal_write(
        &self,
        store: &crate::backend::store::Store,
        user: &str,
    ) -> crate::backend::Result<()> {
        if !self.sync.eager() {
            return Ok(());
        }
        let id = Self::user_id(store, user)?;
        for kind in [sync::Kind::Contacts, sync::Kind::Groups] {
            if self.sync.tracked(&id, kind) {
                self.observe(store, user, kind)?;
            }
        }
        Ok(())
    }

    /// Loads the data file if someone edited it (a `stat` while nobody did).
    fn reload_if_changed(&self) {
        if let Err(e) = self.backend.reload_if_changed() {
            tracing::warn!("cannot reload {}: {e}", self.config.data.display());
        }
    }
}

/// `http://HOST` of a request, where the emulator serves its photo URLs
/// (`/_photos/…`, a path outside the APIs, fetched without a token as Google's
/// googleusercontent.com URLs are).
fn photo_base(headers: &axum::http::HeaderMap) -> String {
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Parses a query string, keeping repeated keys (`resourceNames=a&resourceNames=b`).
fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    raw.unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let decode = |s: &str| {
                urlencoding::decode(&s.replace('+', " "))
                    .map_or_else(|_| s.to_owned(), |c| c.into_owned())
            };
            (decode(k), decode(v))
        })
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Page size from `name`: default when absent, 400 above `max`.
fn page_size(
    pairs: &[(String, String)],
    name: &str,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match param(pairs, name) {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(format!("{name} must be between 1 and {max}, got {v}"))),
        },
    }
}

/// Where a page starts: `pageToken`, an offset.
fn page_start(pairs: &[(String, String)]) -> Result<usize, ApiError> {
    match param(pairs, "pageToken") {
        None | Some("") => Ok(0),
        Some(t) => t.parse::<usize>().map_err(|_| ApiError::invalid("Invalid pageToken")),
    }
}

/// The `nextPageToken` after a page of `size` from `start`, of `total` items.
fn next_page(start: usize, size: usize, total: usize) -> Option<String> {
    let end = start.saturating_add(size).min(total);
    (end < total).then(|| end.to_string())
}

/// One page of `items` from `pageToken` (an offset).
fn page<T: Clone>(
    items: &[T],
    pairs: &[(String, String)],
    size: usize,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let start = page_start(pairs)?;
    let end = start.saturating_add(size).min(items.len());
    Ok((items.get(start..end).unwrap_or_default().to_vec(), next_page(start, size, items.len())))
}

/// An emulator on 127.0.0.1 and a free port, in a thread and runtime of its own,
/// stopped when dropped: for tests and benchmarks.
pub struct Background {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    state: SharedState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    /// Starts serving `config` on a free port.
    pub fn start(config: Config) -> Result<Self, Error> {
        Self::start_on(config, "127.0.0.1:0".parse().expect("an address"))
    }

    /// Starts serving `config` on `addr` (to restart an emulator where it was).
    pub fn start_on(config: Config, addr: std::net::SocketAddr) -> Result<Self, Error> {
        let state = load_state(config)?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let thread = std::thread::spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => return drop(ready_tx.send(Err(Error::Io(e)))),
            };
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(addr).await {
                    Ok(l) => l,
                    Err(e) => return drop(ready_tx.send(Err(Error::Io(e)))),
                };
                let _ = ready_tx.send(listener.local_addr().map_err(Error::Io));
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(e) = serve_state(served, listener, shutdown).await {
                    tracing::warn!("emulator: {e}");
                }
            });
        });
        let addr = ready_rx
            .recv()
            .map_err(|_| Error::Io(std::io::Error::other("emulator thread died")))??;
        Ok(Self { addr, state, stop: Some(stop), thread: Some(thread) })
    }

    /// Writes the tenant back to the data file now (it is otherwise written when
    /// the emulator stops), so that the file can be read or edited.
    pub fn flush(&self) -> Result<(), String> {
        self.state.save()
    }

    /// Runs `f` on the tenant as the emulator serves it (to look at it or change
    /// it the way a user of the Contacts app would, without going through the data
    /// file); changes are kept like any other write.
    pub fn with_store<T>(&self, f: impl FnOnce(&mut crate::backend::store::Store) -> T) -> T {
        self.state.reload_if_changed();
        self.state.backend.with_store(f)
    }

    /// What the front end refused and what was wrong with the answers, as
    /// `/_emulator/stats` lists it (`invalid`, `refusals`, `invalidResponses`,
    /// `responseProblems`), read without a request.
    pub fn checks(&self) -> serde_json::Value {
        self.state.checks.lock().expect("checks lock").stats()
    }

    /// `GET /_emulator/stats`.
    pub async fn stats(&self) -> Result<serde_json::Value, reqwest::Error> {
        reqwest::get(format!("http://{}/_emulator/stats", self.addr)).await?.json().await
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
