//! The JSON Schema half of validation: compile the generated schema once, run a
//! document against the definition of its kind, and turn jsonschema's errors into
//! diagnostics that say what was expected, using the schema's own descriptions.
//!
//! Validating against `#/$defs/ContactSync` or `#/$defs/Workspace` instead of the
//! root `oneOf` is deliberate: against a `oneOf`, a typo deep inside a sync only
//! yields "not valid under any of the schemas", which tells an admin nothing.

use std::collections::HashSet;
use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind as Invalid;
use serde_json::Value;

use crate::diagnostic::{Diagnostic, Location};
use crate::manifest::Document;
use crate::yaml::{NodeValue, escape_token, pointer_tokens};

/// The manifest kinds the schema defines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `kind: ContactSync`.
    ContactSync,
    /// `kind: Workspace`.
    Workspace,
}

struct Compiled {
    root: Value,
    contact_sync: jsonschema::Validator,
    workspace: jsonschema::Validator,
}

fn compiled() -> &'static Compiled {
    static COMPILED: OnceLock<Compiled> = OnceLock::new();
    COMPILED.get_or_init(|| {
        let root = crate::manifest::json_schema();
        let for_def = |name: &str| {
            let schema = serde_json::json!({
                "$schema": root["$schema"],
                "$defs": root["$defs"],
                "$ref": format!("#/$defs/{name}"),
            });
            jsonschema::validator_for(&schema).expect("the generated schema compiles")
        };
        Compiled { contact_sync: for_def("ContactSync"), workspace: for_def("Workspace"), root }
    })
}

/// Validates `instance` (the JSON form of `doc`) against the schema of `kind`.
pub fn check(doc: &Document, kind: Kind, instance: &Value) -> Vec<Diagnostic> {
    let compiled = compiled();
    let validator = match kind {
        Kind::ContactSync => &compiled.contact_sync,
        Kind::Workspace => &compiled.workspace,
    };
    let mut out = Vec::new();
    for error in validator.iter_errors(instance) {
        let pointer = error.instance_path().as_str().to_owned();
        let schema_path = error.schema_path().as_str().to_owned();
        match error.kind() {
            Invalid::AdditionalProperties { unexpected } => {
                let allowed = allowed_properties(&compiled.root, &schema_path);
                let unexpected: HashSet<&str> = unexpected.iter().map(String::as_str).collect();
                // One walk over the mapping's keys, not one lookup per unknown key:
                // a file of many unknown keys costs its size, not its size squared.
                let (map, _) = doc.root.locate(&pointer, false);
                let NodeValue::Map(entries) = &map.value else { continue };
                for (key_node, _) in entries {
                    let Some(key) =
                        key_node.key_string().filter(|k| unexpected.contains(k.as_str()))
                    else {
                        continue;
                    };
                    let field = format!("{pointer}/{}", escape_token(&key));
                    let location = Location { file: doc.file.clone(), mark: key_node.mark };
                    out.push(Diagnostic::at(location, field, unknown_field(&key, &allowed)));
                }
            }
            Invalid::Required { property } => {
                let name = property.as_str().unwrap_or_default();
                out.push(doc.error(&pointer, format!("missing required field `{name}`")));
            }
            Invalid::AnyOf { .. } if is_field_entry(&compiled.root, &schema_path) => {
                let text = error.instance().as_str().map(str::to_owned);
                let message = text.as_deref().and_then(crate::validate::fields::entry_message);
                out.push(doc.error(
                    &pointer,
                    message.unwrap_or_else(|| format!("{} is not a field name", error.instance())),
                ));
            }
            Invalid::OneOfNotValid { .. } | Invalid::AnyOf { .. }
                if const_choices(&compiled.root, &schema_path).is_some() =>
            {
                let choices = const_choices(&compiled.root, &schema_path).unwrap_or_default();
                out.push(doc.error(&pointer, not_one_of(error.instance(), &choices)));
            }
            _ => {
                let mut message = error.to_string();
                if let Some(description) = description(&compiled.root, &schema_path) {
                    message.push_str("; expected: ");
                    message.push_str(&description);
                }
                out.push(doc.error(&pointer, message));
            }
        }
    }
    out
}

/// "unknown field `groupNme` (did you mean `groupName`?); allowed here: …".
fn unknown_field(key: &str, allowed: &[String]) -> String {
    let mut message = format!("unknown field `{key}`");
    if let Some(best) = crate::validate::did_you_mean(key, allowed.iter().map(String::as_str)) {
        message.push_str(&format!(" (did you mean `{best}`?)"));
    }
    if allowed.is_empty() {
        message.push_str("; no fields are allowed here");
    } else {
        message.push_str("; allowed here: ");
        message.push_str(&allowed.join(", "));
    }
    message
}

/// The values of a `oneOf`/`anyOf` whose branches are all `const` (how schemars
/// writes an enum whose variants are documented).
fn const_choices(root: &Value, schema_path: &str) -> Option<Vec<String>> {
    let tokens: Vec<String> = pointer_tokens(schema_path).collect();
    resolve(root, &tokens)?
        .as_array()?
        .iter()
        .map(|branch| branch.get("const")?.as_str().map(str::to_owned))
        .collect()
}

/// Whether the failing keyword is that of a `spec.fields` entry, whose message
/// says which names there are and which is closest.
fn is_field_entry(root: &Value, schema_path: &str) -> bool {
    let mut tokens: Vec<String> = pointer_tokens(schema_path).collect();
    tokens.pop();
    resolve(root, &tokens).and_then(|s| s.get("title"))
        == Some(&Value::from(crate::manifest::fields::ENTRY_TITLE))
}

/// "`persona` is not one of `personal`, `directory` (did you mean `personal`?)".
fn not_one_of(value: &Value, choices: &[String]) -> String {
    let shown = value.as_str().map_or_else(|| value.to_string(), |s| format!("`{s}`"));
    let listed: Vec<String> = choices.iter().map(|c| format!("`{c}`")).collect();
    let mut message = format!("{shown} is not one of {}", listed.join(", "));
    if let Some(best) = value
        .as_str()
        .and_then(|v| crate::validate::did_you_mean(v, choices.iter().map(String::as_str)))
    {
        message.push_str(&format!(" (did you mean `{best}`?)"));
    }
    message
}

fn resolve<'a>(root: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(root, |node, t| match node {
        Value::Object(map) => map.get(t),
        Value::Array(items) => t.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })
}

/// The property names of the schema object that owns the failing keyword.
fn allowed_properties(root: &Value, schema_path: &str) -> Vec<String> {
    let mut tokens: Vec<String> = pointer_tokens(schema_path).collect();
    tokens.pop();
    resolve(root, &tokens)
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// The description nearest to the failing keyword: the keyword's own schema, or the
/// property that holds it (for a list item, the list), never beyond a definition.
fn description(root: &Value, schema_path: &str) -> Option<String> {
    let mut tokens: Vec<String> = pointer_tokens(schema_path).collect();
    tokens.pop();
    while !tokens.is_empty() {
        if let Some(d) = resolve(root, &tokens).and_then(|s| s.get("description")) {
            return d.as_str().map(|d| d.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        if tokens.len() <= 2 {
            break;
        }
        tokens.pop();
    }
    None
}
