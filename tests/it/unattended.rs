//! Safe to run unattended: nothing is deleted because of what a run did not read,
//! a saved plan is applied exactly or not at all, a write whose answer was lost is
//! never sent twice, two writers never write at once, and a failed read holds back
//! only what depends on it.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::contact_sync;
use crate::harness::{Seed, count};
use contact_sync::emulator::quota::Limits;

pub fn dropped(stats: &Value) -> u64 {
    stats["droppedAnswers"].as_array().unwrap().iter().map(|r| r["count"].as_u64().unwrap()).sum()
}

/// For every destination of the bulk sync: (copies, distinct source contacts), as
/// the emulator holds them.
pub fn copies(seed: &Seed, destinations: usize) -> Vec<(usize, usize)> {
    let emulator = seed.emulator.as_ref().unwrap();
    (0..destinations)
        .map(|i| {
            let contacts =
                emulator.with_store(|s| s.contacts(&format!("d{i:03}@example.com")).unwrap());
            let marked: Vec<_> = contacts.iter().filter(|c| c.owner() == Some("bulk")).collect();
            let keys: BTreeSet<&str> = marked
                .iter()
                .filter_map(|c| {
                    contact_sync::model::client_data(&c.client_data, "contact-sync/source")
                })
                .collect();
            (marked.len(), keys.len())
        })
        .collect()
}

/// Plans and applies once; every write must land once, whatever the faults: the
/// apply reports no failure and the next plan is empty.
async fn apply_once_under_faults(seed: &Seed) {
    let plan = seed.plan().await;
    assert_eq!(plan.summary.errors, 0, "{}", seed.text(&plan));
    let report = seed.apply(&plan).await;
    assert!(!report.failed(), "{report:?}");
    let again = seed.plan().await;
    assert!(!again.summary.has_changes(), "{}", seed.text(&again));
}

fn summarize(stats: &Value) -> String {
    let mut lines = Vec::new();
    for r in stats["requests"].as_array().unwrap() {
        lines.push(format!("{} {} {}", r["endpoint"], r["status"], r["count"]));
    }
    lines.push(format!("dropped answers: {}", dropped(stats)));
    lines.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_answers_and_failed_writes_never_duplicate_a_contact() {
    let (contacts, destinations) = (1000, 20);
    let seed = Seed::synthetic_google(contacts, destinations, |c| {
        c.drop_response_rate = 0.2;
        c.fail_rate = 0.1;
        c.seed = 11;
        c.limits = Limits { window: Duration::from_secs(1), ..Limits::default() };
    });
    apply_once_under_faults(&seed).await;
    // Checked right after the apply, before any later run could clean up.
    assert_eq!(copies(&seed, destinations), vec![(contacts, contacts); destinations]);
    let stats = seed.stats().await;
    eprintln!("first sync:\n{}", summarize(&stats));
    assert!(dropped(&stats) > 0, "answers were dropped: {stats:#}");
    assert!(
        count(&stats, "POST /v1/people:batchCreateContacts", Some(500))
            + count(&stats, "POST /v1/people:batchCreateContacts", Some(503))
            > 0,
        "creates failed: {stats:#}"
    );

    // 5 % churn at the source: 20 contacts edited, 15 leave the group, 15 new ones.
    seed.emulator.as_ref().unwrap().with_store(churn);
    let plan = seed.plan().await;
    assert_eq!(
        (plan.summary.create, plan.summary.update, plan.summary.delete),
        (15 * destinations, 20 * destinations, 15 * destinations)
    );
    apply_once_under_faults(&seed).await;
    assert_eq!(copies(&seed, destinations), vec![(contacts, contacts); destinations]);
    let after = seed.stats().await;
    eprintln!("churn:\n{}", summarize(&after));
    assert!(dropped(&after) > dropped(&stats), "answers were dropped in the churn run too");
}

/// Edits 20 of the source's contacts, takes 15 out of "Shared" and adds 15 new ones.
fn churn(s: &mut contact_sync::backend::store::Store) {
    use contact_sync::model::{ContactUpdate, NewContact, PersonFields};
    const SOURCE: &str = "source@example.com";
    let shared = crate::harness::group(s, SOURCE, "Shared").resource_name;
    let contacts = s.contacts(SOURCE).unwrap();
    let edits = contacts[..20]
        .iter()
        .map(|c| {
            let mut fields = PersonFields::new();
            fields.insert("nicknames".into(), serde_json::json!([{ "value": "churned" }]));
            ContactUpdate {
                resource_name: c.resource_name.clone(),
                etag: c.etag.clone(),
                fields,
                update_mask: vec!["nicknames".into()],
                client_data: Vec::new(),
            }
        })
        .collect();
    s.update_contacts(SOURCE, edits).unwrap();
    let leaving: Vec<String> = contacts[20..35].iter().map(|c| c.resource_name.clone()).collect();
    s.modify_members(SOURCE, &shared, &[], &leaving).unwrap();
    let new = (0..15)
        .map(|i| {
            let mut fields = PersonFields::new();
            fields.insert(
                "names".into(),
                serde_json::json!([{ "givenName": "New", "familyName": format!("{i:02}") }]),
            );
            NewContact {
                fields: std::borrow::Cow::Owned(fields),
                memberships: vec![shared.clone()],
                client_data: Vec::new(),
            }
        })
        .collect();
    s.create_contacts(SOURCE, new).unwrap();
}

fn stdout(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stdout).into_owned()
}

