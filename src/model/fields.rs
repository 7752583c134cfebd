//! Field selection: which Person fields of a source contact reach the copies
//! (`spec.fields` of a sync, or the Workspace's default).
//!
//! A selection is `include` (only the fields listed) or `exclude` (every field but
//! those listed); an entry is a Person field name (`phoneNumbers`), a field and an
//! item type (`phoneNumbers.mobile`, the type matched case-insensitively against
//! the item's `type`), or `photo`. `names` and the first e-mail address always
//! flow, whatever the selection: they identify the contact in every destination.
//! The selection is applied to the source's fields before they are normalised and
//! hashed, so a field left out is never in a plan. Copies carry a short hash of the
//! selection they were written under ([`MARKER_FIELDS`]), so the planner can say
//! that a change comes from a new selection rather than from the source.

use std::collections::BTreeSet;

use serde_json::Value;

use super::{PERSON_FIELDS, PersonFields};

/// `clientData` key on contacts: [`FieldSelection::marker`] of the selection the
/// copy was written under; absent when every field was copied.
pub const MARKER_FIELDS: &str = "contact-sync/fields";

/// The entry that stands for the contact's photo.
pub const PHOTO: &str = "photo";

/// The fields that always flow, whatever the selection.
pub const ALWAYS_COPIED: &[&str] = &["names", "emailAddresses"];

/// Person fields whose items carry a `type`, so `FIELD.TYPE` can name them.
pub const TYPED_FIELDS: &[&str] = &[
    "addresses",
    "calendarUrls",
    "emailAddresses",
    "events",
    "externalIds",
    "imClients",
    "locations",
    "miscKeywords",
    "nicknames",
    "organizations",
    "phoneNumbers",
    "relations",
    "sipAddresses",
    "urls",
];

/// `FIELD.TYPE` entries worth completing in an editor: the People API's own type
/// words of the fields a privacy rule is most often about. Other types (custom
/// ones included) are allowed too.
pub const COMMON_TYPED: &[&str] = &[
    "phoneNumbers.mobile",
    "phoneNumbers.home",
    "phoneNumbers.work",
    "phoneNumbers.workMobile",
    "phoneNumbers.homeFax",
    "phoneNumbers.workFax",
    "phoneNumbers.pager",
    "phoneNumbers.main",
    "phoneNumbers.other",
    "addresses.home",
    "addresses.work",
    "addresses.other",
    "emailAddresses.home",
    "emailAddresses.work",
    "emailAddresses.other",
    "urls.home",
    "urls.work",
    "urls.blog",
    "urls.profile",
    "events.anniversary",
    "imClients.home",
    "imClients.work",
    "relations.spouse",
    "relations.manager",
    "relations.assistant",
];

/// One entry of `include` or `exclude`, parsed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Entry {
    /// `photo`.
    Photo,
    /// A whole field: `birthdays`.
    Field(&'static str),
    /// The items of one type of a field: `phoneNumbers.mobile` (type lower-cased).
    Typed(&'static str, String),
}

/// Why an entry is not one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EntryError {
    /// The part before the dot (or the whole entry) names no Person field.
    UnknownField(String),
    /// `FIELD.TYPE` of a field whose items have no type (`birthdays.home`).
    Untyped(&'static str),
    /// `FIELD.` with nothing after the dot, or a type with a dot in it.
    BadType(&'static str),
}

impl Entry {
    /// Parses `photo`, `FIELD` or `FIELD.TYPE`; field names are case-sensitive, as
    /// the People API's are.
    pub fn parse(text: &str) -> Result<Self, EntryError> {
        if text == PHOTO {
            return Ok(Entry::Photo);
        }
        let (field, ty) = match text.split_once('.') {
            Some((field, ty)) => (field, Some(ty)),
            None => (text, None),
        };
        let Some(field) = PERSON_FIELDS.iter().copied().find(|f| *f == field) else {
            return Err(EntryError::UnknownField(field.to_owned()));
        };
        match ty {
            None => Ok(Entry::Field(field)),
            Some(_) if !TYPED_FIELDS.contains(&field) => Err(EntryError::Untyped(field)),
            Some(ty) if ty.trim().is_empty() || ty.contains('.') => Err(EntryError::BadType(field)),
            Some(ty) => Ok(Entry::Typed(field, ty.trim().to_lowercase())),
        }
    }

    /// The field the entry is about (`None` for the photo).
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Entry::Photo => None,
            Entry::Field(f) | Entry::Typed(f, _) => Some(f),
        }
    }

    /// Whether the entry names `item` of `field`.
    fn names(&self, field: &str, item: &Value) -> bool {
        match self {
            Entry::Photo => false,
            Entry::Field(f) => *f == field,
            Entry::Typed(f, ty) => {
                *f == field
                    && item
                        .get("type")
                        .and_then(Value::as_str)
                        .is_some_and(|t| t.to_lowercase() == *ty)
            }
        }
    }
}

