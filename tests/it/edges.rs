//! The edges a user meets first: what the commands print when something goes
//! wrong, what they do with hostile values, which privileges they ask for.

use contact_sync::backend::google::{CONTACTS_READONLY, MEMBERS_READONLY, USERS_READONLY};

use crate::contact_sync;
use crate::harness::Seed;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn last_line(s: &str) -> &str {
    s.trim_end().lines().last().unwrap_or_default()
}

/// An apply that applies part of a plan says so in its last line, and exits 1:
/// never "Apply complete" beside an error.
#[test]
fn an_apply_with_plan_errors_ends_apply_failed() {
    let seed = Seed::new();
    // One destination does not exist (renamed away): an error for it, the others
    // proceed.
    let sync = seed.read("syncs/sales-to-accounting.yaml").replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting]\n    users: [gone@example.com]\n",
    );
    seed.write("syncs/sales-to-accounting.yaml", &sync);
    let out =
        contact_sync().args(["apply", "--auto-approve"]).arg(seed.dir.path()).output().unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("gone@example.com"), "the plan shows the error: {stdout}");
    assert!(!stdout.contains("Apply complete"), "{stdout}");
    let last = last_line(&stdout);
    assert!(
        last.starts_with("Apply failed: the plan has 1 error (above). Applied: 35 added"),
        "{last}"
    );
    // The plan's own summary never says "up to date" while it has an error.
    let out = contact_sync().arg("plan").arg(seed.dir.path()).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(!stdout.contains("up to date."), "{stdout}");
    assert_eq!(
        last_line(&stdout),
        "Plan: 0 to add, 0 to change, 0 to delete. 1 error, not planned: gone@example.com in sync \
         sales-to-accounting."
    );
}

/// A contact's value holding a line break and an escape sequence cannot forge a
/// line (a GitHub annotation, a fake summary) or drive the reader's terminal, in
/// any plan format.
#[test]
fn hostile_contact_values_are_escaped_in_every_plan_format() {
    let seed = Seed::new();
    let tenant = seed.read("workspace.yaml").replace(
        "familyName: Lovelace",
        "familyName: \"Lovelace\\n::error::forged\\e[2J\\u0085\\u2028\"",
    );
    assert_ne!(tenant, seed.read("workspace.yaml"));
    seed.write("workspace.yaml", &tenant);
    for format in ["text", "markdown", "json"] {
        let out = contact_sync()
            .args(["plan", "--format", format])
            .arg(seed.dir.path())
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{format}: {}", text(&out.stderr));
        assert!(stdout.contains("Lovelace"), "{format}: {stdout}");
        assert!(
            !stdout.lines().any(|l| l.trim_start().starts_with("::error")),
            "{format}: a forged line: {stdout}"
        );
        assert!(
            !stdout.chars().any(|c| matches!(c, '\x1b' | '\u{85}' | '\u{2028}')),
            "{format}: a raw control character: {stdout:?}"
        );
    }
}

/// `validate` quotes a bad value in its message: escaped, in both formats.
#[test]
fn hostile_manifest_values_are_escaped_in_diagnostics() {
    let seed = Seed::new();
    let ws = seed
        .read("contact-sync.yaml")
        .replace("timeZone: UTC", "timeZone: \"Europe/Berln\\n::error::X\\e[2J\"");
    seed.write("contact-sync.yaml", &ws);
    for format in ["text", "github"] {
        let out = contact_sync()
            .args(["validate", "--format", format])
            .arg(seed.dir.path())
            .output()
            .unwrap();
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains("Europe/Berln\\n::error::X\\u{1b}[2J"), "{format}: {stdout}");
        assert!(!stdout.lines().any(|l| l.starts_with("::error::X")), "{format}: {stdout}");
        assert!(!stdout.contains('\x1b'), "{format}: {stdout:?}");
    }
}

/// A run pointed at a folder with no manifest fails: a CI job aimed at the wrong
/// folder does not stay green.
#[test]
fn validate_with_no_manifest_fails_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("README.md"), "no manifests here\n").unwrap();
    let out = contact_sync().arg("validate").arg(dir.path()).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("no manifest found in"), "{stdout}");
    assert!(stdout.contains(&dir.path().display().to_string()), "{stdout}");
}

/// A manifest saved with a byte-order mark is the same manifest.
#[test]
fn a_byte_order_mark_changes_nothing() {
    let seed = Seed::new();
    let sync = seed.read("syncs/sales-to-accounting.yaml");
    seed.write("syncs/sales-to-accounting.yaml", &format!("\u{feff}{sync}"));
    contact_sync().arg("validate").arg(seed.dir.path()).assert().success();
}

/// 20,000 unknown keys: the first 100 are listed, the rest counted, and the run
/// stays linear in the file (it took 20 s, printing every one, before).
#[test]
fn validate_lists_at_most_100_errors_per_file() {
    let dir = tempfile::tempdir().unwrap();
    let keys: String = (0..20_000).map(|i| format!("  k{i}: v\n")).collect();
    let manifest = format!(
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata:\n  name: a\n{keys}spec: {{}}\n"
    );
    std::fs::write(dir.path().join("many.yaml"), manifest).unwrap();
    let out = contact_sync().arg("validate").arg(dir.path()).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout.matches("unknown field").count(), 100, "{}", &stdout[..500]);
    let more = stdout.lines().find(|l| l.contains("more errors not listed")).unwrap_or_default();
    assert!(more.contains("many.yaml: 199"), "{more}");
    let total: usize = last_line(&stdout).rsplit(' ').nth(1).unwrap().parse().unwrap();
    assert!(total > 20_000, "every error is counted: {}", last_line(&stdout));
}

