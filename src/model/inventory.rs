//! The inventory: a record, kept in the tenant itself, of which users hold state
//! (marked contact groups or contacts) of which sync, so that a run reads the users
//! its syncs select and the users the inventory lists — not every user of the
//! tenant.
//!
//! It lives in contact groups of the state user (`spec.google.stateUser`, default
//! `adminUser`) named "contact-sync inventory" (and "contact-sync inventory 2",
//! … once it outgrows one group), in their `clientData`:
//!
//! - `contact-sync/inventory` = `bucket B of N`: users are spread over `N` groups
//!   by a hash of their id, so a change to one user rewrites one group;
//! - `contact-sync/inventory-scanned` (bucket 1) = when a full scan last rebuilt it;
//! - `contact-sync/holders` = `<sync> <user id> <user id> …`, the sync name
//!   percent-encoded, each value under 1,000 characters.
//!
//! It can never cause harm, only more reads: it is written *before* a change
//! creates state (so it lists at least every user that may hold some), users are
//! taken off it only after a run saw they hold nothing; a missing or damaged
//! inventory makes the run read every user (a full scan) and rebuild it. The groups
//! carry no `contact-sync/sync` marker, so no plan ever touches them.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::{ClientData, ContactGroup, client_data};

/// `clientData` key of an inventory group: `bucket B of N`.
pub const MARKER_INVENTORY: &str = "contact-sync/inventory";
/// `clientData` key of the first inventory group: when a full scan last rebuilt it.
pub const MARKER_INVENTORY_SCANNED: &str = "contact-sync/inventory-scanned";
/// `clientData` key of an inventory group: `<sync> <user id> …`.
pub const MARKER_HOLDERS: &str = "contact-sync/holders";

/// The name of the `b`-th (0-based) inventory group.
pub fn group_name(b: usize) -> String {
    if b == 0 {
        "contact-sync inventory".to_owned()
    } else {
        format!("contact-sync inventory {}", b + 1)
    }
}

/// (user, sync) pairs one group holds at most: about 100 KB of `clientData`, well
/// under what a contact group can carry.
const BUCKET_CAPACITY: usize = 4000;
/// Characters of one `contact-sync/holders` value at most.
const VALUE_CAPACITY: usize = 1000;

/// Which users hold state of which sync.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inventory {
    /// By user id: the syncs whose marked groups or contacts the user holds (or may
    /// hold: a write whose outcome is unknown counts).
    pub holders: BTreeMap<String, BTreeSet<String>>,
    /// When a full scan last rebuilt it.
    pub scanned: Option<DateTime<Utc>>,
}

/// Why a user's inventory groups do not make up one whole inventory.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A group's header is not `bucket B of N`.
    #[error("group \"{group}\" says {header:?}, not \"bucket B of N\"")]
    Header { group: String, header: String },
    /// Two groups give different numbers of groups.
    #[error("its groups disagree on how many there are ({0} and {1})")]
    Disagree(usize, usize),
    /// Two groups claim the same bucket.
    #[error("two groups say they are bucket {0}")]
    SameBucket(usize),
    /// Some of the groups are missing.
    #[error("{missing} of its {of} groups are missing")]
    Missing { missing: usize, of: usize },
    /// The scan time is not an RFC 3339 time.
    #[error("its scan time {time:?} is not a time")]
    ScanTime {
        time: String,
        #[source]
        source: chrono::ParseError,
    },
    /// A holders entry names no sync.
    #[error("a holders entry of group \"{0}\" names no sync")]
    NoSync(String),
    /// A group lists a user id that belongs in another bucket.
    #[error("group \"{group}\" lists a user id {id:?} it should not")]
    MisplacedId { group: String, id: String },
}

/// The inventory as a backend found it in the tenant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredInventory {
    /// What it says; `None` when it is missing or damaged.
    pub inventory: Option<Inventory>,
    /// Why it cannot be used, when it is damaged.
    pub damaged: Option<DecodeError>,
    /// The groups that hold it (every group with the inventory marker), to be
    /// updated in place, compared by etag.
    pub groups: Vec<ContactGroup>,
}

