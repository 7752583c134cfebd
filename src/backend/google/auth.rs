//! Service-account authentication with domain-wide delegation: an RS256-signed JWT
//! whose `sub` is the impersonated user, exchanged at `token_uri` for an access
//! token, cached per (subject, scopes) and refreshed before it expires.
//!
//! The private key never leaves this module and is never logged: the key type's
//! `Debug` leaves it out, and errors name the service account and client id only.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::json;

use crate::backend::Error;

/// Google's token endpoint, when the key file names none.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Refresh a cached token this long before it expires.
const REFRESH_EARLY: Duration = Duration::from_secs(300);

/// A service-account key file (the fields used).
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// Must be `service_account`.
    #[serde(rename = "type")]
    pub key_type: String,
    /// The service account's address (the JWT issuer).
    pub client_email: String,
    /// The numeric client id an admin grants delegation to.
    #[serde(default)]
    pub client_id: String,
    /// PEM private key.
    private_key: String,
    /// Token endpoint.
    #[serde(default)]
    pub token_uri: Option<String>,
}

impl fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("client_id", &self.client_id)
            .field("private_key", &"(redacted)")
            .finish()
    }
}

impl ServiceAccountKey {
    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Credentials {
            message: format!("cannot read the service-account key {}", path.display()),
            cause: Some(std::sync::Arc::new(e)),
        })?;
        let key: Self = serde_json::from_str(&text).map_err(|e| Error::Credentials {
            message: format!(
                "{} is not a service-account key file ({e}); download a JSON key for the service account",
                path.display()
            ),
            cause: None,
        })?;
        if key.key_type != "service_account" {
            return Err(Error::Credentials {
                message: format!(
                    "{} is a `{}` credential; contact-sync needs a service-account key (type \
                     service_account)",
                    path.display(),
                    key.key_type
                ),
                cause: None,
            });
        }
        Ok(key)
    }
}

pub use crate::google_api::rsa_key_pair;

/// Signs assertions and caches tokens.
pub struct Authenticator {
    key: ServiceAccountKey,
    signer: RsaKeyPair,
    rng: SystemRandom,
    token_url: String,
    http: reqwest::Client,
    cache: Mutex<HashMap<(String, String), (String, Instant)>>,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("key", &self.key)
            .field("token_url", &self.token_url)
            .finish()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl Authenticator {
    /// Prepares signing with `key`; `token_url` overrides the key's `token_uri`.
    pub fn new(
        key: ServiceAccountKey,
        token_url: Option<String>,
        http: reqwest::Client,
    ) -> Result<Self, Error> {
        let signer = rsa_key_pair(&key.private_key).ok_or_else(|| Error::Credentials {
            message: format!(
                "the private_key of service account {} is not an RSA key in PEM form",
                key.client_email
            ),
            cause: None,
        })?;
        let token_url = token_url
            .or_else(|| key.token_uri.clone())
            .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_owned());
        Ok(Self { signer, rng: SystemRandom::new(), key, token_url, http, cache: Mutex::default() })
    }

