//! Spanned YAML: every node of a parsed document remembers the line and column it
//! came from, so that an error found anywhere later — by the JSON Schema, by a
//! semantic check, by the planner — can point at `file:line:column`.
//!
//! `serde_yaml` parses into values without positions, which is why manifests are
//! read through `yaml-rust2`'s event parser and built into [`Node`] trees here.
//! The same pass enforces the two resource limits of the loader: aliases may not
//! expand a document beyond a fixed budget (the "billion laughs" alias bomb), and
//! mapping keys must be unique scalars.

pub mod emit;

use std::collections::{HashMap, HashSet};

use serde_json::Value;
use yaml_rust2::Yaml;
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// How many nodes alias expansion may add on top of the nodes written out in the
/// text. Generous for hand-written manifests (which rarely use aliases at all), and
/// small enough that an alias bomb is refused long before memory runs out.
const ALIAS_BUDGET_BASE: usize = 100_000;

/// How many bytes of scalars alias expansion may copy, on top of twice the text's
/// own size: an alias of a long string repeated is a bomb too, in bytes rather
/// than in nodes.
const ALIAS_BYTES_BASE: usize = 4 * 1024 * 1024;

/// A position in a source text. `line` and `column` count from 1, `column` in
/// characters; `offset` is the byte offset of that position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Mark {
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// Byte offset into the source text.
    pub offset: usize,
}

/// One node of a YAML document with the position of its first character.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// What the node holds.
    pub value: NodeValue,
    /// Where the node starts in the source.
    pub mark: Mark,
}

/// The value of a [`Node`]: YAML's core schema types.
#[derive(Clone, Debug, PartialEq)]
pub enum NodeValue {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in an `i64`.
    Int(i64),
    /// A floating point number.
    Float(f64),
    /// Any other scalar, quoted or not.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order; keys are scalars and unique.
    Map(Vec<(Node, Node)>),
}

/// Why a text could not be read as YAML.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// What went wrong, worded for the person who wrote the file.
    pub message: String,
    /// Where it went wrong.
    pub mark: Mark,
}

impl Node {
    /// The string value, if this node is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value under `key`, if this node is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entry(key).map(|(_, v)| v)
    }

    /// The key node and value node under `key`, if this node is a mapping that has it.
    pub fn entry(&self, key: &str) -> Option<(&Node, &Node)> {
        match &self.value {
            NodeValue::Map(entries) => {
                entries.iter().find(|(k, _)| k.is_key(key)).map(|(k, v)| (k, v))
            }
            _ => None,
        }
    }

    /// Whether this node, as a mapping key, is `key` (without allocating for the
    /// usual string key).
    fn is_key(&self, key: &str) -> bool {
        match &self.value {
            NodeValue::String(s) => s == key,
            NodeValue::Seq(_) | NodeValue::Map(_) => false,
            _ => self.key_string().as_deref() == Some(key),
        }
    }

    /// A scalar rendered as a mapping key; `None` for sequences and mappings.
    pub fn key_string(&self) -> Option<String> {
        match &self.value {
            NodeValue::Null => Some("null".into()),
            NodeValue::Bool(b) => Some(b.to_string()),
            NodeValue::Int(i) => Some(i.to_string()),
            NodeValue::Float(f) => Some(f.to_string()),
            NodeValue::String(s) => Some(s.clone()),
            NodeValue::Seq(_) | NodeValue::Map(_) => None,
        }
    }

    /// Follows a JSON pointer (`/spec/destinations/users/0`) as far as it goes.
    ///
    /// Returns the deepest node reached and whether the whole pointer was resolved.
    /// When the last token names a mapping key, the *key* node is returned for a
    /// pointer ending in that key only if `prefer_key` is set — an unknown field is
    /// best shown at its key, a bad value at the value.
    pub fn locate(&self, pointer: &str, prefer_key: bool) -> (&Node, bool) {
        let mut node = self;
        let tokens: Vec<String> = pointer_tokens(pointer).collect();
        for (i, token) in tokens.iter().enumerate() {
            let last = i + 1 == tokens.len();
            let next = match &node.value {
                NodeValue::Map(_) => {
                    node.entry(token).map(|(k, v)| if last && prefer_key { k } else { v })
                }
                NodeValue::Seq(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node, false),
            }
        }
        (node, true)
    }

    /// Converts the tree to JSON for schema validation and typed deserialization.
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => serde_json::Number::from_f64(*f)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(f.to_string())),
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.key_string().unwrap_or_default(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// Number of nodes in this subtree, itself included.
    /// Nodes and bytes of string scalars in this subtree: what copying it costs.
    fn weight(&self) -> (usize, usize) {
        let add = |(n, b): (usize, usize), (m, c): (usize, usize)| (n + m, b + c);
        let children = match &self.value {
            NodeValue::Seq(items) => items.iter().map(Node::weight).fold((0, 0), add),
            NodeValue::Map(entries) => {
                entries.iter().map(|(k, v)| add(k.weight(), v.weight())).fold((0, 0), add)
            }
            NodeValue::String(s) => (0, s.len()),
            _ => (0, 0),
        };
        add((1, 0), children)
    }
}

