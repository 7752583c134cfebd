//! `plan` and `apply` as a user runs them, on a copy of `examples/`.

use predicates::prelude::*;

use crate::contact_sync;
use crate::harness::{ACCOUNTING, Seed};

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

#[test]
fn plan_apply_plan_on_a_copy_of_the_examples() {
    let seed = Seed::new();
    let dir = seed.dir.path();
    let out = contact_sync().arg("plan").arg(dir).arg("--detailed-exitcode").assert().code(2);
    let text = stdout(&out);
    // The five users get the same changes: shown once, for all of them.
    assert!(
        text.contains(
            "\n  5 users (ann@example.com, bob@example.com, and 3 more), each:\n    + group \"Sales Contacts\"\n"
        ),
        "{text}"
    );
    let expanded = contact_sync().arg("plan").arg(dir).arg("--expand").assert().success();
    let expanded = stdout(&expanded);
    for user in ACCOUNTING {
        assert!(
            expanded.contains(&format!("  {user}\n    + group \"Sales Contacts\"")),
            "{user}:\n{expanded}"
        );
    }
    for name in [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Katherine Johnson",
        "Linus Torvalds",
        "Margaret Hamilton",
    ] {
        let line = format!("+ contact \"{name}\"");
        assert_eq!(text.matches(&line).count(), 1, "{name}");
        assert_eq!(expanded.matches(&line).count(), 5, "{name}");
    }
    for text in [&text, &expanded] {
        assert!(text.ends_with("Plan: 35 to add, 0 to change, 0 to delete.\n"), "{text}");
    }

    contact_sync()
        .arg("apply")
        .arg(dir)
        .arg("--auto-approve")
        .assert()
        .success()
        .stdout(predicate::str::ends_with("Apply complete: 35 added, 0 changed, 0 deleted.\n"));
    contact_sync()
        .arg("plan")
        .arg(dir)
        .arg("--detailed-exitcode")
        .assert()
        .code(0)
        .stdout(predicate::str::ends_with("No changes. Every destination is up to date.\n"));
}

