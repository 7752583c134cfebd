//! Query parameters, required fields and field masks of a discovery method.
//!
//! A query parameter must be one of the method's or one of the API's standard
//! ones (`fields`, `alt`, `prettyPrint`, …), given once unless it is
//! `repeated`, and of its type. Required are the parameters and body fields
//! marked `"required": true` or described as "Required." — except where Google
//! takes an alternative (the deprecated `requestMask.includeField` stands in for
//! `personFields`). A field mask (`personFields`, `readMask`, `updateMask`,
//! `groupFields`, …) may name only the paths its description lists ("Valid
//! values are: * addresses * biographies …"), or, where it lists none, the
//! properties of the schema it selects from.

use serde_json::Value;

use super::walk::{self, Mode};
use super::{Method, Violation, camel, snake};

/// Parameters that may stand in for each other: a request needs one of them.
const ALTERNATIVES: &[(&str, &str)] = &[("personFields", "requestMask.includeField")];

/// The definition of the query parameter `name` of `method`, if it takes one.
fn parameter(method: Method, name: &str) -> Option<&'static Value> {
    let own = method.def["parameters"].get(name).filter(|p| p["location"] == "query");
    own.or_else(|| method.doc().standard_parameters().get(name))
}

/// Binding problems of the query: unknown names, repetition, types.
pub(super) fn check_query(method: Method, query: &[(String, String)]) -> Vec<Violation> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in query {
        let first = !seen.contains(&key.as_str());
        seen.push(key);
        let Some(def) = parameter(method, key) else {
            if first {
                out.push(Violation::top(format!(
                    "Invalid JSON payload received. Unknown name \"{key}\": Cannot bind query \
                     parameter. Field '{key}' could not be found in request message."
                )));
            }
            continue;
        };
        if !first && def["repeated"] != true {
            if seen.iter().filter(|k| **k == key).count() == 2 {
                out.push(Violation::top(format!(
                    "Invalid JSON payload received. Unknown name \"{key}\": Proto field is not \
                     repeating, cannot start list."
                )));
            }
            continue;
        }
        let sent = Value::String(value.clone());
        if !walk::scalar_fits(def, &sent, Mode::Request) {
            let field = snake(key);
            let kind = walk::type_kind(def);
            out.push(Violation::new(
                &field,
                format!("Invalid value at '{field}' ({kind}), {sent}"),
            ));
        }
    }
    out
}

/// Whether `description` marks a parameter or field as required.
fn required(def: &Value) -> bool {
    def["required"] == true
        || def["description"].as_str().is_some_and(|d| d.starts_with("Required."))
}

fn is_mask(def: &Value) -> bool {
    def["format"] == "google-fieldmask"
}

/// The first problem Google's service (after its parser) finds: a missing
/// required parameter or field, or a field mask naming what it may not.
pub(super) fn check_semantics(
    method: Method,
    query: &[(String, String)],
    body: Option<&Value>,
) -> Option<Violation> {
    let given = |name: &str| query.iter().any(|(k, v)| k == name && !v.is_empty());
    let params = method.def["parameters"].as_object().into_iter().flatten();
    for (name, def) in params.filter(|(_, d)| d["location"] == "query") {
        let stand_in =
            ALTERNATIVES.iter().any(|(a, b)| (a == name && given(b)) || (b == name && given(a)));
        if required(def) && !given(name) && !stand_in {
            return Some(missing(method, name, &snake(name), def));
        }
    }
    if let Some(schema) = method.request_schema() {
        let empty = Value::Object(serde_json::Map::new());
        let body = body.unwrap_or(&empty);
        if let Some(v) = missing_in_body(method, schema, body, "") {
            return Some(v);
        }
    }
    masks(method, query, body)
}

/// The first required field missing from `value` (a message of `schema`) or from
/// the messages in it whose schemas have required fields.
fn missing_in_body(method: Method, schema: &str, value: &Value, loc: &str) -> Option<Violation> {
    let props = method.doc().schema(schema)?["properties"].as_object()?;
    for (name, def) in props {
        let here = if loc.is_empty() { snake(name) } else { format!("{loc}.{}", snake(name)) };
        let sent = &value[name.as_str()];
        if required(def) && is_empty(sent) {
            return Some(missing(method, name, &here, def));
        }
        let inner = def["$ref"].as_str().or_else(|| def["items"]["$ref"].as_str());
        let Some(inner) = inner.filter(|s| has_required(method, s)) else { continue };
        let items: Vec<&Value> = match sent {
            Value::Array(a) => a.iter().collect(),
            Value::Object(_) => vec![sent],
            _ => Vec::new(),
        };
        for (i, item) in items.into_iter().enumerate() {
            let at = if sent.is_array() { format!("{here}[{i}]") } else { here.clone() };
            if let Some(v) = missing_in_body(method, inner, item, &at) {
                return Some(v);
            }
        }
    }
    None
}