impl Inventory {
    /// Users listed for any of `syncs`.
    pub fn holding<'a>(
        &'a self,
        mut wanted: impl FnMut(&str) -> bool + 'a,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.holders
            .iter()
            .filter(move |(_, syncs)| syncs.iter().any(|s| wanted(s)))
            .map(|(id, _)| id.as_str())
    }

    /// The `clientData` of each of its groups, for `n` groups (a power of two, at
    /// least the `at_least` it has now, grown until every bucket fits).
    pub fn encode(&self, at_least: usize) -> Vec<Vec<ClientData>> {
        let mut n = at_least.max(1).next_power_of_two();
        let buckets = loop {
            let mut buckets: Vec<BTreeMap<&str, Vec<&str>>> = vec![BTreeMap::new(); n];
            let mut sizes = vec![0usize; n];
            for (id, syncs) in &self.holders {
                let b = bucket(id, n);
                for s in syncs {
                    buckets[b].entry(s.as_str()).or_default().push(id.as_str());
                    sizes[b] += 1;
                }
            }
            if sizes.iter().all(|&s| s <= BUCKET_CAPACITY) || n >= 1 << 16 {
                break buckets;
            }
            n *= 2;
        };
        let entry = |key: &str, value: String| ClientData { key: key.into(), value };
        buckets
            .into_iter()
            .enumerate()
            .map(|(b, syncs)| {
                let mut data = vec![entry(MARKER_INVENTORY, format!("bucket {} of {n}", b + 1))];
                if b == 0 {
                    let scanned = self.scanned.map(|t| t.to_rfc3339()).unwrap_or_default();
                    data.push(entry(MARKER_INVENTORY_SCANNED, scanned));
                }
                for (sync, ids) in syncs {
                    let name = urlencoding::encode(sync).into_owned();
                    let mut value = name.clone();
                    for id in ids {
                        if value.len() + 1 + id.len() > VALUE_CAPACITY && value.len() > name.len() {
                            data.push(entry(
                                MARKER_HOLDERS,
                                std::mem::replace(&mut value, name.clone()),
                            ));
                        }
                        value.push(' ');
                        value.push_str(id);
                    }
                    data.push(entry(MARKER_HOLDERS, value));
                }
                data
            })
            .collect()
    }

    /// Reads the inventory from `groups` (a user's contact groups, of which those
    /// with the inventory marker are its own): `Ok(None)` when there are none,
    /// `Err` with what is wrong when they do not make up one whole inventory.
    pub fn decode(
        groups: &[ContactGroup],
    ) -> Result<Option<(Inventory, Vec<ContactGroup>)>, DecodeError> {
        let mine: Vec<&ContactGroup> = groups
            .iter()
            .filter(|g| client_data(&g.client_data, MARKER_INVENTORY).is_some())
            .collect();
        if mine.is_empty() {
            return Ok(None);
        }
        let mut n = None;
        let mut by_bucket: BTreeMap<usize, &ContactGroup> = BTreeMap::new();
        for g in &mine {
            let header = client_data(&g.client_data, MARKER_INVENTORY).unwrap_or_default();
            let parsed = header
                .strip_prefix("bucket ")
                .and_then(|rest| rest.split_once(" of "))
                .and_then(|(b, of)| Some((b.parse::<usize>().ok()?, of.parse::<usize>().ok()?)))
                .filter(|&(b, of)| b >= 1 && b <= of && of.is_power_of_two());
            let Some((b, of)) = parsed else {
                return Err(DecodeError::Header {
                    group: g.name.clone(),
                    header: header.to_owned(),
                });
            };
            if *n.get_or_insert(of) != of {
                return Err(DecodeError::Disagree(n.unwrap_or(of), of));
            }
            if by_bucket.insert(b - 1, g).is_some() {
                return Err(DecodeError::SameBucket(b));
            }
        }
        let n = n.unwrap_or(1);
        if by_bucket.len() != n {
            return Err(DecodeError::Missing { missing: n - by_bucket.len(), of: n });
        }
        let mut inventory = Inventory::default();
        let mut ordered = Vec::with_capacity(n);
        for (b, g) in by_bucket {
            if b == 0 {
                let scanned =
                    client_data(&g.client_data, MARKER_INVENTORY_SCANNED).unwrap_or_default();
                if !scanned.is_empty() {
                    let t = DateTime::parse_from_rfc3339(scanned).map_err(|source| {
                        DecodeError::ScanTime { time: scanned.to_owned(), source }
                    })?;
                    inventory.scanned = Some(t.with_timezone(&Utc));
                }
            }
            for d in g.client_data.iter().filter(|d| d.key == MARKER_HOLDERS) {
                let mut words = d.value.split(' ');
                let sync = words
                    .next()
                    .and_then(|s| urlencoding::decode(s).ok())
                    .filter(|s| !s.is_empty());
                let Some(sync) = sync else {
                    return Err(DecodeError::NoSync(g.name.clone()));
                };
                for id in words {
                    if id.is_empty() || bucket(id, n) != b {
                        return Err(DecodeError::MisplacedId {
                            group: g.name.clone(),
                            id: id.to_owned(),
                        });
                    }
                    inventory
                        .holders
                        .entry(id.to_owned())
                        .or_default()
                        .insert(sync.clone().into_owned());
                }
            }
            ordered.push((*g).clone());
        }
        Ok(Some((inventory, ordered)))
    }
}

