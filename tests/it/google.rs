//! The google backend against the emulator: batching, auth failures, stale etags,
//! quotas, injected faults and an apply cut off half-way.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{ACCOUNTING, SYNC, Seed, count};
use contact_sync::emulator::quota::Limits;

fn statuses(stats: &Value, status: u64) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == status)
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// Every destination holds exactly one copy of each of the six contacts.
async fn assert_no_duplicates(seed: &Seed) {
    for user in ACCOUNTING {
        let copies: Vec<_> =
            seed.contacts(user).await.into_iter().filter(|c| c.owner() == Some(SYNC)).collect();
        let mut names: Vec<String> = copies.iter().map(|c| c.display_name()).collect();
        names.sort();
        names.dedup();
        assert_eq!((copies.len(), names.len()), (6, 6), "{user}: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_are_batched_to_the_lower_bound() {
    let seed = Seed::google();
    let plan = seed.plan().await;
    assert_eq!(plan.summary.create, 35);
    seed.converge().await;
    let stats = seed.emulator.as_ref().unwrap().stats().await.unwrap();
    let creates = count(&stats, "POST /v1/people:batchCreateContacts", Some(200));
    let groups = count(&stats, "POST /v1/contactGroups", Some(200));
    // 30 contacts and 5 groups written with one batch and one group per destination:
    // the fewest requests the API allows; plus the inventory's one group.
    assert_eq!((creates, groups), (5, 5 + 1), "{stats:#}");
    assert!(creates + groups < 30, "fewer write requests than contacts written");
    assert_eq!(statuses(&stats, 500) + statuses(&stats, 503) + statuses(&stats, 429), 0);
    assert_no_duplicates(&seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_and_429_bursts_still_converge_without_duplicates() {
    let seed = Seed::google_with(|c| {
        c.fail_rate = 0.2;
        c.burst_every = 9;
        c.burst_len = 2;
        c.seed = 7;
        c.limits = Limits { window: Duration::from_secs(1), ..Limits::default() };
    });
    seed.converge().await;
    assert_no_duplicates(&seed).await;
    let stats = seed.emulator.as_ref().unwrap().stats().await.unwrap();
    assert!(statuses(&stats, 500) + statuses(&stats, 503) > 0, "faults were injected: {stats:#}");
    assert!(statuses(&stats, 429) > 0, "bursts were injected: {stats:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_exhausted_quota_is_waited_out() {
    // One contact-group read per user per second: planning reads the source
    // user's groups twice, so it meets a 429 and must wait for the next window.
    let seed = Seed::google_with(|c| {
        c.limits = Limits { window: Duration::from_secs(1), group_read: 1, ..Limits::default() }
    });
    let plan = seed.plan().await;
    assert_eq!(plan.summary.create, 35);
    let stats = seed.emulator.as_ref().unwrap().stats().await.unwrap();
    assert!(count(&stats, "GET /v1/contactGroups", Some(429)) > 0, "{stats:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_apply_cut_off_half_way_converges_when_run_again() {
    let seed = Seed::google_with(|c| c.latency = Duration::from_millis(40));
    let plan = seed.plan().await;
    let (_, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    // Cut the apply off as soon as the first destination is done: the others are
    // in flight, some of their requests sent and some not.
    let first_done = std::sync::Arc::new(tokio::sync::Notify::new());
    let signal = first_done.clone();
    let progress = move |_: &contact_sync::apply::DestinationReport| signal.notify_one();
    let cut = tokio::select! {
        report = contact_sync::apply::apply(backend.as_ref(), &plan, &progress) => Ok(report),
        () = first_done.notified() => Err(()),
    };
    assert!(cut.is_err(), "the apply was meant to be cut off");
    let partial = seed.plan().await;
    assert!(partial.summary.create < 35, "some of the work had landed");
    assert!(partial.summary.has_changes(), "and some had not");
    seed.converge().await;
    assert_no_duplicates(&seed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_etag_is_reread_and_retried() {
    let seed = Seed::google();
    seed.converge().await;
    seed.set_field(
        "salesuser@example.com",
        "Grace Hopper",
        "nicknames",
        json!([{"value": "Amazing Grace"}]),
    )
    .await;
    let plan = seed.plan().await;
    // Bob edits his copy between plan and apply.
    seed.set_field(
        "bob@example.com",
        "Grace Hopper",
        "phoneNumbers",
        json!([{"value": "+1 555 0000"}]),
    )
    .await;
    let report = seed.apply(&plan).await;
    assert!(report.destinations.iter().all(|d| d.error.is_none()), "{report:?}");
    // The planned change landed; Bob's other edit is drift the next plan reverts.
    let next = seed.plan().await;
    let bob = crate::harness::destination(&next, SYNC, "bob@example.com");
    assert_eq!(bob.changes.len(), 1);
    assert!(bob.changes[0].fields.iter().any(|f| f.field == "phoneNumbers[0].value"), "{bob:?}");
    assert!(bob.changes[0].fields.iter().all(|f| !f.field.starts_with("nicknames")), "{bob:?}");
    seed.converge().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_admin_is_refused_with_an_actionable_error() {
    let seed = Seed::google();
    let ws = seed
        .read("contact-sync.yaml")
        .replace("adminUser: admin@example.com", "adminUser: nobody@example.com");
    seed.write("contact-sync.yaml", &ws);
    let (input, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let err = contact_sync::reader::plan(backend.as_ref(), &input).await.unwrap_err().to_string();
    assert!(err.contains("refused to act as nobody@example.com"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "credentials never appear in errors");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_signed_by_another_key_is_refused() {
    // The emulator trusts a different key than the one in the key file.
    let other = contact_sync::emulator::public_key(
        &crate::root().join("tests/fixtures/other-service-account.json"),
    )
    .unwrap();
    let seed = Seed::google_with(|c| c.trusted_key = Some(other));
    let (input, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let err = contact_sync::reader::plan(backend.as_ref(), &input).await.unwrap_err().to_string();
    assert!(err.contains("Invalid JWT Signature"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_source_is_paged_batched_and_paced() {
    // The Workspace does not know the project's quota: the 429s are waited out.
    let stats = large_source(false).await;
    assert!(
        count(&stats, "POST /v1/people:batchCreateContacts", Some(429)) > 0,
        "the write quota was met and waited out: {stats:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_quota_is_spent_without_a_429() {
    // The Workspace says the quota: each user's writes wait for their window.
    let stats = large_source(true).await;
    assert_eq!(statuses(&stats, 429), 0, "{stats:#}");
}

/// A first sync of 1,100 contacts to one user: two pages of connections to read,
/// six batches to create, and more write quota than one window allows (two batches
/// per two seconds here); `known`: the Workspace's `quota` says so.
async fn large_source(known: bool) -> Value {
    let seed = Seed::google_with(|c| {
        c.limits =
            Limits { window: Duration::from_secs(2), critical_write: 12, ..Limits::default() }
    });
    if known {
        let workspace = seed.read("contact-sync.yaml").replace(
            "quota: { windowSeconds: 2 }",
            "quota: { windowSeconds: 2, criticalWrites: 12 }",
        );
        seed.write("contact-sync.yaml", &workspace);
    }
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("groups: [accounting@example.com]", "users: [ann@example.com]")
        .replace("    orgUnits: [/Accounting]\n", "");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    seed.edit_file(|t| {
        let sam = t.users.iter_mut().find(|u| u.primary_email == "salesuser@example.com").unwrap();
        for i in 0..1094 {
            let mut fields = serde_json::Map::new();
            fields.insert(
                "names".into(),
                json!([{ "givenName": "Lead", "familyName": format!("{i:04}") }]),
            );
            fields.insert(
                "emailAddresses".into(),
                json!([{ "value": format!("lead{i}@prospects.test") }]),
            );
            sam.contacts.push(contact_sync::backend::tenant::TenantContact {
                contact_groups: vec!["Sales Contacts".into()],
                fields,
                ..Default::default()
            });
        }
    });
    let plan = seed.plan().await;
    assert_eq!(plan.summary.create, 1101);
    seed.converge().await;
    assert_eq!(
        seed.contacts("ann@example.com").await.iter().filter(|c| c.owner() == Some(SYNC)).count(),
        1100
    );
    let stats = seed.emulator.as_ref().unwrap().stats().await.unwrap();
    assert_eq!(
        count(&stats, "POST /v1/people:batchCreateContacts", Some(200)),
        6,
        "ceil(1100 / 200) batches: {stats:#}"
    );
    stats
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_delegation_names_the_client_id_and_the_scopes_to_grant() {
    // The admin granted the contacts scope but not the directory scopes.
    let seed = Seed::google_with(|c| {
        c.delegated_scopes = Some(vec![contact_sync::backend::google::CONTACTS.into()])
    });
    let (input, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let err = contact_sync::reader::plan(backend.as_ref(), &input).await.unwrap_err().to_string();
    assert!(err.contains("grant client id 100000000000000000001"), "{err}");
    assert!(err.contains("https://www.googleapis.com/auth/admin.directory.user.readonly"), "{err}");
    assert!(
        err.contains("https://www.googleapis.com/auth/admin.directory.group.member.readonly"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_answers_time_out() {
    let seed = Seed::google_with(|c| c.latency = Duration::from_millis(1500));
    let ws = seed
        .read("contact-sync.yaml")
        .replace("    concurrency: 4\n", "    concurrency: 4\n    requestTimeoutSeconds: 1\n");
    let ws = ws.replace("maxAttempts: 12", "maxAttempts: 2");
    seed.write("contact-sync.yaml", &ws);
    let (input, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let err = contact_sync::reader::plan(backend.as_ref(), &input).await.unwrap_err().to_string();
    assert!(err.contains("no answer within the request timeout"), "{err}");
    assert!(err.contains("2 attempts over"), "the retries are summarised: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_of_different_fields_share_one_request() {
    let seed = Seed::google();
    seed.converge().await;
    // Ann edits two copies, each in another field: both are reverted with one
    // batchUpdateContacts, the other fields of each written back as they were.
    let ann = ACCOUNTING[0];
    seed.set_field(ann, "Ada Lovelace", "nicknames", json!([{ "value": "Countess" }])).await;
    seed.set_field(ann, "Alan Turing", "biographies", json!([{ "value": "Edited by Ann" }])).await;
    let before = seed.stats().await;
    seed.converge().await;
    let after = seed.stats().await;
    let updates = |s: &Value| count(s, "POST /v1/people:batchUpdateContacts", Some(200));
    assert_eq!(updates(&after) - updates(&before), 1, "{after:#}");
    assert_no_duplicates(&seed).await;
}

/// GET requests the emulator answered between two stats (token grants apart).
fn reads_between(before: &Value, after: &Value) -> u64 {
    let gets = |s: &Value| -> u64 {
        s["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["endpoint"].as_str().is_some_and(|e| e.starts_with("GET ")))
            .map(|r| r["count"].as_u64().unwrap())
            .sum()
    };
    gets(after) - gets(before)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_syncs_of_one_source_read_it_once() {
    let seed = Seed::synthetic_google(40, 4, |_| {});
    let before = seed.stats().await;
    let one = seed.plan().await;
    let mid = seed.stats().await;
    let one_sync = reads_between(&before, &mid);
    for i in 1..20 {
        seed.write(
            &format!("syncs/bulk-{i:02}.yaml"),
            &format!(
                "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {{name: bulk-{i:02}}}\n\
                 spec:\n  source: {{user: source@example.com, contactGroup: Shared}}\n  \
                 target: {{groupName: Shared {i:02}}}\n  destinations: {{orgUnits: [/Dest]}}\n"
            ),
        );
    }
    let twenty = seed.plan().await;
    let after = seed.stats().await;
    let twenty_syncs = reads_between(&mid, &after);
    assert_eq!(twenty.syncs.len(), 20);
    assert_eq!(twenty.summary.create, 20 * one.summary.create, "{}", seed.text(&twenty));
    assert!(
        twenty_syncs * 4 <= one_sync * 5,
        "20 syncs of one source read {twenty_syncs} times, one sync {one_sync}: {after:#}"
    );
}
