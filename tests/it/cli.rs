//! The CLI contract of `validate` and `schema`: exit codes, the `file:line:col`
//! format, GitHub annotations, the summary line, resource limits.

use predicates::prelude::*;

use crate::contact_sync;

#[test]
fn valid_manifests_exit_0() {
    contact_sync()
        .args(["validate", "examples/contact-sync.yaml", "examples/syncs"])
        .assert()
        .success()
        .stdout("2 files, 1 sync: no errors\n");
}

#[test]
fn the_default_path_is_the_current_folder() {
    contact_sync()
        .current_dir(crate::root().join("examples"))
        .arg("validate")
        .assert()
        .success()
        .stdout(predicate::str::ends_with("no errors\n"));
}

#[test]
fn errors_print_as_file_line_col_pointer_message_and_exit_1() {
    contact_sync().args(["validate", "examples/invalid/bad-email.yaml"]).assert().code(1).stdout(
        "examples/invalid/bad-email.yaml:10:11: /spec/source/user: \
             `salesuser(at)example.com` is not a valid e-mail address; expected name@domain, \
             e.g. ann@example.com\n1 file, 1 sync: 1 error\n",
    );
}

#[test]
fn github_format_prints_annotations() {
    contact_sync()
        .args(["validate", "--format", "github", "examples/invalid/unknown-field.yaml"])
        .assert()
        .code(1)
        .stdout(predicate::str::starts_with(
            "::error file=examples/invalid/unknown-field.yaml,line=15,col=5,title=contact-sync::\
             /spec/target/groupNme: unknown field `groupNme` (did you mean `groupName`?)",
        ));
}

#[test]
fn a_missing_path_is_an_error() {
    contact_sync()
        .args(["validate", "no/such/folder"])
        .assert()
        .code(1)
        .stdout(predicate::str::contains("error: no/such/folder: no such file or folder"));
}

#[test]
fn usage_errors_exit_1_not_2() {
    // Exit 2 is reserved for `plan --detailed-exitcode` with changes.
    contact_sync().arg("frobnicate").assert().code(1);
    contact_sync().args(["validate", "--format", "xml"]).assert().code(1);
    contact_sync().arg("--help").assert().success();
}

#[test]
fn files_over_10_mib_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.yaml");
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    let text = line.repeat(10 * 1024 * 1024 / line.len() + 1);
    std::fs::write(&path, text).unwrap();
    contact_sync()
        .arg("validate")
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("over the limit of 10485760 bytes (10 MiB)"));
}

#[test]
fn a_file_with_several_documents_reports_each_at_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let sync =
        std::fs::read_to_string(crate::root().join("examples/syncs/sales-to-accounting.yaml"))
            .unwrap();
    let second = sync
        .replace("name: sales-to-accounting", "name: sales-to-finance")
        .replace("groups: [accounting@example.com]", "groups: [finance@]")
        .replace("orgUnits: [/Accounting]", "orgUnits: [/Finance]");
    let path = dir.path().join("two.yaml");
    std::fs::write(&path, format!("{sync}---\n{second}")).unwrap();
    let lines_before = sync.lines().count() + 1;
    let line = lines_before + second.lines().position(|l| l.contains("finance@")).unwrap() + 1;
    contact_sync()
        .arg("validate")
        .arg(&path)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(format!(
            "two.yaml:{line}:14: /spec/destinations/groups/0: `finance@` is not a valid e-mail"
        )))
        .stdout(predicate::str::ends_with("1 file, 2 syncs: 1 error\n"));
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _contact__sync"),
        ("zsh", "#compdef contact-sync"),
        ("fish", "complete -c contact-sync"),
    ] {
        let out = contact_sync().args(["completions", shell]).assert().success();
        let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
        assert!(text.contains(marker), "{shell}: no `{marker}` in\n{text}");
        for command in ["validate", "plan", "apply", "reconcile", "show", "resolve", "adopt"] {
            assert!(text.contains(command), "{shell}: `{command}` is not completed");
        }
    }
    contact_sync().args(["completions", "tcsh"]).assert().code(1);
}

