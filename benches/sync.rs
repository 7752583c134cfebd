//! `cargo bench`: plan and apply a synthetic tenant — one source group of N contacts
//! copied to D destinations — on the local backend and on the google backend against
//! the emulator, printing times and the API requests per endpoint beside the lower
//! bound the batch limits allow. Sizes: `CS_BENCH_CONTACTS` (default 1000) and
//! `CS_BENCH_DESTINATIONS` (default 20).

use std::path::Path;
use std::time::Instant;

use contact_sync::backend::tenant;
use contact_sync::emulator;
use contact_sync::input::{self, LoadOptions};
use contact_sync::{apply, reader};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run(dir: &Path, label: &str) -> contact_sync::plan::Plan {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options = LoadOptions { paths: vec![dir.join("manifests")], ..LoadOptions::default() };
    let (input, target) = input::load(&options).unwrap();
    let backend = target.open().unwrap();
    let t = Instant::now();
    let plan = rt.block_on(reader::plan(backend.as_ref(), &input)).unwrap();
    let planned = t.elapsed();
    let t = Instant::now();
    let report = rt.block_on(apply::apply(backend.as_ref(), &plan, &|_| {}));
    let applied = t.elapsed();
    assert!(!report.failed(), "{report:?}");
    let backend = target.open().unwrap();
    let t = Instant::now();
    let again = rt.block_on(reader::plan(backend.as_ref(), &input)).unwrap();
    let replanned = t.elapsed();
    assert!(
        !again.summary.has_changes(),
        "{}",
        contact_sync::plan::render::text(&again, Default::default())
            .lines()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    println!(
        "{label:<7} plan {:>8.1} ms   apply {:>8.1} ms   re-plan {:>8.1} ms   ({} created, second plan empty)",
        planned.as_secs_f64() * 1e3,
        applied.as_secs_f64() * 1e3,
        replanned.as_secs_f64() * 1e3,
        plan.summary.create
    );
    plan
}

fn main() {
    let contacts = env("CS_BENCH_CONTACTS", 1000);
    let destinations = env("CS_BENCH_DESTINATIONS", 20);
    println!("contact-sync bench: {contacts} contacts copied to {destinations} destinations\n");

    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("manifests")).unwrap();
    tenant::write_atomic(
        &local.path().join("tenant.yaml"),
        &tenant::synthetic(contacts, destinations),
    )
    .unwrap();
    std::fs::write(local.path().join("manifests/sync.yaml"), tenant::SYNTHETIC_SYNC).unwrap();
    std::fs::write(
        local.path().join("manifests/workspace.yaml"),
        "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: b}\nspec: {backend: local, local: {path: ../tenant.yaml}}\n",
    )
    .unwrap();
    run(local.path(), "local");

    let google = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(google.path().join("manifests")).unwrap();
    let data = google.path().join("tenant.yaml");
    tenant::write_atomic(&data, &tenant::synthetic(contacts, destinations)).unwrap();
    let key = google.path().join("sa.json");
    let mut config = emulator::Config::new(data);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-account.json"),
        &key,
    )
    .unwrap();
    config.trusted_key = Some(emulator::public_key(&key).unwrap());
    let server = emulator::Background::start(config).unwrap();
    let url = format!("http://{}", server.addr);
    std::fs::write(google.path().join("manifests/sync.yaml"), tenant::SYNTHETIC_SYNC).unwrap();
    std::fs::write(
        google.path().join("manifests/workspace.yaml"),
        format!(
            "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {{name: b}}\nspec:\n  backend: google\n  google:\n    adminUser: source@example.com\n    credentialsFile: {}\n    endpoints: {{people: \"{url}\", directory: \"{url}\", token: \"{url}/token\"}}\n",
            key.display()
        ),
    )
    .unwrap();
    run(google.path(), "google");

    let stats = tokio::runtime::Runtime::new().unwrap().block_on(server.stats()).unwrap();
    let batches = contacts.div_ceil(200);
    let bounds = [
        ("POST /v1/people:batchCreateContacts", destinations * batches),
        ("POST /v1/contactGroups", destinations),
    ];
    println!("\nrequests to the emulator (plan + apply + plan), {} in all:", stats["total"]);
    println!("  {:<52} {:>7} {:>12}", "endpoint status", "count", "lower bound");
    for r in stats["requests"].as_array().unwrap() {
        let endpoint = r["endpoint"].as_str().unwrap();
        let bound = bounds
            .iter()
            .find(|(e, _)| *e == endpoint)
            .map_or(String::new(), |(_, b)| b.to_string());
        println!("  {:<52} {:>7} {:>12}", format!("{endpoint} {}", r["status"]), r["count"], bound);
    }
    let written = contacts * destinations + destinations;
    let writes: u64 = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["endpoint"].as_str().is_some_and(|e| e.starts_with("POST /v1/")) && r["status"] == 200
        })
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    println!(
        "\n{written} contacts and groups written with {writes} write requests ({:.1} per request)",
        written as f64 / writes as f64
    );
}
