//! Loading manifests from disk: every `*.yaml`/`*.yml` under the given paths,
//! several documents per file, each document keeping its file and position.
//!
//! Loading only reads and parses; deciding whether a document is a valid manifest
//! is [`crate::validate`]'s job. Problems found here (a missing path, a file over
//! the size limit, YAML that does not parse, an alias bomb) are returned as
//! diagnostics next to whatever did load, so one bad file never hides the errors of
//! the others.
//!
//! Folders are walked recursively in sorted order, skipping hidden entries and
//! whatever a `.contactsyncignore` file (gitignore syntax) lists, so a repository
//! can keep broken examples or tenant fixtures beside its manifests. A file named
//! explicitly on the command line is always read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Location, SourceFile};
use crate::yaml::{self, Node, NodeValue};

use super::{ContactSync, Workspace};

/// Largest manifest file the loader reads.
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// Largest local workspace file (a stand-in tenant holds every user's contacts: a
/// thousand contacts copied to twenty users is already over 10 MiB).
pub const MAX_TENANT_BYTES: u64 = 512 * 1024 * 1024;

/// Name of the ignore file honoured while walking folders.
pub const IGNORE_FILE: &str = ".contactsyncignore";

/// One YAML document of a file.
#[derive(Debug)]
pub struct Document {
    /// The file it came from.
    pub file: Arc<SourceFile>,
    /// Its parsed, spanned content.
    pub root: Node,
}

impl Document {
    /// Where the value at `pointer` is. Falls back to the deepest existing node, so
    /// a missing field is reported at the object that lacks it. A mapping or list
    /// held under a key is reported at its key (`destinations:`), the line a person
    /// looks for.
    pub fn location(&self, pointer: &str) -> Location {
        let (node, found) = self.root.locate(pointer, false);
        let node = match node.value {
            NodeValue::Map(_) | NodeValue::Seq(_) if found => self.root.locate(pointer, true).0,
            _ => node,
        };
        Location { file: self.file.clone(), mark: node.mark }
    }

    /// Where the *key* at the end of `pointer` is (for unknown fields).
    pub fn key_location(&self, pointer: &str) -> Location {
        let (node, _) = self.root.locate(pointer, true);
        Location { file: self.file.clone(), mark: node.mark }
    }

    /// A diagnostic about the value at `pointer`.
    pub fn error(&self, pointer: &str, message: impl Into<String>) -> Diagnostic {
        Diagnostic::at(self.location(pointer), pointer, message)
    }
}

/// A typed manifest together with the document it was read from, so later stages
/// (plan errors, drift reports) can name the file and line to change.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// The typed value.
    pub value: T,
    /// The document it was read from.
    pub doc: Arc<Document>,
}

impl<T> Located<T> {
    /// `file:line:col` of the value at `pointer` in this manifest.
    pub fn location(&self, pointer: &str) -> Location {
        self.doc.location(pointer)
    }
}

/// Every manifest that loaded and validated.
#[derive(Debug, Default)]
pub struct ManifestSet {
    /// The files read, in walk order (manifests only, not the local tenant file).
    pub files: Vec<Arc<SourceFile>>,
    /// The contact syncs, in file order.
    pub syncs: Vec<Located<ContactSync>>,
    /// The Workspace document, if there is one.
    pub workspace: Option<Located<Workspace>>,
}

/// Why a path could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The path does not exist.
    #[error("{}: no such file or folder", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// Reading failed (the cause is part of the message, not a separate source).
    #[error("{}: cannot read: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The file exceeds the limit.
    #[error(
        "{path}: file is {size} bytes, over the limit of {limit} bytes ({} MiB); split it into \
         several files",
        limit / 1024 / 1024
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file is not UTF-8.
    #[error("{path}: not UTF-8 text; save the file as UTF-8")]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
}

