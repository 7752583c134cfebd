//! A block-style YAML writer for JSON values, whose output any YAML reader reads
//! back as the same data: YAML 1.2 readers (ours among them) and YAML 1.1 readers
//! such as PyYAML alike.
//!
//! The layout is yaml-rust2's emitter's (two-space indentation, `- ` items under
//! their key, `[]` and `{}` for empty collections), and so is the choice of which
//! strings to quote, so files it wrote before read the same now. Two things are
//! added. A string holding a character that is not printable in YAML 1.2, or that a
//! YAML 1.1 reader takes for a line break (NEL, U+2028, U+2029), or a byte order
//! mark, is double-quoted with the character escaped: yaml-rust2 wrote some of them
//! raw, and such files were refused or misread elsewhere. A string that a YAML 1.1
//! reader would take for a number or a date (`1_000`, `0b101`, `+.inf`,
//! `2026-11-23`) is quoted too.

use serde_json::Value;

/// The YAML text of `value`: one document without a `---` line, ending in a newline.
pub fn to_text(value: &Value) -> String {
    let mut emitter = Emitter { out: String::new(), level: -1 };
    emitter.node(value);
    emitter.out.push('\n');
    emitter.out
}

/// Writes, entry by entry, the document [`to_text`] makes of a mapping, without
/// holding the mapping: for a document too large to build as one value. An entry
/// whose value is a sequence can be given item by item
/// ([`MappingWriter::sequence`]).
pub struct MappingWriter<'a> {
    out: &'a mut dyn std::io::Write,
    entries: usize,
}

impl<'a> MappingWriter<'a> {
    /// A writer of one document to `out`.
    pub fn new(out: &'a mut dyn std::io::Write) -> Self {
        Self { out, entries: 0 }
    }

    /// An emitter at the mapping's level, having written the key of the next entry.
    fn key(&mut self, key: &str) -> Emitter {
        let mut e = Emitter { out: String::new(), level: 0 };
        if self.entries > 0 {
            e.out.push('\n');
        }
        self.entries += 1;
        e.scalar(key);
        e.out.push(':');
        e
    }

    /// An entry.
    pub fn entry(&mut self, key: &str, value: &Value) -> std::io::Result<()> {
        let mut e = self.key(key);
        e.value(false, value);
        self.out.write_all(e.out.as_bytes())
    }

    /// An entry whose value is the sequence of `items`, written as they come.
    pub fn sequence(
        &mut self,
        key: &str,
        items: impl Iterator<Item = std::io::Result<Value>>,
    ) -> std::io::Result<()> {
        let mut e = self.key(key);
        let mut items = items.peekable();
        if items.peek().is_none() {
            e.out.push_str(" []");
            return self.out.write_all(e.out.as_bytes());
        }
        self.out.write_all(e.out.as_bytes())?;
        for item in items {
            // An item under its key: one level deeper, as `value` and `array` put it.
            let mut e = Emitter { out: String::from("\n  -"), level: 1 };
            e.value(true, &item?);
            self.out.write_all(e.out.as_bytes())?;
        }
        Ok(())
    }

    /// Ends the document.
    pub fn finish(self) -> std::io::Result<()> {
        if self.entries == 0 {
            self.out.write_all(b"{}")?;
        }
        self.out.write_all(b"\n")
    }
}

struct Emitter {
    out: String,
    /// Nesting depth of the collection being written; -1 at the top.
    level: isize,
}

impl Emitter {
    fn indent(&mut self) {
        for _ in 0..self.level.max(0) {
            self.out.push_str("  ");
        }
    }

    fn node(&mut self, value: &Value) {
        match value {
            Value::Null => self.out.push('~'),
            Value::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Value::Number(n) => self.out.push_str(&number(n)),
            Value::String(s) => self.scalar(s),
            Value::Array(items) => self.array(items),
            Value::Object(map) => self.object(map),
        }
    }

    fn scalar(&mut self, s: &str) {
        if needs_quotes(s) {
            quote(&mut self.out, s);
        } else {
            self.out.push_str(s);
        }
    }

