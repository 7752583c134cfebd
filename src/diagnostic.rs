//! Diagnostics that point into manifest files, and the three ways they are printed:
//! `file:line:col: /pointer: message` lines (the contract scripts and editors rely
//! on), GitHub Actions `::error` annotations for CI, and, on a terminal, the same
//! line followed by a rustc-style snippet rendered by miette.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents,
    SourceCode, SourceSpan, SpanContents,
};

use crate::text::printable;
use crate::yaml::Mark;

/// Longest line shown in a snippet, in bytes: a longer one is not drawn (the
/// `file:line:col` line above it says where the problem is). Keeps terminal output
/// readable, and the renderer away from columns it cannot draw.
const MAX_SNIPPET_LINE: usize = 400;

/// A file that was read, kept whole so diagnostics can show its lines.
#[derive(Debug)]
pub struct SourceFile {
    /// The path as the user gave it (joined with the walked sub-path), for display.
    pub path: PathBuf,
    /// The file's text.
    pub text: String,
}

/// A position inside a [`SourceFile`].
#[derive(Clone, Debug)]
pub struct Location {
    /// The file.
    pub file: Arc<SourceFile>,
    /// Line, column and byte offset.
    pub mark: Mark,
}

impl Location {
    /// Length in bytes of the token at this location: up to the end of the line,
    /// without a trailing comment or whitespace, at least one byte.
    fn span_len(&self) -> usize {
        let text = &self.file.text;
        let start = char_floor(text, self.mark.offset);
        let line = text[start..].lines().next().unwrap_or("");
        let token = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        token.trim_end().len().max(1)
    }
}

/// `i`, within `text` and moved back to the start of the character it falls in (a
/// position inside a multi-byte character counts from that character).
fn char_floor(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.file.path.display().to_string();
        write!(f, "{}:{}:{}", printable(&path), self.mark.line, self.mark.column)
    }
}

/// One problem found in the manifests.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// Where the problem is; `None` for problems with no file (a missing path).
    pub location: Option<Location>,
    /// JSON pointer of the offending value inside its document, e.g. `/spec/source/user`.
    pub pointer: Option<String>,
    /// What is wrong, what was expected, and what to do.
    pub message: String,
    /// This line only says that more problems were found than are listed.
    pub omission: bool,
    /// Which check found it.
    pub kind: Kind,
}

/// Which check found a problem: `validate --format json` names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A path or file that cannot be read, or holds no manifest.
    File,
    /// YAML syntax.
    Yaml,
    /// `apiVersion`, `kind` and the JSON Schema: a missing, unknown or mistyped field.
    Schema,
    /// A rule the schema cannot express: addresses, names, schedules, conflicts
    /// between documents.
    #[default]
    Semantic,
}

impl Diagnostic {
    /// A problem at a position in a file.
    pub fn at(location: Location, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        let pointer = pointer.into();
        Self {
            location: Some(location),
            pointer: (!pointer.is_empty()).then_some(pointer),
            message: message.into(),
            omission: false,
            kind: Kind::default(),
        }
    }

    /// A problem with no position.
    pub fn bare(message: impl Into<String>) -> Self {
        Self {
            location: None,
            pointer: None,
            message: message.into(),
            omission: false,
            kind: Kind::File,
        }
    }

    /// The same problem, found by `kind`.
    pub fn of_kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// One JSON object: `location` (`{file, line, column}`, the form plan errors
    /// have too; and, as earlier versions gave them, `file`, `line`, `column`),
    /// `pointer`, `message`, `kind` (`null` where a problem has no position or
    /// pointer).
    pub fn to_json(&self) -> serde_json::Value {
        let location = self.location.as_ref();
        let file = location.map(|l| l.file.path.display().to_string());
        serde_json::json!({
            "location": location.map(|l| serde_json::json!({
                "file": file,
                "line": l.mark.line,
                "column": l.mark.column,
            })),
            "file": file,
            "line": location.map(|l| l.mark.line),
            "column": location.map(|l| l.mark.column),
            "pointer": self.pointer,
            "message": self.message,
            "kind": self.kind,
        })
    }

    /// The pointer and message: `/spec/source/user: message`, with control
    /// characters (from the values a message quotes) escaped.
    fn body(&self) -> String {
        let body = match &self.pointer {
            Some(p) => format!("{p}: {}", self.message),
            None => self.message.clone(),
        };
        printable(&body).into_owned()
    }

    /// Renders the `::error` workflow command GitHub Actions turns into an annotation.
    pub fn to_github(&self) -> String {
        let body = escape_github_data(&self.body());
        match &self.location {
            Some(loc) => format!(
                "::error file={},line={},col={},title=contact-sync::{body}",
                escape_github_property(&printable(&loc.file.path.display().to_string())),
                loc.mark.line,
                loc.mark.column,
            ),
            None => format!("::error title=contact-sync::{body}"),
        }
    }

    /// Renders a rustc-style snippet of the offending line (for terminals): the
    /// line and its neighbours, control characters escaped; `None` when the line
    /// is too long to draw.
    pub fn snippet(&self, color: bool) -> Option<String> {
        let loc = self.location.as_ref()?;
        let window = Window::around(loc)?;
        let theme =
            if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        let report = miette::MietteDiagnostic::new(self.body())
            .with_label(LabeledSpan::at(window.label, "here"));
        let report = miette::Report::new(report).with_source_code(window);
        let mut out = String::new();
        GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .render_report(&mut out, report.as_ref())
            .ok()?;
        Some(out)
    }
}

