//! The OAuth token endpoint of the emulator: the JWT-bearer grant a service account
//! with domain-wide delegation uses. The assertion is checked (RS256 header, claims,
//! lifetime, a `sub` that is a user of the tenant, scopes contact-sync may be
//! granted; the signature too when the emulator is given the key), and the token it
//! hands out is bound to that `sub` and those scopes.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::{Emulator, SharedState};

pub use crate::google_api::{
    CONTACTS, CONTACTS_READONLY, DIRECTORY_READONLY, MEMBERS_READONLY, USERS_READONLY,
    USERSCHEMA_READONLY,
};

/// The scopes the emulated tenant's admin granted to the service account, unless
/// [`super::Config::delegated_scopes`] says otherwise.
pub const DELEGATED: &[&str] = &[
    CONTACTS,
    CONTACTS_READONLY,
    USERS_READONLY,
    MEMBERS_READONLY,
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.group.member",
    USERSCHEMA_READONLY,
    DIRECTORY_READONLY,
];

/// Lifetime of an issued token.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// What an access token stands for.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The impersonated user's primary address.
    pub subject: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it expires.
    pub expires: Instant,
}

/// Issued tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    grants: HashMap<String, Grant>,
}

#[derive(Debug, Deserialize)]
pub struct TokenRequest {
    grant_type: String,
    assertion: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Claims {
    iss: String,
    scope: String,
    aud: String,
    iat: u64,
    exp: u64,
    sub: Option<String>,
}

/// The token endpoint's refusal, in OAuth's form: a status, the `error` code and
/// its description.
pub struct OAuthError(StatusCode, &'static str, String);

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let Self(code, error, description) = self;
        (code, axum::Json(json!({ "error": error, "error_description": description })))
            .into_response()
    }
}

/// A 400 refusal of the token endpoint.
fn refused(error: &'static str, description: impl Into<String>) -> OAuthError {
    OAuthError(StatusCode::BAD_REQUEST, error, description.into())
}

/// `POST /token`.
pub async fn token(
    State(state): State<SharedState>,
    Form(req): Form<TokenRequest>,
) -> Result<axum::Json<serde_json::Value>, OAuthError> {
    if req.grant_type != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
        return Err(refused("unsupported_grant_type", "Invalid grant_type."));
    }
    let assertion = req
        .assertion
        .ok_or_else(|| refused("invalid_request", "Missing required parameter: assertion"))?;
    let claims = check_assertion(&state, &assertion).map_err(|m| refused("invalid_grant", m))?;
    let scopes: Vec<String> = claims.scope.split_whitespace().map(str::to_owned).collect();
    let granted = |s: &String| match &state.config.delegated_scopes {
        Some(list) => list.contains(s),
        None => DELEGATED.contains(&s.as_str()),
    };
    if scopes.is_empty() || !scopes.iter().all(granted) {
        return Err(OAuthError(
            StatusCode::UNAUTHORIZED,
            "unauthorized_client",
            "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.".into(),
        ));
    }
    let sub = claims
        .sub
        .ok_or_else(|| refused("invalid_grant", "Domain-wide delegation needs a sub claim."))?;
    let user = state
        .backend
        .with_store(|s| s.user(&sub))
        .map_err(|e| {
            OAuthError(StatusCode::INTERNAL_SERVER_ERROR, "internal_failure", e.to_string())
        })?
        .ok_or_else(|| refused("invalid_grant", "Invalid email or User ID"))?;
    let token = format!(
        "ya29.emulator-{}",
        crate::model::short_hash(&[&assertion, &rand::random::<u64>().to_string()])
    );
    let grant =
        Grant { subject: user.primary_email, scopes, expires: Instant::now() + TOKEN_LIFETIME };
    state.tokens.lock().expect("tokens lock").grants.insert(token.clone(), grant);
    let _ = &claims.iss;
    Ok(axum::Json(json!({
        "access_token": token,
        "expires_in": TOKEN_LIFETIME.as_secs(),
        "token_type": "Bearer"
    })))
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn check_assertion(state: &Emulator, assertion: &str) -> Result<Claims, String> {
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err("Invalid JWT: expected header.payload.signature".into());
    };
    let decode =
        |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| "Invalid JWT: bad base64".to_owned());
    let header: serde_json::Value =
        serde_json::from_slice(&decode(header)?).map_err(|_| "Invalid JWT header".to_owned())?;
    if header["alg"] != "RS256" {
        return Err("Invalid JWT: alg must be RS256".into());
    }
    let claims: Claims = serde_json::from_slice(&decode(payload)?)
        .map_err(|e| format!("Invalid JWT claims: {e}"))?;
    let now = now();
    if claims.exp <= now || claims.iat > now + 60 {
        return Err("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values".into());
    }
    if claims.exp.saturating_sub(claims.iat) > 3600 {
        return Err("Invalid JWT: exp is more than an hour after iat".into());
    }
    if !claims.aud.ends_with("/token") {
        return Err(format!("Invalid JWT: aud {} is not this token endpoint", claims.aud));
    }
    if let Some(key) = &state.trusted_key {
        let message = format!("{}.{}", parts[0], parts[1]);
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, &key.0)
            .verify(message.as_bytes(), &decode(signature)?)
            .map_err(|_| "Invalid JWT Signature.".to_owned())?;
    }
    Ok(claims)
}

/// Checks the bearer token of a request: it must be live and carry `scope` (or
/// `alternative`); returns the impersonated user.
pub fn authorize(
    state: &Emulator,
    headers: &HeaderMap,
    scopes: &[&str],
) -> Result<String, ApiError> {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::unauthenticated("Request is missing required authentication credential.")
        })?;
    let tokens = state.tokens.lock().expect("tokens lock");
    let grant =
        tokens.grants.get(token).filter(|g| g.expires > Instant::now()).ok_or_else(|| {
            ApiError::unauthenticated("Request had invalid authentication credentials.")
        })?;
    if !grant.scopes.iter().any(|s| scopes.contains(&s.as_str())) {
        return Err(ApiError::forbidden("Request had insufficient authentication scopes."));
    }
    Ok(grant.subject.clone())
}
