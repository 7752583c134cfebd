//! Validation of a set of manifests: what `contact-sync validate` prints, and the gate
//! every other command passes through before it touches a backend.
//!
//! Three layers, each reporting every problem it finds rather than the first:
//! 1. loading ([`crate::manifest::load`]): paths, size limit, YAML syntax;
//! 2. per document: `apiVersion` and `kind`, then the generated JSON Schema
//!    ([`schema`]), then typed deserialization;
//! 3. semantic checks the schema cannot express, per document and across documents
//!    ([`checks`]). A document with schema errors gets the per-document checks too,
//!    read without its values in error, in the same run; what they find about a
//!    value the schema already reported is dropped, so one mistake is never
//!    reported twice. Only documents that passed the schema become manifests.

pub mod checks;
pub mod fields;
pub mod schema;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::Diagnostic;
use crate::manifest::{API_VERSION, ContactSync, Document, Located, ManifestSet, Workspace, load};

use self::schema::Kind;

/// The outcome of validating a set of paths.
#[derive(Debug, Default)]
pub struct Report {
    /// Everything that loaded and validated.
    pub manifests: ManifestSet,
    /// Every problem found, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// Number of manifest files examined, readable or not.
    pub files_seen: usize,
    /// Number of `ContactSync` documents seen, valid or not.
    pub syncs_seen: usize,
    /// Problems found but not listed in `diagnostics`, past
    /// [`MAX_ERRORS_PER_FILE`] in one file (a line in `diagnostics` says how many).
    pub omitted: usize,
}

/// Most problems listed for one file: past them a file is broken in one way many
/// times over, and the rest would only bury the first.
pub const MAX_ERRORS_PER_FILE: usize = 100;

impl Report {
    /// Whether no problem was found.
    pub fn is_valid(&self) -> bool {
        self.diagnostics.is_empty()
    }

    /// Problems found, listed or not (the line that says how many were left out
    /// of the list is not one).
    pub fn errors(&self) -> usize {
        self.diagnostics.iter().filter(|d| !d.omission).count() + self.omitted
    }

    /// The JSON document of `validate --format json`, also printed to stdout by
    /// `plan`, `apply` and `resolve --format json` when the manifests are invalid:
    /// `formatVersion` "1", `valid`, `files`, `syncs`, `errors` (the count),
    /// `diagnostics` and `omitted` (those past the per-file cap).
    pub fn to_json(&self) -> serde_json::Value {
        let diagnostics: Vec<serde_json::Value> =
            self.diagnostics.iter().filter(|d| !d.omission).map(Diagnostic::to_json).collect();
        serde_json::json!({
            "formatVersion": "1",
            "valid": self.is_valid(),
            "files": self.files_seen,
            "syncs": self.syncs_seen,
            "errors": self.errors(),
            "diagnostics": diagnostics,
            "omitted": self.omitted,
        })
    }
}