/// The lines a snippet shows — the offending line and its neighbours, each escaped
/// — with their place in the file, so that drawing costs what the window holds, not
/// what the file holds.
#[derive(Debug)]
struct Window {
    name: String,
    text: String,
    /// 0-based line number of the window's first line in the file.
    first_line: usize,
    /// The label, in window bytes.
    label: SourceSpan,
}

impl Window {
    fn around(loc: &Location) -> Option<Self> {
        let text = &loc.file.text;
        let floor = |i: usize| char_floor(text, i);
        let offset = floor(loc.mark.offset);
        let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        let line = text[start..end].trim_end_matches('\r');
        if line.len() > MAX_SNIPPET_LINE {
            return None;
        }
        let shown = |l: &str| {
            let l = l.trim_end_matches('\r');
            (l.len() <= MAX_SNIPPET_LINE).then(|| printable(l).into_owned())
        };
        let before = text[..start.saturating_sub(1)].rsplit('\n').next().filter(|_| start > 0);
        let after = text.get(end + 1..).and_then(|rest| rest.split('\n').next());
        let before = before.and_then(shown);
        let after = after.and_then(shown);
        let mut window = String::new();
        if let Some(b) = &before {
            window.push_str(b);
            window.push('\n');
        }
        let token_end =
            floor(offset + loc.span_len().min((start + line.len()).saturating_sub(offset)));
        let token = &text[offset..token_end.max(offset)];
        let label_start = window.len() + printable(&text[start..offset]).len();
        let label_len = printable(token).len().max(1);
        window.push_str(&printable(line));
        if let Some(a) = &after {
            window.push('\n');
            window.push_str(a);
        }
        window.push('\n');
        Some(Self {
            name: printable(&loc.file.path.display().to_string()).into_owned(),
            text: window,
            first_line: loc.mark.line.saturating_sub(1 + usize::from(before.is_some())),
            label: SourceSpan::new(label_start.into(), label_len),
        })
    }
}

impl SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner =
            self.text.as_str().read_span(span, context_lines_before, context_lines_after)?;
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            inner.column(),
            inner.line_count(),
        )))
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.location {
            Some(loc) => write!(f, "{loc}: {}", self.body()),
            None => write!(f, "error: {}", self.body()),
        }
    }
}

fn escape_github_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_github_property(s: &str) -> String {
    escape_github_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(text: &str, line: usize, column: usize, offset: usize) -> Location {
        let file = Arc::new(SourceFile { path: "syncs/a.yaml".into(), text: text.into() });
        Location { file, mark: Mark { line, column, offset } }
    }

    #[test]
    fn plain_format_is_file_line_col_pointer_message() {
        let d = Diagnostic::at(location("a: b\n", 1, 4, 3), "/a", "bad value");
        assert_eq!(d.to_string(), "syncs/a.yaml:1:4: /a: bad value");
        assert_eq!(Diagnostic::bare("no such path").to_string(), "error: no such path");
    }

    #[test]
    fn github_annotations_escape_their_data() {
        let d = Diagnostic::at(location("a: b\n", 1, 4, 3), "/a", "50% wrong\nreally\x1b[2J");
        // A line break or ESC quoted from a value is shown, never acted on: no
        // second annotation line, no terminal control.
        assert_eq!(
            d.to_github(),
            "::error file=syncs/a.yaml,line=1,col=4,title=contact-sync::/a: 50%25 wrong\\nreally\\u{1b}[2J"
        );
    }

    #[test]
    fn a_snippet_past_65535_columns_does_not_panic() {
        let text = format!("a: {}\nbogus: 1\n", "x".repeat(70_000));
        let far = Diagnostic::at(location(&text, 1, 70_001, 70_000), "/a", "too long");
        assert_eq!(far.snippet(true), None, "a line this long is not drawn");
        let next = Diagnostic::at(location(&text, 2, 1, 70_004), "/bogus", "unknown field");
        let snippet = next.snippet(false).unwrap();
        assert!(snippet.contains("bogus: 1") && snippet.contains(" 2 │"), "{snippet}");
    }

    #[test]
    fn snippet_underlines_the_token_without_its_comment() {
        let loc = location("user: bob@ # the source\n", 1, 7, 6);
        assert_eq!(loc.span_len(), 4);
        let snippet = Diagnostic::at(loc, "/user", "not an address").snippet(false).unwrap();
        assert!(snippet.contains("user: bob@"), "{snippet}");
        assert!(snippet.contains("────"), "{snippet}");
    }

    #[test]
    fn a_position_inside_a_multibyte_character_does_not_panic() {
        // What the fuzz test found: a mark in the middle of a no-break space.
        for offset in 0..=2 {
            let d = Diagnostic::at(location("\u{a0}", 1, 1, offset), "", "not a mapping");
            assert!(
                d.snippet(false).is_some_and(|s| s.contains("\\u{a0}") || s.contains('\u{a0}'))
            );
        }
    }
}
