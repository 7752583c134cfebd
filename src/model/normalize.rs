//! Normalisation of Person fields for comparison, so that what contact-sync writes
//! and what the backend then reads back compare equal (apply followed by plan is
//! empty), and so that a hash of the content is stable.
//!
//! [`normalize`] drops output-only keys (`metadata`, `formattedType`,
//! `canonicalForm`, `displayName`…), empty values, items that end up empty, the
//! default `contentType: TEXT_PLAIN` of biographies, repeated items and all but the
//! first item of singleton fields; it keeps the order of items, because the first
//! e-mail or phone is the one people see. [`same_content`] and [`content_hash`]
//! also ignore that order, so a destination that merely reorders is not drift.

use serde_json::{Map, Value};

use super::{PERSON_FIELDS, PersonFields, SINGLETON_FIELDS};

/// Keys a People API read shows that are no content of a contact: those Google's
/// discovery document marks output only (the emulator checks this list against
/// it), `metadata`, which Google sets itself, and what Google fills in when a
/// client leaves it unset (a name's `unstructuredName`, an address's
/// `formattedValue`, an e-mail's `displayName`).
pub const OUTPUT_ONLY: &[&str] = &[
    "metadata",
    "formattedType",
    "canonicalForm",
    "displayName",
    "displayNameLastFirst",
    "unstructuredName",
    "formattedValue",
    "formattedProtocol",
    "contactGroupId",
    "formattedName",
];

/// Normalises a set of Person fields; only [`PERSON_FIELDS`] are kept.
pub fn normalize(fields: &PersonFields) -> PersonFields {
    let mut out = PersonFields::new();
    for (name, value) in fields {
        if !PERSON_FIELDS.contains(&name.as_str()) {
            continue;
        }
        let items = match value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        };
        let mut items: Vec<Value> = items.iter().filter_map(clean).collect();
        if SINGLETON_FIELDS.contains(&name.as_str()) {
            items.truncate(1);
        }
        let mut seen = std::collections::HashSet::new();
        items.retain(|v| seen.insert(canonical_string(v)));
        if !items.is_empty() {
            out.insert(name.clone(), Value::Array(items));
        }
    }
    out
}

/// Removes output-only keys and empty values; `None` when nothing is left.
fn clean(value: &Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.iter().filter_map(clean).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if OUTPUT_ONLY.contains(&k.as_str()) {
                    continue;
                }
                if k == "contentType" && v == "TEXT_PLAIN" {
                    continue;
                }
                if let Some(v) = clean(v) {
                    out.insert(k.clone(), v);
                }
            }
            (!out.is_empty()).then_some(Value::Object(out))
        }
        other => Some(other.clone()),
    }
}

/// A copy of `value` with every object's keys sorted.
pub fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(keys.into_iter().map(|k| (k.clone(), canonical(&map[k]))).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// `value` as JSON text with sorted keys: equal values give equal strings.
pub fn canonical_string(value: &Value) -> String {
    canonical(value).to_string()
}

/// Normalised fields with the items of every field in a fixed order.
fn sorted(normalized: &PersonFields) -> Value {
    Value::Object(
        normalized
            .iter()
            .map(|(k, v)| {
                let mut items: Vec<String> = v
                    .as_array()
                    .map_or_else(Vec::new, |a| a.iter().map(canonical_string).collect());
                items.sort();
                (k.clone(), Value::from(items))
            })
            .collect(),
    )
}

/// Whether two sets of normalised fields hold the same content, in any order.
pub fn same_content(a: &PersonFields, b: &PersonFields) -> bool {
    a.len() == b.len() && sorted(a) == sorted(b)
}

/// The hash stored in the `contact-sync/hash` marker: of normalised fields,
/// independent of item order.
pub fn content_hash(normalized: &PersonFields) -> String {
    super::short_hash(&[&canonical_string(&sorted(normalized))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> PersonFields {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn output_only_fields_order_and_empties_do_not_count() {
        let written = fields(json!({
            "names": [{"givenName": "Ada", "familyName": "Lovelace"}],
            "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}, {"value": "+1 555 0101"}],
            "biographies": [{"value": "Hi", "contentType": "TEXT_PLAIN"}],
            "urls": [],
        }));
        let read_back = fields(json!({
            "names": [{"givenName": "Ada", "familyName": "Lovelace", "displayName": "Ada Lovelace",
                       "metadata": {"primary": true, "source": {"type": "CONTACT"}}}],
            "phoneNumbers": [{"value": "+1 555 0101", "canonicalForm": "+15550101"},
                             {"type": "work", "value": "+1 555 0100", "formattedType": "Work"}],
            "biographies": [{"value": "Hi"}],
            "organizations": [{"name": ""}],
            "photos": [{"url": "https://example.test/p.jpg"}],
        }));
        assert!(same_content(&normalize(&written), &normalize(&read_back)));
        assert_eq!(content_hash(&normalize(&written)), content_hash(&normalize(&read_back)));
    }

    #[test]
    fn real_changes_count() {
        let a = fields(json!({"phoneNumbers": [{"value": "+1 555 0100"}]}));
        let b = fields(json!({"phoneNumbers": [{"value": "+1 555 0199"}]}));
        assert!(!same_content(&normalize(&a), &normalize(&b)));
        assert_ne!(content_hash(&normalize(&a)), content_hash(&normalize(&b)));
    }

    #[test]
    fn item_order_is_kept_but_does_not_count() {
        let a = fields(json!({"emailAddresses": [{"value": "b@x.test"}, {"value": "a@x.test"}]}));
        let b = fields(json!({"emailAddresses": [{"value": "a@x.test"}, {"value": "b@x.test"}]}));
        assert_eq!(normalize(&a)["emailAddresses"][0]["value"], "b@x.test");
        assert!(same_content(&normalize(&a), &normalize(&b)));
    }

    #[test]
    fn singleton_fields_keep_one_item() {
        let f = fields(json!({"names": [{"givenName": "A"}, {"givenName": "B"}]}));
        assert_eq!(normalize(&f)["names"].as_array().unwrap().len(), 1);
    }
}