fn stderr(out: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&out.get_output().stderr).into_owned()
}

/// A second sync beside the example's: Sales Contacts to Frank, as "Sales Copy".
const TO_FRANK: &str = "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: sales-to-frank}\nspec:\n  source: {user: salesuser@example.com, contactGroup: Sales Contacts}\n  target: {groupName: Sales Copy}\n  destinations: {users: [frank@example.com]}\n";

async fn frank_copies(seed: &Seed) -> usize {
    seed.contacts("frank@example.com")
        .await
        .iter()
        .filter(|c| c.owner() == Some("sales-to-frank"))
        .count()
}

#[tokio::test]
async fn applying_some_of_the_manifests_prunes_no_other_sync() {
    let seed = Seed::new();
    seed.write("syncs/sales-to-frank.yaml", TO_FRANK);
    seed.converge().await;
    assert_eq!(frank_copies(&seed).await, 6);
    // The Workspace and one sync, named as files: the other sync was not read.
    let out = contact_sync()
        .arg("apply")
        .arg(seed.path("contact-sync.yaml"))
        .arg(seed.path("syncs/sales-to-accounting.yaml"))
        .arg("--auto-approve")
        .assert()
        .success();
    let text = stdout(&out);
    assert!(text.contains("Note: Syncs whose manifest was deleted were not looked for"), "{text}");
    assert!(!text.contains("sales-to-frank"), "{text}");
    assert_eq!(frank_copies(&seed).await, 6, "the sync that was not read keeps its contacts");
    // --sync is a subset too.
    contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .env("CONTACT_SYNC_CACHE_DIR", crate::test_cache_dir())
        .args(["--sync", "sales-to-accounting", "--auto-approve"])
        .assert()
        .success()
        .stdout(predicates::str::contains("--sync sales-to-accounting narrowed the run"));
    assert_eq!(frank_copies(&seed).await, 6);
    // The whole folder still finds a sync whose manifest is really gone.
    std::fs::remove_file(seed.path("syncs/sales-to-frank.yaml")).unwrap();
    let plan = seed.plan().await;
    assert!(plan.syncs.iter().any(|s| s.name == "sales-to-frank" && s.orphaned));
    seed.converge().await;
    assert_eq!(frank_copies(&seed).await, 0);
}

#[tokio::test]
async fn a_folder_with_only_the_workspace_deletes_nothing() {
    let seed = Seed::new();
    seed.converge().await;
    // The syncs live somewhere the run was not pointed at.
    std::fs::remove_dir_all(seed.path("syncs")).unwrap();
    let out = contact_sync().arg("plan").arg(seed.dir.path()).assert().code(1);
    let text = stdout(&out);
    assert!(text.contains("would delete 30 contacts of syncs whose manifest is gone"), "{text}");
    assert!(text.contains("--allow-deletes"), "{text}");
    let before = seed.read("workspace.yaml");
    contact_sync().arg("apply").arg(seed.dir.path()).arg("--auto-approve").assert().code(1);
    assert_eq!(seed.read("workspace.yaml"), before, "nothing was deleted");
    assert_eq!(seed.contacts("bob@example.com").await.len(), 6);
    // Pointed at the manifests again, the run has nothing to do.
    std::fs::create_dir_all(seed.path("syncs")).unwrap();
    let sync =
        std::fs::read_to_string(crate::root().join("examples/syncs/sales-to-accounting.yaml"));
    seed.write("syncs/sales-to-accounting.yaml", &sync.unwrap());
    assert!(!seed.converge().await.summary.has_changes());
}

/// Saves a plan of the seed to `plan.json` and returns it parsed.
fn saved_plan(seed: &Seed) -> (std::path::PathBuf, Value) {
    let path = seed.path("plan.json");
    contact_sync().arg("plan").arg(seed.dir.path()).arg("--out").arg(&path).assert().success();
    let json = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    (path, json)
}

/// The checksum `plan --out` writes, recomputed the way someone who edits the file
/// and knows the format would.
fn reseal(mut plan: Value) -> Value {
    use sha2::Digest;
    plan["checksum"] = "".into();
    let digest = sha2::Sha256::digest(serde_json::to_vec(&plan).unwrap());
    plan["checksum"] = format!("sha256:{}", hex::encode(digest)).into();
    plan
}

