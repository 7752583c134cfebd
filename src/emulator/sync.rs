//! Sync tokens of `people.connections.list` and `contactGroups.list`, as strict as
//! Google's.
//!
//! Each user has a journal: for every contact and contact group the emulator has
//! seen, a fingerprint of what the listing would show of it, the journal position
//! (a sequence number shared by both kinds) at which it last changed, when, and
//! whether it is gone (a tombstone). The journal is brought up to date by comparing
//! the store with it before a listing hands out or takes a token, and after each
//! write while the emulator has a sync lag: so every change is caught, however
//! it was made (the API, [`super::Background::with_store`], an edit of the data
//! file the emulator loads), and nothing is kept for users no token was asked for.
//!
//! A token is opaque (URL-safe base64) and names the tenant (the data file), the
//! emulator instance (random at each start), the user (by immutable id), the
//! listing, the journal position, when it was issued and when its chain's full
//! listing was made, the parameters it was asked with, and a checksum. Google's
//! rules, as the reference states them:
//!
//! - a token expires [`super::Config::sync_token_ttl`] (7 days) after the full
//!   listing its chain started from ("Sync tokens expire 7 days after the full
//!   sync"): 400 `FAILED_PRECONDITION`, `EXPIRED_SYNC_TOKEN`;
//! - garbage, another user's token, the other listing's, another tenant's: 400
//!   `INVALID_ARGUMENT`;
//! - a token of an earlier instance of the emulator on the same data file (a
//!   restart): the journal it points into is gone, so it is expired, as Google
//!   answers a token whose changes it no longer keeps, and the client reads in
//!   full;
//! - "all other request parameters must match the first call": `personFields`,
//!   `sortOrder` and `sources` of a connections listing; `groupFields` of a
//!   groups listing (400 `INVALID_ARGUMENT`).
//!
//! With [`super::Config::sync_lag`], changes younger than the lag are left out of
//! incremental listings and the token returned stands before the oldest of them,
//! so they come in a later listing ("writes may have a propagation delay of
//! several minutes for sync requests").

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::error::ApiError;
use crate::model::{Contact, ContactGroup, short_hash};

/// Google's message for an expired token.
pub const EXPIRED: &str =
    "Sync token is expired. Clear local cache and retry call without the sync token.";

/// The two listings that give tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `people.connections.list`.
    Contacts,
    /// `contactGroups.list`.
    Groups,
}

impl Kind {
    fn index(self) -> usize {
        match self {
            Self::Contacts => 0,
            Self::Groups => 1,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Self::Contacts => "c",
            Self::Groups => "g",
        }
    }
}

/// One contact or group as the journal knows it.
struct Item {
    fingerprint: u64,
    seq: u64,
    at: Instant,
    etag: String,
    deleted: bool,
}

#[derive(Default)]
struct Journal {
    seq: u64,
    contacts: HashMap<String, Item>,
    groups: HashMap<String, Item>,
    /// Tombstones at or before this position were dropped.
    pruned: u64,
    /// Whether the contacts, and the groups, were observed yet.
    seen: [bool; 2],
}

impl Journal {
    fn items(&mut self, kind: Kind) -> &mut HashMap<String, Item> {
        match kind {
            Kind::Contacts => &mut self.contacts,
            Kind::Groups => &mut self.groups,
        }
    }
}

/// A change an incremental listing lists.
#[derive(Clone, Debug)]
pub struct Change {
    /// The resource name.
    pub resource_name: String,
    /// Its etag when last seen (what a tombstone carries).
    pub etag: String,
    /// Gone when last seen.
    pub deleted: bool,
    /// Journal position.
    pub seq: u64,
}

/// A token, checked.
#[derive(Clone, Debug)]
pub struct Token {
    /// Journal position.
    pub position: u64,
    /// When the full listing of its chain was made (ms since the epoch).
    pub chain_start: u64,
}

