//! The read cache through the emulator: a night with nothing to do lists each
//! destination incrementally and plans nothing; an edit behind the tool's back is
//! found the same night; every way the cache can be wrong (an expired token, a
//! deleted file, another tenant's file, the propagation delay of sync listings)
//! falls back to full reads — and every plan made with the cache is the plan a
//! full read makes.

use std::path::Path;
use std::time::Duration;

use contact_sync::cache::ReadCache;
use contact_sync::input;
use contact_sync::plan::{Plan, Status};

use crate::harness::{Seed, count};

const CONTACTS: usize = 12;
const DESTINATIONS: usize = 6;

/// Listing requests (groups and connections) between two stats, by status.
fn listings(before: &serde_json::Value, after: &serde_json::Value, status: u64) -> u64 {
    let n = |s: &serde_json::Value, e: &str| count(s, e, Some(status));
    let total = |s| n(s, "GET /v1/contactGroups") + n(s, "GET /v1/people/me/connections");
    total(after) - total(before)
}

/// The plan with the cache, checked against the plan of a full read: the same
/// changes, the same deletions, nothing more.
async fn plan(seed: &Seed, cache: &Path) -> Plan {
    let cached = seed.plan_cached(cache).await;
    let full = seed.plan().await;
    assert_eq!(cached, full, "the cached plan is not the full read's:\n{}", seed.text(&cached));
    cached
}

/// Applies a plan made with the cache, then plans again with it: the written
/// destinations are read in full (read-after-write), and nothing is left to do.
async fn converge(seed: &Seed, cache: &Path) -> Plan {
    let first = plan(seed, cache).await;
    let report = seed.apply(&first).await;
    assert!(report.destinations.iter().all(|d| d.error.is_none()), "{report:?}");
    let written =
        first.syncs.iter().flat_map(|s| &s.destinations).filter(|d| d.status == Status::Changes);
    let written = written.count();
    let again = plan(seed, cache).await;
    assert!(!again.summary.has_changes(), "{}", seed.text(&again));
    assert!(again.survey.read_full >= written, "{written} written, {:?}", again.survey);
    again
}

