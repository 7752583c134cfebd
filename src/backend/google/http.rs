//! Calling a Google REST API: bearer token per impersonated user, request timeout,
//! retries of 429/5xx and rate-limit 403s with exponential backoff and jitter (or
//! the server's `Retry-After`, which waits out a quota window), and Google's error
//! bodies turned into [`Error`]s a person can act on.
//!
//! A request is only sent again when sending it twice is harmless. Reads are; so are
//! updates (they carry an etag, so a second copy is refused as stale) and deletes (a
//! second copy finds nothing). A create is not: when its answer is lost — a timeout,
//! a connection cut before the answer, a 5xx — Google may have made the contacts, so
//! [`Resend::Never`] hands the failure back with [`Failure::maybe_applied`] set and
//! the caller re-reads before sending what is still missing. A create is retried
//! only when the server surely did not act on it: 429, a rate-limit 403, a refused
//! token, a connection that was never made.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use backon::Retryable;
use reqwest::Method;
use serde_json::Value;

use super::auth::Authenticator;
use crate::backend::Error;
use crate::backend::open::RequestCounts;
use crate::retry::Requests;

/// How failed requests are retried.
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// First backoff; doubles per attempt.
    pub base_delay: Duration,
    /// Longest single wait (a quota window is a minute).
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The waits between the attempts of one request.
    pub fn waits(&self) -> Requests {
        Requests { attempts: self.max_attempts, first: self.base_delay, cap: self.max_delay }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(65),
        }
    }
}

/// Whether a request may be sent again after a failure whose outcome is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resend {
    /// Reads, updates (etag-guarded) and deletes: sending twice is harmless.
    Safe,
    /// Creates: sending twice would make two. Only failures the server surely did not
    /// act on are retried; the rest come back with [`Failure::maybe_applied`].
    Never,
}

/// An error answered by an API (or a request that got no answer), parsed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// HTTP status; 503 for a request that got no answer.
    pub status: u16,
    /// Canonical status (`FAILED_PRECONDITION`…), when given.
    pub canonical: String,
    /// First reason (`rateLimitExceeded`, `notFound`…), when given.
    pub reason: String,
    /// Message.
    pub message: String,
    /// The server may have carried the request out although no success came back:
    /// a timeout, a connection cut before the answer, a 5xx.
    pub maybe_applied: bool,
    /// Attempts made.
    pub attempts: u32,
    /// Time spent on them, waits between them included.
    pub elapsed: Duration,
}