/// Lists the manifest files under `paths`: folders recursively (sorted, hidden
/// entries and `.contactsyncignore` matches skipped, symbolic links followed — a
/// manifest behind a link is part of the set, not an orphan), files as given.
pub fn manifest_files(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<LoadError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for root in paths {
        if !root.exists() {
            errors.push(LoadError::NotFound { path: root.clone() });
            continue;
        }
        if root.is_file() {
            files.push(root.clone());
            continue;
        }
        let walker = ignore::WalkBuilder::new(root)
            .standard_filters(false)
            .hidden(true)
            .follow_links(true)
            .add_custom_ignore_filename(IGNORE_FILE)
            .sort_by_file_path(|a, b| a.cmp(b))
            .build();
        for entry in walker {
            match entry {
                Ok(e) if e.file_type().is_some_and(|t| t.is_file()) && is_yaml(e.path()) => {
                    files.push(e.into_path());
                }
                Ok(_) => {}
                Err(e) => errors.push(LoadError::Io {
                    path: root.clone(),
                    error: std::io::Error::other(e.to_string()),
                }),
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.canonicalize().unwrap_or_else(|_| f.clone())));
    (files, errors)
}

fn is_yaml(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// Reads a file of at most `limit` bytes as UTF-8, without reading more than the
/// limit even if the file grows while it is read. A byte-order mark (some Windows
/// editors write one) is dropped: it is not part of the text.
pub fn read_limited(path: &Path, limit: u64) -> Result<String, LoadError> {
    let io = |error| LoadError::Io { path: path.to_path_buf(), error };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    if size > limit {
        return Err(LoadError::TooLarge { path: path.to_path_buf(), size, limit });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        let size = bytes.len() as u64;
        return Err(LoadError::TooLarge { path: path.to_path_buf(), size, limit });
    }
    if bytes.starts_with("\u{feff}".as_bytes()) {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 { path: path.to_path_buf() })
}

/// Reads and parses one file into its documents. Empty documents (a stray `---`, a
/// file of comments) are dropped.
pub fn read_documents(path: &Path) -> Result<(Arc<SourceFile>, Vec<Document>), Diagnostic> {
    let text = read_limited(path, MAX_FILE_BYTES).map_err(|e| Diagnostic::bare(e.to_string()))?;
    let file = Arc::new(SourceFile { path: path.to_path_buf(), text });
    let roots = yaml::parse_documents(&file.text).map_err(|e| {
        let location = Location { file: file.clone(), mark: e.mark };
        Diagnostic::at(location, "", format!("invalid YAML: {}", e.message))
            .of_kind(crate::diagnostic::Kind::Yaml)
    })?;
    let docs = roots
        .into_iter()
        .filter(|root| root.value != NodeValue::Null)
        .map(|root| Document { file: file.clone(), root })
        .collect();
    Ok((file, docs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_folders_sorted_and_honours_the_ignore_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("b/broken")).unwrap();
        std::fs::create_dir_all(p.join(".hidden")).unwrap();
        for f in ["z.yaml", "a.yml", "b/c.yaml", "b/broken/x.yaml", ".hidden/h.yaml", "n.txt"] {
            std::fs::write(p.join(f), "a: 1\n").unwrap();
        }
        std::fs::write(p.join(IGNORE_FILE), "broken/\n").unwrap();
        let (files, errors) = manifest_files(&[p.to_path_buf()]);
        assert!(errors.is_empty());
        let names: Vec<_> =
            files.iter().map(|f| f.strip_prefix(p).unwrap().to_str().unwrap().to_owned()).collect();
        assert_eq!(names, ["a.yml", "b/c.yaml", "z.yaml"]);

        // Named explicitly, an ignored file is read all the same.
        let (files, _) = manifest_files(&[p.join("b/broken/x.yaml")]);
        assert_eq!(files.len(), 1);
    }

    #[test]
    fn manifests_behind_symbolic_links_are_read() {
        // git-sync checks a repository out behind a link; people link shared syncs in.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::create_dir_all(p.join("elsewhere/team")).unwrap();
        std::fs::create_dir_all(p.join("manifests")).unwrap();
        std::fs::write(p.join("elsewhere/team/sync.yaml"), "a: 1\n").unwrap();
        std::fs::write(p.join("elsewhere/one.yaml"), "a: 1\n").unwrap();
        std::os::unix::fs::symlink(p.join("elsewhere/team"), p.join("manifests/team")).unwrap();
        std::os::unix::fs::symlink(p.join("elsewhere/one.yaml"), p.join("manifests/one.yaml"))
            .unwrap();
        let (files, errors) = manifest_files(&[p.join("manifests")]);
        assert!(errors.is_empty(), "{errors:?}");
        let names: Vec<_> = files
            .iter()
            .map(|f| f.strip_prefix(p.join("manifests")).unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["one.yaml", "team/sync.yaml"]);
    }

    #[test]
    fn missing_paths_are_reported() {
        let (files, errors) = manifest_files(&["/nonexistent/contact-sync".into()]);
        assert!(files.is_empty());
        assert!(errors[0].to_string().contains("no such file or folder"));
    }

    #[test]
    fn files_over_the_limit_are_refused_without_reading_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(MAX_FILE_BYTES + 1).unwrap();
        let err = read_limited(&path, MAX_FILE_BYTES).unwrap_err();
        assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("10 MiB"));
    }

    #[test]
    fn a_byte_order_mark_is_not_part_of_the_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "\u{feff}apiVersion: contact-sync/v1\n").unwrap();
        let (_, docs) = read_documents(&path).unwrap();
        assert!(docs[0].root.get("apiVersion").is_some());
        assert_eq!(docs[0].root.mark.column, 1);
    }

    #[test]
    fn empty_documents_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, "---\n# nothing\n---\na: 1\n---\n").unwrap();
        let (_, docs) = read_documents(&path).unwrap();
        assert_eq!(docs.len(), 1);
        assert_eq!(docs[0].root.mark.line, 4);
    }
}