/// What a sync copies of each source contact.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum FieldSelection {
    /// Every field (no `spec.fields`).
    #[default]
    All,
    /// Only these (and what always flows).
    Include(BTreeSet<Entry>),
    /// Everything but these (never what always flows).
    Exclude(BTreeSet<Entry>),
}

impl FieldSelection {
    /// An include list; entries that do not parse are left out (validation reports
    /// them before a selection is ever built).
    pub fn include<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        Self::Include(parse_all(entries))
    }

    /// An exclude list; entries that do not parse are left out.
    pub fn exclude<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        Self::Exclude(parse_all(entries))
    }

    /// Whether the contact's photo is copied.
    pub fn copies_photo(&self) -> bool {
        match self {
            FieldSelection::All => true,
            FieldSelection::Include(entries) => entries.contains(&Entry::Photo),
            FieldSelection::Exclude(entries) => !entries.contains(&Entry::Photo),
        }
    }

    /// Whether an include list names items of `field` of type `ty` (matched
    /// case-insensitively) one by one: a directory sync copies such items even of
    /// a type its mapping keeps out by default (a home or mobile phone).
    pub fn opts_in(&self, field: &str, ty: &str) -> bool {
        let FieldSelection::Include(entries) = self else { return false };
        entries
            .iter()
            .any(|e| matches!(e, Entry::Typed(f, t) if *f == field && *t == ty.to_lowercase()))
    }

    /// Whether an item of `field` is copied (the first e-mail address aside, which
    /// always is: see [`FieldSelection::apply`]).
    pub fn copies(&self, field: &str, item: &Value) -> bool {
        if field == "names" {
            return true;
        }
        match self {
            FieldSelection::All => true,
            FieldSelection::Include(entries) => entries.iter().any(|e| e.names(field, item)),
            FieldSelection::Exclude(entries) => !entries.iter().any(|e| e.names(field, item)),
        }
    }

    /// The fields of `fields` the selection copies: whole fields and typed items
    /// dropped as it says, `names` and the first e-mail address (the first with a
    /// value) always kept. Item order is kept.
    pub fn apply(&self, fields: &PersonFields) -> PersonFields {
        if *self == FieldSelection::All {
            return fields.clone();
        }
        let mut out = PersonFields::new();
        for (field, value) in fields {
            let kept = match value {
                Value::Array(items) => {
                    let first = (field == "emailAddresses").then(|| first_address(items)).flatten();
                    let kept: Vec<Value> = items
                        .iter()
                        .enumerate()
                        .filter(|(i, item)| Some(*i) == first || self.copies(field, item))
                        .map(|(_, item)| item.clone())
                        .collect();
                    (!kept.is_empty()).then_some(Value::Array(kept))
                }
                other => self.copies(field, other).then(|| other.clone()),
            };
            if let Some(kept) = kept {
                out.insert(field.clone(), kept);
            }
        }
        out
    }

    /// The value of the [`MARKER_FIELDS`] marker of copies written under this
    /// selection: a short hash of its canonical form, `None` for [`FieldSelection::All`]
    /// (so copies made before selections existed need no new marker).
    pub fn marker(&self) -> Option<String> {
        let (mode, entries) = match self {
            FieldSelection::All => return None,
            FieldSelection::Include(e) => ("include", e),
            FieldSelection::Exclude(e) => ("exclude", e),
        };
        let mut parts = vec![mode.to_owned()];
        parts.extend(entries.iter().map(|e| match e {
            Entry::Photo => PHOTO.to_owned(),
            Entry::Field(f) => (*f).to_owned(),
            Entry::Typed(f, ty) => format!("{f}.{ty}"),
        }));
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        Some(super::short_hash(&parts))
    }
}