/// Splits a JSON pointer into its unescaped tokens.
pub fn pointer_tokens(pointer: &str) -> impl Iterator<Item = String> + '_ {
    pointer.split('/').skip(1).map(|t| t.replace("~1", "/").replace("~0", "~"))
}

/// Escapes one token for use in a JSON pointer.
pub fn escape_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

/// Parses every document of a YAML stream. Each document is returned with the mark
/// of its first line; an empty stream yields no documents, and an empty document
/// (`---` followed by nothing) yields a `Null` node.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, Error> {
    let offsets = LineOffsets::new(text);
    let mut builder = Builder {
        offsets: &offsets,
        text,
        stack: Vec::new(),
        anchors: HashMap::new(),
        documents: Vec::new(),
        written: 0,
        expanded: 0,
        expanded_bytes: 0,
    };
    let mut parser = Parser::new_from_str(text);
    loop {
        let (event, marker) = parser.next_token().map_err(|e| Error {
            message: e.info().to_string(),
            mark: builder.mark(*e.marker()),
        })?;
        if event == Event::StreamEnd {
            break;
        }
        builder.event(event, marker)?;
    }
    Ok(builder.documents)
}

/// Line starts, to turn the parser's (line, column) into a position. Lines are
/// split at `\n` only, as editors and `file:line:col` readers count them; the
/// parser also breaks a line at a lone `\r`, which would name lines the file does
/// not have, so its lines are mapped through their first character.
struct LineOffsets {
    /// Byte offset of each line's start.
    starts: Vec<usize>,
    /// Character index of each line's start.
    char_starts: Vec<usize>,
    /// Character index of each of the parser's lines' start (`\n`, `\r\n` and a
    /// lone `\r` end one).
    parser_starts: Vec<usize>,
}

impl LineOffsets {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        let mut char_starts = vec![0];
        let mut parser_starts = vec![0];
        let mut chars = text.char_indices().enumerate().peekable();
        while let Some((n, (i, c))) = chars.next() {
            if c == '\n' {
                starts.push(i + 1);
                char_starts.push(n + 1);
                parser_starts.push(n + 1);
            } else if c == '\r' && chars.peek().is_none_or(|(_, (_, next))| *next != '\n') {
                parser_starts.push(n + 1);
            }
        }
        Self { starts, char_starts, parser_starts }
    }

    /// The position the parser calls `line` (from 1) and `column` (from 0).
    fn mark_at(&self, text: &str, line: usize, column: usize) -> Mark {
        let start = self.parser_starts.get(line.saturating_sub(1)).copied();
        let start = start.unwrap_or_else(|| self.parser_starts.last().copied().unwrap_or(0));
        self.mark_at_char(text, start + column)
    }

    /// The position of the character at `index` (clamped to the end of the text).
    fn mark_at_char(&self, text: &str, index: usize) -> Mark {
        let line = self.char_starts.partition_point(|&c| c <= index).max(1);
        let column = index - self.char_starts[line - 1] + 1;
        let start = self.starts[line - 1].min(text.len());
        let rest = &text[start..];
        let offset = start + rest.char_indices().nth(column - 1).map_or(rest.len(), |(i, _)| i);
        Mark { line, column, offset }
    }
}

/// A collection being built: a sequence, or a mapping with a pending key.
enum Frame {
    Seq {
        node: Node,
        anchor: usize,
    },
    /// `keys`: the keys so far, to refuse a duplicate without a walk over them.
    Map {
        node: Node,
        anchor: usize,
        key: Option<Node>,
        keys: HashSet<String>,
    },
}

struct Builder<'a> {
    offsets: &'a LineOffsets,
    text: &'a str,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    documents: Vec<Node>,
    /// Nodes written out in the text.
    written: usize,
    /// Bytes of strings copied by alias expansion.
    expanded_bytes: usize,
    /// Nodes added by alias expansion.
    expanded: usize,
}