impl Failure {
    fn parse(status: u16, body: &Value) -> Self {
        let e = &body["error"];
        let reason = e["errors"][0]["reason"]
            .as_str()
            .or_else(|| e["details"][0]["reason"].as_str())
            .unwrap_or_default()
            .to_owned();
        Self {
            status,
            canonical: e["status"].as_str().unwrap_or_default().to_owned(),
            reason,
            message: e["message"].as_str().map_or_else(|| body.to_string(), str::to_owned),
            maybe_applied: status >= 500,
            attempts: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// A request that got no (whole) answer.
    fn no_answer(message: String, maybe_applied: bool) -> Self {
        Self {
            status: 503,
            canonical: "UNAVAILABLE".into(),
            reason: "transport".into(),
            message,
            maybe_applied,
            attempts: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// A request refused before it was sent.
    pub fn refused(message: String) -> Self {
        Self {
            status: 0,
            canonical: "ABORTED".into(),
            reason: "refused".into(),
            message,
            maybe_applied: false,
            attempts: 0,
            elapsed: Duration::ZERO,
        }
    }

    /// Whether an HTTP answer came back (not a transport failure, not a token
    /// endpoint that could not be reached).
    fn answered(&self) -> bool {
        match self.reason.as_str() {
            "transport" | "refused" => false,
            "tokenEndpoint" => self.status != 503,
            _ => true,
        }
    }

    /// "HTTP 500, 8 attempts over 2 min 10 s": what came back and what it took.
    fn circumstances(&self) -> String {
        let mut parts = Vec::new();
        if self.answered() && self.status != 0 {
            parts.push(format!("HTTP {}", self.status));
        }
        if self.attempts > 1 {
            parts.push(format!("{} attempts over {}", self.attempts, duration(self.elapsed)));
        }
        if parts.is_empty() { String::new() } else { format!(" ({})", parts.join(", ")) }
    }

    fn retryable(&self) -> bool {
        matches!(self.status, 429 | 500 | 502 | 503 | 504)
            || (self.status == 403
                && matches!(
                    self.reason.as_str(),
                    "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
                ))
    }

    /// Whether this is Google's answer to a stale etag.
    pub fn is_stale(&self) -> bool {
        self.status == 400 && self.canonical == "FAILED_PRECONDITION"
    }

    /// The backend error for this failure.
    pub fn into_error(self, what: &str) -> Error {
        let circumstances = self.circumstances();
        if self.reason == "leaseLost" {
            return Error::LeaseLost(format!("{what}: {}", self.message));
        }
        match (self.status, self.canonical.as_str()) {
            (404, _) => Error::NotFound { what: what.to_owned() },
            (400, "FAILED_PRECONDITION") => Error::Stale { what: what.to_owned() },
            (403, _) => Error::Api {
                status: 403,
                message: format!(
                    "{what}: permission denied ({}). Check the service account's domain-wide \
                     delegation scopes and that the impersonated user may do this",
                    self.message
                ),
            },
            _ => self.error_with(format!(
                "{what}: {}{circumstances}",
                self.message.trim_end_matches('.')
            )),
        }
    }

    /// An error saying `message`: [`Error::Api`] when an answer came back,
    /// [`Error::Unreachable`] when none did.
    pub fn error_with(&self, message: String) -> Error {
        if self.answered() {
            Error::Api { status: self.status, message }
        } else {
            Error::Unreachable { message }
        }
    }
}

/// One API call.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The user to act as.
    pub subject: &'a str,
    /// Space-separated scopes of its token.
    pub scopes: &'a str,
    /// HTTP method.
    pub method: &'a Method,
    /// Full URL.
    pub url: &'a str,
    /// Query parameters.
    pub query: &'a [(&'a str, String)],
    /// Its body.
    pub body: Option<&'a Body<'a>>,
    /// Whether it may be sent again after an unknown outcome.
    pub resend: Resend,
    /// Asked before every attempt: may this process still write?
    pub guard: Option<&'a crate::backend::WriteGuard>,
}

/// A request body.
pub enum Body<'a> {
    /// A JSON value, serialized whole.
    Json(&'a Value),
    /// JSON made piece by piece while it is sent (chunked), so that a large body
    /// is never whole in memory: an attempt holds at most [`PIECES_IN_FLIGHT`]
    /// pieces of it, whatever its size. A batch of 200 new contacts goes this way,
    /// so what the requests in flight hold does not grow with their number.
    Pieces(&'a (dyn Pieces + 'a)),
}

impl<'a> From<&'a Value> for Body<'a> {
    fn from(value: &'a Value) -> Self {
        Self::Json(value)
    }
}

/// A JSON body made piece by piece ([`Body::Pieces`]).
pub trait Pieces: Sync {
    /// The body's bytes, in pieces, from its start (again for every attempt).
    fn pieces(&self) -> Box<dyn Iterator<Item = Vec<u8>> + Send + '_>;
}

/// Pieces of a [`Body::Pieces`] made ahead of the connection, per attempt.
pub const PIECES_IN_FLIGHT: usize = 2;

/// The receiving end of a body sent piece by piece, as the HTTP client reads it.
struct Piecewise(tokio::sync::mpsc::Receiver<Vec<u8>>);

impl http_body::Body for Piecewise {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        self.0.poll_recv(cx).map(|piece| piece.map(|p| Ok(http_body::Frame::data(p.into()))))
    }
}

/// Sends `request` with `body` made piece by piece while the connection takes
/// it: the pieces are made in this task, at most [`PIECES_IN_FLIGHT`] ahead.
async fn send_pieces(
    request: reqwest::RequestBuilder,
    body: &dyn Pieces,
) -> reqwest::Result<reqwest::Response> {
    let (tx, rx) = tokio::sync::mpsc::channel(PIECES_IN_FLIGHT);
    let request = request
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(reqwest::Body::wrap(Piecewise(rx)));
    let produce = async move {
        for piece in body.pieces() {
            // The request ended (answered or failed): nothing more to make.
            if tx.send(piece).await.is_err() {
                break;
            }
        }
    };
    tokio::join!(request.send(), produce).0
}

