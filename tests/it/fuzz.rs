//! Bounded fuzzing of `validate`: structured mutations of the shipped examples and
//! arbitrary text, each checked the way a user meets the result — every problem
//! has a `file:line:column` inside the file, every way of printing it works (plain
//! line, GitHub annotation, terminal snippet) without a panic and without a raw
//! control character, and no case takes a second. A few cases also go through the
//! binary, which must exit 0 or 1 (a panic is 101).

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;

use contact_sync::validate;

/// The shipped manifests the mutations start from.
fn seeds() -> Vec<String> {
    let mut paths = vec![
        crate::root().join("examples/contact-sync.yaml"),
        crate::root().join("examples/syncs/sales-to-accounting.yaml"),
    ];
    paths.extend(crate::invalid_examples());
    paths.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
}

/// Text a hostile or careless author might put anywhere.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ -~\n\t]{0,40}",
        Just("\u{feff}".to_owned()),
        Just("\x1b[2J\n::error::forged".to_owned()),
        Just("\u{85}\u{2028}\u{202e}\x7f\r".to_owned()),
        Just(": [{".to_owned()),
        Just("&a x\nb: *a\n".to_owned()),
        Just("bogus: 1\n".to_owned()),
        // A line past 65,535 columns (the snippet renderer used to panic there).
        (0..3usize).prop_map(|n| format!("{}: 1 ", "k".repeat(70_000 + n))),
        (1..2000usize).prop_map(|n| "unknown: x\n".repeat(n)),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Insert(prop::sample::Index, String),
    Delete(prop::sample::Index, usize),
    DuplicateLine(prop::sample::Index),
    ReplaceValue(prop::sample::Index, String),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), fragment()).prop_map(|(i, s)| Mutation::Insert(i, s)),
        (any::<prop::sample::Index>(), 1..40usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        any::<prop::sample::Index>().prop_map(Mutation::DuplicateLine),
        (any::<prop::sample::Index>(), fragment()).prop_map(|(i, s)| Mutation::ReplaceValue(i, s)),
    ]
}

/// The char boundary nearest below `i`.
fn boundary(text: &str, i: usize) -> usize {
    (0..=i.min(text.len())).rev().find(|&b| text.is_char_boundary(b)).unwrap_or(0)
}

fn mutate(mut text: String, mutations: &[Mutation]) -> String {
    for m in mutations {
        match m {
            Mutation::Insert(at, s) => {
                let at = boundary(&text, at.index(text.len() + 1));
                text.insert_str(at, s);
            }
            Mutation::Delete(at, n) => {
                let start = boundary(&text, at.index(text.len() + 1));
                let end = boundary(&text, start + n);
                text.replace_range(start..end.max(start), "");
            }
            Mutation::DuplicateLine(at) => {
                let lines: Vec<&str> = text.lines().collect();
                if !lines.is_empty() {
                    let i = at.index(lines.len());
                    let mut out: Vec<&str> = lines[..=i].to_vec();
                    out.extend(&lines[i..]);
                    text = out.join("\n");
                }
            }
            Mutation::ReplaceValue(at, s) => {
                // The value after a `key: ` on some line, as a double-quoted scalar,
                // so that the value itself (not the YAML around it) is hostile.
                let lines: Vec<String> = text.lines().map(str::to_owned).collect();
                if lines.is_empty() {
                    continue;
                }
                let i = at.index(lines.len());
                let mut lines = lines;
                if let Some(colon) = lines[i].find(": ") {
                    let quoted = serde_json::to_string(s).unwrap();
                    lines[i] = format!("{}: {quoted}", &lines[i][..colon]);
                }
                text = lines.join("\n");
            }
        }
    }
    text
}

/// Validates `text` as `syncs/m.yaml` beside the example Workspace and checks what
/// a user would see.
fn check(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(crate::root().join("examples/workspace.yaml"), dir.path().join("workspace.yaml"))
        .unwrap();
    std::fs::copy(
        crate::root().join("examples/contact-sync.yaml"),
        dir.path().join("contact-sync.yaml"),
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("syncs")).unwrap();
    let file = dir.path().join("syncs/m.yaml");
    std::fs::write(&file, text).unwrap();

    let start = Instant::now();
    let report = validate::validate_paths(&[dir.path().to_path_buf()]);
    for d in &report.diagnostics {
        let _colored = d.snippet(true);
        let shown = [d.to_string(), d.to_github(), d.snippet(false).unwrap_or_default()];
        for s in &shown {
            prop_assert!(
                !s.chars().any(|c| c.is_control() && c != '\n'),
                "a raw control character in {s:?}"
            );
        }
        prop_assert!(!shown[0].contains('\n') && !shown[1].contains('\n'), "{:?}", shown[0]);
        if d.omission {
            continue;
        }
        let loc = d.location.as_ref();
        prop_assert!(loc.is_some(), "no position: {d}");
        let loc = loc.unwrap();
        let lines = loc.file.text.lines().count().max(1);
        prop_assert!(loc.mark.line >= 1 && loc.mark.line <= lines + 1, "{d}: {lines} lines");
        prop_assert!(loc.mark.column >= 1, "{d}");
        prop_assert!(loc.mark.offset <= loc.file.text.len(), "{d}");
    }
    let elapsed = start.elapsed();
    prop_assert!(elapsed < Duration::from_secs(1), "took {elapsed:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn mutated_examples_are_reported_never_panic(
        seed in prop::sample::select(seeds()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        check(&mutate(seed, &mutations))?;
    }

    #[test]
    fn arbitrary_text_is_reported_never_panic(text in prop_oneof![any::<String>(), fragment()]) {
        check(&text)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Through the binary: exit 0 or 1, never a panic's 101, and one line per
    /// problem on stdout.
    #[test]
    fn the_binary_exits_0_or_1(
        seed in prop::sample::select(seeds()),
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("m.yaml");
        std::fs::write(&file, mutate(seed, &mutations)).unwrap();
        for format in ["text", "github"] {
            let out = crate::contact_sync()
                .args(["validate", "--format", format])
                .arg(Path::new(&file))
                .output()
                .unwrap();
            let code = out.status.code();
            prop_assert!(matches!(code, Some(0 | 1)), "exit {code:?}: {}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout);
            prop_assert!(!stdout.contains('\x1b'), "a raw ESC in {stdout}");
        }
    }
}

/// The local tenant file, mutated: it loads, or is refused with positioned
/// errors; when it loads, planning against it does not panic either.
fn check_tenant(text: &str) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    for f in ["contact-sync.yaml", "syncs/sales-to-accounting.yaml", ".contactsyncignore"] {
        let to = dir.path().join(f);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        let _ = std::fs::copy(crate::root().join("examples").join(f), &to);
    }
    std::fs::write(dir.path().join("workspace.yaml"), text).unwrap();
    let options = contact_sync::input::LoadOptions {
        paths: vec![dir.path().to_path_buf()],
        ..Default::default()
    };
    let Ok((input, target)) = contact_sync::input::load(&options) else { return Ok(()) };
    match target.open_read_only() {
        Err(e) => {
            let shown = e.to_string();
            prop_assert!(!shown.chars().any(|c| c.is_control() && c != '\n'), "{shown:?}");
        }
        Ok(backend) => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let _ = rt.block_on(contact_sync::reader::plan(backend.as_ref(), &input));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_tenant_files_load_or_are_refused_never_panic(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let seed = std::fs::read_to_string(crate::root().join("examples/workspace.yaml")).unwrap();
        check_tenant(&mutate(seed, &mutations))?;
    }
}