#[test]
fn an_edited_saved_plan_is_refused_and_nothing_is_applied() {
    let seed = Seed::new();
    let before = seed.read("workspace.yaml");
    let (path, plan) = saved_plan(&seed);
    let write =
        |v: &Value| std::fs::write(&path, serde_json::to_string_pretty(v).unwrap()).unwrap();
    let apply = || contact_sync().arg("apply").arg(&path).assert().code(1);

    // A contact renamed in its operation, and one destination's changes dropped.
    let mut evil = plan.clone();
    let list = evil["syncs"][0]["destinations"][0]["changes"].as_u64().unwrap() as usize;
    let ada = &mut evil["changeLists"][list][1];
    ada["name"] = "EVIL".into();
    let body = ada["op"]["body"].as_u64().unwrap() as usize;
    evil["bodies"][body]["names"] = serde_json::json!([{ "givenName": "EVIL" }]);
    let lists = evil["changeLists"].as_array_mut().unwrap();
    lists.push(serde_json::json!([]));
    evil["syncs"][0]["destinations"][1]["changes"] = (lists.len() - 1).into();
    write(&evil);
    let err = stderr(&apply());
    assert!(err.contains("was changed after `plan --out` saved it"), "{err}");

    // The same edit with the checksum made to match: the fresh plan says otherwise.
    write(&reseal(evil));
    let err = stderr(&apply());
    assert!(err.contains("is stale"), "{err}");
    assert!(err.contains("\n  -    + contact \"EVIL\" <ada@acme.test>\n"), "{err}");
    assert!(
        err.contains("\n  +  5 users (ann@example.com, bob@example.com, and 3 more), each:\n"),
        "{err}"
    );
    assert!(err.contains("\n  +    + contact \"Ada Lovelace\" <ada@acme.test>\n"), "{err}");

    let mut future = plan.clone();
    future["formatVersion"] = "9".into();
    write(&reseal(future));
    let err = stderr(&apply());
    assert!(err.contains("formatVersion \"9\""), "{err}");

    let mut earlier = plan.clone();
    earlier["formatVersion"] = "2".into();
    write(&reseal(earlier));
    let err = stderr(&apply());
    assert!(err.contains("saved by an earlier contact-sync, in formatVersion \"2\""), "{err}");

    assert_eq!(seed.read("workspace.yaml"), before, "nothing was applied");
    assert!(!seed.read("workspace.yaml").contains("EVIL"));
    // A plan saved afresh applies, and the next plan is empty.
    let (path, _) = saved_plan(&seed);
    contact_sync().arg("apply").arg(&path).assert().success();
    contact_sync().arg("plan").arg(seed.dir.path()).arg("--detailed-exitcode").assert().code(0);
}

/// `plan --format json > p.json; apply p.json`: the JSON for reading is told
/// apart from a saved plan, and the message says how to save one.
#[test]
fn a_json_plan_applied_in_place_of_a_saved_one_says_how_to_save_one() {
    let seed = Seed::new();
    let before = seed.read("workspace.yaml");
    let out = contact_sync().args(["plan", "--format", "json"]).arg(seed.dir.path()).output();
    let path = seed.dir.path().join("p.json");
    std::fs::write(&path, out.unwrap().stdout).unwrap();
    let err = stderr(&contact_sync().arg("apply").arg(&path).assert().code(1));
    assert!(
        err.contains(&format!(
            "{} is a plan printed by `contact-sync plan --format json`, for reading",
            path.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "save a plan to apply with: contact-sync plan --out {}",
            path.display()
        )),
        "{err}"
    );
    assert!(!err.contains("earlier contact-sync"), "{err}");
    assert_eq!(seed.read("workspace.yaml"), before, "nothing was applied");
    // Saved as it says, it applies; the next plan is empty.
    contact_sync().args(["plan", "--out"]).arg(&path).arg(seed.dir.path()).assert().success();
    contact_sync().arg("apply").arg(&path).assert().success();
    contact_sync().arg("plan").arg(seed.dir.path()).arg("--detailed-exitcode").assert().code(0);
}

