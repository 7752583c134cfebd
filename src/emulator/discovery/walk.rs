//! Walks a JSON value against a discovery schema, at every depth, and reports
//! what Google's JSON parser reports, in its words: an unknown name ("Cannot find
//! field."), a list where a single value belongs ("Proto field is not repeating,
//! cannot start list."), an object where a scalar belongs ("Starting an object on
//! a scalar field"), a value of the wrong type or an unknown enum name
//! ("Invalid value at 'path' (TYPE_STRING), 5"). Locations are in Google's form:
//! proto (snake_case) names, `[i]` for list items and map entries, `.value` for a
//! map entry's value (`contacts[0].value.phone_numbers[0]`).
//!
//! A request is read as Google's parser reads it (an int64 or int32 as a number
//! or a numeric string, a bool as `"true"`); an answer must be written as Google
//! writes it (int32 numbers, int64 strings, bools, enum names).

use serde_json::Value;

use super::{Doc, Violation, camel, snake};

/// Which side of the wire a value is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// A client's request body: what Google's parser accepts.
    Request,
    /// An answer: what Google's serializer writes.
    Response,
}

/// A location in a message, as Google prints it.
#[derive(Clone, Default)]
struct Loc(String);

impl Loc {
    fn field(&self, name: &str) -> Loc {
        let name = snake(name);
        Loc(if self.0.is_empty() { name } else { format!("{}.{name}", self.0) })
    }

    fn index(&self, i: usize) -> Loc {
        Loc(format!("{}[{i}]", self.0))
    }

    /// ` at 'loc'`, or nothing at the top.
    fn at(&self) -> String {
        if self.0.is_empty() { String::new() } else { format!(" at '{}'", self.0) }
    }
}

