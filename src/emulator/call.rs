//! One API request as the emulator's handlers take it ([`Call`], an axum
//! extractor): the caller admitted as Google admits it (the token's user, the
//! scopes the method needs, its quota charged), the query's pairs, the store read
//! and written on the caller's behalf with the store's errors answered in
//! Google's form, and a listing's page answered with its next page token. Every
//! handler takes a `Call` in place of the state, the headers and the raw query.

use std::convert::Infallible;

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde_json::Value;

use super::error::ApiError;
use super::quota::Bucket;
use super::{SharedState, auth, query_pairs};
use crate::backend::store::Store;

/// One API request.
pub struct Call {
    /// The emulator.
    pub state: SharedState,
    /// The request's headers: its bearer token, the host photo URLs are served at.
    pub headers: HeaderMap,
    /// The query's pairs, repeated keys kept.
    pub query: Vec<(String, String)>,
}

impl FromRequestParts<SharedState> for Call {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Infallible> {
        Ok(Self {
            state: state.clone(),
            headers: parts.headers.clone(),
            query: query_pairs(parts.uri.query()),
        })
    }
}

impl Call {
    /// Authorizes the request with one of `scopes` and charges `cost` to the
    /// user's `bucket`: the impersonated user.
    pub fn admit(&self, scopes: &[&str], bucket: Bucket, cost: u32) -> Result<String, ApiError> {
        let user = auth::authorize(&self.state, &self.headers, scopes)?;
        self.state.quotas.lock().expect("quota lock").charge(&user, bucket, cost)?;
        Ok(user)
    }

    /// The query parameter `key`.
    pub fn param(&self, key: &str) -> Option<&str> {
        super::param(&self.query, key)
    }

    /// Reads the store.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&mut Store) -> crate::backend::Result<T>,
    ) -> Result<T, ApiError> {
        self.state.backend.with_store(f).map_err(ApiError::from_store)
    }

    /// Runs one of `user`'s writes on the store; the user's listings trail it when
    /// the emulator has a list lag, and its changes are journaled at once when it
    /// has a sync lag.
    pub fn write<T>(
        &self,
        user: &str,
        f: impl FnOnce(&mut Store) -> crate::backend::Result<T>,
    ) -> Result<T, ApiError> {
        self.read(|s| {
            let state = &self.state;
            state.lag.before_write(user, s, || {
                // What the listings keep showing is journaled, so that the
                // token of a listing that shows it stands before this write.
                state.observe(s, user, super::sync::Kind::Groups)?;
                state.observe(s, user, super::sync::Kind::Contacts)
            })?;
            let out = f(s)?;
            state.lag.after_write(user);
            state.journal_write(s, user)?;
            Ok(out)
        })
    }
}

/// A listing's page `body`, with `nextPageToken` when a page follows.
pub fn paged(mut body: Value, next: Option<String>) -> Json<Value> {
    if let Some(next) = next {
        body["nextPageToken"] = next.into();
    }
    Json(body)
}