/// An endpoint that does not answer is named as such, with the attempts made,
/// each cause once.
#[test]
fn an_unreachable_endpoint_says_connection_refused_and_the_attempts() {
    let seed = Seed::new();
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    std::fs::copy(crate::root().join("tests/fixtures/service-account.json"), seed.path("sa.json"))
        .unwrap();
    seed.write(
        "contact-sync.yaml",
        &format!(
            "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {{ name: down }}\nspec:\n  \
             backend: google\n  google:\n    adminUser: admin@example.com\n    credentialsFile: \
             sa.json\n    retry: {{ baseDelayMs: 10, maxAttempts: 3 }}\n    endpoints: {{ people: \
             \"http://127.0.0.1:{port}\", directory: \"http://127.0.0.1:{port}\", token: \
             \"http://127.0.0.1:{port}/token\" }}\n"
        ),
    );
    std::fs::write(seed.path(".contactsyncignore"), "workspace.yaml\n").unwrap();
    let out = contact_sync().arg("plan").arg(seed.dir.path()).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot connect to 127.0.0.1:{port}: connection refused")),
        "{stderr}"
    );
    assert!(stderr.contains("(3 attempts over "), "{stderr}");
    assert!(!stderr.contains("os error") && !stderr.contains("503"), "{stderr}");

    // A missing key file: the cause once.
    std::fs::remove_file(seed.path("sa.json")).unwrap();
    let out = contact_sync().arg("plan").arg(seed.dir.path()).output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("No such file").count(), 1, "{stderr}");
    assert!(stderr.contains("cannot read the service-account key"), "{stderr}");
}

/// Plain http to anything but this machine would carry bearer tokens in cleartext.
#[test]
fn plain_http_endpoints_are_refused_unless_loopback() {
    let seed = Seed::new();
    seed.write(
        "contact-sync.yaml",
        "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: { name: w }\nspec:\n  backend: \
         google\n  google:\n    adminUser: admin@example.com\n    endpoints: { people: \
         \"http://people.example.com\", directory: \"http://[::1]:8089\", token: \
         \"https://oauth2.example.com/token\" }\n  notifications:\n    - url: \
         \"http://hooks.example.com/x\"\n",
    );
    std::fs::write(seed.path(".contactsyncignore"), "workspace.yaml\n").unwrap();
    let out = contact_sync().arg("validate").arg(seed.dir.path()).output().unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("/spec/google/endpoints/people: `http://people.example.com` is plain http"),
        "{stdout}"
    );
    assert!(!stdout.contains("/endpoints/directory"), "loopback is fine: {stdout}");
    assert!(!stdout.contains("/endpoints/token"), "https is fine: {stdout}");
    let webhook = "/spec/notifications/0/url: `http://hooks.example.com/x` is plain http";
    assert_eq!(stdout.matches(webhook).count(), 1, "reported once: {stdout}");
}

/// The CI key that plans pull requests needs read-only delegation only; apply
/// needs the read-write contacts scope, and without it writes nothing.
#[test]
fn a_read_only_delegation_can_plan_and_cannot_apply() {
    let read_only =
        || [CONTACTS_READONLY, USERS_READONLY, MEMBERS_READONLY].map(str::to_owned).to_vec();
    let mut seed = Seed::google_with(|c| c.delegated_scopes = Some(read_only()));
    let before = seed.read("tenant/workspace.yaml");
    let plan =
        contact_sync().args(["plan", "--detailed-exitcode"]).arg(seed.dir.path()).output().unwrap();
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan.stderr));
    assert!(text(&plan.stdout).ends_with("Plan: 35 to add, 0 to change, 0 to delete.\n"));

    let apply =
        contact_sync().args(["apply", "--auto-approve"]).arg(seed.dir.path()).output().unwrap();
    let stderr = text(&apply.stderr);
    assert_eq!(apply.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("domain-wide delegation refused"), "{stderr}");
    assert!(stderr.contains("https://www.googleapis.com/auth/contacts"), "{stderr}");
    seed.flush();
    assert_eq!(seed.read("tenant/workspace.yaml"), before, "nothing was written");

    // With the read-write scope granted as well, apply converges.
    seed.restart_emulator(|c| {
        let mut scopes = read_only();
        scopes.push(contact_sync::backend::google::CONTACTS.to_owned());
        c.delegated_scopes = Some(scopes);
    });
    contact_sync().args(["apply", "--auto-approve"]).arg(seed.dir.path()).assert().success();
    let again =
        contact_sync().args(["plan", "--detailed-exitcode"]).arg(seed.dir.path()).output().unwrap();
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stdout));
}

/// An emulator that cannot load its data says so, and never that it serves.
#[test]
fn the_emulator_does_not_announce_what_it_cannot_serve() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let out = contact_sync()
        .args(["emulator", "--listen", "127.0.0.1:0", "--data"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("serving"), "{stderr}");
    assert_eq!(stderr.matches(&missing.display().to_string()).count(), 1, "{stderr}");
}
