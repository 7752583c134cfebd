//! The directory-field mapping (`model::directory_map`) against what it promises:
//! whatever a Directory user holds, the contact it becomes uses only keys of the
//! People API's schema, with People's type words; and the README's tables of
//! directory fields are the mapping's own data, rendered.

use proptest::prelude::*;
use serde_json::{Value, json};

use contact_sync::model::DirectoryUser;
use contact_sync::model::directory_map::{
    self, CUSTOM, CUSTOM_PROTOCOL, CUSTOM_PROTOCOL_WORD, CUSTOM_TYPE, EMAIL_TYPE, FIELDS, FieldMap,
    Key, NAME, NAME_DROPPED, PRIMARY, PROTOCOL, TYPE, TypeWord,
};

/// The writable keys of each Person field's item, from the People API's discovery
/// document (`PhoneNumber`, `Organization`…): every property but `metadata` and
/// those marked output only.
const PEOPLE_KEYS: &[(&str, &[&str])] = &[
    (
        "names",
        &[
            "familyName",
            "givenName",
            "honorificPrefix",
            "honorificSuffix",
            "middleName",
            "phoneticFamilyName",
            "phoneticFullName",
            "phoneticGivenName",
            "phoneticHonorificPrefix",
            "phoneticHonorificSuffix",
            "phoneticMiddleName",
            "unstructuredName",
        ],
    ),
    ("emailAddresses", &["displayName", "type", "value"]),
    ("phoneNumbers", &["type", "value"]),
    (
        "organizations",
        &[
            "costCenter",
            "current",
            "department",
            "domain",
            "endDate",
            "fullTimeEquivalentMillipercent",
            "jobDescription",
            "location",
            "name",
            "phoneticName",
            "startDate",
            "symbol",
            "title",
            "type",
        ],
    ),
    (
        "addresses",
        &[
            "city",
            "country",
            "countryCode",
            "extendedAddress",
            "formattedValue",
            "poBox",
            "postalCode",
            "region",
            "streetAddress",
            "type",
        ],
    ),
    ("relations", &["person", "type"]),
    ("locations", &["buildingId", "current", "deskCode", "floor", "floorSection", "type", "value"]),
    ("externalIds", &["type", "value"]),
    ("imClients", &["protocol", "type", "username"]),
    ("urls", &["type", "value"]),
];

/// People's predefined type words of each field (its discovery descriptions); any
/// other type is a label People shows as it is.
const PEOPLE_TYPES: &[(&str, &[&str])] = &[
    (
        "phoneNumbers",
        &[
            "home",
            "work",
            "mobile",
            "homeFax",
            "workFax",
            "otherFax",
            "pager",
            "workMobile",
            "workPager",
            "main",
            "googleVoice",
            "other",
        ],
    ),
    ("organizations", &["work", "school"]),
    ("addresses", &["home", "work", "other"]),
    (
        "relations",
        &[
            "spouse",
            "child",
            "mother",
            "father",
            "parent",
            "brother",
            "sister",
            "friend",
            "relative",
            "domesticPartner",
            "manager",
            "assistant",
            "referredBy",
            "partner",
        ],
    ),
    ("locations", &["desk", "grewUp"]),
    ("externalIds", &["account", "customer", "loginId", "network", "organization"]),
    ("imClients", &["home", "work", "other"]),
    (
        "urls",
        &[
            "home",
            "work",
            "blog",
            "profile",
            "homePage",
            "ftp",
            "reservations",
            "appInstallPage",
            "other",
        ],
    ),
];

/// People's predefined IM protocols.
const PEOPLE_PROTOCOLS: &[&str] =
    &["aim", "msn", "yahoo", "skype", "qq", "googleTalk", "icq", "jabber", "netMeeting"];

/// The keys of each Directory item shape, from the Admin SDK's discovery document
/// (`UserPhone`, `UserOrganization`…), by the user field that holds them.
const DIRECTORY_KEYS: &[(&str, &[&str])] = &[
    ("phones", &["customType", "primary", "type", "value"]),
    (
        "organizations",
        &[
            "costCenter",
            "customType",
            "department",
            "description",
            "domain",
            "fullTimeEquivalent",
            "location",
            "name",
            "primary",
            "symbol",
            "title",
            "type",
        ],
    ),
    (
        "addresses",
        &[
            "country",
            "countryCode",
            "customType",
            "extendedAddress",
            "formatted",
            "locality",
            "poBox",
            "postalCode",
            "primary",
            "region",
            "sourceIsStructured",
            "streetAddress",
            "type",
        ],
    ),
    ("relations", &["customType", "type", "value"]),
    (
        "locations",
        &["area", "buildingId", "customType", "deskCode", "floorName", "floorSection", "type"],
    ),
    ("externalIds", &["customType", "type", "value"]),
    ("ims", &["customProtocol", "customType", "im", "primary", "protocol", "type"]),
    ("websites", &["customType", "primary", "type", "value"]),
];