/// An authenticated, retrying JSON client.
#[derive(Debug)]
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) auth: Authenticator,
    pub(super) retry: RetryPolicy,
    /// Where every attempt is counted, by the status that came back.
    pub(super) requests: Arc<RequestCounts>,
}

/// What one attempt came to.
enum Outcome {
    Done(Value),
    Failed(Failure, Option<Duration>),
}

impl Client {
    /// A client over `http` authenticating with `auth`, counting its attempts in
    /// `requests`.
    pub fn new(
        http: reqwest::Client,
        auth: Authenticator,
        retry: RetryPolicy,
        requests: Arc<RequestCounts>,
    ) -> Self {
        Self { http, auth, retry, requests }
    }

    /// Sends one API call; retries what is worth retrying and safe to send again
    /// (see [`Resend`]), asking the request's guard before every attempt. The waits
    /// are the policy's ([`crate::retry::Requests`]), or the server's `Retry-After`.
    pub async fn call(&self, request: Request<'_>) -> Result<Value, Failure> {
        let waits = self.retry.waits();
        let attempts = AtomicU32::new(0);
        // A token refused by the API (revoked, or the server forgot it) is renewed
        // once per call, whichever attempt meets it.
        let renewed = AtomicBool::new(false);
        let started = std::time::Instant::now();
        let resend = request.resend;
        let sent = (|| self.attempt_renewing(request, &attempts, &renewed))
            .retry(waits)
            .when(|(f, _): &(Failure, _)| {
                f.retryable() && !(resend == Resend::Never && f.maybe_applied)
            })
            .adjust(|(_, retry_after), next| waits.server_wait(next, *retry_after))
            .notify(|(f, _), wait| {
                tracing::debug!(
                    status = f.status,
                    attempt = attempts.load(Ordering::Relaxed),
                    wait_ms = wait.as_millis() as u64,
                    url = request.url,
                    "retrying"
                );
            })
            .await;
        sent.map_err(|(mut failure, _)| {
            failure.attempts = attempts.load(Ordering::Relaxed);
            failure.elapsed = started.elapsed();
            failure
        })
    }

    /// One attempt, counted in `attempts`, after the guard said yes; a token the
    /// API refuses is renewed and the request sent again at once, uncounted, the
    /// first time in a call (`renewed`).
    async fn attempt_renewing(
        &self,
        request: Request<'_>,
        attempts: &AtomicU32,
        renewed: &AtomicBool,
    ) -> Result<Value, (Failure, Option<Duration>)> {
        loop {
            if let Some(guard) = request.guard
                && let Err(why) = guard()
            {
                // Not an HTTP status: nothing was sent.
                return Err((
                    Failure { reason: "leaseLost".into(), ..Failure::refused(why) },
                    None,
                ));
            }
            attempts.fetch_add(1, Ordering::Relaxed);
            let (failure, retry_after) = match self.attempt(request).await {
                Outcome::Done(value) => return Ok(value),
                Outcome::Failed(f, retry_after) => (f, retry_after),
            };
            if failure.status == 401 && failure.reason != "tokenEndpoint" {
                self.auth.invalidate(request.subject, request.scopes);
                if !renewed.swap(true, Ordering::Relaxed) {
                    attempts.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
            }
            return Err((failure, retry_after));
        }
    }

    async fn attempt(&self, request: Request<'_>) -> Outcome {
        let outcome = self.attempt_once(request).await;
        let code = match &outcome {
            Outcome::Done(_) => "200".to_owned(),
            Outcome::Failed(f, _) if f.answered() && f.status != 0 => f.status.to_string(),
            Outcome::Failed(..) => "none".to_owned(),
        };
        self.requests.count("google", &code);
        outcome
    }

    async fn attempt_once(&self, request: Request<'_>) -> Outcome {
        let Request { subject, scopes, method, url, query, body, .. } = request;
        let token = match self.auth.token(subject, scopes).await {
            Ok(token) => token,
            Err(e) => return Outcome::Failed(token_failure(e), None),
        };
        let request = self.http.request(method.clone(), url).query(query).bearer_auth(token);
        let sent = match body {
            None => request.send().await,
            Some(Body::Json(value)) => request.json(value).send().await,
            Some(Body::Pieces(pieces)) => send_pieces(request, *pieces).await,
        };
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                // A connection that was never made carried nothing to the server.
                let sent = !e.is_connect();
                return Outcome::Failed(Failure::no_answer(describe(&e), sent), None);
            }
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let text = match response.text().await {
            Ok(text) => text,
            Err(e) => {
                // The answer was cut off: whatever the status said, its body (the
                // created contacts, the next page) is lost.
                let message = format!("the answer ({status}) was cut off: {}", describe(&e));
                return Outcome::Failed(Failure::no_answer(message, true), None);
            }
        };
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        if (200..300).contains(&status) {
            Outcome::Done(value)
        } else {
            Outcome::Failed(Failure::parse(status, &value), retry_after)
        }
    }
}