/// What a schema describes.
enum Kind<'a> {
    /// A message: named properties (`name` is its schema name, if it has one).
    Message { name: Option<&'a str>, schema: &'a Value },
    /// A map from string keys to values of a schema.
    Map(&'a Value),
    /// A list of values of a schema.
    List(&'a Value),
    /// Any JSON.
    Any,
    /// A string, number or bool (with its format and enum names).
    Scalar(&'a Value),
}

/// Walks one body and collects what is wrong with it.
struct Walker<'a> {
    doc: &'a Doc,
    mode: Mode,
    out: Vec<Violation>,
}

/// Checks `value` against the schema called `schema`.
pub(super) fn check(doc: &Doc, schema: &str, value: &Value, mode: Mode) -> Vec<Violation> {
    let mut walker = Walker { doc, mode, out: Vec::new() };
    match value {
        Value::Object(_) => {
            if let Some(schema) = doc.schema(schema) {
                walker.object(schema, value, &Loc::default());
            }
        }
        Value::Null if mode == Mode::Request => {}
        other => walker.out.push(Violation::top(format!(
            "Invalid JSON payload received. Expected an object, got {}.",
            shown(other)
        ))),
    }
    walker.out
}

/// A value as Google's errors show it: strings quoted, the rest as JSON.
fn shown(value: &Value) -> String {
    value.to_string()
}

impl<'a> Walker<'a> {
    /// What `schema` (inline, or a `$ref`) describes.
    fn kind(&self, schema: &'a Value) -> Kind<'a> {
        if let Some(name) = schema["$ref"].as_str() {
            return match self.doc.schema(name) {
                // A named map (`UserCustomProperties`: field name → any value).
                Some(s) if s["type"] == "object" && s.get("additionalProperties").is_some() => {
                    Kind::Map(&s["additionalProperties"])
                }
                Some(s) => Kind::Message { name: Some(name), schema: s },
                None => Kind::Any,
            };
        }
        match schema["type"].as_str() {
            Some("array") => Kind::List(&schema["items"]),
            Some("object") if schema.get("additionalProperties").is_some() => {
                Kind::Map(&schema["additionalProperties"])
            }
            Some("object") => Kind::Message { name: None, schema },
            Some("any") | None => Kind::Any,
            Some(_) => Kind::Scalar(schema),
        }
    }

    /// The property of a message that `key` names (by JSON or proto name).
    fn property(schema: &'a Value, key: &str) -> Option<(&'a str, &'a Value)> {
        let props = schema["properties"].as_object()?;
        let found = props.get_key_value(key).or_else(|| {
            key.contains('_').then(|| props.get_key_value(camel(key).as_str())).flatten()
        });
        found.map(|(k, v)| (k.as_str(), v))
    }

    /// A value for a message schema (given as a `$ref` or inline), at `loc`.
    fn message_value(&mut self, schema: &'a Value, value: &Value, loc: &Loc) {
        if let Kind::Message { schema, .. } = self.kind(schema) {
            self.object(schema, value, loc);
        }
    }

    /// The properties of an object against the message schema `schema`.
    fn object(&mut self, schema: &'a Value, value: &Value, loc: &Loc) {
        let Some(object) = value.as_object() else { return };
        for (key, value) in object {
            match Self::property(schema, key) {
                Some((name, property)) => self.field(key, name, property, value, loc),
                None => self.out.push(Violation::new(
                    &loc.0,
                    format!(
                        "Invalid JSON payload received. Unknown name \"{key}\"{}: Cannot find field.",
                        loc.at()
                    ),
                )),
            }
        }
    }

    /// The field `name` (sent as `key`) of the message at `parent`.
    fn field(&mut self, key: &str, name: &str, schema: &'a Value, value: &Value, parent: &Loc) {
        let here = parent.field(name);
        if value.is_null() {
            if self.mode == Mode::Response {
                self.push(
                    &here,
                    format!("Invalid value at '{}', null: Google writes no nulls", here.0),
                );
            }
            return;
        }
        match (self.kind(schema), value) {
            (Kind::Any, _) => {}
            (Kind::List(items), Value::Array(list)) => {
                for (i, item) in list.iter().enumerate() {
                    self.item(items, item, &here.index(i), parent, name);
                }
            }
            (Kind::List(items), other) => self.not_a_list(items, other, &here),
            (Kind::Map(values), Value::Object(map)) => {
                for (i, value) in map.values().enumerate() {
                    self.value(values, value, &here.index(i).field("value"), &here.index(i));
                }
            }
            (Kind::Map(_), other) => self.push(
                &here,
                format!(
                    "Invalid value at '{}' (Map), Cannot bind {} to map for field '{name}'.",
                    here.0,
                    if other.is_array() { "a list" } else { "a primitive" }
                ),
            ),
            (_, Value::Array(_)) => self.not_repeating(key, parent),
            (Kind::Message { .. }, Value::Object(_)) => self.message_value(schema, value, &here),
            (Kind::Message { name: type_name, .. }, other) => {
                self.not_a_message(type_name, other, &here)
            }
            (Kind::Scalar(_), Value::Object(_)) => self.object_on_scalar(name, parent),
            (Kind::Scalar(s), other) => self.scalar(s, other, &here),
        }
    }

    /// One value of a map, at `loc` (`contacts[0].value`); `entry` is the entry.
    fn value(&mut self, schema: &'a Value, value: &Value, loc: &Loc, entry: &Loc) {
        match (self.kind(schema), value) {
            (_, Value::Null) | (Kind::Any, _) => {}
            (Kind::Message { .. }, Value::Object(_)) => self.message_value(schema, value, loc),
            (_, Value::Array(_)) => self.not_repeating("value", entry),
            (Kind::Message { name, .. }, other) => self.not_a_message(name, other, loc),
            (Kind::Scalar(_), Value::Object(_)) => self.object_on_scalar("value", entry),
            (Kind::Scalar(s), other) => self.scalar(s, other, loc),
            (Kind::List(_) | Kind::Map(_), _) => {}
        }
    }

    /// One item of the list field `name` of the message at `parent`, at `loc`.
    fn item(&mut self, schema: &'a Value, item: &Value, loc: &Loc, parent: &Loc, name: &str) {
        match (self.kind(schema), item) {
            (Kind::Any, _) => {}
            (Kind::Message { .. }, Value::Object(_)) => self.message_value(schema, item, loc),
            (_, Value::Array(_)) => self.not_repeating(name, parent),
            (Kind::Scalar(_), Value::Object(_)) => self.object_on_scalar(name, parent),
            (Kind::Message { name, .. }, other) => self.not_a_message(name, other, loc),
            (Kind::Scalar(s), other) => self.scalar(s, other, loc),
            (Kind::List(_) | Kind::Map(_), _) => {}
        }
    }

    fn push(&mut self, loc: &Loc, description: String) {
        self.out.push(Violation::new(&loc.0, description));
    }

    /// A list sent for a field that holds one value.
    fn not_repeating(&mut self, key: &str, parent: &Loc) {
        self.push(
            parent,
            format!(
                "Invalid JSON payload received. Unknown name \"{key}\"{}: Proto field is not \
                 repeating, cannot start list.",
                parent.at()
            ),
        );
    }

    /// One value (object or scalar) sent for a list field.
    fn not_a_list(&mut self, items: &'a Value, value: &Value, loc: &Loc) {
        let kind = match self.kind(items) {
            Kind::Message { name: Some(n), .. } => self.doc.type_url(n),
            Kind::Scalar(s) => type_kind(s).to_owned(),
            _ => "TYPE_MESSAGE".to_owned(),
        };
        self.push(
            loc,
            format!(
                "Invalid value at '{}' ({kind}), {}: a repeated field takes a list.",
                loc.0,
                shown(value)
            ),
        );
    }

    /// A scalar sent where a message belongs.
    fn not_a_message(&mut self, name: Option<&str>, value: &Value, loc: &Loc) {
        let kind = name.map_or_else(|| "TYPE_MESSAGE".to_owned(), |n| self.doc.type_url(n));
        let raw = value.as_str().map_or_else(|| value.to_string(), str::to_owned);
        self.push(loc, format!("Invalid value at '{}' ({kind}), {raw}", loc.0));
    }

    /// An object sent where a string, number or bool belongs.
    fn object_on_scalar(&mut self, name: &str, parent: &Loc) {
        let at = if parent.0.is_empty() { String::new() } else { format!(" at '{}'", parent.0) };
        let field = if parent.0.is_empty() { snake(name) } else { parent.0.clone() };
        self.out.push(Violation::new(
            field,
            format!("Invalid value{at} ({}), Starting an object on a scalar field", snake(name)),
        ));
    }

    /// A string, number or bool against its schema.
    fn scalar(&mut self, schema: &Value, value: &Value, loc: &Loc) {
        if !scalar_fits(schema, value, self.mode) {
            let kind = type_kind(schema);
            self.push(loc, format!("Invalid value at '{}' ({kind}), {}", loc.0, shown(value)));
        }
    }
}

/// The proto kind Google names a scalar schema by in its errors.
pub(super) fn type_kind(schema: &Value) -> &'static str {
    if schema.get("enum").is_some() {
        return "TYPE_ENUM";
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("string"), Some("int64")) => "TYPE_INT64",
        (Some("string"), Some("uint64")) => "TYPE_UINT64",
        (Some("string"), Some("byte")) => "TYPE_BYTES",
        (Some("string"), Some("google-datetime")) => {
            "type.googleapis.com/google.protobuf.Timestamp"
        }
        (Some("string"), Some("google-duration")) => "type.googleapis.com/google.protobuf.Duration",
        (Some("integer"), Some("uint32")) => "TYPE_UINT32",
        (Some("integer"), _) => "TYPE_INT32",
        (Some("number"), Some("float")) => "TYPE_FLOAT",
        (Some("number"), _) => "TYPE_DOUBLE",
        (Some("boolean"), _) => "TYPE_BOOL",
        _ => "TYPE_STRING",
    }
}

