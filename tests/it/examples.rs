//! The examples: the seed scenario validates, and every broken manifest in
//! `examples/invalid/` fails at the line and column its `# expect:` header names.

use crate::{contact_sync, invalid_examples};

#[test]
fn the_seed_scenario_is_valid() {
    let out = contact_sync().args(["validate", "examples/"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    // The tenant file named by the Workspace and the ignored invalid/ folder are
    // not read as manifests.
    assert_eq!(stdout, "2 files, 1 sync: no errors\n");
}

/// `# expect: LINE:COL /pointer` on the second line of each invalid example.
fn expectation(text: &str) -> String {
    let line = text.lines().nth(1).unwrap_or_default();
    let expect =
        line.strip_prefix("# expect: ").expect("second line is `# expect: LINE:COL /pointer`");
    let (position, pointer) = expect.split_once(' ').unwrap_or((expect, ""));
    if pointer.trim().is_empty() {
        format!("{position}: ")
    } else {
        format!("{position}: {}: ", pointer.trim())
    }
}

#[test]
fn every_invalid_example_fails_at_the_expected_place() {
    let files = invalid_examples();
    assert!(files.len() >= 15, "one broken manifest per kind of error, found {}", files.len());
    for file in files {
        let rel = file.strip_prefix(crate::root()).unwrap().to_str().unwrap().to_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        let expected = format!("{rel}:{}", expectation(&text));
        let out = contact_sync().args(["validate", &rel]).assert().code(1);
        let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
        assert!(
            stdout.lines().any(|l| l.starts_with(&expected)),
            "{rel}: expected a line starting with {expected:?}, got:\n{stdout}"
        );
        assert!(stdout.lines().last().unwrap().contains("error"), "{rel}: no summary:\n{stdout}");
    }
}

#[test]
fn all_errors_are_reported_not_just_the_first() {
    let files = invalid_examples();
    let out = contact_sync().args(["validate", "examples/invalid"]).assert().code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    let errors = stdout.lines().filter(|l| l.starts_with("examples/invalid/")).count();
    // Files with a cross-document error share names with each other, so there are
    // at least as many errors as files.
    assert!(errors >= files.len(), "{errors} errors for {} files:\n{stdout}", files.len());
    let summary = stdout.lines().last().unwrap();
    assert!(summary.starts_with(&format!("{} files, ", files.len())), "{summary}");
    assert!(summary.ends_with(&format!(": {errors} errors")), "{summary}");
}

#[test]
fn the_tenant_file_alone_is_not_a_manifest() {
    let out = contact_sync().args(["validate", "examples/workspace.yaml"]).assert().code(1);
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("this looks like a local workspace file"), "{stdout}");
}
