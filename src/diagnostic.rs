//! Diagnostics that point into manifest files, and the three ways they are printed:
//! `file:line:col: /pointer: message` lines (the contract scripts and editors rely
//! on), GitHub Actions `::error` annotations for CI, and, on a terminal, the same
//! line followed by a rustc-style snippet rendered by miette.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use crate::yaml::Mark;

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
        let start = self.mark.offset.min(text.len());
        let line = text[start..].lines().next().unwrap_or("");
        let token = match line.find(" #") {
            Some(i) => &line[..i],
            None => line,
        };
        token.trim_end().len().max(1)
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.path.display(), self.mark.line, self.mark.column)
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
}

impl Diagnostic {
    /// A problem at a position in a file.
    pub fn at(location: Location, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        let pointer = pointer.into();
        Self {
            location: Some(location),
            pointer: (!pointer.is_empty()).then_some(pointer),
            message: message.into(),
        }
    }

    /// A problem with no position.
    pub fn bare(message: impl Into<String>) -> Self {
        Self { location: None, pointer: None, message: message.into() }
    }

    /// The pointer and message: `/spec/source/user: message`.
    fn body(&self) -> String {
        match &self.pointer {
            Some(p) => format!("{p}: {}", self.message),
            None => self.message.clone(),
        }
    }

    /// Renders the `::error` workflow command GitHub Actions turns into an annotation.
    pub fn to_github(&self) -> String {
        let body = escape_github_data(&self.body());
        match &self.location {
            Some(loc) => format!(
                "::error file={},line={},col={},title=contact-sync::{body}",
                escape_github_property(&loc.file.path.display().to_string()),
                loc.mark.line,
                loc.mark.column,
            ),
            None => format!("::error title=contact-sync::{body}"),
        }
    }

    /// Renders a rustc-style snippet of the offending line (for terminals).
    pub fn snippet(&self, color: bool) -> Option<String> {
        let loc = self.location.as_ref()?;
        let theme =
            if color { GraphicalTheme::unicode() } else { GraphicalTheme::unicode_nocolor() };
        let report = miette::MietteDiagnostic::new(self.body()).with_label(LabeledSpan::at(
            SourceSpan::new(loc.mark.offset.into(), loc.span_len()),
            "here",
        ));
        let report = miette::Report::new(report).with_source_code(NamedSource::new(
            loc.file.path.display().to_string(),
            loc.file.text.clone(),
        ));
        let mut out = String::new();
        GraphicalReportHandler::new_themed(theme)
            .with_context_lines(1)
            .render_report(&mut out, report.as_ref())
            .ok()?;
        Some(out)
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
        let d = Diagnostic::at(location("a: b\n", 1, 4, 3), "/a", "50% wrong\nreally");
        assert_eq!(
            d.to_github(),
            "::error file=syncs/a.yaml,line=1,col=4,title=contact-sync::/a: 50%25 wrong%0Areally"
        );
    }

    #[test]
    fn snippet_underlines_the_token_without_its_comment() {
        let loc = location("user: bob@ # the source\n", 1, 7, 6);
        assert_eq!(loc.span_len(), 4);
        let snippet = Diagnostic::at(loc, "/user", "not an address").snippet(false).unwrap();
        assert!(snippet.contains("user: bob@"), "{snippet}");
        assert!(snippet.contains("────"), "{snippet}");
    }
}
