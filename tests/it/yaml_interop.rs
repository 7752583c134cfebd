//! The tenant file as other programs read it: a tenant full of strings that YAML
//! readers handle differently is written, checked to hold only characters every
//! reader accepts raw, and read back. The file and the data it must read as (JSON)
//! are kept in `$CARGO_TARGET_TMPDIR/yaml-interop/` (`hostile.yaml`,
//! `hostile.json`) for a second, independent reader to compare.

use serde_json::{Map, Value, json};

use contact_sync::backend::tenant::{self, TenantContact, TenantFile, TenantUser};

/// Strings YAML readers disagree about, refuse raw, or take for another scalar.
fn hostile_strings() -> Vec<String> {
    let mut strings: Vec<String> = (0u32..=0xa0)
        .chain([0x2028, 0x2029, 0xfeff, 0xfffe, 0xffff, 0xfffd, 0xe000, 0x1f600, 0x10ffff])
        .filter_map(char::from_u32)
        .flat_map(|c| [c.to_string(), format!("a{c}b"), format!("{c} x {c}")])
        .collect();
    strings.extend(
        [
            "",
            " ",
            "  lead",
            "trail  ",
            "\"",
            "'",
            "\\",
            "\\n",
            "a\"b'c\\d",
            "a: b",
            "a:b",
            "a :b",
            "a #b",
            "a#b",
            "#c",
            "- x",
            "-",
            "--- x",
            "---",
            "...",
            "? x",
            ": x",
            "[a]",
            "{a: b}",
            "a, b",
            "&anchor",
            "*alias",
            "!tag",
            "!!str",
            "|",
            ">",
            "%YAML 1.1",
            "@x",
            "`x`",
            "=",
            "<<",
            "~",
            "null",
            "Null",
            "NULL",
            "true",
            "True",
            "FALSE",
            "yes",
            "No",
            "on",
            "OFF",
            "y",
            "n",
            "Y",
            "N",
            "0",
            "-1",
            "+12",
            "012",
            "00990",
            "0o17",
            "0x1F",
            "+0x1F",
            "0b101",
            "+0b1",
            "1_000",
            "1_",
            "1.5",
            "1.",
            ".5",
            "1e3",
            "1.0e+3",
            "1_0.5",
            ".inf",
            "+.inf",
            "-.inf",
            ".NaN",
            "12:30",
            "190:20:30",
            "2026-11-23",
            "2026-1-2",
            "2026-11-23T10:00:00Z",
            "+1 555 0100",
            "multi\nline\n",
            "\r\n",
            "\n\n",
            "tab\tin",
            "a\u{85}b",
            "\u{feff}bom",
        ]
        .map(String::from),
    );
    strings
}

fn hostile_tenant() -> TenantFile {
    let strings = hostile_strings();
    let mut contacts = Vec::new();
    for s in &strings {
        let mut fields = Map::new();
        fields.insert("nicknames".into(), json!([{ "value": s }]));
        fields.insert("names".into(), json!([{ "givenName": s, "familyName": s }]));
        contacts.push(TenantContact { fields, ..Default::default() });
    }
    let mut odd_keys = Map::new();
    for s in strings.iter().filter(|s| !s.is_empty()) {
        odd_keys.insert(s.clone(), json!({ s.clone(): [s, 1, 1.5e21, true, null] }));
    }
    odd_keys.insert(String::new(), json!({ "": [] }));
    TenantFile {
        domains: vec!["example.com".into()],
        users: vec![TenantUser {
            primary_email: "ann@example.com".into(),
            id: Some("00990".into()),
            name: [("givenName".to_owned(), Value::from("\u{2028}Ann\u{85}"))]
                .into_iter()
                .collect(),
            contacts,
            extra: odd_keys.clone(),
            ..Default::default()
        }],
        extra: odd_keys,
        ..Default::default()
    }
}

/// YAML 1.2's `c-printable`, less the characters YAML 1.1 reads as line breaks and
/// the byte order mark.
fn readable_raw(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

#[test]
fn a_tenant_full_of_hostile_strings_is_written_readable_and_reads_back_the_same() {
    let tenant = hostile_tenant();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("workspace.yaml");
    let text = tenant::write_atomic(&path, &tenant).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    for (n, line) in text.lines().enumerate() {
        let bad: Vec<String> =
            line.chars().filter(|c| !readable_raw(*c)).map(|c| format!("{c:?}")).collect();
        assert!(bad.is_empty(), "line {}: {} written raw: {line:?}", n + 1, bad.join(" "));
    }
    let back = tenant::parse(&path, text.clone()).unwrap();
    assert_eq!(back, tenant, "the file does not read back as what was written");

    // For a second reader: the file, and the data it must read as.
    let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("yaml-interop");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("hostile.yaml"), &text).unwrap();
    let expected = serde_json::to_string_pretty(&serde_json::to_value(&tenant).unwrap()).unwrap();
    std::fs::write(out.join("hostile.json"), expected + "\n").unwrap();
}