/// Whether a scalar value is one `schema` takes, read as `mode` reads it.
pub(super) fn scalar_fits(schema: &Value, value: &Value, mode: Mode) -> bool {
    let request = mode == Mode::Request;
    if let Some(names) = schema["enum"].as_array() {
        return match value {
            Value::String(s) => names.iter().any(|n| n == s.as_str()),
            Value::Number(n) => request && n.as_u64().is_some_and(|i| (i as usize) < names.len()),
            _ => false,
        };
    }
    match (schema["type"].as_str(), schema["format"].as_str(), value) {
        (Some("string"), Some("int64"), Value::String(s)) => s.parse::<i64>().is_ok(),
        (Some("string"), Some("uint64"), Value::String(s)) => s.parse::<u64>().is_ok(),
        (Some("string"), Some("int64"), Value::Number(n)) => request && n.as_i64().is_some(),
        (Some("string"), Some("uint64"), Value::Number(n)) => request && n.as_u64().is_some(),
        (Some("string"), Some("byte"), Value::String(s)) => is_base64(s),
        (Some("string"), Some("google-datetime"), Value::String(s)) => {
            chrono::DateTime::parse_from_rfc3339(s).is_ok()
        }
        (Some("string"), _, Value::String(_)) => true,
        (Some("integer"), format, value) => integer_fits(format, value, request),
        (Some("number"), _, Value::Number(_)) => true,
        (Some("number"), _, Value::String(s)) => {
            request
                && (s.parse::<f64>().is_ok()
                    || ["NaN", "Infinity", "-Infinity"].contains(&s.as_str()))
        }
        (Some("boolean"), _, Value::Bool(_)) => true,
        (Some("boolean"), _, Value::String(s)) => request && (s == "true" || s == "false"),
        _ => false,
    }
}