fn parse_all<'a>(entries: impl IntoIterator<Item = &'a str>) -> BTreeSet<Entry> {
    entries.into_iter().filter_map(|e| Entry::parse(e).ok()).collect()
}

/// The index of the first e-mail address that has a value: the one that identifies
/// the contact.
fn first_address(items: &[Value]) -> Option<usize> {
    items.iter().position(|item| {
        item.get("value").and_then(Value::as_str).is_some_and(|v| !v.trim().is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn fields(v: Value) -> PersonFields {
        serde_json::from_value(v).unwrap()
    }

    fn ada() -> PersonFields {
        fields(json!({
            "names": [{"givenName": "Ada"}],
            "emailAddresses": [{"value": "ada@home.test", "type": "home"},
                               {"value": "ada@work.test", "type": "work"},
                               {"value": "ada@old.test", "type": "Home"}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"},
                             {"value": "+1 555 0199", "type": "Mobile"}],
            "addresses": [{"streetAddress": "1 Home Rd", "type": "home"}],
            "birthdays": [{"date": {"year": 1815, "month": 12, "day": 10}}],
        }))
    }

    #[test]
    fn entries_parse_fields_types_and_the_photo() {
        assert_eq!(Entry::parse("photo"), Ok(Entry::Photo));
        assert_eq!(Entry::parse("birthdays"), Ok(Entry::Field("birthdays")));
        assert_eq!(
            Entry::parse("phoneNumbers.Mobile"),
            Ok(Entry::Typed("phoneNumbers", "mobile".into()))
        );
        assert_eq!(Entry::parse("birthday"), Err(EntryError::UnknownField("birthday".into())));
        assert_eq!(Entry::parse("Birthdays"), Err(EntryError::UnknownField("Birthdays".into())));
        assert_eq!(Entry::parse("birthdays.home"), Err(EntryError::Untyped("birthdays")));
        assert_eq!(Entry::parse("addresses."), Err(EntryError::BadType("addresses")));
        assert_eq!(Entry::parse("addresses.a.b"), Err(EntryError::BadType("addresses")));
        assert!(TYPED_FIELDS.iter().all(|f| PERSON_FIELDS.contains(f)));
        for common in COMMON_TYPED {
            assert!(matches!(Entry::parse(common), Ok(Entry::Typed(..))), "{common}");
        }
    }

    #[test]
    fn exclude_drops_fields_and_typed_items_case_insensitively() {
        let s = FieldSelection::exclude(["birthdays", "phoneNumbers.mobile", "addresses.home"]);
        let out = s.apply(&ada());
        assert_eq!(out["phoneNumbers"], json!([{"value": "+1 555 0100", "type": "work"}]));
        assert!(!out.contains_key("birthdays"));
        assert!(!out.contains_key("addresses"), "a field left with no items is gone");
        assert_eq!(out["names"], ada()["names"]);
        assert_eq!(out["emailAddresses"], ada()["emailAddresses"]);
    }

    #[test]
    fn the_first_address_survives_excluding_its_type() {
        let s = FieldSelection::exclude(["emailAddresses.home"]);
        let out = s.apply(&ada());
        assert_eq!(
            out["emailAddresses"],
            json!([{"value": "ada@home.test", "type": "home"},
                   {"value": "ada@work.test", "type": "work"}])
        );
    }

    #[test]
    fn include_keeps_what_it_lists_and_what_identifies_the_contact() {
        let s = FieldSelection::include(["phoneNumbers.work"]);
        let out = s.apply(&ada());
        assert_eq!(
            serde_json::to_value(&out).unwrap(),
            json!({
                "names": [{"givenName": "Ada"}],
                "emailAddresses": [{"value": "ada@home.test", "type": "home"}],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
            })
        );
        let all_mail = FieldSelection::include(["emailAddresses"]).apply(&ada());
        assert_eq!(all_mail["emailAddresses"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn only_a_typed_include_opts_in() {
        let s = FieldSelection::include(["phoneNumbers.Mobile", "addresses"]);
        assert!(s.opts_in("phoneNumbers", "mobile"));
        assert!(s.opts_in("phoneNumbers", "MOBILE"));
        assert!(!s.opts_in("phoneNumbers", "home"));
        assert!(!s.opts_in("addresses", "home"), "a whole field opts in no type");
        assert!(!FieldSelection::exclude(["birthdays"]).opts_in("phoneNumbers", "mobile"));
        assert!(!FieldSelection::All.opts_in("phoneNumbers", "mobile"));
    }

    #[test]
    fn the_photo_follows_the_selection() {
        assert!(FieldSelection::All.copies_photo());
        assert!(!FieldSelection::exclude(["photo"]).copies_photo());
        assert!(FieldSelection::exclude(["birthdays"]).copies_photo());
        assert!(FieldSelection::include(["photo", "urls"]).copies_photo());
        assert!(!FieldSelection::include(["urls"]).copies_photo());
    }

    #[test]
    fn markers_tell_selections_apart_and_not_their_spelling() {
        assert_eq!(FieldSelection::All.marker(), None);
        let a = FieldSelection::exclude(["birthdays", "phoneNumbers.mobile"]).marker();
        let b = FieldSelection::exclude(["phoneNumbers.Mobile", "birthdays", "birthdays"]).marker();
        let c = FieldSelection::include(["birthdays", "phoneNumbers.mobile"]).marker();
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, FieldSelection::exclude(["birthdays"]).marker());
    }

    fn item() -> impl Strategy<Value = Value> {
        let ty = prop::sample::select(vec!["home", "Work", "mobile", "MOBILE", "other", ""]);
        (ty, "[a-z]{0,3}").prop_map(|(ty, v)| {
            let mut item = json!({"value": v});
            if !ty.is_empty() {
                item["type"] = ty.into();
            }
            item
        })
    }

    fn person() -> impl Strategy<Value = PersonFields> {
        let field = prop::sample::select(vec![
            "names",
            "emailAddresses",
            "phoneNumbers",
            "addresses",
            "birthdays",
        ]);
        prop::collection::btree_map(
            field.prop_map(str::to_owned),
            prop::collection::vec(item(), 0..4).prop_map(Value::Array),
            0..5,
        )
    }

    fn entries() -> impl Strategy<Value = Vec<&'static str>> {
        prop::collection::vec(
            prop::sample::select(vec![
                "phoneNumbers",
                "phoneNumbers.mobile",
                "phoneNumbers.home",
                "addresses",
                "addresses.work",
                "emailAddresses.home",
                "emailAddresses.other",
                "birthdays",
                "photo",
            ]),
            0..5,
        )
    }

    proptest! {
        /// Whatever the selection: the result is a sub-list of the input per field,
        /// in order; `names` and the first address are kept; an excluded item never
        /// survives (but for the first address) and an item an exclude list does
        /// not name always does.
        #[test]
        fn selections_only_ever_remove_and_never_what_identifies(
            person in person(),
            entries in entries(),
            include in any::<bool>(),
        ) {
            let s = if include {
                FieldSelection::include(entries.iter().copied())
            } else {
                FieldSelection::exclude(entries.iter().copied())
            };
            let out = s.apply(&person);
            prop_assert_eq!(out.get("names"), person.get("names").filter(|v| v != &&json!([])));
            for (field, value) in &person {
                let items = value.as_array().unwrap();
                let kept = out.get(field).map_or(&[][..], |v| v.as_array().unwrap().as_slice());
                let mut rest = kept.iter();
                let first = (field == "emailAddresses").then(|| first_address(items)).flatten();
                for (i, item) in items.iter().enumerate() {
                    let expected = Some(i) == first || s.copies(field, item);
                    if expected {
                        prop_assert_eq!(rest.next(), Some(item), "{} item {} kept in order", field, i);
                    }
                }
                prop_assert_eq!(rest.next(), None, "{}: nothing added", field);
            }
            for field in out.keys() {
                prop_assert!(person.contains_key(field));
            }
            prop_assert_eq!(s.apply(&out), out.clone(), "applying twice changes nothing");
        }
    }
}