fn lookup<'a>(table: &'a [(&str, &'a [&'a str])], key: &str) -> &'a [&'a str] {
    table.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).unwrap_or_else(|| panic!("no {key}"))
}

#[test]
fn the_mapping_names_only_keys_of_both_schemas() {
    for (field, _) in DIRECTORY_KEYS {
        assert!(FieldMap::named(field).is_some(), "{field} is not mapped");
    }
    for f in FIELDS {
        let directory = lookup(DIRECTORY_KEYS, f.directory);
        let people = lookup(PEOPLE_KEYS, f.people);
        for key in f.keys {
            assert!(directory.contains(&key.directory), "{}.{}", f.directory, key.directory);
            assert!(people.contains(&key.people), "{}.{}", f.people, key.people);
        }
        for key in f.dropped {
            assert!(directory.contains(key), "{}.{key}", f.directory);
        }
        // Every Directory key is either copied or deliberately left out.
        for key in directory {
            let said = f.keys.iter().any(|k| k.directory == *key)
                || f.dropped.contains(key)
                || [TYPE, CUSTOM_TYPE, PRIMARY, PROTOCOL, CUSTOM_PROTOCOL].contains(key);
            assert!(said, "{}.{key} is neither mapped nor dropped", f.directory);
        }
        let types = lookup(PEOPLE_TYPES, f.people);
        for t in f.types {
            let Some(word) = t.people else { continue };
            // A People word, or a label (capitalised), never a Directory word.
            let label = word.starts_with(|c: char| c.is_ascii_uppercase());
            assert!(types.contains(&word) || label, "{}: {} -> {word}", f.directory, t.directory);
        }
        for p in f.protocols {
            assert!(PEOPLE_PROTOCOLS.contains(&p.people), "{} -> {}", p.directory, p.people);
        }
    }
    for key in NAME {
        assert!(lookup(PEOPLE_KEYS, "names").contains(&key.people));
    }
}

