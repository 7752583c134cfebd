//! Selectors and exclusions that resolve to no one — an org unit, domain, group or
//! address the directory does not know — are errors at their manifest line with a
//! "did you mean", on both backends; a renamed excluded address is drift that
//! keeps its user excluded.

use predicates::prelude::*;

use crate::contact_sync;
use crate::harness::Seed;
use contact_sync::backend::Backend;

/// The seed's sync with a typo in every kind of selector and exclusion, and an
/// exclusion by an old address (carol@ is now caroline@'s alias).
fn typos(seed: &Seed) {
    let sync = seed.read("syncs/sales-to-accounting.yaml").replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting, /Acounting]\n    domains: [exmple.com]\n    exclude:\n      \
         users: [carol@example.com, frnk@example.com]\n      groups: [nogroup@example.com]\n      \
         orgUnits: [/Acounting/Payroll]\n",
    );
    seed.write("syncs/sales-to-accounting.yaml", &sync);
}

/// What `resolve` and `plan` print for [`typos`], and what they leave out.
fn check(dir: &std::path::Path) {
    let file = dir.join("syncs/sales-to-accounting.yaml");
    let at = |line: usize, col: usize| format!("{}:{line}:{col}\n", file.display());
    let out = contact_sync().arg("resolve").arg(dir).assert().code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for line in [
        format!(
            "  ! /Acounting: no user is in org unit /Acounting nor below it: no such org unit, or \
             an empty one (did you mean \"/Accounting\"?); the selector reaches nobody: fix \
             destinations.orgUnits in {}",
            at(20, 29)
        ),
        format!(
            "  ! exmple.com: no user has an address in domain exmple.com (did you mean \
             \"example.com\"?); the selector reaches nobody: fix destinations.domains in {}",
            at(21, 15)
        ),
        format!(
            "  ! carol@example.com: excluded user carol@example.com was renamed to \
             caroline@example.com; it stays excluded, update destinations.exclude.users in {} \
             (`contact-sync fix` rewrites it)\n",
            at(23, 15).trim_end()
        ),
        format!(
            "  ! frnk@example.com: frnk@example.com is no user of the directory (did you mean \
             \"frank@example.com\"?); the exclusion names nobody: fix destinations.exclude.users \
             in {}",
            at(23, 34)
        ),
        format!(
            "  ! nogroup@example.com: group nogroup@example.com not found; the exclusion names \
             nobody: fix destinations.exclude.groups in {}",
            at(24, 16)
        ),
        format!(
            "  ! /Acounting/Payroll: no user is in org unit /Acounting/Payroll nor below it: no \
             such org unit, or an empty one (did you mean \"/Accounting/Payroll\"?); the \
             exclusion names nobody: fix destinations.exclude.orgUnits in {}",
            at(25, 18)
        ),
        // The renamed exclusion still holds.
        "  caroline@example.com: excluded by exclude.users carol@example.com, via group \
         accounting@example.com, via org unit /Accounting\n"
            .to_owned(),
        "  4 destinations, 1 skipped, 1 excluded, 6 errors.\n".to_owned(),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    let out = contact_sync().args(["resolve", "--format", "json"]).arg(dir).assert().code(1);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let kinds: Vec<&str> = json["syncs"][0]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["address"].is_string())
        .map(|u| u["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "destinationNotFound",
            "destinationNotFound",
            "destinationRenamed",
            "destinationNotFound",
            "destinationNotFound",
            "destinationNotFound"
        ]
    );
    // The plan: the same errors, exit 1; the excluded user gets nothing.
    let out = contact_sync().arg("plan").arg(dir).assert().code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("6 errors"), "{text}");
    assert!(text.contains("did you mean \"/Accounting\"?"), "{text}");
    assert!(!text.contains("caroline@example.com:"), "never planned: {text}");
    assert!(text.contains("\"Sales Contacts\" -> 4 users)"), "{text}");
    // In JSON: what names nobody is an error of the sync (holding it back), never a
    // destination named after a group, org unit or domain; the rename stays the
    // destination-level drift of the old address.
    let out = contact_sync().args(["plan", "--format", "json"]).arg(dir).assert().code(1);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let sync = &json["syncs"][0];
    assert_eq!(
        sync["source"],
        serde_json::json!({"user": "salesuser@example.com", "contactGroup": "Sales Contacts"})
    );
    let names: Vec<&str> =
        sync["errors"].as_array().unwrap().iter().map(|e| e["email"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "/Acounting",
            "exmple.com",
            "frnk@example.com",
            "nogroup@example.com",
            "/Acounting/Payroll"
        ],
        "{sync:#}"
    );
    let users: Vec<&str> = sync["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["user"].as_str().unwrap())
        .collect();
    assert!(users.iter().all(|u| u.contains('@') && *u != "nogroup@example.com"), "{users:?}");
    assert!(users.contains(&"carol@example.com"), "{users:?}");
    assert_eq!(json["summary"]["create"], 0, "nothing applies while the sync is held back");
}

