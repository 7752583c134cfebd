//! The inventory through the emulator: a run reads the users its syncs select and
//! those the inventory lists, not the tenant; a lost, damaged or stale inventory
//! only makes a run read more, and never loses track of a destination.

use std::collections::BTreeSet;
use std::sync::Arc;

use contact_sync::backend::Backend;
use contact_sync::backend::tenant::TenantUser;
use contact_sync::input::{self, LoadOptions};
use contact_sync::model::inventory::{Inventory, StoredInventory};
use contact_sync::plan::{Action, FullScan, Plan, Reason};

use crate::harness::{Seed, count};

const STATE_USER: &str = "admin@example.com";

/// `contacts` contacts to `destinations` users of /Dest, in a tenant with `others`
/// more users that no sync selects.
fn tenant(contacts: usize, destinations: usize, others: usize) -> Seed {
    let seed = Seed::synthetic_google(contacts, destinations, |_| {});
    seed.edit_file(|t| {
        t.users.extend((0..others).map(|i| TenantUser {
            primary_email: format!("other{i:04}@example.com"),
            org_unit_path: "/Other".into(),
            ..TenantUser::default()
        }))
    });
    seed
}

fn backend(seed: &Seed) -> Arc<dyn Backend> {
    let (_, target) = input::load(&seed.options()).unwrap();
    target.open().unwrap()
}

async fn stored(seed: &Seed) -> StoredInventory {
    backend(seed).read_inventory().await.unwrap().expect("the google backend keeps one")
}

/// The inventory's users, as addresses.
async fn listed(seed: &Seed) -> BTreeSet<String> {
    let inventory = stored(seed).await.inventory.expect("a usable inventory");
    let backend = backend(seed);
    let mut out = BTreeSet::new();
    for id in inventory.holders.keys() {
        out.insert(backend.user(id).await.unwrap().unwrap().primary_email);
    }
    out
}

fn full_scan(seed: &Seed) -> LoadOptions {
    LoadOptions { full_scan: FullScan::Always, ..seed.options() }
}

/// Moves `user` out of /Dest, so the sync no longer selects it.
fn deselect(seed: &Seed, user: &str) {
    seed.edit_file(|t| {
        t.users.iter_mut().find(|u| u.primary_email == user).unwrap().org_unit_path =
            "/Other".into();
    });
}

/// The contacts the plan deletes at `user` because it left the sync.
fn pruned(plan: &Plan, user: &str) -> usize {
    plan.syncs
        .iter()
        .flat_map(|s| &s.destinations)
        .filter(|d| d.user == user)
        .flat_map(|d| d.changes.iter())
        .filter(|c| c.action == Action::Delete && c.reason == Reason::DestinationRemoved)
        .count()
}

