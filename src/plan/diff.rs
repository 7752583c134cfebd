//! Field-level differences between two normalised sets of Person fields, as the
//! plan shows them: `phoneNumbers[0].value: "+1 555 0101" -> "+1 555 0199"`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::PersonFields;

/// One changed value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldChange {
    /// Path of the value: `phoneNumbers[0].value`.
    pub field: String,
    /// The value now; `None` when it is added.
    pub before: Option<Value>,
    /// The value after the change; `None` when it is removed.
    pub after: Option<Value>,
}

/// Every leaf that differs between `actual` and `desired`, in field order.
pub fn diff(actual: &PersonFields, desired: &PersonFields) -> Vec<FieldChange> {
    let mut names: Vec<&String> = actual.keys().chain(desired.keys()).collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        walk(name.clone(), actual.get(name), desired.get(name), &mut out);
    }
    out
}

/// Names of the top-level fields that differ.
pub fn changed_fields(actual: &PersonFields, desired: &PersonFields) -> Vec<String> {
    let mut names: Vec<String> = actual
        .keys()
        .chain(desired.keys())
        .filter(|k| actual.get(*k) != desired.get(*k))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

fn walk(path: String, before: Option<&Value>, after: Option<&Value>, out: &mut Vec<FieldChange>) {
    match (before, after) {
        (Some(Value::Object(a)), Some(Value::Object(b))) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                walk(format!("{path}.{k}"), a.get(k), b.get(k), out);
            }
        }
        (Some(Value::Array(a)), Some(Value::Array(b))) => {
            for i in 0..a.len().max(b.len()) {
                walk(format!("{path}[{i}]"), a.get(i), b.get(i), out);
            }
        }
        (a, b) if a != b => {
            out.push(FieldChange { field: path, before: a.cloned(), after: b.cloned() })
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn leaf_paths() {
        let a: PersonFields = serde_json::from_value(json!({
            "phoneNumbers": [{"value": "+1 555 0101", "type": "work"}],
            "urls": [{"value": "https://a.test"}]
        }))
        .unwrap();
        let b: PersonFields = serde_json::from_value(json!({
            "phoneNumbers": [{"value": "+1 555 0199", "type": "work"}],
            "nicknames": [{"value": "Ace"}]
        }))
        .unwrap();
        let d = diff(&a, &b);
        let paths: Vec<&str> = d.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(paths, ["nicknames", "phoneNumbers[0].value", "urls"]);
        assert_eq!(d[1].before, Some(json!("+1 555 0101")));
        assert_eq!(d[1].after, Some(json!("+1 555 0199")));
        assert_eq!(changed_fields(&a, &b), ["nicknames", "phoneNumbers", "urls"]);
    }
}