/// The sync tokens of every user.
pub struct Sync {
    epoch: u64,
    tenant: String,
    ttl: Duration,
    lag: Duration,
    /// How long before a token's issue a position it names can lie (the lags).
    margin: Duration,
    users: Mutex<HashMap<String, Journal>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn fingerprint(value: &impl serde::Serialize) -> u64 {
    let text = serde_json::to_string(value).unwrap_or_default();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

fn invalid(message: &str) -> ApiError {
    ApiError::invalid(message)
}

impl Sync {
    /// Tokens of the tenant `tenant` (what tells data files apart), valid for
    /// `ttl`, hiding changes younger than `lag`; `list_lag` is the emulator's
    /// listing lag (tokens may stand that far back).
    pub fn new(tenant: &str, ttl: Duration, lag: Duration, list_lag: Duration) -> Self {
        Self {
            epoch: rand::random::<u64>(),
            tenant: short_hash(&[tenant]),
            ttl,
            lag,
            margin: lag + list_lag,
            users: Mutex::default(),
        }
    }

    /// Whether changes are to be journaled as they are made (a sync lag needs
    /// their time).
    pub fn eager(&self) -> bool {
        !self.lag.is_zero()
    }

    /// Whether the user has a journal of `kind` (a token was asked for).
    pub fn tracked(&self, user_id: &str, kind: Kind) -> bool {
        self.users.lock().expect("sync lock").get(user_id).is_some_and(|j| j.seen[kind.index()])
    }

    /// Brings the journal of `user_id`'s contacts up to date with `contacts`, as
    /// they are now: the position after it.
    pub fn observe_contacts(&self, user_id: &str, contacts: &[Contact]) -> u64 {
        let now: Vec<(String, String, u64)> = contacts
            .iter()
            .map(|c| (c.resource_name.clone(), c.etag.clone(), fingerprint(c)))
            .collect();
        self.observe(user_id, Kind::Contacts, now)
    }

    /// [`Sync::observe_contacts`] for the groups, each with its members.
    pub fn observe_groups(&self, user_id: &str, groups: &[(ContactGroup, Vec<String>)]) -> u64 {
        let now: Vec<(String, String, u64)> = groups
            .iter()
            .map(|(g, members)| {
                (g.resource_name.clone(), g.etag.clone(), fingerprint(&(g, members.len())))
            })
            .collect();
        self.observe(user_id, Kind::Groups, now)
    }

    fn observe(&self, user_id: &str, kind: Kind, now: Vec<(String, String, u64)>) -> u64 {
        let at = Instant::now();
        let mut users = self.users.lock().expect("sync lock");
        let journal = users.entry(user_id.to_owned()).or_default();
        journal.seen[kind.index()] = true;
        let mut seq = journal.seq;
        let items = journal.items(kind);
        let mut seen = std::collections::HashSet::with_capacity(now.len());
        for (rn, etag, fp) in now {
            seen.insert(rn.clone());
            match items.get_mut(&rn) {
                Some(item) if !item.deleted && item.fingerprint == fp => {}
                Some(item) => {
                    seq += 1;
                    *item = Item { fingerprint: fp, seq, at, etag, deleted: false };
                }
                None => {
                    seq += 1;
                    items.insert(rn, Item { fingerprint: fp, seq, at, etag, deleted: false });
                }
            }
        }
        for (rn, item) in items.iter_mut() {
            if !item.deleted && !seen.contains(rn) {
                seq += 1;
                item.seq = seq;
                item.at = at;
                item.deleted = true;
            }
        }
        // Tombstones no live token can need any more.
        let mut pruned = journal.pruned;
        if let Some(horizon) = at.checked_sub(self.ttl + self.margin) {
            journal.items(kind).retain(|_, item| {
                let keep = !item.deleted || item.at > horizon;
                if !keep {
                    pruned = pruned.max(item.seq);
                }
                keep
            });
        }
        journal.pruned = pruned;
        journal.seq = seq;
        seq
    }

    /// Where an incremental listing of `kind` from `from` stops: the journal's
    /// position, or before the oldest change the sync lag still hides.
    pub fn visible(&self, user_id: &str, kind: Kind, from: u64) -> u64 {
        let mut users = self.users.lock().expect("sync lock");
        let journal = users.entry(user_id.to_owned()).or_default();
        let position = journal.seq;
        if self.lag.is_zero() {
            return position;
        }
        let now = Instant::now();
        journal
            .items(kind)
            .values()
            .filter(|i| i.seq > from && now.duration_since(i.at) < self.lag)
            .map(|i| i.seq - 1)
            .min()
            .unwrap_or(position)
            .max(from)
    }

    /// The changes of `kind` in `(after, upto]`, in journal order: up to `size`
    /// of them, whether more follow, and how many there are from `from` on.
    pub fn changes(
        &self,
        user_id: &str,
        kind: Kind,
        (from, after, upto): (u64, u64, u64),
        size: usize,
    ) -> (Vec<Change>, bool, usize) {
        let mut users = self.users.lock().expect("sync lock");
        let journal = users.entry(user_id.to_owned()).or_default();
        let mut all: Vec<Change> = journal
            .items(kind)
            .iter()
            .filter(|(_, i)| i.seq > from && i.seq <= upto)
            .map(|(rn, i)| Change {
                resource_name: rn.clone(),
                etag: i.etag.clone(),
                deleted: i.deleted,
                seq: i.seq,
            })
            .collect();
        all.sort_by_key(|c| c.seq);
        let total = all.len();
        let mut page: Vec<Change> = all.into_iter().filter(|c| c.seq > after).collect();
        let more = page.len() > size;
        page.truncate(size);
        (page, more, total)
    }

    /// A token of `user_id`'s `kind` listing at `position`, asked for with
    /// `params`; `chain_start` is when its chain's full listing was made (`None`:
    /// now, this is one).
    pub fn issue(
        &self,
        user_id: &str,
        kind: Kind,
        position: u64,
        params: &str,
        chain_start: Option<u64>,
    ) -> String {
        let issued = now_ms();
        let payload = format!(
            "1|{}|{:x}|{}|{}|{position}|{issued}|{}|{}",
            self.tenant,
            self.epoch,
            short_hash(&[user_id]),
            kind.code(),
            chain_start.unwrap_or(issued),
            short_hash(&[params]),
        );
        let sum = short_hash(&[&payload, "contact-sync emulator sync token"]);
        crate::model::photo::encode_base64_url(format!("{payload}|{sum}").as_bytes())
            .trim_end_matches('=')
            .to_owned()
    }

    /// Checks a token given to `user_id`'s `kind` listing asked with `params`.
    pub fn check(
        &self,
        token: &str,
        user_id: &str,
        kind: Kind,
        params: &str,
    ) -> Result<Token, ApiError> {
        const BAD: &str = "Request contains an invalid argument.";
        let text = crate::model::photo::decode_base64(token)
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| invalid(BAD))?;
        let (payload, sum) = text.rsplit_once('|').ok_or_else(|| invalid(BAD))?;
        if short_hash(&[payload, "contact-sync emulator sync token"]) != sum {
            return Err(invalid(BAD));
        }
        let parts: Vec<&str> = payload.split('|').collect();
        let [version, tenant, epoch, user, k, position, _issued, start, hash] = parts[..] else {
            return Err(invalid(BAD));
        };
        if version != "1" || tenant != self.tenant {
            return Err(invalid(BAD));
        }
        if user != short_hash(&[user_id]) {
            return Err(invalid("The sync token was issued to another user."));
        }
        if k != kind.code() {
            return Err(invalid("The sync token was issued by another listing."));
        }
        if epoch != format!("{:x}", self.epoch) {
            // An earlier run of the emulator: its journal is gone.
            return Err(expired());
        }
        if hash != short_hash(&[params]) {
            return Err(invalid(match kind {
                Kind::Contacts => {
                    "When the sync_token is specified, all other request parameters \
                     (personFields, sortOrder, sources) must match the first call."
                }
                Kind::Groups => {
                    "When the sync_token is specified, all other request parameters \
                     (groupFields) must match the first call."
                }
            }));
        }
        let (Ok(position), Ok(chain_start)) = (position.parse::<u64>(), start.parse::<u64>())
        else {
            return Err(invalid(BAD));
        };
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        if now_ms().saturating_sub(chain_start) > ttl {
            return Err(expired());
        }
        let users = self.users.lock().expect("sync lock");
        let journal = users.get(user_id);
        if journal.is_none_or(|j| position > j.seq) {
            return Err(invalid(BAD));
        }
        if journal.is_some_and(|j| position < j.pruned) {
            return Err(expired());
        }
        Ok(Token { position, chain_start })
    }
}

/// 400 `FAILED_PRECONDITION`, `EXPIRED_SYNC_TOKEN`.
pub fn expired() -> ApiError {
    ApiError::expired_sync_token(EXPIRED)
}

/// Where a page of a listing that gives or takes a token starts: an opaque
/// `pageToken` holding the offset (full listing) or journal position (incremental
/// listing) it continues from, the position the listing stops at, and what the
/// request was asked with, which the next page's request must repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageToken {
    /// Offset into the full listing, or position after which the incremental
    /// listing continues.
    pub after: u64,
    /// The position the listing's token will name.
    pub upto: u64,
}