impl Builder<'_> {
    fn mark(&self, marker: Marker) -> Mark {
        // yaml-rust2 counts lines from 1 and columns from 0.
        self.offsets.mark_at(self.text, marker.line(), marker.col())
    }

    fn event(&mut self, event: Event, marker: Marker) -> Result<(), Error> {
        let mark = self.mark(marker);
        match event {
            Event::Scalar(value, style, anchor, tag) => {
                self.written += 1;
                let node = Node { value: resolve_scalar(value, style, tag.as_ref()), mark };
                self.finish(node, anchor, mark)
            }
            Event::SequenceStart(anchor, _) => {
                self.written += 1;
                let node = Node { value: NodeValue::Seq(Vec::new()), mark };
                self.stack.push(Frame::Seq { node, anchor });
                Ok(())
            }
            Event::MappingStart(anchor, _) => {
                self.written += 1;
                let node = Node { value: NodeValue::Map(Vec::new()), mark };
                self.stack.push(Frame::Map { node, anchor, key: None, keys: HashSet::new() });
                Ok(())
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { node, anchor }) | Some(Frame::Map { node, anchor, .. }) => {
                        (node, anchor)
                    }
                    None => return Ok(()),
                };
                self.finish(node, anchor, mark)
            }
            Event::Alias(id) => {
                let node = self.anchors.get(&id).cloned().ok_or_else(|| Error {
                    message: "alias refers to an unknown anchor".into(),
                    mark,
                })?;
                let (nodes, bytes) = node.weight();
                self.expanded += nodes;
                self.expanded_bytes += bytes;
                let budget = ALIAS_BUDGET_BASE + 10 * self.written;
                let byte_budget = ALIAS_BYTES_BASE + 2 * self.text.len();
                if self.expanded > budget || self.expanded_bytes > byte_budget {
                    let what = if self.expanded > budget {
                        format!("{budget} nodes")
                    } else {
                        format!("{} MiB of text", byte_budget / (1024 * 1024))
                    };
                    return Err(Error {
                        message: format!(
                            "YAML aliases expand to more than {what}; this looks like an alias \
                             bomb, so the file is refused. Write the values out or use fewer \
                             nested aliases"
                        ),
                        mark,
                    });
                }
                self.finish(Node { mark, ..node }, 0, mark)
            }
            Event::DocumentEnd => {
                self.anchors.clear();
                Ok(())
            }
            Event::StreamStart | Event::DocumentStart | Event::StreamEnd | Event::Nothing => Ok(()),
        }
    }

    /// Attaches a finished node to its parent (or ends the document).
    fn finish(&mut self, node: Node, anchor: usize, mark: Mark) -> Result<(), Error> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { node: parent, .. }) => {
                if let NodeValue::Seq(items) = &mut parent.value {
                    items.push(node);
                }
            }
            Some(Frame::Map { node: parent, key, keys, .. }) => match key.take() {
                None => {
                    let Some(name) = node.key_string() else {
                        return Err(Error {
                            message: "a mapping key must be a plain value, not a list or mapping"
                                .into(),
                            mark,
                        });
                    };
                    // yaml-rust2 marks a block mapping at the `:` of its first key;
                    // the mapping really starts at that key.
                    if node.mark.offset < parent.mark.offset {
                        parent.mark = node.mark;
                    }
                    if !keys.insert(name.clone()) {
                        return Err(Error {
                            message: format!("duplicate key `{name}`; each key may appear once"),
                            mark: node.mark,
                        });
                    }
                    *key = Some(node);
                }
                Some(k) => {
                    if let NodeValue::Map(entries) = &mut parent.value {
                        entries.push((k, node));
                    }
                }
            },
        }
        Ok(())
    }
}