#[test]
fn json_plan_follows_the_design() {
    let seed = Seed::new();
    let out = contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .args(["--format", "json"])
        .assert()
        .success();
    let j: serde_json::Value =
        serde_json::from_str(&stdout(&out)).expect("stdout is one JSON document");
    assert_eq!(j["formatVersion"], "1");
    assert_eq!(
        j["summary"],
        serde_json::json!({"create": 35, "update": 0, "delete": 0, "errors": 0})
    );
    assert_eq!(j["orphans"], serde_json::json!([]));
    let sync = &j["syncs"][0];
    assert_eq!(sync["name"], "sales-to-accounting");
    assert_eq!(sync["errors"], serde_json::json!([]));
    let ann = &sync["destinations"][0];
    assert_eq!(ann["user"], "ann@example.com");
    assert_eq!(ann["status"], "changes");
    assert_eq!(ann["error"], serde_json::Value::Null);
    let change = &ann["changes"][1];
    assert_eq!(change["action"], "create");
    assert_eq!(change["resource"], "contact");
    assert_eq!(change["name"], "Ada Lovelace");
    assert_eq!(change["reason"], "missing");
    assert_eq!(change["fields"], serde_json::json!([]));
    assert!(change.get("op").is_none(), "operations stay out of --format json");
    let skipped = sync["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["user"] == "erin@example.com")
        .unwrap();
    assert_eq!(skipped["status"], "skipped");
}

#[test]
fn redact_hides_contact_data_in_every_format() {
    let seed = Seed::new();
    seed.converge_blocking();
    let edit = seed.edit(|s| {
        let phone = serde_json::json!([{"value": "+1 555 0198"}]);
        crate::harness::set_field(s, "salesuser@example.com", "Grace Hopper", "phoneNumbers", phone)
    });
    tokio::runtime::Runtime::new().unwrap().block_on(edit);
    for format in ["text", "json", "markdown"] {
        let out = contact_sync()
            .arg("plan")
            .arg(seed.dir.path())
            .args(["--redact", "--format", format])
            .assert()
            .success();
        let text = stdout(&out);
        assert!(
            text.contains("Grace Hopper"),
            "{format}: names stay, to say which contact changes"
        );
        for secret in ["+1 555 0198", "+1 555 0199", "grace@navy.test"] {
            assert!(!text.contains(secret), "{format} shows {secret}:\n{text}");
        }
        assert!(text.contains("(redacted)"), "{format}:\n{text}");
    }
}

#[test]
fn markdown_plan_for_pull_requests() {
    let seed = Seed::new();
    let out = contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .args(["--format", "markdown"])
        .assert()
        .success();
    let md = stdout(&out);
    assert!(
        md.starts_with(
            "**contact-sync plan for example:** 35 to add, 0 to change, 0 to delete.\n\n"
        ),
        "{md}"
    );
    // One row per sync, before the folded detail.
    let row = md.find("| `sales-to-accounting` | 5 | 35 | 0 | 0 | 0 | to apply |").expect(&md);
    assert!(row < md.find("<details>").expect(&md), "{md}");
    assert!(md.contains("```diff\n"));
    // Change markers start the line, so GitHub colours them.
    assert!(md.contains("\n+     contact \"Ada Lovelace\" <ada@acme.test>\n"), "{md}");
    assert!(md.trim_end().ends_with("</details>"));
}

#[test]
fn a_stale_saved_plan_is_refused_and_a_fresh_one_applies() {
    let seed = Seed::new();
    let dir = seed.dir.path();
    let saved = dir.join("plan.json");
    contact_sync().arg("plan").arg(dir).arg("--out").arg(&saved).assert().success();
    // Someone edits the source between plan and apply.
    let workspace = seed.read("workspace.yaml").replace("+1 555 0199", "+1 555 0198");
    seed.write("workspace.yaml", &workspace);
    contact_sync()
        .arg("apply")
        .arg(&saved)
        .arg("--auto-approve")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is stale"));
    assert_eq!(seed.read("workspace.yaml"), workspace, "nothing was applied");

    contact_sync().arg("plan").arg(dir).arg("--out").arg(&saved).assert().success();
    contact_sync()
        .arg("apply")
        .arg(&saved)
        .arg("--auto-approve")
        .assert()
        .success()
        .stdout(predicate::str::contains("Apply complete: 35 added"));
    contact_sync().arg("plan").arg(dir).arg("--detailed-exitcode").assert().code(0);
}

#[test]
fn a_plan_that_cannot_be_saved_names_the_file_asked_for() {
    let seed = Seed::new();
    let path = seed.dir.path().join("missing/plan.json");
    let out = contact_sync().arg("plan").arg(seed.dir.path()).arg("--out").arg(&path).assert();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    out.code(1);
    let expected = format!("error: cannot write {}: No such file or directory", path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(!stderr.contains("at path") && !stderr.contains("contact-sync-tmp"), "{stderr}");
}

#[test]
fn apply_refuses_without_auto_approve_when_not_on_a_terminal() {
    let seed = Seed::new();
    let before = seed.read("workspace.yaml");
    contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--auto-approve"));
    assert_eq!(seed.read("workspace.yaml"), before);
}

#[test]
fn invalid_manifests_stop_plan_with_diagnostics_on_stderr() {
    let seed = Seed::new();
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("user: salesuser@example.com", "user: salesuser@");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicate::str::contains("sales-to-accounting.yaml:13:11: /spec/source/user: `salesuser@` is not a valid e-mail address"));
}

#[test]
fn plan_errors_exit_1_even_with_detailed_exitcode() {
    let seed = Seed::new();
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("user: salesuser@example.com", "user: nobody@example.com");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .arg("--detailed-exitcode")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("! source user nobody@example.com not found"));
}

#[test]
fn sync_filter_and_unknown_sync_names() {
    let seed = Seed::new();
    contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .args(["--sync", "sales-to-accounting", "--detailed-exitcode"])
        .assert()
        .code(2);
    contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .args(["--sync", "nope"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("--sync nope: no sync of that name"));
}

#[test]
fn workspace_override() {
    let seed = Seed::new();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::copy(seed.path("workspace.yaml"), elsewhere.path().join("tenant.yaml")).unwrap();
    let ws = elsewhere.path().join("ws.yaml");
    std::fs::write(&ws, "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: other}\nspec: {backend: local, local: {path: tenant.yaml}}\n").unwrap();
    contact_sync()
        .arg("apply")
        .arg(seed.path("syncs"))
        .arg("--workspace")
        .arg(&ws)
        .arg("--auto-approve")
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(elsewhere.path().join("tenant.yaml"))
            .unwrap()
            .contains("contact-sync/sync")
    );
    assert!(
        !seed.read("workspace.yaml").contains("contact-sync/sync"),
        "the manifests' own tenant is untouched"
    );
}

