//! A destination's change list, shared: destinations whose changes are identical
//! hold one list between them.
//!
//! A first sync or a rollout gives every destination the same changes — the same
//! creates of the same contacts into a target group that does not exist yet — so a
//! plan of 1,000 contacts to 4,000 users would otherwise hold four million changes.
//! The planner interns each destination's list as it is planned ([`Interner`]), so
//! memory grows with the distinct lists, not with the destinations; the text plan
//! groups destinations by what it shows of their lists ([`same_display`]), and a
//! saved plan stores each distinct list once.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Deref;
use std::sync::{Arc, LazyLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{Change, GroupRef, Op};

/// The changes of one destination, groups first, then contacts by name; cheap to
/// clone (a reference to a list other destinations may share). Reads as a slice.
#[derive(Clone, Debug)]
pub struct Changes(Arc<[Change]>);

/// Every empty list is this one, so that up-to-date destinations share it too.
static EMPTY: LazyLock<Changes> = LazyLock::new(|| Changes(Arc::from(Vec::new())));

impl Changes {
    /// Whether `a` and `b` are the same list in memory (not merely equal).
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// The list's address: an identity while the list is alive.
    pub fn addr(&self) -> usize {
        self.0.as_ptr() as usize
    }
}

impl Default for Changes {
    fn default() -> Self {
        EMPTY.clone()
    }
}

impl From<Vec<Change>> for Changes {
    fn from(changes: Vec<Change>) -> Self {
        if changes.is_empty() { Self::default() } else { Self(changes.into()) }
    }
}

impl Deref for Changes {
    type Target = [Change];

    fn deref(&self) -> &[Change] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a Changes {
    type Item = &'a Change;
    type IntoIter = std::slice::Iter<'a, Change>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl PartialEq for Changes {
    fn eq(&self, other: &Self) -> bool {
        Self::ptr_eq(self, other) || self[..] == other[..]
    }
}

impl Serialize for Changes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self[..].serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Changes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::<Change>::deserialize(deserializer).map(Self::from)
    }
}

/// Distinct change lists, each held once, found by content.
#[derive(Debug, Default)]
pub struct Interner {
    /// The distinct lists, in the order they were first seen.
    lists: Vec<Changes>,
    /// Indexes into `lists` by [`hash`] (with the operations).
    by_hash: HashMap<u64, Vec<usize>>,
    /// Indexes into `lists` by address. Only the lists held in `lists` are here,
    /// so an address is never that of a list freed since.
    by_addr: HashMap<usize, usize>,
}

/// Lists of one hash that a new list is compared with. Lists that hash alike and
/// differ are rare (the hash covers names, values and resource names); this bounds
/// the work when they are not: past it, a new list is kept without being compared.
const MAX_CANDIDATES: usize = 16;

impl Interner {
    /// The shared list equal to `changes`: one seen before, or `changes` itself,
    /// kept for the lists to come.
    pub fn intern(&mut self, changes: Changes) -> Changes {
        let i = self.index(&changes);
        self.lists[i].clone()
    }

    /// The index in [`Interner::lists`] of the list equal to `changes` (or of
    /// `changes` itself, added).
    pub fn index(&mut self, changes: &Changes) -> usize {
        if let Some(&i) = self.by_addr.get(&changes.addr()) {
            return i;
        }
        let candidates = self.by_hash.entry(hash(changes, true)).or_default();
        if let Some(&i) = candidates.iter().find(|&&i| self.lists[i] == *changes) {
            return i;
        }
        let i = self.lists.len();
        if candidates.len() < MAX_CANDIDATES {
            candidates.push(i);
        }
        self.by_addr.insert(changes.addr(), i);
        self.lists.push(changes.clone());
        i
    }

    /// The distinct lists, by index.
    pub fn lists(&self) -> &[Changes] {
        &self.lists
    }
}

/// A hash of what the plan shows of `changes` — and, with `ops`, of which contact
/// or group each operation writes to. Equal lists hash alike.
pub fn hash(changes: &[Change], ops: bool) -> u64 {
    let mut h = DefaultHasher::new();
    changes.len().hash(&mut h);
    for c in changes {
        std::mem::discriminant(&c.action).hash(&mut h);
        std::mem::discriminant(&c.resource).hash(&mut h);
        std::mem::discriminant(&c.reason).hash(&mut h);
        (&c.name, &c.email).hash(&mut h);
        for f in &c.fields {
            f.field.hash(&mut h);
            hash_value(f.before.as_ref(), &mut h);
            hash_value(f.after.as_ref(), &mut h);
        }
        if ops {
            hash_op(&c.op, &mut h);
        }
    }
    h.finish()
}

fn hash_op(op: &Op, h: &mut DefaultHasher) {
    std::mem::discriminant(op).hash(h);
    match op {
        Op::CreateGroup { name, .. } => name.hash(h),
        Op::UpdateGroup { group } => group.resource_name.hash(h),
        Op::DeleteGroup { resource_name }
        | Op::UpdateContact { resource_name, .. }
        | Op::DeleteContact { resource_name } => resource_name.hash(h),
        Op::ContactPhoto { contact, photo, .. } => {
            contact.hash(h);
            photo.hash(h);
        }
        Op::CreateContact { memberships, .. } => {
            for m in memberships {
                match m {
                    GroupRef::NewTarget => 0u8.hash(h),
                    GroupRef::Existing(name) => name.hash(h),
                }
            }
        }
    }
}

fn hash_value(v: Option<&Value>, h: &mut DefaultHasher) {
    match v {
        None => 0u8.hash(h),
        Some(Value::Null) => 1u8.hash(h),
        Some(Value::Bool(b)) => (2u8, b).hash(h),
        Some(Value::Number(n)) => (3u8, n.to_string()).hash(h),
        Some(Value::String(s)) => (4u8, s).hash(h),
        Some(Value::Array(a)) => {
            (5u8, a.len()).hash(h);
            a.iter().for_each(|v| hash_value(Some(v), h));
        }
        Some(Value::Object(o)) => {
            (6u8, o.len()).hash(h);
            for (k, v) in o {
                k.hash(h);
                hash_value(Some(v), h);
            }
        }
    }
}

/// Whether the plan shows `a` and `b` alike: the same changes, with the same
/// reasons and values, whatever the operations behind them (which name each
/// user's own copy of a contact).
pub fn same_display(a: &[Change], b: &[Change]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(a, b)| {
            a.action == b.action
                && a.resource == b.resource
                && a.reason == b.reason
                && a.name == b.name
                && a.email == b.email
                && a.fields == b.fields
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Reason, Resource};

    fn delete(name: &str, resource_name: &str) -> Change {
        Change {
            action: Action::Delete,
            resource: Resource::Contact,
            name: name.into(),
            email: None,
            reason: Reason::RemovedFromSource,
            fields: Vec::new(),
            op: Op::DeleteContact { resource_name: resource_name.into() },
        }
    }

    #[test]
    fn equal_lists_are_held_once() {
        let mut interner = Interner::default();
        let a = interner.intern(vec![delete("Ada", "people/c1")].into());
        let b = interner.intern(vec![delete("Ada", "people/c1")].into());
        let c = interner.intern(vec![delete("Ada", "people/c2")].into());
        assert!(Changes::ptr_eq(&a, &b), "equal lists share one");
        assert!(!Changes::ptr_eq(&a, &c), "another contact is another list");
        assert_eq!(interner.lists().len(), 2);
        assert!(same_display(&a, &c), "the plan shows them alike");
        assert!(Changes::ptr_eq(&Changes::default(), &Vec::new().into()));
    }
}