    fn array(&mut self, items: &[Value]) {
        if items.is_empty() {
            self.out.push_str("[]");
            return;
        }
        self.level += 1;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
                self.indent();
            }
            self.out.push('-');
            self.value(true, item);
        }
        self.level -= 1;
    }

    fn object(&mut self, map: &serde_json::Map<String, Value>) {
        if map.is_empty() {
            self.out.push_str("{}");
            return;
        }
        self.level += 1;
        for (i, (key, value)) in map.iter().enumerate() {
            if i > 0 {
                self.out.push('\n');
                self.indent();
            }
            self.scalar(key);
            self.out.push(':');
            self.value(false, value);
        }
        self.level -= 1;
    }

    /// A value after `:` (`inline` false) or `-` (`inline` true): a non-empty
    /// collection after a key starts on the next line, one level deeper.
    fn value(&mut self, inline: bool, value: &Value) {
        let block = match value {
            Value::Array(items) => !items.is_empty(),
            Value::Object(map) => !map.is_empty(),
            _ => false,
        };
        if block && !inline {
            self.out.push('\n');
            self.level += 1;
            self.indent();
            self.level -= 1;
        } else {
            self.out.push(' ');
        }
        self.node(value);
    }
}

/// A number as both YAML versions read it back: integers as they are, floats with a
/// fraction and a signed exponent (`1.0e+21`, which YAML 1.1 needs to see a float).
fn number(n: &serde_json::Number) -> String {
    let text = n.to_string();
    if n.is_f64()
        && let Some((mantissa, exponent)) = text.split_once(['e', 'E'])
    {
        let mantissa =
            if mantissa.contains('.') { mantissa.to_owned() } else { format!("{mantissa}.0") };
        let sign = if exponent.starts_with(['+', '-']) { "" } else { "+" };
        return format!("{mantissa}e{sign}{exponent}");
    }
    text
}

/// Characters that are written escaped: everything outside YAML 1.2's printable
/// set, plus what a YAML 1.1 reader treats as a line break and the byte order mark.
fn must_escape(c: char) -> bool {
    matches!(c, '\0'..='\x1f' | '\x7f'..='\u{9f}' | '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}')
}

/// Whether `s` is written quoted: yaml-rust2's rule (so that files do not change),
/// characters to escape, and what YAML 1.1 would read as something else.
fn needs_quotes(s: &str) -> bool {
    yaml_rust2_needs_quotes(s) || s.chars().any(must_escape) || yaml11_not_a_string(s)
}

/// yaml-rust2's emitter's rule, as of 0.13.
fn yaml_rust2_needs_quotes(s: &str) -> bool {
    s.is_empty()
        || s.starts_with(' ')
        || s.ends_with(' ')
        || s.starts_with(['&', '*', '?', '|', '-', '<', '>', '=', '!', '%', '@', '.'])
        || s.contains([':', '{', '}', '[', ']', ',', '#', '`', '"', '\'', '\\'])
        || [
            "true", "false", "True", "False", "TRUE", "FALSE", "null", "Null", "NULL", "~", "y",
            "Y", "n", "N", "yes", "Yes", "YES", "no", "No", "NO", "on", "On", "ON", "off", "Off",
            "OFF",
        ]
        .contains(&s)
        || s.starts_with("0x")
        || s.parse::<i64>().is_ok()
        || s.parse::<f64>().is_ok()
}

/// Whether a YAML 1.1 reader resolves the plain scalar `s` to a number or a date
/// (PyYAML's resolvers; the forms with `:` or a leading `.` are quoted anyway).
fn yaml11_not_a_string(s: &str) -> bool {
    let all = |t: &str, f: fn(char) -> bool| !t.is_empty() && t.chars().all(|c| f(c) || c == '_');
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let int =
        unsigned.starts_with(|c: char| c.is_ascii_digit()) && all(unsigned, |c| c.is_ascii_digit());
    let binary = unsigned.strip_prefix("0b").is_some_and(|t| all(t, |c| matches!(c, '0' | '1')));
    let hex = unsigned.strip_prefix("0x").is_some_and(|t| all(t, |c| c.is_ascii_hexdigit()));
    let float = unsigned.split_once('.').is_some_and(|(whole, rest)| {
        let (fraction, exponent) = match rest.split_once(['e', 'E']) {
            Some((f, e)) => (f, Some(e)),
            None => (rest, None),
        };
        whole.starts_with(|c: char| c.is_ascii_digit())
            && all(whole, |c| c.is_ascii_digit())
            && fraction.chars().all(|c| c.is_ascii_digit() || c == '_')
            && exponent.is_none_or(|e| {
                e.strip_prefix(['+', '-'])
                    .is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()) && !d.is_empty())
            })
    });
    let infinity = matches!(unsigned, ".inf" | ".Inf" | ".INF");
    let date = {
        let parts: Vec<&str> = s.split('-').collect();
        parts.len() == 3
            && parts[0].len() == 4
            && (1..=2).contains(&parts[1].len())
            && (1..=2).contains(&parts[2].len())
            && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit()))
    };
    int || binary || hex || float || infinity || date
}