#[test]
fn errors_in_the_tenant_file_name_their_line() {
    let seed = Seed::new();
    let tenant = seed
        .read("workspace.yaml")
        .replace("contactGroups: [Family, myContacts]", "contactGroups: [Famly, myContacts]");
    seed.write("workspace.yaml", &tenant);
    let line = tenant.lines().position(|l| l.contains("[Famly,")).unwrap() + 1;
    contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .assert()
        .code(1)
        .stderr(predicate::str::contains(format!("workspace.yaml:{line}:25: /users/0/contacts/6/contactGroups/0: no contact group named \"Famly\"")));
}

#[test]
fn users_with_the_same_changes_are_one_group_unless_expanded() {
    let (_dir, manifests) = crate::harness::synthetic_local(20, 50);
    let plan = |args: &[&str]| {
        stdout(&contact_sync().arg("plan").arg(&manifests).args(args).assert().success())
    };
    let contact = "+ contact \"Contact 00007\" <c7@partners.test>";
    let summary = "Plan: 1050 to add, 0 to change, 0 to delete.";
    let text = plan(&[]);
    assert!(
        text.contains(
            "\n  50 users (d000@example.com, d001@example.com, and 48 more), each:\n    + group \"Shared\"\n"
        ),
        "{text}"
    );
    assert_eq!(text.matches(contact).count(), 1, "{text}");
    assert!(text.ends_with(&format!("{summary}\n")), "the summary counts every user: {text}");
    let expanded = plan(&["--expand"]);
    assert_eq!(expanded.matches(contact).count(), 50);
    assert!(expanded.contains("\n  d049@example.com\n    + group \"Shared\"\n"), "{expanded}");
    assert!(expanded.ends_with(&format!("{summary}\n")));

    let markdown = plan(&["--format", "markdown"]);
    let counts = summary.strip_prefix("Plan: ").unwrap();
    assert!(markdown.contains(&format!("**contact-sync plan for t:** {counts}")), "{markdown}");
    assert_eq!(markdown.matches("\n+     contact \"Contact 00007\"").count(), 1, "{markdown}");
    let markdown = plan(&["--format", "markdown", "--expand"]);
    assert_eq!(markdown.matches("\n+     contact \"Contact 00007\"").count(), 50, "{markdown}");

    // JSON lists every destination with its changes, grouped or not.
    let json: serde_json::Value = serde_json::from_str(&plan(&["--format", "json"])).unwrap();
    let destinations = json["syncs"][0]["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 50);
    assert!(destinations.iter().all(|d| d["changes"].as_array().unwrap().len() == 21));
}

/// `show PLAN.json` prints a saved plan as `plan` printed it, in every format,
/// without reading the tenant.
#[test]
fn show_prints_a_saved_plan_as_plan_printed_it() {
    let seed = crate::harness::Seed::new();
    let saved = seed.dir.path().join("plan.json");
    for args in
        [&[][..], &["--format", "json"], &["--format", "markdown", "--redact"], &["--expand"]]
    {
        let planned = contact_sync()
            .arg("plan")
            .arg(seed.dir.path())
            .args(args)
            .arg("--out")
            .arg(&saved)
            .assert()
            .success();
        let shown = contact_sync().arg("show").arg(&saved).args(args).assert().success();
        assert_eq!(
            String::from_utf8_lossy(&shown.get_output().stdout),
            String::from_utf8_lossy(&planned.get_output().stdout),
            "{args:?}"
        );
    }
    // The tenant is not read: gone, and the plan still shows.
    std::fs::remove_file(seed.dir.path().join("workspace.yaml")).unwrap();
    contact_sync()
        .arg("show")
        .arg(&saved)
        .assert()
        .success()
        .stdout(predicates::str::contains("Plan: 35 to add"));
    contact_sync()
        .args(["show", "no-such-plan.json"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no-such-plan.json"));
}

/// `apply --format json`: one document, per destination what was done; `--redact`
/// keeps contact data out of it and out of the text plan apply shows.
#[test]
fn apply_reports_as_json_and_redacts() {
    let seed = Seed::new();
    let out = contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--auto-approve", "--format", "json", "--redact"])
        .assert()
        .success();
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["result"], "complete");
    assert_eq!(report["create"], 35);
    let destinations = report["destinations"].as_array().unwrap();
    assert_eq!(destinations.len(), 5);
    assert!(destinations.iter().all(|d| d["status"] == "applied" && d["create"] == 7));
    assert_eq!(report["plan"]["summary"]["create"], 35);
    assert!(!stdout.contains("ada@acme.test"), "redacted: {stdout}");
    // Applied: the next apply has nothing to do, and says so in JSON too.
    let again = contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--auto-approve", "--format", "json"])
        .assert()
        .success();
    let report: serde_json::Value = serde_json::from_slice(&again.get_output().stdout).unwrap();
    assert_eq!((report["result"].as_str(), report["create"].as_u64()), (Some("complete"), Some(0)));

    // Text: the plan shown is redacted too; a line per destination.
    let seed = Seed::new();
    contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--auto-approve", "--redact"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ada@acme.test").not())
        .stdout(predicate::str::contains(
            "sales-to-accounting  ann@example.com: 7 added, 0 changed, 0 deleted\n",
        ));
    // JSON has no prompt: it needs --auto-approve.
    contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--format", "json"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("needs --auto-approve"));
}