/// The summary line: `3 files, 2 syncs: 4 errors`.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let files = self.files_seen;
        let errors = self.errors();
        write!(
            f,
            "{}, {}: {}",
            plural(files, "file"),
            plural(self.syncs_seen, "sync"),
            if errors == 0 { "no errors".to_owned() } else { plural(errors, "error") }
        )
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// Loads and validates every manifest under `paths`.
pub fn validate_paths(paths: &[PathBuf]) -> Report {
    let mut report = Report::default();
    let (files, errors) = load::manifest_files(paths);
    report.diagnostics.extend(errors.iter().map(|e| Diagnostic::bare(e.to_string())));

    let mut docs = Vec::new();
    for path in &files {
        match load::read_documents(path) {
            Ok((file, file_docs)) => {
                report.manifests.files.push(file);
                docs.extend(file_docs.into_iter().map(Arc::new));
            }
            Err(d) => report.diagnostics.push(d),
        }
    }

    // The local tenant named by a Workspace is data, not a manifest.
    let tenants = tenant_files(&docs);
    let is_tenant = |path: &Path| path.canonicalize().is_ok_and(|p| tenants.contains(&p));
    docs.retain(|d| !is_tenant(&d.file.path));
    report.manifests.files.retain(|f| !is_tenant(&f.path));
    report.files_seen = files.iter().filter(|f| !is_tenant(f)).count();

    let mut workspaces = Vec::new();
    // Documents with schema errors, read without the values in error: their other
    // values still get the semantic checks, in the same run.
    let mut partial = Vec::new();
    let schema_from = report.diagnostics.len();
    for doc in docs {
        match classify(&doc, &mut report.diagnostics) {
            Some(Kind::ContactSync) => {
                report.syncs_seen += 1;
                match typed::<ContactSync>(&doc, Kind::ContactSync, &mut report) {
                    Typed::Valid(value) => report.manifests.syncs.push(Located { value, doc }),
                    Typed::Partial(value, pruned) => {
                        partial.push((Partial::Sync(Located { value, doc }), pruned));
                    }
                    Typed::Invalid => {}
                }
            }
            Some(Kind::Workspace) => match typed::<Workspace>(&doc, Kind::Workspace, &mut report) {
                Typed::Valid(value) => workspaces.push(Located { value, doc }),
                Typed::Partial(value, pruned) => {
                    partial.push((Partial::Workspace(Located { value, doc }), pruned));
                }
                Typed::Invalid => {}
            },
            None => {}
        }
    }
    for d in &mut report.diagnostics[schema_from..] {
        d.kind = crate::diagnostic::Kind::Schema;
    }
    for (doc, pruned) in &partial {
        let mut found = Vec::new();
        match doc {
            Partial::Sync(sync) => checks::check_sync(sync, &mut found),
            Partial::Workspace(ws) => checks::check_workspace(ws, &mut found),
        }
        // What concerns a value in error was said already, by the schema.
        found.retain(|d| {
            let at = d.pointer.as_deref().unwrap_or("");
            !pruned.iter().any(|p| related(at, p))
        });
        report.diagnostics.extend(found);
    }
    checks::check_all(&report.manifests.syncs, &workspaces, &mut report.diagnostics);
    report.manifests.workspace = workspaces.into_iter().next();
    sort(&mut report.diagnostics, &files);
    cap_per_file(&mut report);
    if files.is_empty() && errors.is_empty() {
        report.diagnostics.push(Diagnostic::bare(no_manifests(paths)));
    }
    report
}

/// "no manifest found in deploy/ (looked for *.yaml and *.yml files …)": a run
/// pointed at the wrong folder fails instead of passing on nothing.
fn no_manifests(paths: &[PathBuf]) -> String {
    let paths: Vec<String> = paths
        .iter()
        .map(|p| crate::text::printable(&p.display().to_string()).into_owned())
        .collect();
    format!(
        "no manifest found in {}: looked for *.yaml and *.yml files, hidden entries and \
         {IGNORE} matches skipped; pass the folder that holds the manifests",
        paths.join(", "),
        IGNORE = load::IGNORE_FILE,
    )
}

/// Keeps the first [`MAX_ERRORS_PER_FILE`] problems of each file (they are sorted
/// by position) and says how many more there are.
fn cap_per_file(report: &mut Report) {
    let key = |d: &Diagnostic| d.location.as_ref().map(|l| Arc::as_ptr(&l.file));
    let mut kept = Vec::with_capacity(report.diagnostics.len().min(1024));
    let mut diagnostics = std::mem::take(&mut report.diagnostics).into_iter().peekable();
    while let Some(first) = diagnostics.next() {
        let file = key(&first);
        let mut run = vec![first];
        while let Some(d) = diagnostics.next_if(|d| file.is_some() && key(d) == file) {
            run.push(d);
        }
        if run.len() > MAX_ERRORS_PER_FILE {
            let more = run.len() - MAX_ERRORS_PER_FILE;
            let path = run[0].location.as_ref().map(|l| l.file.path.display().to_string());
            run.truncate(MAX_ERRORS_PER_FILE);
            report.omitted += more;
            let mut line = Diagnostic::bare(format!(
                "{}: {more} more errors not listed (at most {MAX_ERRORS_PER_FILE} are listed per \
                 file); fix the ones above and validate again",
                path.unwrap_or_default()
            ));
            line.omission = true;
            run.push(line);
        }
        kept.extend(run);
    }
    report.diagnostics = kept;
}

