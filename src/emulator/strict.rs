//! The emulator's front end: every API request is checked against Google's
//! discovery documents ([`super::discovery`]) before anything else happens to it
//! — before faults, latency, authentication and quotas — as Google's front end
//! refuses a malformed request before its service sees it. A refusal is answered
//! as Google answers it and counted (`invalid` and the first refusals in
//! `/_emulator/stats`). With [`super::Config::lenient`] requests pass unchecked.
//!
//! With [`super::Config::check_responses`] the emulator's own successful answers
//! are walked against the method's response schema too, and what is wrong with
//! them is counted (`invalidResponses`): a test that drives the emulator then
//! proves that its answers are ones Google could give.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::discovery::{self, Method, Refusal, Violation};
use super::error::ApiError;
use super::{SharedState, endpoint, query_pairs};

/// How many refusals (and response problems) `/_emulator/stats` lists.
const LISTED: usize = 100;

/// Larger bodies are refused before they are read.
pub(super) const BODY_LIMIT: usize = 32 << 20;

/// What the front end refused and what was wrong with the emulator's answers.
#[derive(Debug, Default)]
pub struct Checks {
    /// Requests refused as Google would refuse them.
    invalid: u64,
    /// The first [`LISTED`] of them: (endpoint, message).
    refusals: Vec<(String, String)>,
    /// Answers that do not match their response schema.
    invalid_responses: u64,
    /// The first [`LISTED`] problems found in answers: (endpoint, message).
    response_problems: Vec<(String, String)>,
    /// Answers checked against their response schema.
    checked_responses: u64,
}

impl Checks {
    fn refused(&mut self, endpoint: &str, message: &str) {
        self.invalid += 1;
        if self.refusals.len() < LISTED {
            self.refusals.push((endpoint.to_owned(), message.to_owned()));
        }
    }

    fn bad_response(&mut self, endpoint: &str, problems: &[Violation]) {
        self.invalid_responses += 1;
        for p in problems {
            if self.response_problems.len() < LISTED {
                self.response_problems.push((endpoint.to_owned(), p.description.clone()));
            }
        }
    }

    /// The figures `/_emulator/stats` adds.
    pub fn stats(&self) -> Value {
        let list = |items: &[(String, String)]| -> Vec<Value> {
            items.iter().map(|(e, m)| json!({ "endpoint": e, "message": m })).collect()
        };
        json!({
            "invalid": self.invalid,
            "refusals": list(&self.refusals),
            "invalidResponses": self.invalid_responses,
            "responseProblems": list(&self.response_problems),
            "checkedResponses": self.checked_responses,
        })
    }
}

/// The JSON of a body: `None` when empty, an error when it is not JSON.
fn parse_body(bytes: &Bytes) -> Result<Option<Value>, Refusal> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(bytes).map(Some).map_err(|e| {
        Refusal::Invalid(vec![Violation {
            field: None,
            description: format!(
                "Invalid JSON payload received. Unexpected token at line {} column {}.",
                e.line(),
                e.column()
            ),
        }])
    })
}

/// Checks one request against its discovery method.
fn check(parts: &Parts, bytes: &Bytes) -> Result<Method, Refusal> {
    let body = parse_body(bytes)?;
    let query = query_pairs(parts.uri.query());
    discovery::check_request(&discovery::Request {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: &query,
        body: body.as_ref(),
    })
}

/// The middleware: refuses what Google refuses, and checks answers.
pub async fn front_end(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let config = &state.config;
    if config.lenient && !config.check_responses {
        return next.run(request).await;
    }
    let endpoint = endpoint(&request);
    let (parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, BODY_LIMIT).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::invalid("Request payload size exceeds the limit.").into_response();
        }
    };
    let method = if config.lenient {
        discovery::find(parts.method.as_str(), parts.uri.path()).ok()
    } else {
        match check(&parts, &bytes) {
            Ok(m) => Some(m),
            Err(refusal) => {
                let e = ApiError::refused(&refusal);
                state.checks.lock().expect("checks lock").refused(&endpoint, &e.message);
                return e.into_response();
            }
        }
    };
    let response = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    match method {
        Some(m) if config.check_responses && response.status().is_success() => {
            check_response(&state, &endpoint, m, response).await
        }
        _ => response,
    }
}

/// Walks a successful answer against the method's response schema.
async fn check_response(
    state: &SharedState,
    endpoint: &str,
    method: Method,
    response: Response,
) -> Response {
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let problems = match serde_json::from_slice::<Value>(&bytes) {
        Ok(value) => discovery::check_response(method, &value),
        Err(e) => vec![Violation { field: None, description: format!("not JSON: {e}") }],
    };
    let mut checks = state.checks.lock().expect("checks lock");
    checks.checked_responses += 1;
    if !problems.is_empty() {
        checks.bad_response(endpoint, &problems);
    }
    drop(checks);
    Response::from_parts(parts, Body::from(bytes))
}

/// Routes of Google's that the emulator does not serve: 501, so that a client
/// calling one learns that the emulator, not Google, lacks it (a path that is
/// not Google's at all was refused with a 404 before this).
pub async fn unserved(request: Request) -> Response {
    match discovery::find(request.method().as_str(), request.uri().path()) {
        Ok(m) => ApiError::unimplemented(format!("The emulator does not serve {}.", m.id())),
        Err(refusal) => ApiError::refused(&refusal),
    }
    .into_response()
}
