//! `cargo bench`: plan and apply a synthetic tenant — one source group of N contacts
//! copied to D destinations — on the local backend and on the google backend against
//! the emulator, printing times and the API requests per endpoint beside the lower
//! bound the batch limits allow. Sizes: `CS_BENCH_CONTACTS` (default 1000) and
//! `CS_BENCH_DESTINATIONS` (default 20). `CS_BENCH_BACKENDS` picks the backends
//! (default `local,google`; `local-db` is the local backend on a tenant database,
//! `tenant.db`, instead of the YAML file). With `CS_BENCH_EMULATOR=process` the emulator runs as
//! a process of its own (`contact-sync emulator`), whose peak memory is printed,
//! and the time it takes to write its tenant back to the YAML file when stopped.

use std::path::Path;
use std::time::Instant;

use contact_sync::backend::store::Store;
use contact_sync::backend::tenant;
use contact_sync::emulator;
use contact_sync::input::{self, LoadOptions};
use contact_sync::{apply, inventory};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run(dir: &Path, label: &str) -> contact_sync::plan::Plan {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let options = LoadOptions { paths: vec![dir.join("manifests")], ..LoadOptions::default() };
    let (input, target) = input::load(&options).unwrap();
    let backend = target.open().unwrap();
    let t = Instant::now();
    let plan = rt.block_on(inventory::plan(backend.as_ref(), &input)).unwrap();
    let planned = t.elapsed();
    let t = Instant::now();
    let report = rt.block_on(apply::apply(backend.as_ref(), &plan, &|_| {}));
    let applied = t.elapsed();
    assert!(!report.failed(), "{report:?}");
    let backend = target.open().unwrap();
    let t = Instant::now();
    let again = rt.block_on(inventory::plan(backend.as_ref(), &input)).unwrap();
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
        "{label:<8} plan {:>8.1} ms   apply {:>8.1} ms   re-plan {:>8.1} ms   ({} created, second plan empty)",
        planned.as_secs_f64() * 1e3,
        applied.as_secs_f64() * 1e3,
        replanned.as_secs_f64() * 1e3,
        plan.summary.create
    );
    plan
}

/// The emulator the google run talks to: in this process, or a process of its own.
enum Server {
    InProcess(emulator::Background),
    Process { child: std::process::Child, addr: String },
}

impl Server {
    fn start(data: &Path, key: &Path) -> Self {
        if std::env::var("CS_BENCH_EMULATOR").is_ok_and(|v| v == "process") {
            use std::io::BufRead;
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_contact-sync"))
                .args(["emulator", "--listen", "127.0.0.1:0", "--trust-key"])
                .arg(key)
                .arg("--data")
                .arg(data)
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
            let addr = loop {
                let line = lines.next().expect("the emulator's address").unwrap();
                if let Some(addr) = line.split(" on http://").nth(1) {
                    break addr.to_owned();
                }
            };
            return Self::Process { child, addr };
        }
        let mut config = emulator::Config::new(data.to_path_buf());
        config.trusted_key = Some(emulator::public_key(key).unwrap());
        Self::InProcess(emulator::Background::start(config).unwrap())
    }

    fn addr(&self) -> String {
        match self {
            Self::InProcess(b) => b.addr.to_string(),
            Self::Process { addr, .. } => addr.clone(),
        }
    }

    /// Writes the tenant back to the YAML file (in-process: a flush; a process:
    /// SIGTERM, and its exit), printing how long that took and the process's peak
    /// memory.
    fn stop(self) {
        let t = Instant::now();
        match self {
            Self::InProcess(b) => {
                b.flush().unwrap();
                println!(
                    "emulator: tenant written back in {:.1} ms",
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
            Self::Process { mut child, .. } => {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    .unwrap_or_default();
                let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap_or("VmHWM: ?");
                let t = Instant::now();
                std::process::Command::new("kill")
                    .args(["-TERM", &child.id().to_string()])
                    .status()
                    .unwrap();
                child.wait().unwrap();
                println!(
                    "emulator process: peak memory {}, stopped and wrote the tenant back in {:.1} ms",
                    peak.trim_start_matches("VmHWM:").trim(),
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
        }
    }
}

fn main() {
    let contacts = env("CS_BENCH_CONTACTS", 1000);
    let destinations = env("CS_BENCH_DESTINATIONS", 20);
    let backends = std::env::var("CS_BENCH_BACKENDS").unwrap_or_else(|_| "local,google".into());
    println!("contact-sync bench: {contacts} contacts copied to {destinations} destinations\n");

    for backend in backends.split(',').map(str::trim) {
        match backend {
            "local" => bench_local(contacts, destinations, false),
            "local-db" => bench_local(contacts, destinations, true),
            "google" => bench_google(contacts, destinations),
            other => panic!("CS_BENCH_BACKENDS: no backend {other}"),
        }
    }
}

fn bench_local(contacts: usize, destinations: usize, database: bool) {
    let local = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(local.path().join("manifests")).unwrap();
    let synthetic = tenant::synthetic(contacts, destinations);
    let file = if database { "tenant.db" } else { "tenant.yaml" };
    if database {
        Store::write_file(&local.path().join(file), synthetic).unwrap();
    } else {
        tenant::write_atomic(&local.path().join(file), &synthetic).unwrap();
    }
    std::fs::write(local.path().join("manifests/sync.yaml"), tenant::SYNTHETIC_SYNC).unwrap();
    std::fs::write(
        local.path().join("manifests/workspace.yaml"),
        format!("apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {{name: b}}\nspec: {{backend: local, local: {{path: ../{file}}}}}\n"),
    )
    .unwrap();
    run(local.path(), if database { "local-db" } else { "local" });
}

fn bench_google(contacts: usize, destinations: usize) {
    let google = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(google.path().join("manifests")).unwrap();
    let data = google.path().join("tenant.yaml");
    tenant::write_atomic(&data, &tenant::synthetic(contacts, destinations)).unwrap();
    let key = google.path().join("sa.json");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-account.json"),
        &key,
    )
    .unwrap();
    let server = Server::start(&data, &key);
    let url = format!("http://{}", server.addr());
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

    let stats: serde_json::Value = tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(async { reqwest::get(format!("{url}/_emulator/stats")).await?.json().await })
        .unwrap();
    print_stats(&stats, contacts, destinations);
    server.stop();
}

fn print_stats(stats: &serde_json::Value, contacts: usize, destinations: usize) {
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
