//! Google's error bodies: `{"error": {"code", "message", "status", "errors",
//! "details"}}`, with the `google.rpc.ErrorInfo` detail the People API sends and
//! the `errors[].reason` list the Directory API sends; a request Google's front end
//! refuses carries a `google.rpc.BadRequest` detail with its field violations.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::discovery::{Refusal, Violation};

/// An error answered to a client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub code: StatusCode,
    /// Canonical status, e.g. `FAILED_PRECONDITION`.
    pub status: &'static str,
    /// Machine-readable reason, e.g. `RATE_LIMIT_EXCEEDED`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
    /// What the front end refused, for a `google.rpc.BadRequest` detail (empty:
    /// the detail is a `google.rpc.ErrorInfo`).
    pub violations: Vec<Violation>,
}

impl ApiError {
    fn new(
        code: StatusCode,
        status: &'static str,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            code,
            status,
            reason,
            message: message.into(),
            retry_after: None,
            violations: Vec::new(),
        }
    }

    /// What Google answers to a request its discovery document does not allow:
    /// 404 for an unknown path or verb, 400 `INVALID_ARGUMENT` with the field
    /// violations otherwise.
    pub fn refused(refusal: &Refusal) -> Self {
        match refusal {
            Refusal::NotFound { .. } => Self::not_found(refusal.message()),
            Refusal::Invalid(violations) => {
                let mut e = Self::new(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "invalid",
                    refusal.message(),
                );
                e.violations = violations.clone();
                e
            }
        }
    }

    /// 501 UNIMPLEMENTED: a method of Google's that the emulator does not serve.
    pub fn unimplemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "UNIMPLEMENTED", "notImplemented", message)
    }

    /// 400 INVALID_ARGUMENT.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", "badRequest", message)
    }

    /// 400 FAILED_PRECONDITION (stale etag).
    pub fn precondition(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", "failedPrecondition", message)
    }

    /// 400 FAILED_PRECONDITION with the `EXPIRED_SYNC_TOKEN` reason: a sync token
    /// too old (or of an emulator run whose journal is gone).
    pub fn expired_sync_token(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "FAILED_PRECONDITION", "EXPIRED_SYNC_TOKEN", message)
    }

    /// 401 UNAUTHENTICATED.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", "authError", message)
    }

    /// 403 PERMISSION_DENIED (missing scope).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
            message,
        )
    }

    /// 404 NOT_FOUND.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", "notFound", message)
    }

    /// 409 ALREADY_EXISTS.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "ALREADY_EXISTS", "duplicate", message)
    }

    /// 429 RESOURCE_EXHAUSTED.
    pub fn quota(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "RATE_LIMIT_EXCEEDED",
            message,
        );
        e.retry_after = Some(retry_after);
        e
    }

    /// 500 INTERNAL or 503 UNAVAILABLE (injected faults).
    pub fn fault(code: StatusCode) -> Self {
        if code == StatusCode::SERVICE_UNAVAILABLE {
            Self::new(
                code,
                "UNAVAILABLE",
                "serviceNotAvailable",
                "The service is currently unavailable.",
            )
        } else {
            Self::new(code, "INTERNAL", "backendError", "Internal error encountered.")
        }
    }

    /// Maps a store error to Google's answer.
    pub fn from_store(e: crate::backend::Error) -> Self {
        use crate::backend::Error as E;
        match e {
            E::NotFound { what } => {
                Self::not_found(format!("Requested entity was not found: {what}"))
            }
            E::GroupExists { name, .. } => {
                Self::conflict(format!("Contact group name '{name}' already exists."))
            }
            E::Stale { what } => {
                Self::precondition(format!("Request person etag does not match: {what}"))
            }
            E::Invalid(m) => Self::invalid(m.to_string()),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                "backendError",
                crate::text::error_chain(&other),
            ),
        }
    }
}

impl ApiError {
    /// The `details` of the error body.
    fn details(&self) -> Value {
        if self.violations.is_empty() {
            return json!([{
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": self.reason,
                "domain": "googleapis.com",
                "metadata": {}
            }]);
        }
        let violations: Vec<Value> = self
            .violations
            .iter()
            .map(|v| match &v.field {
                Some(field) => json!({ "field": field, "description": v.description }),
                None => json!({ "description": v.description }),
            })
            .collect();
        json!([{ "@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": violations }])
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": {
                "code": self.code.as_u16(),
                "message": self.message,
                "status": self.status,
                "errors": [{ "message": self.message, "domain": "global", "reason": self.reason }],
                "details": self.details(),
            }
        });
        let mut response = (self.code, axum::Json(body)).into_response();
        if let Some(v) = self.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
            response.headers_mut().insert("retry-after", v);
        }
        response
    }
}