/// A token that could not be had. A token endpoint that did not answer, or answered
/// 5xx, is worth another try; a refusal (no delegation, unknown user) is not.
fn token_failure(e: Error) -> Failure {
    let (status, message) = match e {
        Error::Api { status, message } => (status, message),
        other => (0, other.to_string()),
    };
    let transient = status == 0 || status >= 500;
    Failure {
        status: if transient { 503 } else { 401 },
        canonical: if transient { "UNAVAILABLE" } else { "UNAUTHENTICATED" }.into(),
        reason: "tokenEndpoint".into(),
        message,
        maybe_applied: false,
        attempts: 0,
        elapsed: Duration::ZERO,
    }
}

/// What went wrong with a request that got no answer, in words a person can act
/// on: "cannot connect to 127.0.0.1:8089: connection refused", "no answer within
/// the request timeout", "TLS failed: …" — the deepest cause, not reqwest's
/// wrapper text.
pub fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "no answer within the request timeout (requestTimeoutSeconds)".to_owned();
    }
    let mut chain: Vec<&(dyn std::error::Error + 'static)> = vec![e];
    while let Some(next) = chain.last().and_then(|c| c.source()) {
        chain.push(next);
    }
    let root = chain.last().map_or_else(String::new, ToString::to_string);
    let text = chain.iter().map(ToString::to_string).collect::<Vec<_>>().join(": ").to_lowercase();
    let io =
        chain.iter().find_map(|c| c.downcast_ref::<std::io::Error>()).map(std::io::Error::kind);
    use std::io::ErrorKind as Io;
    let cause = match io {
        Some(Io::ConnectionRefused) => "connection refused".to_owned(),
        Some(Io::ConnectionReset) => "connection reset by the server".to_owned(),
        Some(Io::ConnectionAborted) => "connection aborted".to_owned(),
        Some(Io::TimedOut) => "timed out".to_owned(),
        Some(Io::UnexpectedEof) => "the server closed the connection".to_owned(),
        _ if text.contains("dns error") || text.contains("failed to lookup address") => {
            format!("cannot resolve the host name ({})", strip_os_error(&root))
        }
        _ if text.contains("certificate") || text.contains("tls") || text.contains("handshake") => {
            format!("TLS failed: {}", strip_os_error(&root))
        }
        _ => strip_os_error(&root),
    };
    if e.is_connect() {
        let host = e.url().and_then(|u| {
            let host = u.host_str()?;
            Some(u.port().map_or_else(|| host.to_owned(), |p| format!("{host}:{p}")))
        });
        match host {
            Some(host) => format!("cannot connect to {host}: {cause}"),
            None => format!("cannot connect: {cause}"),
        }
    } else {
        format!("the connection was lost: {cause}")
    }
}

/// "Connection refused (os error 111)" without the errno a person has no use for.
fn strip_os_error(s: &str) -> String {
    match s.rfind(" (os error ") {
        Some(i) if s.ends_with(')') => s[..i].to_owned(),
        _ => s.to_owned(),
    }
}

/// "350 ms", "4.2 s", "2 min 10 s".
pub fn duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", d.as_secs_f64())
    } else {
        format!("{} min {} s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