/// Canonical paths of the local tenant files that Workspace documents name.
fn tenant_files(docs: &[Arc<Document>]) -> HashSet<PathBuf> {
    docs.iter()
        .filter(|d| d.root.get("kind").and_then(|k| k.as_str()) == Some("Workspace"))
        .filter_map(|d| {
            let rel = d.root.get("spec")?.get("local")?.get("path")?.as_str()?;
            d.file.path.parent().unwrap_or(Path::new(".")).join(rel).canonicalize().ok()
        })
        .collect()
}

/// Checks `apiVersion` and `kind`, the two fields that decide which schema applies.
fn classify(doc: &Document, out: &mut Vec<Diagnostic>) -> Option<Kind> {
    const KINDS: [&str; 2] = ["ContactSync", "Workspace"];
    let not_ours = format!(
        "not a contact-sync manifest: expected a mapping with `apiVersion: {API_VERSION}` \
         and `kind: ContactSync` or `kind: Workspace`"
    );
    if let Some(what) = foreign(doc) {
        let file = doc.file.path.file_name().map(|n| n.to_string_lossy().into_owned());
        out.push(doc.error(
            "",
            format!(
                    "{not_ours}; this looks like {what}: list it in {IGNORE} (a line `{}` in \
                 a {IGNORE} file of the manifest folder, gitignore syntax) so that \
                 contact-sync skips it",
                    file.as_deref()
                        .map_or_else(String::new, |n| crate::text::printable(n).into_owned()),
                    IGNORE = load::IGNORE_FILE,
                ),
        ));
        return None;
    }
    if doc.root.get("apiVersion").is_none() && doc.root.get("kind").is_none() {
        let mut message = not_ours;
        if doc.root.get("users").is_some() || doc.root.get("domains").is_some() {
            message.push_str(
                "; this looks like a local workspace file: name it in the Workspace's \
                 spec.local.path, or list it in .contactsyncignore",
            );
        }
        out.push(doc.error("", message));
        return None;
    }
    let mut ok = true;
    match doc.root.get("apiVersion").map(|v| v.as_str()) {
        Some(Some(API_VERSION)) => {}
        None => {
            out.push(doc.error("", format!("missing `apiVersion`; expected `{API_VERSION}`")));
            ok = false;
        }
        Some(other) => {
            let found = other.map_or_else(|| "a non-string value".to_owned(), |s| format!("`{s}`"));
            out.push(doc.error(
                "/apiVersion",
                format!("unknown apiVersion {found}; expected `{API_VERSION}`"),
            ));
            ok = false;
        }
    }
    let kind = match doc.root.get("kind").map(|v| v.as_str()) {
        Some(Some("ContactSync")) => Some(Kind::ContactSync),
        Some(Some("Workspace")) => Some(Kind::Workspace),
        None => {
            out.push(doc.error("", "missing `kind`; expected `ContactSync` or `Workspace`"));
            None
        }
        Some(other) => {
            let mut message = format!(
                "unknown kind {}; expected `ContactSync` or `Workspace`",
                other.map_or_else(|| "(not a string)".to_owned(), |s| format!("`{s}`"))
            );
            if let Some(best) = other.and_then(|o| did_you_mean(o, KINDS)) {
                message.push_str(&format!(" (did you mean `{best}`?)"));
            }
            out.push(doc.error("/kind", message));
            None
        }
    };
    kind.filter(|_| ok)
}

/// What a YAML file that often sits beside manifests looks like, when `doc` is
/// one: a Kubernetes or kustomize manifest (an `apiVersion` of another API), a
/// GitHub Actions workflow, a GitLab CI file, a Compose file.
fn foreign(doc: &Document) -> Option<&'static str> {
    let has = |key: &str| doc.root.get(key).is_some();
    if let Some(Some(api)) = doc.root.get("apiVersion").map(|v| v.as_str()) {
        let ours = api.split('/').next().is_some_and(|group| group.contains("contact"));
        return match api {
            _ if ours => None,
            a if a.starts_with("kustomize.config.k8s.io/") => Some("a kustomization"),
            _ if has("kind") => Some("a Kubernetes manifest"),
            _ => None,
        };
    }
    if has("kind") {
        return None;
    }
    if has("jobs") && (has("on") || has("runs-on") || has("name")) {
        Some("a GitHub Actions workflow")
    } else if has("stages") || has("include") || has("default") && has("variables") {
        Some("a GitLab CI file")
    } else if has("services") && (has("version") || has("volumes") || has("networks")) {
        Some("a Compose file")
    } else {
        None
    }
}