/// `s` double-quoted, escaped the way yaml-rust2 escaped what it escaped, and
/// `\uXXXX` for the other characters [`must_escape`] names.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\x08' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\x0c' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if must_escape(c) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_written_entry_by_entry_is_the_mapping_written_whole() {
        let doc = serde_json::json!({
            "domains": ["example.com"],
            "users": [{ "primaryEmail": "a@example.com", "contacts": [{ "names": [{ "givenName": "Bo" }] }] },
                      { "primaryEmail": "b@example.com", "name": {} }, "plain", [], [1, [2]]],
            "groups": [],
            "extra": { "nested": { "deeper": ["x"] } },
            "empty": {},
        });
        let mut streamed = Vec::new();
        let mut w = MappingWriter::new(&mut streamed);
        for (key, value) in doc.as_object().unwrap() {
            match value {
                Value::Array(items) => w.sequence(key, items.iter().cloned().map(Ok)).unwrap(),
                other => w.entry(key, other).unwrap(),
            }
        }
        w.finish().unwrap();
        assert_eq!(String::from_utf8(streamed).unwrap(), to_text(&doc));
        let mut empty = Vec::new();
        MappingWriter::new(&mut empty).finish().unwrap();
        assert_eq!(String::from_utf8(empty).unwrap(), to_text(&serde_json::json!({})));
    }
    use serde_json::json;

    /// What yaml-rust2's emitter writes, for comparison.
    fn yaml_rust2(value: &Value) -> String {
        fn to_yaml(v: &Value) -> yaml_rust2::Yaml {
            use yaml_rust2::Yaml;
            match v {
                Value::Null => Yaml::Null,
                Value::Bool(b) => Yaml::Boolean(*b),
                Value::Number(n) => {
                    n.as_i64().map_or_else(|| Yaml::Real(n.to_string()), Yaml::Integer)
                }
                Value::String(s) => Yaml::String(s.clone()),
                Value::Array(items) => Yaml::Array(items.iter().map(to_yaml).collect()),
                Value::Object(map) => Yaml::Hash(
                    map.iter().map(|(k, v)| (Yaml::String(k.clone()), to_yaml(v))).collect(),
                ),
            }
        }
        let mut text = String::new();
        yaml_rust2::YamlEmitter::new(&mut text).dump(&to_yaml(value)).unwrap();
        text.strip_prefix("---\n").unwrap().to_owned() + "\n"
    }

    #[test]
    fn files_without_unusual_characters_are_written_as_before() {
        let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/workspace.yaml");
        let text = std::fs::read_to_string(examples).unwrap();
        let parsed = crate::yaml::parse_documents(&text).unwrap().remove(0).to_json();
        let mut values = vec![parsed];
        values.push(json!({
            "a": [], "b": {}, "c": [[1, [2, {}]], {"d": [{"e": null}]}], "f": [[], {}],
            "g": ["00990", "0x1F", "yes", "", " x", "a: b", "q\"", "1.5", 1.5, -3, true,
                  "tab\there", "line\nbreak", "ünïcödé", "+1 555 0100"],
            "": {"null": "~"},
        }));
        for value in &values {
            assert_eq!(to_text(value), yaml_rust2(value));
        }
    }

    #[test]
    fn what_yaml_1_1_reads_otherwise_is_quoted() {
        for s in [
            "1_000",
            "0b101",
            "+0b1",
            "+0x1F",
            "+.inf",
            "2026-11-23",
            "2026-1-2",
            "1_0.5",
            "1.e+5",
            "+1.5",
        ] {
            assert!(needs_quotes(s), "{s}");
        }
        for s in
            ["+1 555 0100", "1e5x", "2026-11-23x", "1.2.3", "0b", "0b12", "v1.0", "12 St James's"]
        {
            assert!(!yaml11_not_a_string(s), "{s}");
        }
    }

    #[test]
    fn floats_keep_their_value_and_read_as_floats_in_yaml_1_1() {
        assert_eq!(
            to_text(&json!([1e21, 1.5e-7, 0.5, 100.0])),
            "- 1.0e+21\n- 1.5e-7\n- 0.5\n- 100.0\n"
        );
    }
}