/// Applies YAML 1.2's core schema to a scalar: quoted scalars and `!!str` are
/// strings, plain scalars may be null, booleans or numbers — but only numbers
/// written the plain decimal way. `00990`, `0x1F`, `0o17` and floats too large for
/// an f64 (a hash such as `591e982386405251`) stay strings: no manifest field wants
/// them as numbers, and reading them as numbers would corrupt ids and hashes.
fn resolve_scalar(value: String, style: TScalarStyle, tag: Option<&Tag>) -> NodeValue {
    let tagged_str = tag.is_some_and(|t| t.suffix == "str");
    if style != TScalarStyle::Plain || tagged_str {
        return NodeValue::String(value);
    }
    let digits = value.trim_start_matches(['+', '-']);
    let leading_zero = digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0.");
    match Yaml::from_str(&value) {
        Yaml::Null => NodeValue::Null,
        Yaml::Boolean(b) => NodeValue::Bool(b),
        Yaml::Integer(i) if !leading_zero && digits.bytes().all(|b| b.is_ascii_digit()) => {
            NodeValue::Int(i)
        }
        Yaml::Real(r) if !leading_zero => match r.parse::<f64>() {
            Ok(f) if f.is_finite() => NodeValue::Float(f),
            _ => NodeValue::String(value),
        },
        _ => NodeValue::String(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_carry_line_and_column() {
        let docs = parse_documents("a: 1\nb:\n  - x\n  - \"é y\"\n").unwrap();
        let (n, found) = docs[0].locate("/b/1", false);
        assert!(found);
        assert_eq!(n.as_str(), Some("é y"));
        assert_eq!((n.mark.line, n.mark.column, n.mark.offset), (4, 5, 18));
        let (k, _) = docs[0].locate("/b", true);
        assert_eq!((k.mark.line, k.mark.column), (2, 1));
        // A block mapping starts at its first key.
        let docs = parse_documents(
            "a:
  bb: 1
d:
  - x
  - k: 1
",
        )
        .unwrap();
        assert_eq!(docs[0].locate("/a", false).0.mark.line, 2);
        assert_eq!(docs[0].locate("/a", false).0.mark.column, 3);
        assert_eq!(docs[0].locate("/d/1", false).0.mark.column, 5);
    }

    #[test]
    fn columns_count_characters_and_offsets_bytes() {
        let docs = parse_documents("é: [ä, b]\n").unwrap();
        let (n, _) = docs[0].locate("/é/1", false);
        assert_eq!((n.mark.line, n.mark.column), (1, 8));
        assert_eq!(n.mark.offset, "é: [ä, ".len());
    }

    #[test]
    fn several_documents() {
        let docs = parse_documents("a: 1\n---\nb: 2\n---\n").unwrap();
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[1].mark.line, 3);
        assert_eq!(docs[2].value, NodeValue::Null);
    }

    #[test]
    fn scalars_follow_the_core_schema() {
        let docs = parse_documents("[1, '1', true, ~, 1.5, nightly, !!str 2, -3]").unwrap();
        let json = docs[0].to_json();
        assert_eq!(json, serde_json::json!([1, "1", true, null, 1.5, "nightly", "2", -3]));
        // Numbers only in plain decimal form; ids and hashes stay strings.
        let docs = parse_documents("[00990, 0x1F, 0o17, 591e982386405251, 1e3]").unwrap();
        let json = docs[0].to_json();
        assert_eq!(json, serde_json::json!(["00990", "0x1F", "0o17", "591e982386405251", 1000.0]));
    }

    #[test]
    fn duplicate_keys_are_refused_at_the_second_key() {
        let err = parse_documents("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert!(err.message.contains("duplicate key `a`"), "{}", err.message);
        assert_eq!((err.mark.line, err.mark.column), (3, 1));
    }

    #[test]
    fn aliases_expand_but_bombs_are_refused() {
        let docs = parse_documents("a: &x [1, 2]\nb: *x\n").unwrap();
        assert_eq!(docs[0].to_json(), serde_json::json!({"a": [1, 2], "b": [1, 2]}));

        let mut bomb =
            String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h", "i"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i", "j"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        let err = parse_documents(&bomb).unwrap_err();
        assert!(err.message.contains("alias bomb"), "{}", err.message);
    }

    #[test]
    fn a_long_string_repeated_by_aliases_is_a_bomb_too() {
        // Few nodes, many bytes: 70 KB copied 9 × 9 × 9 times would be 51 MB.
        let long = "k".repeat(70_000);
        let text = format!(
            "a: &a [\"{long}\"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        );
        let err = parse_documents(&text).unwrap_err();
        assert!(err.message.contains("MiB of text"), "{}", err.message);
    }

    #[test]
    fn positions_count_lines_as_editors_do() {
        // A lone carriage return ends a line for the parser, not for an editor.
        let text = "# a\r# b\r# c\nb: 1\nc: : :\n";
        let err = parse_documents(text).unwrap_err();
        assert_eq!((err.mark.line, err.mark.column), (3, 4), "{:?}", err.mark);
        assert_eq!(&text[err.mark.offset..err.mark.offset + 1], ":");
        let docs = parse_documents("# a\r# b\na: 1\nb: 2\n").unwrap();
        let NodeValue::Map(entries) = &docs[0].value else { panic!() };
        assert_eq!((entries[1].0.mark.line, entries[1].0.mark.column), (3, 1));
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.mark.line >= 1);
        assert!(!err.message.is_empty());
    }
}