/// `pageToken` of a listing's next page; `asked` names the request (its sync
/// token and the parameters that must match).
pub fn page_token(page: &PageToken, asked: &str) -> String {
    let payload = format!("{}|{}|{}", page.after, page.upto, short_hash(&[asked]));
    format!("s{}", crate::model::photo::encode_base64_url(payload.as_bytes()).trim_end_matches('='))
}

/// Reads a `pageToken` of [`page_token`] given to a request asked as `asked`.
pub fn read_page_token(token: &str, asked: &str) -> Result<PageToken, ApiError> {
    let bad = || invalid("Invalid pageToken");
    let text = token
        .strip_prefix('s')
        .and_then(crate::model::photo::decode_base64)
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(bad)?;
    let parts: Vec<&str> = text.split('|').collect();
    let [after, upto, hash] = parts[..] else { return Err(bad()) };
    if hash != short_hash(&[asked]) {
        return Err(invalid(
            "When the page_token is specified, all other request parameters (the sync \
             token among them) must match the call that gave the page token.",
        ));
    }
    match (after.parse(), upto.parse()) {
        (Ok(after), Ok(upto)) => Ok(PageToken { after, upto }),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact(rn: &str, etag: &str) -> Contact {
        Contact { resource_name: rn.into(), etag: etag.into(), ..Contact::default() }
    }

    #[test]
    fn emulator_sync_journal_lists_changes_and_tombstones() {
        let sync = Sync::new("t", Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        let p = sync.observe_contacts("u1", &[contact("people/a", "1"), contact("people/b", "1")]);
        assert_eq!(
            sync.observe_contacts("u1", &[contact("people/a", "1"), contact("people/b", "1")]),
            p
        );
        let q = sync.observe_contacts("u1", &[contact("people/a", "2"), contact("people/c", "1")]);
        let (changes, more, total) = sync.changes("u1", Kind::Contacts, (p, p, q), 10);
        assert!(!more);
        assert_eq!(total, 3);
        let names: Vec<(&str, bool)> =
            changes.iter().map(|c| (c.resource_name.as_str(), c.deleted)).collect();
        assert!(names.contains(&("people/b", true)), "{names:?}");
        assert!(names.contains(&("people/a", false)) && names.contains(&("people/c", false)));
    }

    #[test]
    fn emulator_sync_tokens_are_checked() {
        let sync = Sync::new("t", Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        let p = sync.observe_contacts("u1", &[]);
        let token = sync.issue("u1", Kind::Contacts, p, "names", None);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(sync.check(&token, "u1", Kind::Contacts, "names").unwrap().position, p);
        let status = |r: Result<Token, ApiError>| r.unwrap_err().status;
        assert_eq!(status(sync.check(&token, "u2", Kind::Contacts, "names")), "INVALID_ARGUMENT");
        assert_eq!(status(sync.check(&token, "u1", Kind::Groups, "names")), "INVALID_ARGUMENT");
        assert_eq!(status(sync.check(&token, "u1", Kind::Contacts, "emails")), "INVALID_ARGUMENT");
        assert_eq!(
            status(sync.check("garbage", "u1", Kind::Contacts, "names")),
            "INVALID_ARGUMENT"
        );
        let mut tampered = token.clone().into_bytes();
        tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(
            status(sync.check(&tampered, "u1", Kind::Contacts, "names")),
            "INVALID_ARGUMENT"
        );
        // Another instance on the same data: expired; on other data: invalid.
        let restarted = Sync::new("t", Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        restarted.observe_contacts("u1", &[]);
        assert_eq!(
            status(restarted.check(&token, "u1", Kind::Contacts, "names")),
            "FAILED_PRECONDITION"
        );
        let other = Sync::new("other", Duration::from_secs(60), Duration::ZERO, Duration::ZERO);
        assert_eq!(status(other.check(&token, "u1", Kind::Contacts, "names")), "INVALID_ARGUMENT");
    }

    #[test]
    fn emulator_sync_page_tokens_go_with_their_request() {
        let page = PageToken { after: 3, upto: 9 };
        let token = page_token(&page, "a");
        assert_eq!(read_page_token(&token, "a").unwrap(), page);
        assert!(read_page_token(&token, "b").is_err());
        assert!(read_page_token("12", "a").is_err());
    }
}