/// An int32 (or uint32) as a JSON number, or, in a request, a numeric string.
fn integer_fits(format: Option<&str>, value: &Value, request: bool) -> bool {
    let n = match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64().filter(|f| f.fract() == 0.0 && f.abs() < 1e18).map(|f| f as i64)
        }),
        Value::String(s) if request => s.parse::<i64>().ok(),
        _ => None,
    };
    match (n, format) {
        (Some(n), Some("uint32")) => u32::try_from(n).is_ok(),
        (Some(n), _) => i32::try_from(n).is_ok(),
        (None, _) => false,
    }
}

fn is_base64(s: &str) -> bool {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    STANDARD.decode(s).is_ok() || URL_SAFE.decode(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn int64_and_int32_are_read_as_googles_parser_reads_them() {
        let int64 = json!({ "type": "string", "format": "int64" });
        let int32 = json!({ "type": "integer", "format": "int32" });
        assert!(scalar_fits(&int64, &json!("12"), Mode::Request));
        assert!(scalar_fits(&int64, &json!(12), Mode::Request));
        assert!(
            !scalar_fits(&int64, &json!(12), Mode::Response),
            "Google writes int64 as a string"
        );
        assert!(!scalar_fits(&int64, &json!("twelve"), Mode::Request));
        assert!(scalar_fits(&int32, &json!("7"), Mode::Request));
        assert!(!scalar_fits(&int32, &json!("7"), Mode::Response));
        assert!(!scalar_fits(&int32, &json!(3_000_000_000_u64), Mode::Request));
        assert!(!scalar_fits(&int32, &json!(true), Mode::Request));
    }

    #[test]
    fn strings_bools_and_enums_take_only_their_own_values() {
        let string = json!({ "type": "string" });
        let boolean = json!({ "type": "boolean" });
        let en = json!({ "type": "string", "enum": ["A", "B"] });
        assert!(!scalar_fits(&string, &json!(5), Mode::Request));
        assert!(scalar_fits(&boolean, &json!("true"), Mode::Request));
        assert!(!scalar_fits(&boolean, &json!(1), Mode::Request));
        assert!(scalar_fits(&en, &json!("B"), Mode::Response));
        assert!(!scalar_fits(&en, &json!("b"), Mode::Request));
        assert!(scalar_fits(&en, &json!(1), Mode::Request), "an enum's number is accepted");
        assert!(!scalar_fits(&en, &json!(1), Mode::Response));
    }
}