fn seed(adjust: impl FnOnce(&mut contact_sync::emulator::Config)) -> (Seed, tempfile::TempDir) {
    let seed = Seed::synthetic_google(CONTACTS, DESTINATIONS, adjust);
    (seed, tempfile::tempdir().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_without_changes_lists_each_destination_once_per_listing_and_plans_nothing() {
    let (seed, cache) = seed(|_| {});
    converge(&seed, cache.path()).await;
    let before = seed.stats().await;
    let quiet = seed.plan_cached(cache.path()).await;
    let after = seed.stats().await;
    assert!(!quiet.summary.has_changes(), "{}", seed.text(&quiet));
    assert_eq!(quiet.survey.read_incremental, DESTINATIONS, "{:?}", quiet.survey);
    assert_eq!(quiet.survey.read_full, 0, "{:?}", quiet.survey);
    // Two listings per destination (groups, connections), one page each; the
    // source's two listings read in full; the inventory's group listing.
    assert_eq!(listings(&before, &after, 200), 2 * DESTINATIONS as u64 + 2 + 1, "{after:#}");
    // And it is the plan a full read makes.
    assert_eq!(quiet, seed.plan().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_behind_the_back_is_reverted_the_same_night_and_the_others_stay_skipped() {
    let (seed, cache) = seed(|_| {});
    converge(&seed, cache.path()).await;
    seed.set_field(
        "d003@example.com",
        "Contact 00004",
        "nicknames",
        serde_json::json!([
            { "value": "edited by hand" }
        ]),
    )
    .await;
    let night = plan(&seed, cache.path()).await;
    let changed: Vec<&str> = night
        .syncs
        .iter()
        .flat_map(|s| &s.destinations)
        .filter(|d| d.status == Status::Changes)
        .map(|d| d.user.as_str())
        .collect();
    assert_eq!(changed, ["d003@example.com"], "{}", seed.text(&night));
    assert_eq!(night.summary.update, 1, "{}", seed.text(&night));
    assert_eq!(night.survey.read_full, 1, "{:?}", night.survey);
    assert_eq!(night.survey.read_incremental, DESTINATIONS - 1, "{:?}", night.survey);
    seed.apply(&night).await;
    let after = plan(&seed, cache.path()).await;
    assert!(!after.summary.has_changes(), "{}", seed.text(&after));
    let contact = seed.contacts("d003@example.com").await;
    let reverted = contact.iter().find(|c| c.display_name() == "Contact 00004").unwrap();
    assert!(!reverted.fields.contains_key("nicknames"), "{reverted:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_reads_in_full_with_the_same_plan() {
    let (seed, cache) = seed(|c| c.sync_token_ttl = Duration::from_secs(3));
    converge(&seed, cache.path()).await;
    tokio::time::sleep(Duration::from_millis(3200)).await;
    let before = seed.stats().await;
    let night = plan(&seed, cache.path()).await;
    let after = seed.stats().await;
    assert!(!night.summary.has_changes(), "{}", seed.text(&night));
    assert_eq!(night.survey.read_incremental, 0, "{:?}", night.survey);
    assert_eq!(night.survey.read_full, DESTINATIONS, "{:?}", night.survey);
    assert!(listings(&before, &after, 400) > 0, "Google refused the expired tokens: {after:#}");
    // The full reads took new tokens: the next night is quiet again.
    let next = plan(&seed, cache.path()).await;
    assert_eq!(next.survey.read_incremental, DESTINATIONS, "{:?}", next.survey);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_cache_reads_in_full_with_the_same_plan() {
    let (seed, cache) = seed(|_| {});
    converge(&seed, cache.path()).await;
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
    }
    let night = plan(&seed, cache.path()).await;
    assert!(!night.summary.has_changes(), "{}", seed.text(&night));
    assert_eq!((night.survey.read_full, night.survey.read_incremental), (DESTINATIONS, 0));
    // A damaged one too.
    let (_, target) = input::load(&seed.options()).unwrap();
    let path = ReadCache::open(&target, Some(cache.path())).unwrap().path().to_path_buf();
    std::fs::write(&path, "{ not json").unwrap();
    let damaged = ReadCache::open(&target, Some(cache.path())).unwrap();
    assert!(damaged.ignored().unwrap().contains("damaged"), "{:?}", damaged.ignored());
    let night = plan(&seed, cache.path()).await;
    assert_eq!((night.survey.read_full, night.survey.read_incremental), (DESTINATIONS, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_cache_reads_in_full_with_the_same_plan() {
    let (ours, cache) = seed(|_| {});
    converge(&ours, cache.path()).await;
    // Another tenant with users of the same ids, converged with its own cache…
    let (theirs, their_cache) = seed(|_| {});
    converge(&theirs, their_cache.path()).await;
    // …whose file is put where ours is.
    let file = |seed: &Seed, dir: &Path| {
        let (_, target) = input::load(&seed.options()).unwrap();
        ReadCache::open(&target, Some(dir)).unwrap().path().to_path_buf()
    };
    std::fs::copy(file(&theirs, their_cache.path()), file(&ours, cache.path())).unwrap();
    ours.set_field(
        "d001@example.com",
        "Contact 00002",
        "nicknames",
        serde_json::json!([
            { "value": "edited by hand" }
        ]),
    )
    .await;
    let night = plan(&ours, cache.path()).await;
    assert_eq!((night.survey.read_full, night.survey.read_incremental), (DESTINATIONS, 0));
    assert_eq!(night.summary.update, 1, "the edit is found: {}", ours.text(&night));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_hidden_by_the_sync_lag_are_read_in_full_after_apply() {
    // Incremental listings show a write only an hour after it: the run after an
    // apply must not trust them for the users it wrote.
    let (seed, cache) = seed(|c| c.sync_lag = Duration::from_secs(3600));
    let first = plan(&seed, cache.path()).await;
    assert!(first.summary.has_changes());
    seed.apply(&first).await;
    let night = plan(&seed, cache.path()).await;
    assert!(!night.summary.has_changes(), "{}", seed.text(&night));
    assert_eq!((night.survey.read_full, night.survey.read_incremental), (DESTINATIONS, 0));
    // What the full reads saw is what the next night relies on: still nothing to do.
    let next = plan(&seed, cache.path()).await;
    assert!(!next.summary.has_changes(), "{}", seed.text(&next));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_source_reads_every_destination_in_full() {
    let (seed, cache) = seed(|_| {});
    converge(&seed, cache.path()).await;
    seed.set_field(
        "source@example.com",
        "Contact 00001",
        "nicknames",
        serde_json::json!([
            { "value": "new at the source" }
        ]),
    )
    .await;
    let night = plan(&seed, cache.path()).await;
    assert_eq!(night.summary.update, DESTINATIONS, "{}", seed.text(&night));
    assert_eq!((night.survey.read_full, night.survey.read_incremental), (DESTINATIONS, 0));
    converge(&seed, cache.path()).await;
}
