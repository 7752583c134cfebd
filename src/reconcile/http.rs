//! The loop's HTTP server: `/healthz`, `/readyz`, `/metrics` (Prometheus text),
//! `/status` (JSON), and `POST /syncs/{name}/run` to run a sync now.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::driver::Shared;

/// The routes over the loop's shared state.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/syncs/{name}/run", post(trigger))
        .with_state(shared)
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    match shared.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")).into_response()
        }
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let content_type = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
    ([(header::CONTENT_TYPE, content_type)], shared.metrics.encode()).into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    axum::Json(shared.status()).into_response()
}

/// `?allowDeletes=N`: deletions approved once past the sync's guard.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TriggerQuery {
    allow_deletes: Option<usize>,
}

/// 202 once the run is asked for; 404 for an unknown sync; 409 while it runs;
/// 401 without the right bearer token when one is set; 403 when the endpoint is
/// disabled (no token, and an address others can reach); 400 for a query other
/// than `allowDeletes=N`.
async fn trigger(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    Query(query): Query<TriggerQuery>,
    headers: HeaderMap,
) -> Response {
    if !shared.trigger_enabled {
        let why = "disabled: set CONTACT_SYNC_TRIGGER_TOKEN to trigger runs over a non-loopback address\n";
        return (StatusCode::FORBIDDEN, why).into_response();
    }
    if let Some(token) = &shared.options.trigger_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !same(given.as_bytes(), token.as_bytes()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "a valid Authorization: Bearer token is required\n",
            )
                .into_response();
        }
    }
    match shared.trigger(&name, query.allow_deletes) {
        Ok(()) => {
            let approved = match query.allow_deletes {
                Some(n) => format!(", approving {n} deletions past the deletion guard once"),
                None => String::new(),
            };
            (StatusCode::ACCEPTED, format!("sync {name}: run requested{approved}\n"))
                .into_response()
        }
        Err(StatusCode::NOT_FOUND) => {
            (StatusCode::NOT_FOUND, format!("no sync named {name}\n")).into_response()
        }
        Err(code) => (code, format!("sync {name} is running\n")).into_response(),
    }
}

/// Compares in time that depends on the length only, not on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