#[test]
fn the_manual_page_is_printed_or_written_one_page_per_command() {
    contact_sync()
        .arg("man")
        .assert()
        .success()
        .stdout(predicate::str::contains(".TH contact-sync 1"))
        .stdout(predicate::str::contains("reconcile"));
    let dir = tempfile::tempdir().unwrap();
    let pages = dir.path().join("man1");
    contact_sync().args(["man", "--dir"]).arg(&pages).assert().success();
    for page in [
        "contact-sync.1",
        "contact-sync-plan.1",
        "contact-sync-reconcile.1",
        "contact-sync-show.1",
        "contact-sync-resolve.1",
        "contact-sync-adopt.1",
    ] {
        let text = std::fs::read_to_string(pages.join(page)).unwrap();
        assert!(text.starts_with(".ie \\n(.g") || text.contains(".TH"), "{page}:\n{text}");
    }
    let plan = std::fs::read_to_string(pages.join("contact-sync-plan.1")).unwrap();
    assert!(plan.contains("detailed\\-exitcode"), "{plan}");
}

/// Runs contact-sync with its stdout a pipe nobody reads any more, as in
/// `contact-sync plan | head -0`: (exit code, stderr).
fn into_a_closed_pipe(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("contact-sync"))
        .current_dir(crate::root())
        .args(args)
        .env("CONTACT_SYNC_CACHE_DIR", crate::test_cache_dir())
        .stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    (out.status.code(), String::from_utf8(out.stderr).unwrap())
}

#[test]
fn a_closed_pipe_ends_output_quietly_with_exit_0() {
    for args in [
        &["plan", "examples/"][..],
        &["plan", "examples/", "--format", "json"],
        &["plan", "examples/", "--format", "markdown"],
        &["validate", "examples/"],
        &["schema"],
        &["completions", "bash"],
        &["man"],
    ] {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
        let (code, stderr) = into_a_closed_pipe(&args);
        assert_eq!((code, stderr.as_str()), (Some(0), ""), "{args:?}");
    }
}

#[test]
fn apply_into_a_closed_pipe_applies_nothing_it_could_not_show() {
    let seed = crate::harness::Seed::new();
    let dir = seed.dir.path().as_os_str();
    let args = ["apply".as_ref(), dir, "--auto-approve".as_ref()];
    let (code, stderr) = into_a_closed_pipe(&args);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("nothing was applied"), "{stderr}");
    contact_sync()
        .args(["plan", "--detailed-exitcode"])
        .arg(dir)
        .assert()
        .code(2)
        .stdout(predicate::str::contains("Plan: 35 to add"));
}

/// `contact-sync ARGS` on a pseudo-terminal (util-linux `script`), with `env`:
/// what it printed, or `None` where `script` is missing.
fn on_a_terminal(args: &str, env: &[(&str, &str)]) -> Option<String> {
    let binary = assert_cmd::cargo::cargo_bin("contact-sync");
    let mut command = std::process::Command::new("script");
    command
        .args(["-qec", &format!("{} {args}", binary.display()), "/dev/null"])
        .current_dir(crate::root())
        .env("TERM", "xterm-256color")
        .env("CONTACT_SYNC_CACHE_DIR", crate::test_cache_dir())
        .env_remove("NO_COLOR");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().ok()?;
    Some(String::from_utf8(out.stdout).unwrap())
}