/// Contact reads (groups and connections lists) and token grants between two
/// stats.
fn reads(before: &serde_json::Value, after: &serde_json::Value) -> (u64, u64) {
    let n = |s: &serde_json::Value, e: &str| count(s, e, Some(200));
    let contact_reads = |s| n(s, "GET /v1/contactGroups") + n(s, "GET /v1/people/me/connections");
    (
        contact_reads(after) - contact_reads(before),
        n(after, "POST /token") - n(before, "POST /token"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_change_run_reads_what_the_syncs_select_not_the_tenant() {
    let seed = tenant(10, 5, 300);
    // The first plan finds no inventory: it reads every user.
    let first = seed.plan().await;
    assert!(first.survey.full && first.survey.seen.len() > 300);
    seed.converge().await;
    assert_eq!(listed(&seed).await.len(), 5);

    let before = seed.stats().await;
    let plan = seed.plan().await;
    let after = seed.stats().await;
    assert!(!plan.summary.has_changes());
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let (contact_reads, tokens) = reads(&before, &after);
    // The source's groups and contacts, each destination's groups and contacts,
    // and the inventory: 2 + 5 × 2 + 1, whatever the size of the tenant.
    assert_eq!(contact_reads, 2 + 5 * 2 + 1, "{after:#}");
    // One token per user read (source, destinations, state user) and the admin's.
    assert!(tokens <= 6 + 2, "{tokens} token grants");
    // The directory: the source looked up, /Dest listed — not the 300 others; and
    // the inventory's group read by name (a listing may trail the last writes).
    let api = |s: &serde_json::Value| s["total"].as_u64().unwrap() - count(s, "POST /token", None);
    assert_eq!(api(&after) - api(&before), 2 + 2 + 5 * 2 + 1 + 1, "{after:#}");

    // A full scan reads the 300 others too, and finds nothing more to do.
    let before = seed.stats().await;
    let plan = seed.plan_with(full_scan(&seed)).await;
    let after = seed.stats().await;
    assert!(!plan.summary.has_changes());
    assert!(reads(&before, &after).0 > 300, "{after:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_destination_that_leaves_is_pruned_and_taken_off_the_inventory() {
    let seed = tenant(3, 4, 20);
    seed.converge().await;
    deselect(&seed, "d001@example.com");
    let plan = seed.plan().await;
    assert_eq!(pruned(&plan, "d001@example.com"), 3 + 1, "three contacts and the group");
    assert!(plan.notes.is_empty(), "read through the inventory: {:?}", plan.notes);
    seed.converge().await;
    let users = listed(&seed).await;
    assert!(!users.contains("d001@example.com"), "{users:?}");
    assert_eq!(users.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_inventory_reads_every_user_and_loses_track_of_nobody() {
    let seed = tenant(3, 4, 20);
    seed.converge().await;
    let backend = backend(&seed);
    for group in stored(&seed).await.groups {
        backend.delete_group(STATE_USER, &group.resource_name).await.unwrap();
    }
    deselect(&seed, "d001@example.com");
    let plan = seed.plan().await;
    assert!(plan.survey.full, "every user read");
    assert_eq!(pruned(&plan, "d001@example.com"), 4, "found by reading every user");
    seed.converge().await;
    assert_eq!(listed(&seed).await.len(), 3, "rebuilt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_inventory_is_read_around_and_rewritten() {
    let seed = tenant(3, 4, 20);
    seed.converge().await;
    let backend = backend(&seed);
    let mut group = stored(&seed).await.groups.remove(0);
    group.client_data[0].value = "edited by hand".into();
    backend.update_group(STATE_USER, group).await.unwrap();
    deselect(&seed, "d002@example.com");
    let plan = seed.plan().await;
    assert!(plan.notes.iter().any(|n| n.contains("damaged")), "{:?}", plan.notes);
    assert_eq!(pruned(&plan, "d002@example.com"), 4);
    seed.converge().await;
    assert!(stored(&seed).await.damaged.is_none());
    assert!(seed.plan().await.notes.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_the_inventory_does_not_list_is_left_alone_until_a_full_scan() {
    let seed = tenant(3, 4, 20);
    seed.converge().await;
    // An inventory that forgot d003 (say, a backup restored over it).
    let old = stored(&seed).await;
    let d003 = backend(&seed).user("d003@example.com").await.unwrap().unwrap().id;
    let mut forgetful: Inventory = old.inventory.clone().unwrap();
    forgetful.holders.remove(&d003);
    backend(&seed).write_inventory(&old, &forgetful).await.unwrap();
    deselect(&seed, "d003@example.com");

    // A run that does not read d003 deletes nothing there…
    let plan = seed.plan().await;
    assert_eq!(pruned(&plan, "d003@example.com"), 0);
    assert!(!plan.summary.has_changes());
    assert_eq!(seed.contacts("d003@example.com").await.len(), 3);
    // … a full scan finds the stray copies, prunes them and repairs the inventory.
    let plan = seed.plan_with(full_scan(&seed)).await;
    assert_eq!(pruned(&plan, "d003@example.com"), 4);
    seed.converge_with(full_scan(&seed)).await;
    assert!(seed.contacts("d003@example.com").await.is_empty());
    let repaired = stored(&seed).await.inventory.unwrap();
    assert!(repaired.scanned > old.inventory.unwrap().scanned, "the scan is recorded");
    seed.converge().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_scan_falls_due_when_the_last_is_older_than_the_interval() {
    let seed = tenant(2, 2, 50);
    seed.converge().await;
    let every = |secs| LoadOptions { full_scan: FullScan::OlderThan(secs), ..seed.options() };
    let before = seed.stats().await;
    seed.plan_with(every(7 * 24 * 3600)).await;
    let between = seed.stats().await;
    seed.plan_with(every(0)).await;
    let after = seed.stats().await;
    assert!(reads(&before, &between).0 < 10, "not due: {between:#}");
    assert!(reads(&between, &after).0 > 50, "due: {after:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_user_is_taken_off_once_a_lookup_confirms_it() {
    let seed = tenant(2, 4, 0);
    seed.converge().await;
    seed.edit_file(|t| t.users.retain(|u| u.primary_email != "d000@example.com"));
    seed.converge().await;
    let users = listed(&seed).await;
    assert_eq!(users.len(), 3, "{users:?}");
}