fn has_required(method: Method, schema: &str) -> bool {
    method
        .doc()
        .schema(schema)
        .and_then(|s| s["properties"].as_object())
        .is_some_and(|p| p.values().any(required))
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

/// Where Google's reference lists the paths of a method's masks.
fn reference(method: Method) -> &'static str {
    if method.id().starts_with("people.contactGroups") {
        "https://developers.google.com/people/api/rest/v1/contactGroups/get"
    } else {
        "https://developers.google.com/people/api/rest/v1/people/get"
    }
}

/// `personFields mask` / `readMask`: how Google names a mask in its messages.
fn mask_name(name: &str) -> String {
    if name.ends_with("Mask") { name.to_owned() } else { format!("{name} mask") }
}

fn missing(method: Method, name: &str, loc: &str, def: &Value) -> Violation {
    if is_mask(def) {
        Violation::new(
            loc,
            format!(
                "{} is required. Please specify one or more valid paths. Valid paths are \
                 documented at {}.",
                mask_name(name),
                reference(method)
            ),
        )
    } else {
        Violation::new(loc, format!("Request is missing required field '{loc}'."))
    }
}

/// The first mask path (in the query or at the top of the body) Google refuses.
fn masks(method: Method, query: &[(String, String)], body: Option<&Value>) -> Option<Violation> {
    let from_query = query.iter().filter_map(|(k, v)| {
        let def = parameter(method, k).filter(|d| is_mask(d))?;
        Some((k.as_str(), def, v.as_str()))
    });
    let schema = method.request_schema().and_then(|s| method.doc().schema(s));
    let from_body = schema
        .and_then(|s| s["properties"].as_object())
        .into_iter()
        .flatten()
        .filter(|(_, def)| is_mask(def))
        .filter_map(|(k, def)| Some((k.as_str(), def, body?.get(k)?.as_str()?)));
    for (name, def, value) in from_query.chain(from_body) {
        if value.trim().is_empty() {
            continue;
        }
        let allowed = allowed_paths(method, def);
        let bad = value.split(',').map(str::trim).find(|p| !allowed(p));
        if let Some(bad) = bad {
            return Some(Violation::new(
                snake(name),
                format!(
                    "Invalid {} path: \"{bad}\". Valid paths are documented at {}.",
                    mask_name(name),
                    reference(method)
                ),
            ));
        }
    }
    None
}

/// The paths a mask's description lists after "Valid values are:" (or "Valid
/// fields are:"), each as `* name`.
fn listed(description: &str) -> Option<Vec<&str>> {
    let start = ["Valid values are:", "Valid fields are:"]
        .iter()
        .find_map(|m| description.find(m).map(|i| i + m.len()))?;
    let mut tokens = description[start..].split_whitespace();
    let mut out = Vec::new();
    while tokens.next() == Some("*") {
        match tokens.next() {
            Some(name) => out.push(name.trim_end_matches(['.', ','])),
            None => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Whether a path may be named in the mask `def` of `method`: one its
/// description lists, else a property of the schema it selects from (`person.`
/// paths: Person's).
fn allowed_paths(method: Method, def: &'static Value) -> impl Fn(&str) -> bool {
    let listed = def["description"].as_str().and_then(listed);
    let doc = method.doc();
    let target = method.response_schema().or(method.request_schema());
    move |path: &str| {
        let camel = camel(path);
        if let Some(list) = &listed {
            return list.iter().any(|p| *p == path || *p == camel);
        }
        let (schema, field) = match camel.strip_prefix("person.") {
            Some(rest) => (Some("Person"), rest),
            None => (target, camel.as_str()),
        };
        let first = field.split('.').next().unwrap_or_default();
        schema.and_then(|s| doc.schema(s)).is_some_and(|s| s["properties"].get(first).is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_masks_valid_paths_come_from_its_description() {
        assert_eq!(
            listed("Optional. Defaults to `name`. Valid values are: * clientData * name"),
            Some(vec!["clientData", "name"])
        );
        assert_eq!(
            listed("Valid fields are: * groupType * metadata. More text"),
            Some(vec!["groupType", "metadata"])
        );
        assert_eq!(listed("Each path should start with `person.`"), None);
    }

    #[test]
    fn without_a_list_a_mask_names_properties_of_its_schema() {
        let method = super::super::find("GET", "/v1/people/me/connections").unwrap();
        let def = parameter(method, "requestMask.includeField").unwrap();
        let allowed = allowed_paths(method, def);
        assert!(allowed("person.names"));
        assert!(allowed("person.phone_numbers"));
        assert!(!allowed("person.notes"));
    }
}