#[test]
fn a_plan_saved_by_an_earlier_version_is_refused_with_what_to_do() {
    let seed = Seed::new();
    let before = seed.read("workspace.yaml");
    let (path, mut plan) = saved_plan(&seed);
    plan["formatVersion"] = "1".into();
    std::fs::write(&path, serde_json::to_string_pretty(&reseal(plan)).unwrap()).unwrap();
    let err = stderr(&contact_sync().arg("apply").arg(&path).assert().code(1));
    assert!(err.contains("was saved by an earlier contact-sync, in formatVersion \"1\""), "{err}");
    assert!(
        err.contains(&format!(
            "make the plan again with this version: contact-sync plan --out {}",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(seed.read("workspace.yaml"), before, "nothing was applied");
}

#[test]
fn a_saved_plan_grows_with_the_contacts_not_with_the_destinations() {
    let saved = |destinations: usize| {
        let (dir, manifests) = crate::harness::synthetic_local(100, destinations);
        let path = dir.path().join("plan.json");
        contact_sync().arg("plan").arg(&manifests).arg("--out").arg(&path).assert().success();
        let size = std::fs::metadata(&path).unwrap().len();
        (dir, manifests, path, size)
    };
    let (_small, _, _, two) = saved(2);
    let (_dir, manifests, path, fifty) = saved(50);
    // 25 times the destinations, each given the same 101 creates: one list of
    // changes and one body per contact, plus a line or two per destination.
    assert!(fifty * 10 < two * 12, "2 destinations: {two} bytes, 50: {fifty} bytes");

    // Read back, it is the plan: it applies, and the next plan is empty.
    contact_sync()
        .arg("apply")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicates::str::contains("Apply complete: 5050 added, 0 changed, 0 deleted."));
    contact_sync().arg("plan").arg(&manifests).arg("--detailed-exitcode").assert().code(0);
}

#[test]
fn a_saved_plan_is_applied_alone_and_without_a_prompt() {
    let seed = Seed::new();
    let (path, _) = saved_plan(&seed);
    for extra in
        [&["--sync", "sales-to-accounting"][..], &["--allow-deletes"], &["--workspace", "x.yaml"]]
    {
        let out = contact_sync().arg("apply").arg(&path).args(extra).assert().code(1);
        let err = stderr(&out);
        assert!(err.contains("cannot be used with a saved plan"), "{extra:?}: {err}");
    }
    contact_sync()
        .arg("apply")
        .arg(&path)
        .arg(seed.dir.path())
        .assert()
        .code(1)
        .stderr(predicates::str::contains("either manifest paths or one saved plan"));
    // stdin is not a terminal and there is no --auto-approve: the plan was the review.
    contact_sync()
        .arg("apply")
        .arg(&path)
        .assert()
        .success()
        .stdout(predicates::str::contains("Apply complete: 35 added"));
    contact_sync().arg("plan").arg(seed.dir.path()).arg("--detailed-exitcode").assert().code(0);
}

#[test]
fn a_stopped_local_lock_holder_is_named_after_the_timeout() {
    use contact_sync::backend::{Backend, LeaseAttempt};
    let seed = Seed::new();
    let before = seed.read("workspace.yaml");
    // Another process holds the lock and does nothing (stopped): this test.
    let holder = contact_sync::backend::local::LocalBackend::open(&seed.tenant).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let taken = rt
        .block_on(holder.try_lease(
            "ops@bastion pid 4242 (contact-sync apply) #stopped",
            Duration::from_secs(60),
        ))
        .unwrap();
    assert!(matches!(taken, LeaseAttempt::Taken { .. }));
    let start = std::time::Instant::now();
    let out = contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--auto-approve", "--lock-timeout", "2"])
        .timeout(Duration::from_secs(60))
        .assert()
        .code(1);
    assert!(start.elapsed() < Duration::from_secs(30), "it gave up after the timeout");
    let err = stderr(&out);
    assert!(err.contains("Waiting for the writer lease, held by ops@bastion pid 4242"), "{err}");
    assert!(
        err.contains("held by ops@bastion pid 4242 (contact-sync apply) #stopped since"),
        "{err}"
    );
    assert!(err.contains("--lock-timeout"), "{err}");
    assert_eq!(seed.read("workspace.yaml"), before, "nothing was applied");
    // Once the holder lets go, the next apply goes through at once.
    rt.block_on(holder.release_lease("ops@bastion pid 4242 (contact-sync apply) #stopped"))
        .unwrap();
    contact_sync()
        .arg("apply")
        .arg(seed.dir.path())
        .args(["--auto-approve", "--lock-timeout", "0"])
        .assert()
        .success();
    contact_sync().arg("plan").arg(seed.dir.path()).arg("--detailed-exitcode").assert().code(0);
}

/// Starts `contact-sync apply` on the seed's manifests, in the background.
fn spawn_apply(seed: &Seed, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("contact-sync"))
        .arg("apply")
        .arg(seed.dir.path())
        .arg("--auto-approve")
        .args(extra)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: std::process::Child) -> (i32, String, String) {
    let out = child.wait_with_output().unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

/// Every Accounting destination holds exactly one copy of each of the six contacts.
fn assert_one_copy_each(seed: &Seed) {
    let emulator = seed.emulator.as_ref().unwrap();
    for user in crate::harness::ACCOUNTING {
        let contacts = emulator.with_store(|s| s.contacts(user).unwrap());
        let copies: Vec<String> = contacts
            .iter()
            .filter(|c| c.owner() == Some(crate::harness::SYNC))
            .map(|c| c.display_name())
            .collect();
        let distinct: BTreeSet<&String> = copies.iter().collect();
        assert_eq!((copies.len(), distinct.len()), (6, 6), "{user}: {copies:?}");
    }
}

/// The writer lease as the emulator holds it: (holder, expires), if there is one.
fn lease_in_tenant(seed: &Seed) -> Option<(String, String)> {
    use contact_sync::model::client_data;
    let groups = seed
        .emulator
        .as_ref()
        .unwrap()
        .with_store(|s| s.contact_groups("admin@example.com").unwrap());
    let g = groups.into_iter().find(|g| g.name == "contact-sync lease")?;
    let get = |k| client_data(&g.client_data, k).unwrap_or_default().to_owned();
    Some((get("contact-sync/lease-holder"), get("contact-sync/lease-expires")))
}

#[test]
fn two_applies_at_once_write_one_after_the_other() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    // Slow enough answers that each apply takes seconds: the two overlap.
    let seed = Seed::google_with(|c| c.latency = Duration::from_millis(150));
    // A first sync, twice at once (a manual apply and the one CI runs on merge).
    let (a, b) = (spawn_apply(&seed, &[]), spawn_apply(&seed, &[]));
    let runs = [finish(a), finish(b)];
    for (code, out, err) in &runs {
        assert_eq!(*code, 0, "{out}\n{err}");
    }
    let waited: Vec<&String> = runs
        .iter()
        .map(|(_, _, err)| err)
        .filter(|e| e.contains("Waiting for the writer lease"))
        .collect();
    assert_eq!(waited.len(), 1, "one waited for the other: {runs:?}");
    assert!(waited[0].contains("(contact-sync apply) #"), "the holder is named: {}", waited[0]);
    let stats = rt.block_on(seed.stats());
    // One of them made every contact; the other, planning after it, found nothing to do.
    assert_eq!(count(&stats, "POST /v1/people:batchCreateContacts", None), 5, "{stats:#}");
    assert_one_copy_each(&seed);
    let (holder, _) = lease_in_tenant(&seed).expect("the lease group");
    assert_eq!(holder, "", "both gave the lease up");

    // An update run, twice at once.
    let nickname = serde_json::json!([{ "value": "Amazing Grace" }]);
    rt.block_on(seed.set_field("salesuser@example.com", "Grace Hopper", "nicknames", nickname));
    let runs = [finish(spawn_apply(&seed, &[])), finish(spawn_apply(&seed, &[]))];
    for (code, out, err) in &runs {
        assert_eq!(*code, 0, "{out}\n{err}");
        assert!(!out.contains("failed"), "{out}");
    }
    let stats = rt.block_on(seed.stats());
    assert_eq!(count(&stats, "POST /v1/people:batchUpdateContacts", None), 5, "{stats:#}");
    assert_one_copy_each(&seed);
    assert!(!rt.block_on(seed.plan()).summary.has_changes());
}

/// Puts a lease held by `ghost` into the tenant, expiring `expires_in` from now
/// (negative: expired).
fn ghost_lease(seed: &Seed, expires_in: chrono::Duration) {
    use contact_sync::model::ClientData;
    let now = chrono::Utc::now();
    let entry = |key: &str, value: String| ClientData { key: key.into(), value };
    let data = vec![
        entry("contact-sync/lease", "writer".into()),
        entry(
            "contact-sync/lease-holder",
            "ghost@ci-runner pid 7 (contact-sync apply) #dead".into(),
        ),
        entry("contact-sync/lease-since", (now - chrono::Duration::hours(1)).to_rfc3339()),
        entry("contact-sync/lease-expires", (now + expires_in).to_rfc3339()),
    ];
    seed.emulator
        .as_ref()
        .unwrap()
        .with_store(|s| s.create_group("admin@example.com", "contact-sync lease", data).unwrap());
}

#[test]
fn a_live_lease_is_waited_for_and_an_expired_one_taken_over() {
    let seed = Seed::google();
    ghost_lease(&seed, chrono::Duration::minutes(30));
    let (code, out, err) = finish(spawn_apply(&seed, &["--lock-timeout", "1"]));
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("held by ghost@ci-runner pid 7 (contact-sync apply) #dead since"),
        "{err}"
    );
    assert!(err.contains("nothing was applied"), "{err}");
    assert!(!out.contains("Apply complete"), "{out}");
    let ann =
        seed.emulator.as_ref().unwrap().with_store(|s| s.contacts("ann@example.com").unwrap());
    assert!(ann.iter().all(|c| c.owner().is_none()), "nothing was written: {ann:?}");

    // The ghost stopped renewing it half an hour ago: the lease has lapsed.
    let seed = Seed::google();
    ghost_lease(&seed, -chrono::Duration::minutes(30));
    let (code, out, err) = finish(spawn_apply(&seed, &["--lock-timeout", "1"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(err.contains("Took over the writer lease from ghost@ci-runner"), "{err}");
    assert_one_copy_each(&seed);
    assert_eq!(lease_in_tenant(&seed).unwrap().0, "", "given up at the end");
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(!rt.block_on(seed.plan()).summary.has_changes());
}

#[test]
fn sigterm_stops_an_apply_and_gives_the_lease_up() {
    let seed = Seed::google_with(|c| c.latency = Duration::from_millis(150));
    let child = spawn_apply(&seed, &[]);
    // Signal as soon as it holds the lease: it handles signals from before it
    // takes it, and takes it before it reads the tenant, so at 150 ms a request
    // seconds of reading and writing are still ahead of it — no fixed sleep
    // guesses where the apply is.
    let start = std::time::Instant::now();
    while lease_in_tenant(&seed).is_none_or(|(holder, _)| holder.is_empty()) {
        assert!(start.elapsed() < Duration::from_secs(60), "the apply never took the lease");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let (code, out, err) = finish(child);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(err.contains("Interrupted"), "{err}");
    assert_eq!(lease_in_tenant(&seed).unwrap().0, "", "the lease was given up: {err}");
    // The next apply starts at once and finishes the work; the result is as if
    // nothing had been interrupted.
    let (code, out, err) = finish(spawn_apply(&seed, &["--lock-timeout", "0"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert_one_copy_each(&seed);
    let rt = tokio::runtime::Runtime::new().unwrap();
    assert!(!rt.block_on(seed.plan()).summary.has_changes());
}

/// The local backend, except that reading the contacts or groups of some users
/// fails, as a read does after its retries are spent.
struct FailingReads {
    inner: contact_sync::backend::local::LocalBackend,
    failing: Vec<&'static str>,
}

mod failing_reads {
    use std::time::Duration;

    use contact_sync::backend::{Backend, Error, LeaseAttempt, Result, UserScope};
    use contact_sync::model::resolution::UserSchema;
    use contact_sync::model::{
        ClientData, Contact, ContactGroup, ContactUpdate, DirectoryUser, NewContact,
    };

    impl super::FailingReads {
        fn check(&self, user: &str) -> Result<()> {
            if self.failing.contains(&user) {
                return Err(Error::Api {
                    status: 429,
                    message: format!(
                        "contact groups of {user}: Quota exceeded (HTTP 429, 8 attempts over 2 min 10 s)"
                    ),
                });
            }
            Ok(())
        }
    }

    #[async_trait::async_trait]
    impl Backend for super::FailingReads {
        async fn user(&self, key: &str) -> Result<Option<DirectoryUser>> {
            self.inner.user(key).await
        }
        async fn users(&self, scope: UserScope) -> Result<Vec<DirectoryUser>> {
            self.inner.users(scope).await
        }
        async fn group_members(&self, group: &str) -> Result<Option<Vec<String>>> {
            self.inner.group_members(group).await
        }
        async fn contact_groups(&self, user: &str) -> Result<Vec<ContactGroup>> {
            self.check(user)?;
            self.inner.contact_groups(user).await
        }
        async fn contacts(&self, user: &str) -> Result<Vec<Contact>> {
            self.check(user)?;
            self.inner.contacts(user).await
        }
        async fn create_contacts(
            &self,
            user: &str,
            c: Vec<NewContact<'_>>,
        ) -> Result<Vec<Contact>> {
            self.inner.create_contacts(user, c).await
        }
        async fn update_contacts(&self, user: &str, u: Vec<ContactUpdate>) -> Result<Vec<Contact>> {
            self.inner.update_contacts(user, u).await
        }
        async fn delete_contacts(&self, user: &str, rns: Vec<String>) -> Result<()> {
            self.inner.delete_contacts(user, rns).await
        }
        async fn create_group(
            &self,
            user: &str,
            name: &str,
            data: Vec<ClientData>,
        ) -> Result<ContactGroup> {
            self.inner.create_group(user, name, data).await
        }
        async fn update_group(&self, user: &str, group: ContactGroup) -> Result<ContactGroup> {
            self.inner.update_group(user, group).await
        }
        async fn delete_group(&self, user: &str, rn: &str) -> Result<()> {
            self.inner.delete_group(user, rn).await
        }
        async fn modify_members(
            &self,
            user: &str,
            group: &str,
            add: Vec<String>,
            remove: Vec<String>,
        ) -> Result<()> {
            self.inner.modify_members(user, group, add, remove).await
        }
        async fn commit(&self) -> Result<()> {
            self.inner.commit().await
        }
        async fn try_lease(&self, holder: &str, ttl: Duration) -> Result<LeaseAttempt> {
            self.inner.try_lease(holder, ttl).await
        }
        async fn renew_lease(&self, holder: &str, ttl: Duration) -> Result<LeaseAttempt> {
            self.inner.renew_lease(holder, ttl).await
        }
        async fn release_lease(&self, holder: &str) -> Result<()> {
            self.inner.release_lease(holder).await
        }
        async fn user_schemas(&self) -> Result<Vec<UserSchema>> {
            self.inner.user_schemas().await
        }
        fn want_custom_schemas(&self, schemas: &[String]) {
            self.inner.want_custom_schemas(schemas)
        }
        async fn shared_contacts(&self) -> Result<Vec<Contact>> {
            self.inner.shared_contacts().await
        }
        async fn contact_photo(&self, user: &str, url: &str) -> Result<Option<Vec<u8>>> {
            self.inner.contact_photo(user, url).await
        }
        async fn user_photo(&self, user_key: &str) -> Result<Option<Vec<u8>>> {
            self.inner.user_photo(user_key).await
        }
        async fn set_contact_photo(&self, user: &str, rn: &str, bytes: &[u8]) -> Result<Contact> {
            self.inner.set_contact_photo(user, rn, bytes).await
        }
        async fn delete_contact_photo(&self, user: &str, rn: &str) -> Result<Contact> {
            self.inner.delete_contact_photo(user, rn).await
        }
    }
}

#[tokio::test]
async fn a_user_whose_reads_fail_holds_back_only_itself() {
    let seed = Seed::new();
    seed.write("syncs/sales-to-frank.yaml", TO_FRANK);
    seed.converge().await;
    // The Frank sync's manifest is deleted: its contacts are orphans, pruned only
    // from the whole picture. Then the first update after a source edit.
    std::fs::remove_file(seed.path("syncs/sales-to-frank.yaml")).unwrap();
    seed.set_field(
        "salesuser@example.com",
        "Grace Hopper",
        "nicknames",
        serde_json::json!([{"value": "Amazing Grace"}]),
    )
    .await;
    let (input, _) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = FailingReads {
        inner: contact_sync::backend::local::LocalBackend::open(&seed.tenant).unwrap(),
        // Bob is a destination; Frank is read only because he holds the orphan's state.
        failing: vec!["bob@example.com", "frank@example.com"],
    };
    let plan = contact_sync::reader::plan(&backend, &input).await.unwrap();
    let text = seed.text(&plan);
    assert!(
        text.contains("! bob@example.com: cannot read the contacts of bob@example.com: contact groups of bob@example.com: Quota exceeded (HTTP 429, 8 attempts"),
        "{text}"
    );
    assert!(
        text.contains("! cannot read the contacts of frank@example.com: contact groups"),
        "{text}"
    );
    assert!(
        text.contains("Note: Syncs whose manifest was deleted were neither pruned nor listed"),
        "{text}"
    );
    assert!(plan.syncs.iter().all(|s| !s.orphaned), "no orphan is pruned: {text}");
    assert_eq!(plan.summary.errors, 2);
    assert_eq!(plan.summary.update, 4, "the other destinations are planned: {text}");
    let report = contact_sync::apply::apply(&backend, &plan, &|_| {}).await;
    assert!(report.commit_error.is_none(), "{report:?}");
    assert_eq!(report.totals(), (0, 4, 0));
    assert!(report.destinations.iter().all(|d| d.error.is_none()), "{report:?}");
    assert_eq!(frank_copies(&seed).await, 6, "what the run did not see, it did not delete");
    // Once the reads work again, Bob is updated and the orphan pruned.
    let plan = seed.plan().await;
    assert_eq!((plan.summary.update, plan.summary.delete), (1, 7), "{}", seed.text(&plan));
    seed.converge().await;
    assert_eq!(frank_copies(&seed).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_the_restarted_service_forgot_is_renewed_at_any_attempt() {
    let mut seed = Seed::google();
    let (input, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let plan = contact_sync::reader::plan(backend.as_ref(), &input).await.unwrap();
    // The service restarts between plan and apply: the tokens the client holds are
    // unknown to it now, and a third of its answers are 5xx, so a 401 can come at
    // any attempt.
    seed.restart_emulator(|c| {
        c.fail_rate = 0.35;
        c.seed = 3;
    });
    let report = contact_sync::apply::apply(backend.as_ref(), &plan, &|_| {}).await;
    assert!(!report.failed(), "{report:?}");
    let stats = seed.stats().await;
    let unauthorized: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == 401)
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert!(unauthorized > 0, "the old tokens were refused: {stats:#}");
    assert_one_copy_each(&seed);
    seed.restart_emulator(|_| {});
    seed.converge().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_is_not_taken_back_and_its_holder_writes_nothing() {
    use contact_sync::backend::{Error, LeaseAttempt};
    let seed = Seed::google();
    let (_, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let ttl = Duration::from_secs(120);
    let taken = backend.try_lease("a #1", ttl).await.unwrap();
    assert!(matches!(taken, LeaseAttempt::Taken { .. }), "{taken:?}");
    assert!(matches!(backend.renew_lease("a #1", ttl).await.unwrap(), LeaseAttempt::Taken { .. }));
    // A was stopped; its lease lapsed; B took it over and has since let it lapse too.
    seed.emulator.as_ref().unwrap().with_store(|s| {
        let mut g = crate::harness::group(s, "admin@example.com", "contact-sync lease");
        for d in &mut g.client_data {
            match d.key.as_str() {
                "contact-sync/lease-holder" => d.value = "b #2".into(),
                "contact-sync/lease-expires" => d.value = "2020-01-01T00:00:00+00:00".into(),
                _ => {}
            }
        }
        s.update_group("admin@example.com", g).unwrap();
    });
    // A wakes up: its renewal does not take the lease back, although nobody holds
    // it now (B may have written meanwhile, so A's plan is stale) …
    let renewed = backend.renew_lease("a #1", ttl).await.unwrap();
    assert!(matches!(&renewed, LeaseAttempt::Held(h) if h.holder == "b #2"), "{renewed:?}");
    // … while a new writer may take it.
    let other = target.open().unwrap();
    assert!(matches!(other.try_lease("c #3", ttl).await.unwrap(), LeaseAttempt::Taken { .. }));
    // And once its lease is lost, the backend sends none of its writes, retries
    // included.
    backend.guard_writes(Some(std::sync::Arc::new(|| Err("the writer lease ran out".into()))));
    let before = seed.stats().await;
    let err = backend.create_group("ann@example.com", "Late", vec![]).await.unwrap_err();
    assert!(matches!(err, Error::LeaseLost(_)), "{err}");
    assert!(err.to_string().contains("stopped writing"), "{err}");
    let after = seed.stats().await;
    assert_eq!(
        count(&before, "POST /v1/contactGroups", None),
        count(&after, "POST /v1/contactGroups", None),
        "nothing was sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_write_lands_once_when_every_answer_is_lost() {
    // Every write that succeeds is answered by a cut connection: each rule for a
    // lost answer has to hold, every time.
    let seed = Seed::google_with(|c| {
        c.drop_response_rate = 1.0;
        c.limits = Limits { window: Duration::from_secs(1), ..Limits::default() };
    });
    let emulator = seed.emulator.as_ref().unwrap();
    // Creates (groups and contacts): re-read, found, not sent again.
    seed.converge().await;
    assert_one_copy_each(&seed);
    let stats = seed.stats().await;
    assert_eq!(count(&stats, "POST /v1/people:batchCreateContacts", None), 5, "{stats:#}");
    // Five target groups and the inventory's.
    assert_eq!(count(&stats, "POST /v1/contactGroups", None), 5 + 1, "{stats:#}");

    // An update and a group rename: resent, met a stale etag, found already done.
    let nickname = serde_json::json!([{ "value": "Amazing Grace" }]);
    seed.set_field("salesuser@example.com", "Grace Hopper", "nicknames", nickname).await;
    seed.converge().await;
    let stats = seed.stats().await;
    assert_eq!(count(&stats, "POST /v1/people:batchUpdateContacts", Some(400)), 5, "{stats:#}");
    // A rename and an update in one run: the rename, sent first, changes the
    // copies' etags in the emulator, so each update meets a stale etag for real,
    // is re-read and resent, and then meets one again after its lost answer.
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("groupName: Sales Contacts", "groupName: Sales (read-only)");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let nickname = serde_json::json!([{ "value": "Grandma COBOL" }]);
    seed.set_field("salesuser@example.com", "Grace Hopper", "nicknames", nickname).await;
    seed.converge().await;
    let stats = seed.stats().await;
    assert_eq!(count(&stats, "PUT /v1/contactGroups/{id}", Some(400)), 5, "{stats:#}");
    assert_eq!(count(&stats, "POST /v1/people:batchUpdateContacts", Some(400)), 15, "{stats:#}");

    // Deletes of contacts and of a group: resent, found nothing left to delete.
    emulator.with_store(|s| {
        let group = crate::harness::group(s, "salesuser@example.com", "Sales Contacts");
        let grace = crate::harness::contact(s, "salesuser@example.com", "Grace Hopper");
        s.modify_members(
            "salesuser@example.com",
            &group.resource_name,
            &[],
            &[grace.resource_name],
        )
        .unwrap();
    });
    seed.edit_file(|t| {
        t.groups[0].members.retain(|m| m != "ann@example.com");
        let ann = t.users.iter_mut().find(|u| u.primary_email == "ann@example.com").unwrap();
        ann.org_unit_path = "/Sales".into();
    });
    seed.converge().await;
    let stats = seed.stats().await;
    assert!(count(&stats, "POST /v1/people:batchDeleteContacts", Some(404)) >= 4, "{stats:#}");
    assert_eq!(count(&stats, "DELETE /v1/contactGroups/{id}", Some(404)), 1, "{stats:#}");
    let ann = emulator.with_store(|s| s.contacts("ann@example.com").unwrap());
    assert!(ann.iter().all(|c| c.owner().is_none()), "Ann's copies are gone");
    for user in &crate::harness::ACCOUNTING[1..] {
        let copies = emulator.with_store(|s| s.contacts(user).unwrap());
        assert_eq!(copies.iter().filter(|c| c.owner().is_some()).count(), 5, "{user}");
    }
}

#[test]
fn plan_takes_no_lease_and_a_failed_apply_gives_it_up() {
    let seed = Seed::google();
    contact_sync().arg("plan").arg(seed.dir.path()).assert().success();
    assert_eq!(lease_in_tenant(&seed), None, "plan wrote nothing, not even a lease");
    // A saved plan gone stale: the apply fails, and gives the lease up all the same.
    let (path, _) = saved_plan(&seed);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let nickname = serde_json::json!([{ "value": "Amazing Grace" }]);
    rt.block_on(seed.set_field("salesuser@example.com", "Grace Hopper", "nicknames", nickname));
    let out = contact_sync().arg("apply").arg(&path).assert().code(1);
    assert!(stderr(&out).contains("is stale"), "{}", stderr(&out));
    assert_eq!(lease_in_tenant(&seed).unwrap().0, "", "given up after the failure");
    let (code, out, err) = finish(spawn_apply(&seed, &["--lock-timeout", "0"]));
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!rt.block_on(seed.plan()).summary.has_changes());
}