#[test]
fn colour_on_a_terminal_unless_no_color_no_color_env_or_term_dumb() {
    let Some(coloured) = on_a_terminal("plan examples/", &[]) else {
        eprintln!("`script` (util-linux) is missing: no pseudo-terminal, colour not checked");
        return;
    };
    assert!(coloured.contains("\x1b[32m+ group"), "{coloured}");
    for (args, env) in [
        ("plan examples/ --no-color", &[][..]),
        ("--no-color plan examples/", &[]),
        ("plan examples/", &[("NO_COLOR", "1")]),
        ("plan examples/", &[("TERM", "dumb")]),
    ] {
        let plain = on_a_terminal(args, env).unwrap();
        assert!(plain.contains("+ group \"Sales Contacts\""), "{args} {env:?}: {plain}");
        assert!(!colour(&plain), "{args} {env:?}: colour in\n{plain}");
    }
    // A dumb terminal gets no progress bar either: nothing redrawn in place.
    let dumb = on_a_terminal("plan examples/", &[("TERM", "dumb")]).unwrap();
    assert!(!dumb.contains('\x1b'), "{dumb}");
}

/// Whether `text` holds an SGR (colour or style) escape sequence: ESC [ digits m.
fn colour(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let end = rest.find(|c: char| !(c.is_ascii_digit() || c == ';'));
        end.is_some_and(|i| rest[i..].starts_with('m'))
    })
}

#[test]
fn validate_json_lists_each_error_with_its_position_and_kind() {
    let out = contact_sync()
        .args(["validate", "--format", "json"])
        .args(["examples/invalid/bad-email.yaml", "examples/invalid/yaml-syntax.yaml"])
        .arg("examples/invalid/unknown-field.yaml")
        .assert()
        .code(1);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(report["valid"], false);
    assert_eq!(report["files"], 3);
    assert_eq!(report["errors"], 3);
    let kinds: Vec<(&str, &str)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["file"].as_str().unwrap(), d["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("examples/invalid/bad-email.yaml", "semantic"),
            ("examples/invalid/yaml-syntax.yaml", "yaml"),
            ("examples/invalid/unknown-field.yaml", "schema"),
        ]
    );
    let email = &report["diagnostics"][0];
    assert_eq!((email["line"].as_u64(), email["column"].as_u64()), (Some(10), Some(11)));
    assert_eq!(email["pointer"], "/spec/source/user");
    let ok = contact_sync().args(["validate", "--format", "json", "examples/"]).assert().success();
    let report: serde_json::Value = serde_json::from_slice(&ok.get_output().stdout).unwrap();
    assert_eq!((report["valid"].as_bool(), report["errors"].as_u64()), (Some(true), Some(0)));
}

#[test]
fn a_known_foreign_yaml_file_gets_the_ignore_file_hint() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        crate::root().join("examples/ci/github-actions.yml"),
        dir.path().join("plan.yml"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [a.yaml]\n",
    )
    .unwrap();
    let out = contact_sync().arg("validate").arg(dir.path()).assert().code(1);
    let stdout = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for (file, what) in
        [("kustomization.yaml", "a kustomization"), ("plan.yml", "a GitHub Actions workflow")]
    {
        let line = stdout.lines().find(|l| l.contains(file)).unwrap_or_else(|| panic!("{stdout}"));
        assert!(line.contains(&format!("this looks like {what}")), "{line}");
        assert!(
            line.contains(&format!("list it in .contactsyncignore (a line `{file}`")),
            "{line}"
        );
    }
    assert!(stdout.ends_with("2 files, 0 syncs: 2 errors\n"), "one error per file: {stdout}");
    // Listed, they are skipped.
    std::fs::write(dir.path().join(".contactsyncignore"), "kustomization.yaml\nplan.yml\n")
        .unwrap();
    contact_sync()
        .arg("validate")
        .arg(dir.path())
        .assert()
        .code(1)
        .stdout(predicate::str::contains("no manifest found"));
}

#[test]
fn on_a_terminal_each_error_is_printed_once_with_its_snippet() {
    let Some(out) = on_a_terminal("validate --no-color examples/invalid/bad-email.yaml", &[])
    else {
        eprintln!("`script` (util-linux) is missing: no pseudo-terminal, not checked");
        return;
    };
    assert_eq!(out.matches("is not a valid e-mail address").count(), 1, "{out}");
    assert!(out.contains("examples/invalid/bad-email.yaml:10:11"), "{out}");
    assert!(out.contains("user: salesuser(at)example.com"), "the snippet: {out}");
}