    /// A signed JWT-bearer assertion for `subject` and `scopes`.
    pub fn assertion(&self, subject: &str, scopes: &str) -> String {
        let iat = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "RS256", "typ": "JWT" }).to_string());
        let claims = URL_SAFE_NO_PAD.encode(
            json!({
                "iss": self.key.client_email,
                "scope": scopes,
                "aud": self.token_url,
                "iat": iat,
                "exp": iat + 3600,
                "sub": subject,
            })
            .to_string(),
        );
        let message = format!("{header}.{claims}");
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(&RSA_PKCS1_SHA256, &self.rng, message.as_bytes(), &mut signature)
            .expect("signing with a key that loaded never fails");
        format!("{message}.{}", URL_SAFE_NO_PAD.encode(&signature))
    }

    /// A live access token for `subject` with `scopes` (space-separated).
    pub async fn token(&self, subject: &str, scopes: &str) -> Result<String, Error> {
        let cache_key = (subject.to_lowercase(), scopes.to_owned());
        let cached = self.cache.lock().expect("token cache").get(&cache_key).cloned();
        if let Some((token, expires)) = cached
            && expires > Instant::now() + REFRESH_EARLY
        {
            return Ok(token);
        }
        let assertion = self.assertion(subject, scopes);
        let response = self
            .http
            .post(&self.token_url)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ])
            .send()
            .await
            .map_err(|e| Error::Unreachable {
                message: format!(
                    "token endpoint {}: {}",
                    self.token_url,
                    super::http::describe(&e)
                ),
            })?;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if status != 200 {
            return Err(self.token_error(status, &body, subject, scopes));
        }
        let parsed: TokenResponse = serde_json::from_value(body).map_err(|e| Error::Api {
            status,
            message: format!(
                "the token endpoint {} answered something unexpected: {e}",
                self.token_url
            ),
        })?;
        let expires = Instant::now() + Duration::from_secs(parsed.expires_in);
        self.cache
            .lock()
            .expect("token cache")
            .insert(cache_key, (parsed.access_token.clone(), expires));
        Ok(parsed.access_token)
    }

    /// Forgets a token the API refused (revoked, or the clock was off).
    pub fn invalidate(&self, subject: &str, scopes: &str) {
        self.cache
            .lock()
            .expect("token cache")
            .remove(&(subject.to_lowercase(), scopes.to_owned()));
    }

    fn token_error(
        &self,
        status: u16,
        body: &serde_json::Value,
        subject: &str,
        scopes: &str,
    ) -> Error {
        let error = body["error"].as_str().unwrap_or_default();
        let description = body["error_description"].as_str().unwrap_or_default();
        let message = match error {
            "unauthorized_client" => format!(
                "domain-wide delegation refused for service account {} acting as {subject}. In the \
                 Admin console, Security → API controls → Domain-wide delegation, grant client id \
                 {} these scopes: {}",
                self.key.client_email,
                if self.key.client_id.is_empty() {
                    "(client_id missing from the key file)"
                } else {
                    &self.key.client_id
                },
                scopes.replace(' ', ",")
            ),
            "invalid_grant" => format!(
                "the token endpoint refused to act as {subject}: {description}. Check that {subject} \
                 exists in the tenant and that the service account key is current"
            ),
            _ => format!(
                "the token endpoint {} answered HTTP {status}: {}",
                self.token_url,
                [error, description]
                    .iter()
                    .filter(|s| !s.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(": ")
            ),
        };
        Error::Api { status, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{KeyPair, RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    /// The throwaway key of the tests (trusted by nothing but their emulator).
    fn key() -> ServiceAccountKey {
        serde_json::from_str(include_str!("../../../tests/fixtures/service-account.json")).unwrap()
    }

    #[test]
    fn assertions_are_rs256_jwts_for_the_impersonated_user() {
        let key = key();
        let public = rsa_key_pair(&key.private_key).unwrap().public_key().as_ref().to_vec();
        let auth = Authenticator::new(
            key,
            Some("http://127.0.0.1:1/token".into()),
            reqwest::Client::new(),
        )
        .unwrap();
        let jwt = auth.assertion("ann@example.com", "https://www.googleapis.com/auth/contacts");
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |p: &str| {
            serde_json::from_slice::<serde_json::Value>(&URL_SAFE_NO_PAD.decode(p).unwrap())
                .unwrap()
        };
        assert_eq!(decode(parts[0])["alg"], "RS256");
        let claims = decode(parts[1]);
        assert_eq!(claims["sub"], "ann@example.com");
        assert_eq!(claims["iss"], "contact-sync@emulator.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "http://127.0.0.1:1/token");
        assert_eq!(claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(), 3600);
        let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public)
            .verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &signature)
            .unwrap();
    }

    #[test]
    fn the_private_key_is_never_printed() {
        let key = key();
        let auth = Authenticator::new(key.clone(), None, reqwest::Client::new()).unwrap();
        for shown in [format!("{key:?}"), format!("{auth:?}")] {
            assert!(!shown.contains("PRIVATE KEY") && shown.contains("(redacted)"), "{shown}");
        }
        assert_eq!(auth.token_url, DEFAULT_TOKEN_URI);
    }

    #[test]
    fn a_key_that_is_not_rsa_pem_is_refused_by_name() {
        let mut key = key();
        key.private_key =
            "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n".into();
        let err = Authenticator::new(key, None, reqwest::Client::new()).unwrap_err();
        assert!(err.to_string().contains("is not an RSA key in PEM form"), "{err}");
    }
}
