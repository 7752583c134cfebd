//! Calling a Google REST API: bearer token per impersonated user, request timeout,
//! retries of 429/5xx and rate-limit 403s with exponential backoff and jitter (or
//! the server's `Retry-After`, which waits out a quota window), and Google's error
//! bodies turned into [`Error`]s a person can act on.

use std::time::Duration;

use rand::RngExt;
use reqwest::Method;
use serde_json::Value;

use super::auth::Authenticator;
use crate::backend::Error;

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

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(65),
        }
    }
}

/// An error answered by an API, parsed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// HTTP status.
    pub status: u16,
    /// Canonical status (`FAILED_PRECONDITION`…), when given.
    pub canonical: String,
    /// First reason (`rateLimitExceeded`, `notFound`…), when given.
    pub reason: String,
    /// Message.
    pub message: String,
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
        }
    }

    fn retryable(&self) -> bool {
        matches!(self.status, 429 | 500 | 502 | 503 | 504)
            || (self.status == 403
                && matches!(
                    self.reason.as_str(),
                    "userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded"
                ))
    }

    /// The backend error for this failure.
    pub fn into_error(self, what: &str) -> Error {
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
            _ => Error::Api { status: self.status, message: format!("{what}: {}", self.message) },
        }
    }
}

/// An authenticated, retrying JSON client.
#[derive(Debug)]
pub struct Client {
    pub(super) http: reqwest::Client,
    pub(super) auth: Authenticator,
    pub(super) retry: RetryPolicy,
}

impl Client {
    /// A client over `http` authenticating with `auth`.
    pub fn new(http: reqwest::Client, auth: Authenticator, retry: RetryPolicy) -> Self {
        Self { http, auth, retry }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exp = self.retry.base_delay.saturating_mul(1 << attempt.min(16));
        let jitter = rand::rng().random_range(0..=self.retry.base_delay.as_millis().max(1) as u64);
        (exp + Duration::from_millis(jitter)).min(self.retry.max_delay)
    }

    /// Sends one API call as `subject`; retries what is worth retrying.
    pub async fn call(
        &self,
        subject: &str,
        scopes: &str,
        method: Method,
        url: &str,
        query: &[(&str, String)],
        body: Option<&Value>,
    ) -> Result<Value, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let token = self.auth.token(subject, scopes).await.map_err(|e| Failure {
                status: 401,
                canonical: "UNAUTHENTICATED".into(),
                reason: "authError".into(),
                message: e.to_string(),
            })?;
            let mut request =
                self.http.request(method.clone(), url).query(query).bearer_auth(token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let (failure, retry_after) = match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = response.text().await.unwrap_or_default();
                    let value: Value = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    };
                    if (200..300).contains(&status) {
                        return Ok(value);
                    }
                    if status == 401 {
                        self.auth.invalidate(subject, scopes);
                    }
                    (Failure::parse(status, &value), retry_after)
                }
                Err(e) => {
                    let message = if e.is_timeout() {
                        "request timed out".to_owned()
                    } else {
                        let cause = std::error::Error::source(&e).map(ToString::to_string);
                        format!("{e}: {}", cause.unwrap_or_default())
                    };
                    let reason = "transport".to_owned();
                    (
                        Failure { status: 503, canonical: "UNAVAILABLE".into(), reason, message },
                        None,
                    )
                }
            };
            let transient = failure.retryable() || (failure.status == 401 && attempt == 1);
            if !transient || attempt >= self.retry.max_attempts {
                return Err(failure);
            }
            let wait = retry_after
                .map_or_else(|| self.backoff(attempt - 1), |d| d.min(self.retry.max_delay));
            tracing::debug!(
                status = failure.status,
                attempt,
                wait_ms = wait.as_millis() as u64,
                url,
                "retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }
}
