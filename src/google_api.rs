//! Facts of Google's APIs that the google backend and the emulator share — the
//! OAuth scopes, the base URLs, how a service-account key's PEM is read — so that
//! the emulator serves what the backend asks for without depending on the backend.

use ring::signature::RsaKeyPair;
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// People API scope to read and write contacts (`sub` = each source or destination
/// user): what `apply` and the reconcile loop ask for.
pub const CONTACTS: &str = "https://www.googleapis.com/auth/contacts";
/// People API scope to read contacts only: what `plan` and every other read-only
/// command ask for, so that a key delegated only this (the CI key that plans pull
/// requests) can do all they do and no more.
pub const CONTACTS_READONLY: &str = "https://www.googleapis.com/auth/contacts.readonly";
/// Directory users, read-only (`sub` = the admin).
pub const USERS_READONLY: &str = "https://www.googleapis.com/auth/admin.directory.user.readonly";
/// Directory group members, read-only (`sub` = the admin).
pub const MEMBERS_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly";

/// Google's People API.
pub const PEOPLE_URL: &str = "https://people.googleapis.com";
/// Google's Admin SDK.
pub const DIRECTORY_URL: &str = "https://admin.googleapis.com";

/// An RSA key pair from a PEM private key (PKCS#8, as in Google's key files, or
/// PKCS#1); `None` when the text holds none.
pub fn rsa_key_pair(pem: &str) -> Option<RsaKeyPair> {
    match PrivateKeyDer::from_pem_slice(pem.as_bytes()).ok()? {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).ok(),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()).ok(),
        _ => None,
    }
}
