//! `contact-sync fix`: the renamed addresses of a commented manifest rewritten in
//! place and nothing else, shown as a diff; `--check` changes nothing and exits 1;
//! on both backends.

use predicates::prelude::*;

use crate::contact_sync;
use crate::harness::Seed;

/// Two syncs in one commented file: `sales@` is now an alias of `salesuser@`,
/// `carol@` one of `caroline@`.
const BEFORE: &str = "# Two syncs, one file.
apiVersion: contact-sync/v1
kind: ContactSync
metadata:
  name: one   # the first
spec:
  type: personal
  source:
    user: \"sales@example.com\"   # an alias now
    contactGroup: Sales Contacts
  target: { groupName: Sales Contacts }
  destinations:
    users: [ann@example.com, 'carol@example.com'] # flow, quoted
---
apiVersion: contact-sync/v1
kind: ContactSync
metadata: { name: two }
spec:
  type: personal
  source: { user: salesuser@example.com, contactGroup: Sales Contacts }
  target: { groupName: Sales Two }
  destinations:
    orgUnits: [/Accounting]
    exclude:
      users:
        - carol@example.com    # keep this comment
        - bob@example.com
";

fn check(dir: &std::path::Path) {
    let file = dir.join("syncs/sales-to-accounting.yaml");
    let after = BEFORE
        .replace("\"sales@example.com\"", "\"salesuser@example.com\"")
        .replace("'carol@example.com'", "'caroline@example.com'")
        .replace("- carol@example.com ", "- caroline@example.com ");
    // --check: the diff, exit 1, the file untouched.
    let out = contact_sync().args(["fix", "--check"]).arg(dir).assert().code(1);
    let diff = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(diff.starts_with("--- a/"), "{diff}");
    for line in [
        "-    user: \"sales@example.com\"   # an alias now\n",
        "+    user: \"salesuser@example.com\"   # an alias now\n",
        "-    users: [ann@example.com, 'carol@example.com'] # flow, quoted\n",
        "+    users: [ann@example.com, 'caroline@example.com'] # flow, quoted\n",
        "-        - carol@example.com    # keep this comment\n",
        "+        - caroline@example.com    # keep this comment\n",
    ] {
        assert!(diff.contains(line), "missing {line:?} in\n{diff}");
    }
    assert_eq!(diff.lines().filter(|l| l.starts_with('+') && !l.starts_with("+++")).count(), 3);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), BEFORE);
    // fix: the same change written, byte for byte nothing else.
    contact_sync()
        .arg("fix")
        .arg(dir)
        .assert()
        .success()
        .stdout(diff)
        .stderr(predicate::str::contains("Rewrote 3 renamed addresses in 1 file"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), after);
    // Nothing left to fix, and nothing renamed left to plan around.
    contact_sync()
        .args(["fix", "--check"])
        .arg(dir)
        .assert()
        .success()
        .stdout("")
        .stderr(predicate::str::contains("No renamed address in the manifests."));
    contact_sync()
        .arg("resolve")
        .arg(dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("renamed").not());
}

#[test]
fn fix_rewrites_only_the_renamed_addresses_local() {
    let seed = Seed::new();
    seed.write("syncs/sales-to-accounting.yaml", BEFORE);
    check(seed.dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fix_rewrites_only_the_renamed_addresses_google() {
    let seed = Seed::google();
    seed.write("syncs/sales-to-accounting.yaml", BEFORE);
    let dir = seed.dir.path().to_owned();
    tokio::task::spawn_blocking(move || check(&dir)).await.unwrap();
}

/// An address whose text is not the address (an escape) is reported, not guessed.
#[test]
fn an_address_not_written_as_plain_text_is_left_for_a_person() {
    let seed = Seed::new();
    let sync = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("user: salesuser@example.com", "user: \"sales\\x40example.com\"");
    seed.write("syncs/sales-to-accounting.yaml", &sync);
    contact_sync().arg("fix").arg(seed.dir.path()).assert().code(1).stderr(
        predicate::str::contains(
            "sales@example.com is not written as plain text there (an escape or an alias?); \
             change it to salesuser@example.com by hand",
        ),
    );
    assert_eq!(seed.read("syncs/sales-to-accounting.yaml"), sync);
}