#[test]
fn reading_the_tenant_shows_progress_on_a_terminal_only() {
    let Some(out) = on_a_terminal("plan --no-color examples/", &[]) else {
        eprintln!("`script` (util-linux) is missing: no pseudo-terminal, not checked");
        return;
    };
    assert!(out.contains("reading the tenant"), "{out}");
    assert!(out.contains("Plan: 35 to add"), "{out}");
    // Not a terminal (a CI log): the plan alone, no progress on stderr.
    contact_sync()
        .args(["plan", "examples/"])
        .assert()
        .success()
        .stderr(predicate::str::contains("reading the tenant").not());
}

/// `resolve` on the example, with every kind of selector, exclusion and error.
#[test]
fn resolve_says_whom_each_selector_reaches_and_why() {
    let seed = crate::harness::Seed::new();
    let sync = seed.read("syncs/sales-to-accounting.yaml").replace(
        "    orgUnits: [/Accounting]\n",
        "    orgUnits: [/Accounting]\n    users: [frank@example.com, carol@example.com, \
         nobody@example.com]\n    exclude:\n      users: [bob@example.com]\n      orgUnits: \
         [/Accounting/Payroll]\n",
    );
    seed.write("syncs/sales-to-accounting.yaml", &sync);
    let out = contact_sync().arg("resolve").arg(seed.dir.path()).assert().code(1);
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for line in [
        "sync sales-to-accounting  (salesuser@example.com / \"Sales Contacts\")\n",
        "  ann@example.com: destination, via group accounting@example.com, via org unit /Accounting\n",
        "  bob@example.com: excluded by exclude.users bob@example.com, via group accounting@example.com, via org unit /Accounting\n",
        "  caroline@example.com: excluded by exclude.orgUnits /Accounting/Payroll, via group accounting@example.com, via org unit /Accounting\n",
        "  erin@example.com: skipped (suspended: its synced contacts are kept), via org unit /Accounting\n",
        "  frank@example.com: destination, by address frank@example.com\n",
        "  gina@example.com: destination, via group accounting@example.com\n",
        "  dave@example.com: excluded by exclude.orgUnits /Accounting/Payroll, via org unit /Accounting\n",
        "  ! carol@example.com: renamed to caroline@example.com; update destinations.users in ",
        "  ! nobody@example.com: not found in the directory (did you mean \"bob@example.com\"?); fix destinations.users in ",
        "  3 destinations, 1 skipped, 3 excluded, 2 errors.\n",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    // JSON: the same, for scripts.
    let out =
        contact_sync().args(["resolve", "--format", "json"]).arg(seed.dir.path()).assert().code(1);
    let json: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let sync = &json["syncs"][0];
    let users = sync["users"].as_array().unwrap();
    let bob = users.iter().find(|u| u["user"] == "bob@example.com").unwrap();
    assert_eq!(bob["status"], "excluded");
    assert_eq!(bob["reason"], "exclude.users bob@example.com");
    assert_eq!(
        bob["via"][0],
        serde_json::json!({"selector": "group", "value": "accounting@example.com"})
    );
    let kinds: Vec<&str> = sync["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["address"].is_string())
        .map(|u| u["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["destinationRenamed", "destinationNotFound"]);
    // The example as it is resolves cleanly.
    contact_sync().args(["resolve", "examples/"]).assert().success();
}

/// `resolve` reads the directory only: against the emulator, no People API request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolve_reads_no_contacts() {
    let seed = crate::harness::Seed::google();
    let dir = seed.dir.path().to_owned();
    tokio::task::spawn_blocking(move || {
        contact_sync()
            .arg("resolve")
            .arg(&dir)
            .assert()
            .success()
            .stdout(predicate::str::contains("5 destinations, 1 skipped, 0 excluded, 0 errors."));
    })
    .await
    .unwrap();
    let stats = seed.stats().await;
    let people: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["endpoint"]
                .as_str()
                .is_some_and(|e| e.contains("/v1/people") || e.contains("/v1/contactGroups"))
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(people, 0, "{stats:#}");
    let members = "GET /admin/directory/v1/groups/{group_key}/members";
    assert!(crate::harness::count(&stats, members, Some(200)) > 0, "{stats:#}");
}

/// Schema and semantic errors come in one run: an unknown field does not hide a
/// bad schedule or time zone until it is fixed.
#[test]
fn schema_and_semantic_errors_are_reported_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let sync =
        std::fs::read_to_string(crate::root().join("examples/syncs/sales-to-accounting.yaml"))
            .unwrap()
            .replace("schedule: nightly", "schedule: \"61 * * * *\"")
            .replace("  suspend: false\n", "  suspend: false\n  colour: blue\n");
    assert!(sync.contains("colour: blue") && sync.contains("61 * * * *"));
    std::fs::write(dir.path().join("sync.yaml"), sync).unwrap();
    let workspace = std::fs::read_to_string(crate::root().join("examples/contact-sync.yaml"))
        .unwrap()
        .replace(
            "apiVersion: contact-sync/v1\nkind: Workspace\n",
            "apiVersion: contact-sync/v1\nkind: Workspace\nbogus: 1\n",
        )
        .replace("timeZone: UTC", "timeZone: Mars/Olympus_Mons");
    std::fs::write(dir.path().join("contact-sync.yaml"), workspace).unwrap();
    std::fs::copy(crate::root().join("examples/workspace.yaml"), dir.path().join("workspace.yaml"))
        .unwrap();
    let out =
        contact_sync().args(["validate", "--format", "json"]).arg(dir.path()).assert().code(1);
    let report: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let found: Vec<(String, String)> = report["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (d["pointer"].as_str().unwrap_or("").to_owned(), d["kind"].as_str().unwrap().to_owned())
        })
        .collect();
    for expected in [
        ("/bogus", "schema"),
        ("/spec/timeZone", "semantic"),
        ("/spec/colour", "schema"),
        ("/spec/schedule", "semantic"),
    ] {
        assert!(
            found.contains(&(expected.0.to_owned(), expected.1.to_owned())),
            "{expected:?} not in {found:?}"
        );
    }
    assert_eq!(found.len(), 4, "each mistake once: {found:?}");
}

/// For a directory sync, `resolve` also says how many users the source copies and
/// that the hidden ones are not copied.
#[test]
fn resolve_counts_a_directory_syncs_hidden_users() {
    let seed = crate::harness::Seed::new();
    let tenant = seed.read("workspace.yaml").replace(
        "    orgUnitPath: /Accounting/Payroll\n    name: { givenName: Dave, familyName: Davis }\n",
        "    orgUnitPath: /Accounting/Payroll\n    includeInGlobalAddressList: false\n    name: { givenName: Dave, familyName: Davis }\n",
    );
    assert!(tenant.contains("includeInGlobalAddressList: false\n    name: { givenName: Dave"));
    seed.write("workspace.yaml", &tenant);
    seed.write(
        "syncs/directory.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: accounting-directory}\nspec:\n  type: directory\n  source: { directory: { orgUnits: [/Accounting] } }\n  target: { groupName: Accounting }\n  destinations: { users: [frank@example.com] }\n",
    );
    contact_sync()
        .args(["resolve", "--sync", "accounting-directory"])
        .arg(seed.dir.path())
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "  source: copies 3 users of the directory; 1 hidden from the Global Address List",
        ))
        .stdout(predicate::str::contains(
            "  frank@example.com: destination, by address frank@example.com\n",
        ));
}