/// A Directory item of field `f`: keys of its shape and others, type words of the
/// table and others, values of every JSON kind.
fn item(f: &'static FieldMap) -> impl Strategy<Value = Value> {
    let directory = lookup(DIRECTORY_KEYS, f.directory);
    let keys: Vec<&'static str> = directory.iter().copied().chain(["etag", "kind", "x"]).collect();
    let mut words: Vec<String> = f.types.iter().map(|t| t.directory.to_owned()).collect();
    words.extend([CUSTOM.into(), "WORK".into(), "hologram".into(), String::new()]);
    let mut protocols: Vec<String> = f.protocols.iter().map(|p| p.directory.to_owned()).collect();
    protocols.extend([CUSTOM_PROTOCOL_WORD.into(), "pigeon".into()]);
    let value = prop_oneof![
        "[a-z0-9 +]{0,8}".prop_map(Value::from),
        any::<i32>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!({ "nested": "object" })),
        Just(json!(["a", "list"])),
    ];
    (
        prop::collection::btree_map(prop::sample::select(keys), value, 0..8),
        prop::option::of(prop::sample::select(words)),
        prop::option::of(prop::sample::select(protocols)),
        any::<bool>(),
    )
        .prop_map(move |(mut map, word, protocol, primary)| {
            if let Some(word) = word {
                map.insert(TYPE, word.into());
            }
            if let Some(protocol) = protocol.filter(|_| !f.protocols.is_empty()) {
                map.insert(PROTOCOL, protocol.into());
            }
            if primary {
                map.insert(PRIMARY, true.into());
            }
            Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
}

fn directory_user() -> impl Strategy<Value = DirectoryUser> {
    let lists: Vec<_> =
        FIELDS.iter().map(|f| prop::collection::vec(item(f), 0..5).boxed()).collect();
    (lists, "[A-Za-z ]{0,6}", "[A-Za-z ]{0,6}").prop_map(|(lists, given, family)| {
        let mut user = json!({
            "id": "1", "primaryEmail": "ann@example.com",
            "givenName": given, "familyName": family,
        });
        for (f, items) in FIELDS.iter().zip(lists) {
            user[f.directory] = Value::from(items);
        }
        serde_json::from_value(user).unwrap()
    })
}

proptest! {
    #[test]
    fn every_people_item_the_mapping_makes_has_people_keys_only(user in directory_user()) {
        let everything = directory_map::person_with(&user, |_, _| true);
        for person in [directory_map::person(&user), everything.clone()] {
            for (field, items) in &person {
                let allowed = lookup(PEOPLE_KEYS, field);
                for item in items.as_array().unwrap() {
                    let item = item.as_object().unwrap();
                    prop_assert!(!item.is_empty());
                    prop_assert!(item.keys().any(|k| k != TYPE && k != PROTOCOL), "{field}: {item:?}");
                    for (key, value) in item {
                        prop_assert!(allowed.contains(&key.as_str()), "{field}.{key} in {item:?}");
                        if key == "fullTimeEquivalentMillipercent" {
                            prop_assert!(value.is_i64(), "{value}");
                        } else {
                            prop_assert!(value.as_str().is_some_and(|s| !s.trim().is_empty()), "{field}.{key}: {value}");
                        }
                    }
                }
            }
        }
        // What flows by default is a part of what can flow, in the same order.
        let default = directory_map::person(&user);
        for (field, items) in &default {
            let all = everything[field].as_array().unwrap();
            let mut rest = all.iter();
            for item in items.as_array().unwrap() {
                prop_assert!(rest.any(|i| i == item), "{field}: {item} not in {all:?}");
            }
        }
        // A primary item comes first.
        for f in FIELDS {
            let items = (f.items)(&user);
            let primaries: Vec<Value> = items.iter().filter(|i| i[PRIMARY] == true).cloned().collect();
            let mapped = f.people_items(items, |_| true);
            prop_assert!(mapped.len() <= items.len());
            if let Some(first) = f.people_items(&primaries, |_| true).first() {
                prop_assert_eq!(mapped.first(), Some(first));
            }
        }
    }
}

/// `` `work` ``, `` `work_fax` → `workFax` ``, `` `unknown` (no type) ``.
fn type_word(t: &TypeWord) -> String {
    match t.people {
        Some(p) if p == t.directory => format!("`{p}`"),
        Some(p) => format!("`{}` → `{p}`", t.directory),
        None => format!("`{}` (no type)", t.directory),
    }
}

fn key(k: &Key) -> String {
    if k.directory == k.people {
        format!("`{}`", k.people)
    } else {
        format!("`{}` → `{}`", k.directory, k.people)
    }
}

/// The README's two tables of directory fields — the keys, and the types copied by
/// default — from the mapping's data.
fn tables() -> [String; 2] {
    let cell = |v: Vec<String>| if v.is_empty() { "—".to_owned() } else { v.join(", ") };
    let mut out = String::from(
        "| Directory user field | People field | Keys copied (Directory → People) | Not copied |\n|---|---|---|---|\n",
    );
    let names: Vec<String> = NAME.iter().map(key).collect();
    let dropped: Vec<String> = NAME_DROPPED.iter().map(|k| format!("`{k}`")).collect();
    out += &format!("| `name` | `names` | {} | {} |\n", names.join(", "), cell(dropped));
    out += &format!(
        "| `primaryEmail` | `emailAddresses` | the address → `value`, with type `{EMAIL_TYPE}` | — |\n"
    );
    for f in FIELDS {
        let mut keys: Vec<String> = f.keys.iter().map(key).collect();
        keys.push(format!("`{TYPE}`/`{CUSTOM_TYPE}` → `{TYPE}`"));
        if !f.protocols.is_empty() {
            let renamed: Vec<String> = f
                .protocols
                .iter()
                .filter(|p| p.directory != p.people)
                .map(|p| format!("`{}` → `{}`", p.directory, p.people))
                .collect();
            keys.push(format!(
                "`{PROTOCOL}`/`{CUSTOM_PROTOCOL}` → `{PROTOCOL}` ({}, other words as they are)",
                renamed.join(", ")
            ));
        }
        let mut dropped: Vec<String> = f.dropped.iter().map(|k| format!("`{k}`")).collect();
        if lookup(DIRECTORY_KEYS, f.directory).contains(&PRIMARY) {
            dropped.push(format!("`{PRIMARY}` (the item goes first)"));
        }
        out += &format!(
            "| `{}` | `{}` | {} | {} |\n",
            f.directory,
            f.people,
            keys.join(", "),
            cell(dropped)
        );
    }
    let keys = out;
    let mut out = String::from(
        "| Directory user field | Copied by default (Directory type → People type) | Not copied by default |\n|---|---|---|\n",
    );
    for f in FIELDS {
        let mut yes: Vec<String> = Vec::new();
        let mut no: Vec<String> = Vec::new();
        for t in f.types {
            if t.default { &mut yes } else { &mut no }.push(type_word(t));
        }
        let custom = format!("`{CUSTOM}` → its `{CUSTOM_TYPE}`");
        if f.custom { &mut yes } else { &mut no }.push(custom);
        if f.untyped { &mut yes } else { &mut no }.push("no type".into());
        out += &format!("| `{}` | {} | {} |\n", f.directory, cell(yes), cell(no));
    }
    [keys, out]
}

#[test]
fn the_readme_shows_the_mapping_as_it_is() {
    let readme = std::fs::read_to_string(crate::root().join("README.md")).unwrap();
    for table in tables() {
        // Whole lines: the table, and nothing else of a table right before or after.
        assert!(
            readme.contains(&format!("\n\n{table}\n")),
            "README.md's tables of directory fields are not the mapping's; this one should read:\n\n{table}"
        );
    }
}