/// A document with schema errors, read without its values in error.
enum Partial {
    Sync(Located<ContactSync>),
    Workspace(Located<Workspace>),
}

/// What [`typed`] made of a document.
enum Typed<T> {
    /// It passed the schema: a manifest.
    Valid(T),
    /// It failed the schema, and reads without the values at these pointers: for
    /// the semantic checks of the rest only, never a manifest.
    Partial(T, Vec<String>),
    /// It cannot be read.
    Invalid,
}

/// Runs the schema, then deserializes into the typed manifest.
fn typed<T: serde::de::DeserializeOwned>(
    doc: &Document,
    kind: Kind,
    report: &mut Report,
) -> Typed<T> {
    let instance = doc.root.to_json();
    let errors = schema::check(doc, kind, &instance);
    if !errors.is_empty() {
        let pruned: Vec<String> =
            errors.iter().map(|d| d.pointer.clone().unwrap_or_default()).collect();
        report.diagnostics.extend(errors);
        let mut rest = instance;
        for pointer in &pruned {
            if pointer.is_empty() || !remove(&mut rest, pointer) {
                return Typed::Invalid;
            }
        }
        return match serde_json::from_value(rest) {
            Ok(value) => Typed::Partial(value, pruned),
            Err(_) => Typed::Invalid,
        };
    }
    match serde_path_to_error::deserialize(instance) {
        Ok(value) => Typed::Valid(value),
        Err(e) => {
            let pointer: String =
                e.path().iter().map(|s| format!("/{}", escape_segment(s))).collect();
            report.diagnostics.push(doc.error(&pointer, e.into_inner().to_string()));
            Typed::Invalid
        }
    }
}

/// Removes the value at a JSON pointer; false when there is none (a pointer to a
/// sequence item is refused: removing it would shift the others' pointers).
fn remove(value: &mut serde_json::Value, pointer: &str) -> bool {
    let Some((parent, last)) = pointer.rsplit_once('/') else { return false };
    let key = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(serde_json::Value::Object(map)) => map.remove(&key).is_some(),
        _ => false,
    }
}

/// Whether two JSON pointers are the same value or one holds the other.
fn related(a: &str, b: &str) -> bool {
    let holds = |outer: &str, inner: &str| {
        inner.strip_prefix(outer).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    holds(a, b) || holds(b, a)
}

fn escape_segment(s: &serde_path_to_error::Segment) -> String {
    use serde_path_to_error::Segment;
    match s {
        Segment::Seq { index } => index.to_string(),
        Segment::Map { key } => crate::yaml::escape_token(key),
        Segment::Enum { variant } => crate::yaml::escape_token(variant),
        Segment::Unknown => String::new(),
    }
}

/// Sorts diagnostics: those without a file first, then by file (walk order), line
/// and column, so output is stable from run to run.
fn sort(diagnostics: &mut [Diagnostic], files: &[PathBuf]) {
    let rank: std::collections::HashMap<&PathBuf, usize> =
        files.iter().enumerate().map(|(i, f)| (f, i)).collect();
    let order = |d: &Diagnostic| match &d.location {
        None => (0, 0, 0, 0),
        Some(loc) => {
            let file = rank.get(&loc.file.path).copied().unwrap_or(usize::MAX);
            (1, file, loc.mark.line, loc.mark.column)
        }
    };
    diagnostics.sort_by_cached_key(order);
}

/// The candidate closest to `word`, if one is close enough to be a likely typo.
/// Costs what the candidates cost, whatever the length of `word`: a word much
/// longer than every candidate is no typo of one, and is not compared.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    /// Longer than any name a suggestion is made for (the longest time zone name
    /// has 32 characters).
    const MAX_WORD: usize = 64;
    if word.len() > MAX_WORD {
        return None;
    }
    let word = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&word, &c.to_lowercase()), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