/// The bucket of user `id` among `n`.
fn bucket(id: &str, n: usize) -> usize {
    let hash = Sha256::digest(id.as_bytes());
    let x = u64::from_be_bytes(hash[..8].try_into().expect("8 bytes"));
    (x % n as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(data: Vec<ClientData>, b: usize) -> ContactGroup {
        ContactGroup { name: group_name(b), client_data: data, ..ContactGroup::default() }
    }

    fn sample(users: usize, syncs: &[&str]) -> Inventory {
        let mut inv = Inventory { scanned: Some(Utc::now()), ..Inventory::default() };
        for u in 0..users {
            let set = syncs.iter().map(|s| (*s).to_owned()).collect();
            inv.holders.insert(format!("1{:020}", u * 7919), set);
        }
        inv
    }

    fn round_trip(inv: &Inventory, at_least: usize) -> (Inventory, usize) {
        let groups: Vec<ContactGroup> =
            inv.encode(at_least).into_iter().enumerate().map(|(b, d)| group(d, b)).collect();
        let n = groups.len();
        let (back, _) = Inventory::decode(&groups).unwrap().unwrap();
        (back, n)
    }

    #[test]
    fn an_inventory_reads_back_as_written_and_grows_into_more_groups() {
        let small = sample(3, &["sales-to-accounting", "odd name/with space"]);
        let (back, n) = round_trip(&small, 1);
        assert_eq!(n, 1);
        assert_eq!(back.holders, small.holders);
        assert_eq!(back.scanned.map(|t| t.timestamp()), small.scanned.map(|t| t.timestamp()));

        let big = sample(10_000, &["a", "b"]);
        let (back, n) = round_trip(&big, 1);
        assert_eq!(back.holders, big.holders);
        assert!(n >= 8, "20,000 pairs over {n} groups");
        for data in big.encode(1) {
            assert!(data.iter().all(|d| d.value.len() <= VALUE_CAPACITY));
            let pairs: usize = data
                .iter()
                .filter(|d| d.key == MARKER_HOLDERS)
                .map(|d| d.value.split(' ').count() - 1)
                .sum();
            assert!(pairs <= BUCKET_CAPACITY);
        }
    }

    #[test]
    fn a_change_to_one_user_rewrites_one_group() {
        let mut inv = sample(10_000, &["a"]);
        let before = inv.encode(1);
        inv.holders.insert("1999".into(), ["b".to_owned()].into());
        let after = inv.encode(before.len());
        assert_eq!(before.len(), after.len());
        let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        assert_eq!(changed, 1);
    }

    #[test]
    fn a_partial_or_edited_inventory_is_damaged_not_read() {
        let inv = sample(10_000, &["a"]);
        let mut groups: Vec<ContactGroup> =
            inv.encode(1).into_iter().enumerate().map(|(b, d)| group(d, b)).collect();
        assert!(Inventory::decode(&[]).unwrap().is_none(), "none: missing");
        let mut missing = groups.clone();
        missing.remove(1);
        assert!(Inventory::decode(&missing).unwrap_err().to_string().contains("missing"));
        let mut moved = groups.clone();
        let entry = moved[1].client_data.pop().unwrap();
        moved[0].client_data.push(entry);
        assert!(Inventory::decode(&moved).is_err(), "an id in the wrong group");
        groups[0].client_data[0].value = "bucket one".into();
        assert!(Inventory::decode(&groups).unwrap_err().to_string().contains("bucket B of N"));
    }
}
