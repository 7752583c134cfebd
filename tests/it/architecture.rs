//! The layers stay where they are: the planner pure (no async runtime, no I/O, no
//! backend) and the only place that decides; the model on its own; the emulator
//! independent of the backend it stands in for.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `src/<dir>`, recursively.
fn sources(dir: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&crate::root().join("src").join(dir), &mut out);
    out.sort();
    out
}

/// The file's code: comment lines left out (doc links may name anything).
fn code(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_planner_imports_no_runtime_io_or_backend() {
    let files = sources("plan");
    for path in &files {
        let text = code(path);
        for forbidden in [
            "tokio::",
            "reqwest::",
            "crate::backend",
            "std::fs",
            "std::net",
            "async fn",
            "futures::",
        ] {
            assert!(!text.contains(forbidden), "{} uses {forbidden}", path.display());
        }
    }
    assert!(files.len() >= 6);
}

#[test]
fn plan_errors_and_reasons_are_made_in_the_planner_only() {
    let plan = crate::root().join("src/plan");
    for path in sources("").iter().filter(|p| !p.starts_with(&plan)) {
        let text = code(path);
        for forbidden in ["PlanError::new(", "PlanError {", "ErrorKind::", "Reason::"] {
            assert!(
                !text.contains(forbidden),
                "{} uses {forbidden}: plan decisions belong to src/plan",
                path.display()
            );
        }
    }
}

/// The identifiers of a piece of code.
fn identifiers(code: &str) -> std::collections::BTreeSet<&str> {
    code.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect()
}

/// The names of the `pub struct`s and `pub enum`s of a file.
fn public_types(path: &Path) -> Vec<String> {
    let text = code(path);
    text.split("pub ")
        .filter_map(|rest| rest.strip_prefix("struct ").or_else(|| rest.strip_prefix("enum ")))
        .filter_map(|rest| rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next())
        .map(str::to_owned)
        .filter(|name| name.starts_with(|c: char| c.is_uppercase()))
        .collect()
}

#[test]
fn the_driver_only_reads() {
    let root = crate::root();
    let driver = code(&root.join("src/reader.rs"));
    let names = identifiers(&driver);
    // It writes nothing: it calls none of the Backend trait's writes.
    let backend = code(&root.join("src/backend/mod.rs"));
    let start = backend.find("pub trait Backend").expect("the Backend trait");
    let end = start + backend[start..].find("\n}").expect("the trait's end");
    let methods: Vec<&str> =
        backend[start..end].split("fn ").skip(1).filter_map(|m| m.split('(').next()).collect();
    let writes: Vec<&str> = methods
        .iter()
        .copied()
        .filter(|m| {
            ["create_", "update_", "delete_", "modify_", "write_", "commit", "guard_writes"]
                .iter()
                .any(|w| m.starts_with(w))
                || m.ends_with("_lease")
        })
        .collect();
    assert!(writes.len() >= 10, "the trait's writes are found: {writes:?} of {methods:?}");
    for write in &writes {
        assert!(!names.contains(write), "the driver calls Backend::{write}: it only reads");
    }
    // It decides nothing: of the plan's types it names only its input and the
    // plan the planner hands back — no status, action, reason or error of its own.
    let plan_types: Vec<String> = ["src/plan/mod.rs", "src/plan/error.rs"]
        .iter()
        .flat_map(|f| public_types(&root.join(f)))
        .collect();
    assert!(plan_types.iter().any(|t| t == "Status") && plan_types.len() >= 10, "{plan_types:?}");
    for name in plan_types.iter().filter(|t| !["PlanInput", "Plan"].contains(&t.as_str())) {
        assert!(
            !names.contains(name.as_str()),
            "the driver names plan::{name}: decisions belong to src/plan"
        );
    }
    assert!(root.join("src/directory/mod.rs").is_file());
}

#[test]
fn the_model_depends_on_nothing_of_the_crate() {
    for path in sources("model") {
        assert!(!code(&path).contains("crate::"), "{} imports from the crate", path.display());
    }
}

#[test]
fn the_emulator_does_not_use_the_backend_it_stands_in_for() {
    for path in sources("emulator") {
        assert!(
            !code(&path).contains("backend::google"),
            "{} uses the google backend; share through crate::google_api",
            path.display()
        );
    }
}
