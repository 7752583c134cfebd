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

#[test]
fn the_driver_only_reads() {
    let driver = crate::root().join("src/reader.rs");
    let lines = std::fs::read_to_string(&driver).unwrap().lines().count();
    assert!(lines < 150, "the driver has grown to {lines} lines: decisions belong to src/plan");
    assert!(crate::root().join("src/directory/mod.rs").is_file());
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
