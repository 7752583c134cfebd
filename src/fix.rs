//! `contact-sync fix`: every address of a manifest that names a renamed user —
//! `source.user`, `destinations.users`, `destinations.exclude.users` — rewritten
//! to the user's primary address, in place. Only the bytes of that scalar change
//! (its quotes, the comments, order and layout of the file stay), found through
//! the start mark the YAML tree keeps of every value; an address whose bytes are
//! not the address as parsed (an escape in a quoted scalar, an alias) is left
//! alone and reported, never guessed at.

use std::path::{Path, PathBuf};

use crate::manifest::ContactSync;
use crate::model::resolution::{SourceResolution, SyncResolution};
use crate::yaml::{Node, NodeValue};

/// One address of a manifest that names a renamed user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rename {
    /// The JSON pointer of the value (`/spec/destinations/users/0`).
    pub pointer: String,
    /// The address as written.
    pub from: String,
    /// The user's primary address now.
    pub to: String,
}

/// The addresses of `sync` that name a renamed user, by what the directory said
/// of them (`resolved`), in manifest order.
pub fn renames(sync: &ContactSync, resolved: &SyncResolution) -> Vec<Rename> {
    let mut found = Vec::new();
    let mut check = |pointer: String, from: &str, user: Option<&crate::model::DirectoryUser>| {
        if let Some(u) = user
            && !u.primary_email.eq_ignore_ascii_case(from)
        {
            found.push(Rename { pointer, from: from.to_owned(), to: u.primary_email.clone() });
        }
    };
    if let (SourceResolution::Personal(user), Some(address)) =
        (&resolved.source, sync.spec.source.user.as_deref())
    {
        check("/spec/source/user".into(), address, user.as_deref());
    }
    let dest = &sync.spec.destinations;
    for (i, (address, user)) in dest.users.iter().zip(&resolved.destinations.users).enumerate() {
        check(format!("/spec/destinations/users/{i}"), address, user.as_ref());
    }
    let exclude = &dest.exclude;
    for (i, (address, user)) in exclude.users.iter().zip(&resolved.exclude.users).enumerate() {
        check(format!("/spec/destinations/exclude/users/{i}"), address, user.as_ref());
    }
    found
}

/// Why a rename could not be written in place.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The value's bytes in the file are not the address as parsed.
    #[error(
        "{}:{line}:{column}: {from} is not written as plain text there (an escape or an \
         alias?); change it to {to} by hand",
        path.display()
    )]
    NotInPlace {
        /// The file.
        path: PathBuf,
        /// Its line.
        line: usize,
        /// Its column.
        column: usize,
        /// The address as parsed.
        from: String,
        /// The new address.
        to: String,
    },
}

/// A byte range of a file to replace, and by what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Edit {
    /// Byte offset of the first byte replaced.
    pub start: usize,
    /// Byte offset past the last byte replaced.
    pub end: usize,
    /// What replaces them.
    pub text: String,
}

/// The edit that writes `rename` over its value in `text`, the file `path`
/// parsed into the document `root`.
pub fn edit(path: &Path, text: &str, root: &Node, rename: &Rename) -> Result<Edit, Error> {
    let (node, found) = root.locate(&rename.pointer, false);
    let not_in_place = || Error::NotInPlace {
        path: path.to_owned(),
        line: node.mark.line,
        column: node.mark.column,
        from: rename.from.clone(),
        to: rename.to.clone(),
    };
    if !found || !matches!(&node.value, NodeValue::String(s) if *s == rename.from) {
        return Err(not_in_place());
    }
    let at = node.mark.offset;
    let rest = text.get(at..).ok_or_else(not_in_place)?;
    // Plain, or quoted with the same quote after it.
    let start = match rest.chars().next() {
        Some(q @ ('"' | '\'')) if rest[1..].strip_prefix(rename.from.as_str()).is_some() => {
            let after = &rest[1 + rename.from.len()..];
            if !after.starts_with(q) {
                return Err(not_in_place());
            }
            at + 1
        }
        _ if rest.starts_with(rename.from.as_str()) => at,
        _ => return Err(not_in_place()),
    };
    Ok(Edit { start, end: start + rename.from.len(), text: rename.to.clone() })
}

/// `text` with `edits` (of distinct ranges) made.
pub fn apply(text: &str, edits: &[Edit]) -> String {
    let mut edits: Vec<&Edit> = edits.iter().collect();
    edits.sort_by_key(|e| e.start);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in edits {
        if e.start < at {
            continue; // the same value twice: made once
        }
        out.push_str(&text[at..e.start]);
        out.push_str(&e.text);
        at = e.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The unified diff of one file's change, as `git diff` prints it (`a/`, `b/`).
pub fn diff(path: &Path, before: &str, after: &str) -> String {
    let name = path.display().to_string();
    let name = name.trim_start_matches("./");
    similar::TextDiff::from_lines(before, after)
        .unified_diff()
        .context_radius(2)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rename(pointer: &str, from: &str, to: &str) -> Rename {
        Rename { pointer: pointer.into(), from: from.into(), to: to.into() }
    }

    fn fixed(text: &str, renames: &[Rename]) -> Result<String, Error> {
        let docs = crate::yaml::parse_documents(text).unwrap();
        let mut edits = Vec::new();
        for r in renames {
            let mut last = None;
            for doc in &docs {
                match edit(Path::new("m.yaml"), text, doc, r) {
                    Ok(e) => edits.push(e),
                    Err(e) => last = Some(e),
                }
            }
            if edits.is_empty() {
                return Err(last.unwrap());
            }
        }
        Ok(apply(text, &edits))
    }

    #[test]
    fn only_the_scalar_changes_whatever_its_style() {
        let text = "spec:\n  source:\n    user: \"sam@example.com\"  # the owner\n  destinations:\n    users: [ 'a@example.com', b@example.com ] # two\n    exclude:\n      users:\n        - c@example.com   # gone\n";
        let out = fixed(
            text,
            &[
                rename("/spec/source/user", "sam@example.com", "samuel@example.com"),
                rename("/spec/destinations/users/0", "a@example.com", "ann@example.com"),
                rename("/spec/destinations/exclude/users/0", "c@example.com", "cy@example.com"),
            ],
        )
        .unwrap();
        assert_eq!(
            out,
            "spec:\n  source:\n    user: \"samuel@example.com\"  # the owner\n  destinations:\n    users: [ 'ann@example.com', b@example.com ] # two\n    exclude:\n      users:\n        - cy@example.com   # gone\n"
        );
    }

    #[test]
    fn an_escaped_address_is_left_alone() {
        let text = "spec:\n  source:\n    user: \"sam\\x40example.com\"\n";
        let e = fixed(text, &[rename("/spec/source/user", "sam@example.com", "s@example.com")])
            .unwrap_err();
        assert!(e.to_string().starts_with("m.yaml:3:11: sam@example.com is not written"), "{e}");
    }

    #[test]
    fn the_diff_names_the_file_as_git_does() {
        let d = diff(Path::new("./syncs/a.yaml"), "a\nb: x@e\nc\n", "a\nb: y@e\nc\n");
        assert!(d.starts_with("--- a/syncs/a.yaml\n+++ b/syncs/a.yaml\n@@ -1,3 +1,3 @@\n"), "{d}");
        assert!(d.contains("\n-b: x@e\n+b: y@e\n"), "{d}");
    }
}