/// `adopt`: Ann already keeps a "Sales Contacts" group of her own, with a copy of
/// Ada (an old phone number) and her dentist in it. The plan refuses to write into
/// it; adopt takes it over, Ada's copy included, leaves the dentist alone, and a
/// plan after that is clean.
#[test]
fn adopt_takes_over_an_existing_group_and_leaves_unmatched_contacts_alone() {
    let seed = Seed::new();
    let tenant = seed.read("workspace.yaml").replace(
        "    contacts:\n      # Ann's own contact: unmarked, so contact-sync never touches it.\n",
        "    contactGroups:\n      - name: Sales Contacts\n    contacts:\n      \
         - names: [{ givenName: Ada, familyName: Lovelace }]\n        \
         emailAddresses: [{ value: ADA@acme.test }]\n        \
         phoneNumbers: [{ value: \"+1 555 0000\" }]\n        \
         contactGroups: [Sales Contacts]\n      \
         - names: [{ givenName: My, familyName: Dentist }]\n        \
         phoneNumbers: [{ value: \"+1 555 7777\" }]\n        \
         contactGroups: [Sales Contacts]\n      \
         # Ann's own contact: unmarked, so contact-sync never touches it.\n",
    );
    assert!(tenant.contains("My, familyName: Dentist"));
    seed.write("workspace.yaml", &tenant);
    let dir = seed.dir.path();
    contact_sync().arg("plan").arg(dir).assert().code(1).stdout(
        predicate::str::contains("ann@example.com")
            .and(predicate::str::contains("already has a contact group \"Sales Contacts\"")),
    );

    // Only a destination with such a group can be adopted.
    contact_sync()
        .args([
            "adopt",
            "--sync",
            "sales-to-accounting",
            "--user",
            "bob@example.com",
            "--auto-approve",
        ])
        .arg(dir)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("nothing to adopt for bob@example.com"));

    let out = contact_sync()
        .args(["adopt", "--sync", "sales-to-accounting", "--auto-approve"])
        .arg(dir)
        .assert()
        .success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("~ group \"Sales Contacts\"   (adopted)"), "{text}");
    assert!(text.contains("~ contact \"Ada Lovelace\" <ada@acme.test>   (adopted)"), "{text}");
    assert!(text.contains("+ contact \"Grace Hopper\""), "{text}");
    assert!(!text.contains("Dentist"), "the unmatched contact is not in the plan: {text}");
    assert!(!text.contains("bob@example.com"), "only Ann has a group to adopt: {text}");
    assert!(text.contains("Plan: 5 to add, 2 to change, 0 to delete."), "{text}");

    // The dentist is still there, unmarked, in the group; Ada's copy is marked.
    let after = seed.read("workspace.yaml");
    let ann = &after[after.find("primaryEmail: ann@example.com").unwrap()..];
    let ann = &ann[..ann.find("primaryEmail: bob@example.com").unwrap()];
    let dentist = &ann[ann.find("familyName: Dentist").expect("the dentist is kept")..];
    let dentist = &dentist[..dentist.find("\n      - ").unwrap_or(dentist.len())];
    assert!(!dentist.contains("contact-sync/"), "the dentist stays unmarked: {dentist}");
    assert!(!ann.contains("+1 555 0000"), "Ada's copy is brought in line: {ann}");
    // Ann is up to date; the others get the sync as usual; then nothing is left.
    contact_sync()
        .args(["plan", "--expand"])
        .arg(dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("ann@example.com: up to date"));
    contact_sync().arg("apply").arg(dir).arg("--auto-approve").assert().success();
    contact_sync()
        .args(["plan", "--detailed-exitcode"])
        .arg(dir)
        .assert()
        .code(0)
        .stdout(predicate::str::contains("No changes."));
    assert!(seed.read("workspace.yaml").contains("+1 555 7777"), "never deleted");
}
