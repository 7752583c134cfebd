//! Facts of Google's APIs that the google backend, the emulator and validation
//! share — the OAuth scopes, the base URLs and which of them may be used, how a
//! service-account key's PEM is read — so that none depends on the backend.

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

/// Directory custom schemas (their names and fields), read-only (`sub` = the
/// admin): asked for only by a directory sync with `customFields`, in a token of
/// its own, so that a key without it serves every other sync.
pub const USERSCHEMA_READONLY: &str =
    "https://www.googleapis.com/auth/admin.directory.userschema.readonly";
/// The domain directory of the People API, read-only (`sub` = the admin): the
/// domain's shared contacts (`people.listDirectoryPeople`), asked for only by a
/// directory sync with `sharedContacts: true`, in a token of its own.
pub const DIRECTORY_READONLY: &str = "https://www.googleapis.com/auth/directory.readonly";

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

/// Refuses an endpoint that would carry bearer tokens in cleartext: `https://`
/// only, or `http://` to a loopback address (an emulator on this machine).
pub fn check_endpoint(url: &str) -> std::result::Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL ({e})"))?;
    let host = parsed.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "`{url}` is plain http: access tokens would travel in cleartext. Use https://, \
             or http:// only to a loopback address (127.0.0.1, ::1, localhost) such as an \
             emulator on this machine"
        )),
        other => Err(format!("`{url}` has scheme `{other}`; expected https://")),
    }
}