#[test]
fn a_typo_in_any_selector_is_an_error_at_its_line_local() {
    let seed = Seed::new();
    typos(&seed);
    check(seed.dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_any_selector_is_an_error_at_its_line_google() {
    let seed = Seed::google();
    typos(&seed);
    let dir = seed.dir.path().to_owned();
    tokio::task::spawn_blocking(move || check(&dir)).await.unwrap();
}

/// A directory sync copying an org unit or a domain that lists nobody is held
/// back: copying fewer users than meant would delete the others' contacts.
#[test]
fn a_directory_source_naming_nobody_holds_the_sync_back() {
    let seed = Seed::new();
    seed.write(
        "syncs/dir.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: { name: dir }\nspec:\n  type: \
         directory\n  source:\n    directory:\n      orgUnits: [/Sales, /Engineerng]\n      \
         domains: [example.co]\n  target: { groupName: Colleagues }\n  destinations:\n    \
         users: [ann@example.com]\n",
    );
    contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "no user is in org unit /Engineerng nor below it: no such org unit, or an empty one \
             (did you mean \"/Engineering\"?); the selector reaches nobody: fix \
             source.directory.orgUnits in ",
        ))
        .stdout(predicate::str::contains(
            "no user has an address in domain example.co (did you mean \"example.com\"?)",
        ))
        .stdout(predicate::str::contains("\"Colleagues\"").not());
}

/// A second sync that gives Dave a target group of the first one's name: at
/// Dave neither is planned, each error names the other sync and both manifest
/// lines; apply changes nothing there and the other destinations converge.
async fn two_syncs_with_one_target_group_at_one_destination(seed: Seed) {
    let dir = seed.dir.path();
    seed.write(
        "syncs/more-sales.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: more-sales}\nspec:\n  \
         source: {user: salesuser@example.com, contactGroup: Sales Contacts}\n  target: \
         {groupName: Sales Contacts}\n  destinations: {users: [dave@example.com]}\n",
    );
    let first = dir.join("syncs/sales-to-accounting.yaml");
    let second = dir.join("syncs/more-sales.yaml");
    let out = contact_sync().args(["plan", "--format", "json"]).arg(dir).assert().code(1);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let dave = |sync: &str| -> serde_json::Value {
        let s = json["syncs"].as_array().unwrap().iter().find(|s| s["name"] == sync).unwrap();
        s["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["user"] == "dave@example.com")
            .cloned()
            .unwrap_or_else(|| panic!("no dave in {sync}: {s:#}"))
    };
    for (sync, other, other_file) in [
        ("sales-to-accounting", "more-sales", &second),
        ("more-sales", "sales-to-accounting", &first),
    ] {
        let d = dave(sync);
        assert_eq!(d["status"], "error", "{d:#}");
        let message = d["error"]["message"].as_str().unwrap();
        assert!(message.contains(&format!("sync {other} also puts")), "{message}");
        assert!(message.contains(&other_file.display().to_string()), "{message}");
        assert_eq!(d["error"]["kind"], "targetGroupConflict", "{d:#}");
    }
    // Apply writes nothing to Dave, converges the others, and exits 1; the plan
    // after it holds the two errors and no change.
    contact_sync().args(["apply", "--auto-approve"]).arg(dir).assert().code(1);
    let out = contact_sync().args(["plan", "--format", "json"]).arg(dir).assert().code(1);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let summary = &json["summary"];
    assert_eq!([&summary["create"], &summary["update"], &summary["delete"]], [0, 0, 0], "{json:#}");
    let groups = seed.backend().contact_groups("dave@example.com").await.unwrap();
    assert!(!groups.iter().any(|g| g.name == "Sales Contacts"), "Dave got no group: {groups:?}");
    // Renaming one target resolves it: Dave gets both groups, and then no changes.
    let renamed = seed
        .read("syncs/more-sales.yaml")
        .replace("{groupName: Sales Contacts}", "{groupName: More Sales}");
    seed.write("syncs/more-sales.yaml", &renamed);
    contact_sync().args(["apply", "--auto-approve"]).arg(dir).assert().success();
    contact_sync().args(["plan", "--detailed-exitcode"]).arg(dir).assert().code(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_with_one_target_group_at_one_destination_local() {
    two_syncs_with_one_target_group_at_one_destination(Seed::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_syncs_with_one_target_group_at_one_destination_google() {
    two_syncs_with_one_target_group_at_one_destination(Seed::google()).await;
}

/// Target groups that differ only in case, white space or an invisible
/// character are two groups that look the same: planned, with a warning that
/// names both syncs and the users that get both; unrelated destinations none.
#[test]
fn look_alike_target_groups_at_one_destination_are_a_warning() {
    let seed = Seed::new();
    let dir = seed.dir.path();
    seed.write(
        "syncs/more-sales.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: more-sales}\nspec:\n  \
         source: {user: salesuser@example.com, contactGroup: Sales Contacts}\n  target: \
         {groupName: \"sales\u{200B} contacts \"}\n  destinations: {users: [dave@example.com]}\n",
    );
    let out = contact_sync().args(["plan", "--detailed-exitcode"]).arg(dir).assert().code(2);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(
        text.contains(
            "Warning: the target groups \"Sales Contacts\" of sync sales-to-accounting and \
             \"sales\\u{200b} contacts \" of sync more-sales differ only in case, white space \
             or invisible characters: dave@example.com get"
        ),
        "{text}"
    );
    let out = contact_sync().args(["plan", "--format", "json"]).arg(dir).assert().code(0);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(json["warnings"].as_array().map(Vec::len), Some(1), "{json:#}");
    // Planned all the same: apply, then nothing to change.
    contact_sync().args(["apply", "--auto-approve"]).arg(dir).assert().success();
    contact_sync().args(["plan", "--detailed-exitcode"]).arg(dir).assert().code(0);
    // Told apart, the warning goes.
    let renamed =
        seed.read("syncs/more-sales.yaml").replace("\"sales\u{200B} contacts \"", "More Sales");
    seed.write("syncs/more-sales.yaml", &renamed);
    let out = contact_sync().args(["plan"]).arg(dir).assert();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(!text.contains("Warning"), "{text}");
}
