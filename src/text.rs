//! Text from manifests, tenants and servers on its way to a terminal, a log or a
//! CI annotation: every character that could act instead of being shown (a line
//! break that starts a forged `::error::` line, an ESC that clears the screen, a
//! bidirectional override that reorders what a reviewer reads) is written as a
//! visible escape.

use std::borrow::Cow;
use std::fmt::Write;

/// Whether `c` is shown as an escape: C0 and C1 controls (line breaks, ESC, NEL,
/// DEL included), Unicode line and paragraph separators, bidirectional controls,
/// zero-width characters and the byte-order mark.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200B}'..='\u{200F}'
                | '\u{2028}'..='\u{202E}'
                | '\u{2060}'..='\u{2069}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// `s` with every [`is_unsafe`] character escaped: `\n`, `\r`, `\t`, or `\u{1b}`
/// style (a backslash already in `s` is kept as it is: the escapes are for a
/// person to read, not to be parsed back). Borrowed when nothing needs escaping.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// An error and its causes on one line, each cause once (a message that already
/// quotes its cause does not get it appended again), control characters escaped.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    printable(&out).into_owned()
}

/// `name` in lower case, without leading, trailing or repeated white space and
/// without invisible characters (zero-width spaces and joiners, the BOM, soft
/// hyphens).
pub fn fold_group_name(name: &str) -> String {
    let visible: String = name
        .chars()
        .filter(|c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'))
        .collect();
    visible.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_invisible_characters_are_escaped() {
        assert_eq!(
            printable("Europe/Berln\n::error::X\x1b[2J"),
            "Europe/Berln\\n::error::X\\u{1b}[2J"
        );
        assert_eq!(
            printable("a\u{85}b\u{2028}c\u{202e}d\u{7f}"),
            "a\\u{85}b\\u{2028}c\\u{202e}d\\u{7f}"
        );
        assert!(matches!(printable("Zoë Ångström, 東京 +1 555"), Cow::Borrowed(_)));
    }
}
