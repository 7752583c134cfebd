//! `cargo bench --bench sync` (`-- --quick` for smaller sizes): eight seeded,
//! deterministic workloads that count what contact-sync asks of Google and set it
//! beside the least the APIs allow. BENCHMARKS.md explains each workload, its lower
//! bounds and the latest figures.
//!
//! 1. A first sync, an immediate no-change run and a churn run, through the emulator.
//! 2. A no-change run in a large tenant against the same sync in a small one.
//! 3. Time to converge under Google's per-user quotas (with a compressed window),
//!    against what those quotas allow and against one request per contact.
//! 4. Planning on the local backend: time, CPU and peak memory as destinations grow,
//!    each size in a child process of its own (this binary, run again).
//! 5. The same first sync applied on the local backend and through the emulator.
//! 6. Photos: a first sync with photos through the emulator, then a no-change run,
//!    their photo requests beside the bound (and failing above it).
//! 7. Quiet nights with the read cache: requests and bytes of a no-change run, a run
//!    after churn and a run after the cache was deleted, beside a full read.
//! 8. Apply's peak memory against the concurrency, each run a child process.
//!
//! Every table is Markdown. The bench asserts only correctness (a no-change run
//! writes nothing, a plan after apply is empty, the emulator — strict by Google's
//! discovery documents — refused no request): figures of a wrong run mean
//! nothing. It asserts nothing about time.
//!
//! Options: `--quick` (small sizes, under three minutes on two cores), `--only 1,3`
//! (some workloads), `--w3 50,200` (workload 3's destination counts).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use contact_sync::backend::tenant::{self, TenantFile, TenantUser};
use contact_sync::backend::{
    self, Backend, ContactUpdate, LeaseAttempt, NewContact, UserScope, WriteGuard,
};
use contact_sync::emulator::{self, quota::Limits};
use contact_sync::input::{self, LoadOptions};
use contact_sync::model::inventory::{Inventory, StoredInventory};
use contact_sync::model::resolution::UserSchema;
use contact_sync::model::{ClientData, Contact, ContactGroup, DirectoryUser};
use contact_sync::plan::Plan;
use contact_sync::{apply, reader};
use serde_json::{Value, json};

/// The private argument that makes this binary plan one size of workload 4.
const CHILD: &str = "--local-plan-child";
/// The private argument that makes this binary plan and apply one run of workload 8.
const APPLY_CHILD: &str = "--apply-child";

const SOURCE: &str = "source@example.com";

// The APIs' limits and Google's default per-user quotas.
const CREATE_BATCH: u64 = 200;
const UPDATE_BATCH: u64 = 200;
const DELETE_BATCH: u64 = 500;
const CONNECTIONS_PAGE: u64 = 1000;
const USERS_PAGE: u64 = 500;
const WRITE_UNITS: u64 = 30;
const BATCH_COST: u64 = 6;

const USERS: &str = "GET /admin/directory/v1/users";
const USER: &str = "GET /admin/directory/v1/users/{user_key}";
const GROUPS: &str = "GET /v1/contactGroups";
const CONNECTIONS: &str = "GET /v1/people/me/connections";
const CREATE_GROUP: &str = "POST /v1/contactGroups";
const BATCH_CREATE: &str = "POST /v1/people:batchCreateContacts";
const BATCH_UPDATE: &str = "POST /v1/people:batchUpdateContacts";
const BATCH_DELETE: &str = "POST /v1/people:batchDeleteContacts";
const TOKEN: &str = "POST /token";

/// Sizes of one mode.
struct Sizes {
    mode: &'static str,
    /// Workload 1: contacts, destinations.
    w1: (usize, usize),
    /// Workload 2: users of the large tenant, contacts, destinations.
    w2: (usize, usize, usize),
    /// Workload 3: contacts, destination counts, concurrency, window.
    w3: (usize, Vec<usize>, usize, Duration),
    /// Workload 4: contacts, destination counts.
    w4: (usize, Vec<usize>),
    /// Workload 5: contacts, destination counts.
    w5: (usize, Vec<usize>),
    /// Workload 6: contacts, of which with a photo, destinations.
    w6: (usize, usize, usize),
    /// Workload 7: (users of the tenant, contacts, destinations) per tenant.
    w7: Vec<(usize, usize, usize)>,
    /// Workload 8: contacts, destinations, concurrencies.
    w8: (usize, usize, Vec<usize>),
}

impl Sizes {
    fn full() -> Self {
        Self {
            mode: "full",
            w1: (500, 200),
            w2: (10_000, 100, 20),
            w3: (1200, vec![50, 200], 8, Duration::from_secs(10)),
            w4: (1000, vec![500, 1000, 2000, 4000]),
            w5: (1000, vec![50, 100, 200]),
            w6: (200, 100, 50),
            w7: vec![(202, 1000, 200), (10_000, 100, 20)],
            w8: (1000, 200, vec![8, 16, 64]),
        }
    }

    fn quick() -> Self {
        Self {
            mode: "quick",
            w1: (100, 40),
            w2: (2000, 100, 20),
            w3: (1200, vec![10, 40], 8, Duration::from_secs(10)),
            w4: (1000, vec![100, 200, 400, 800]),
            w5: (200, vec![10, 20, 40]),
            w6: (40, 20, 10),
            w7: vec![(42, 300, 40), (2_000, 100, 20)],
            w8: (300, 40, vec![8, 16, 64]),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == CHILD) {
        child(Path::new(&args[i + 1]));
        return;
    }
    if let Some(i) = args.iter().position(|a| a == APPLY_CHILD) {
        apply_child(Path::new(&args[i + 1]));
        return;
    }
    // `cargo bench` adds `--bench`; anything unknown is ignored the same way.
    let mut sizes =
        if args.iter().any(|a| a == "--quick") { Sizes::quick() } else { Sizes::full() };
    if let Some(list) = args.iter().position(|a| a == "--w3").and_then(|i| args.get(i + 1)) {
        sizes.w3.1 = list.split(',').filter_map(|n| n.trim().parse().ok()).collect();
    }
    let only: Option<BTreeSet<u32>> = args
        .iter()
        .position(|a| a == "--only")
        .and_then(|i| args.get(i + 1))
        .map(|list| list.split(',').filter_map(|n| n.trim().parse().ok()).collect());
    let wanted = |n: u32| only.as_ref().is_none_or(|o| o.contains(&n));

    let started = Instant::now();
    println!("# contact-sync benchmark ({} mode)\n", sizes.mode);
    println!(
        "Machine: {} cores, load average at start {}.\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average()
    );
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let rt = rt.expect("a runtime");
    let mut summary = Vec::new();
    if wanted(1) {
        rt.block_on(workload_1(&sizes, &mut summary));
    }
    if wanted(2) {
        rt.block_on(workload_2(&sizes, &mut summary));
    }
    if wanted(3) {
        rt.block_on(workload_3(&sizes, &mut summary));
    }
    if wanted(4) {
        workload_4(&sizes, &mut summary);
    }
    if wanted(5) {
        rt.block_on(workload_5(&sizes, &mut summary));
    }
    if wanted(6) {
        rt.block_on(workload_6(&sizes));
    }
    if wanted(7) {
        rt.block_on(workload_7(&sizes));
    }
    if wanted(8) {
        workload_8(&rt, &sizes, &mut summary);
    }
    println!("## Summary ({} mode)\n", sizes.mode);
    println!(
        "Requests are API requests (token grants apart); bounds exclude the inventory, \
         ratios are shown with it and without it.\n"
    );
    println!(
        "| workload | requests | bound | ratio | ratio without inventory | time | time bound | \
         time ratio |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for row in &summary {
        println!("{row}");
    }
    println!(
        "\nWhole run: {:.1} s, load average at end {}.",
        started.elapsed().as_secs_f64(),
        load_average()
    );
}

// ---------------------------------------------------------------------------
// Request counts

/// Requests the emulator answered, by (`METHOD /route`, status).
#[derive(Clone, Debug, Default)]
struct Counts(BTreeMap<(String, u16), u64>);

impl Counts {
    fn from_stats(stats: &Value) -> Self {
        let mut map = BTreeMap::new();
        for r in stats["requests"].as_array().into_iter().flatten() {
            let endpoint = r["endpoint"].as_str().unwrap_or_default().to_owned();
            let status = r["status"].as_u64().unwrap_or_default() as u16;
            *map.entry((endpoint, status)).or_default() += r["count"].as_u64().unwrap_or_default();
        }
        Self(map)
    }

    /// `self - before`.
    fn since(&self, before: &Counts) -> Counts {
        let mut out = BTreeMap::new();
        for (key, n) in &self.0 {
            let d = n - before.0.get(key).copied().unwrap_or_default();
            if d > 0 {
                out.insert(key.clone(), d);
            }
        }
        Counts(out)
    }

    fn add(&mut self, other: &Counts) {
        for (key, n) in &other.0 {
            *self.0.entry(key.clone()).or_default() += n;
        }
    }

    fn sum(&self, f: impl Fn(&str, u16) -> bool) -> u64 {
        self.0.iter().filter(|((e, s), _)| f(e, *s)).map(|(_, n)| n).sum()
    }

    fn endpoint(&self, endpoint: &str) -> u64 {
        self.sum(|e, _| e == endpoint)
    }

    fn api(e: &str) -> bool {
        e != TOKEN
    }

    fn reads(&self) -> u64 {
        self.sum(|e, _| Self::api(e) && e.starts_with("GET "))
    }

    fn writes(&self) -> u64 {
        self.sum(|e, _| Self::api(e) && !e.starts_with("GET "))
    }

    fn requests(&self) -> u64 {
        self.reads() + self.writes()
    }

    fn tokens(&self) -> u64 {
        self.endpoint(TOKEN)
    }

    fn refused(&self, endpoint: &str) -> u64 {
        self.sum(|e, s| e == endpoint && !(200..300).contains(&s))
    }

    fn endpoints(&self) -> BTreeSet<String> {
        self.0.keys().map(|(e, _)| e.clone()).collect()
    }
}

/// A lower bound, by endpoint, each with the formula it came from.
#[derive(Default)]
struct Bound(Vec<(&'static str, u64, String)>);

impl Bound {
    fn add(&mut self, endpoint: &'static str, n: u64, formula: impl Into<String>) {
        self.0.push((endpoint, n, formula.into()));
    }

    fn get(&self, endpoint: &str) -> Option<(u64, &str)> {
        self.0.iter().find(|(e, _, _)| *e == endpoint).map(|(_, n, f)| (*n, f.as_str()))
    }

    fn reads(&self) -> u64 {
        self.0.iter().filter(|(e, _, _)| e.starts_with("GET ")).map(|(_, n, _)| n).sum()
    }

    fn writes(&self) -> u64 {
        self.0.iter().filter(|(e, _, _)| !e.starts_with("GET ")).map(|(_, n, _)| n).sum()
    }

    fn total(&self) -> u64 {
        self.reads() + self.writes()
    }
}

/// `n / d`, rounded up, at least `min`.
fn pages(n: u64, size: u64, min: u64) -> u64 {
    n.div_ceil(size).max(min)
}

/// The reads a plan cannot do without: the source looked up, /Dest listed, the
/// source's groups and contacts, each destination's groups and contacts
/// (`at_destinations[d]` contacts at destination `d`).
fn read_bound(source_contacts: u64, at_destinations: &[u64]) -> Bound {
    let d = at_destinations.len() as u64;
    let mut b = Bound::default();
    b.add(USER, 1, "1: the source user looked up");
    b.add(USERS, pages(d, USERS_PAGE, 1), format!("ceil(D/500) = ceil({d}/500): /Dest listed"));
    b.add(
        GROUPS,
        1 + d,
        format!("1 + D = 1 + {d}: the groups of the source and of each destination"),
    );
    let dest_pages: u64 = at_destinations.iter().map(|n| pages(*n, CONNECTIONS_PAGE, 1)).sum();
    let n_d = match (at_destinations.iter().min(), at_destinations.iter().max()) {
        (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
        (Some(lo), Some(hi)) => format!("{lo}..{hi}"),
        _ => "0".into(),
    };
    b.add(
        CONNECTIONS,
        pages(source_contacts, CONNECTIONS_PAGE, 1) + dest_pages,
        format!(
            "ceil(N/1000) + Σ ceil(n_d/1000), at least 1 page each (N = {source_contacts}, n_d \
             = {n_d})"
        ),
    );
    b
}

fn ratio(requests: u64, bound: u64) -> String {
    if bound == 0 {
        if requests == 0 { "1.00".into() } else { "∞".into() }
    } else {
        format!("{:.3}", requests as f64 / bound as f64)
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------
// The emulator, the workspace, and a backend that tells the inventory's requests apart

/// A tenant served by an emulator, with the manifests of one sync in a folder.
struct Emulated {
    dir: tempfile::TempDir,
    server: emulator::Background,
}

impl Emulated {
    fn start(tenant: &TenantFile, limits: Limits, concurrency: usize) -> Self {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let data = dir.path().join("tenant.yaml");
        tenant::write_atomic(&data, tenant).expect("the tenant file");
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/service-account.json");
        let mut config = emulator::Config::new(data);
        config.trusted_key = Some(emulator::public_key(&key).expect("the test key"));
        // The Workspace states the quotas the emulator keeps, as an admin states
        // their project's: the client paces each user's writes by them.
        let quota = format!(
            "{{windowSeconds: {}, criticalWrites: {}, deletesAndGroupWrites: {}}}",
            limits.window.as_secs().max(1),
            limits.critical_write,
            limits.delete_and_group_write
        );
        config.limits = limits;
        config.seed = 1;
        let server = emulator::Background::start(config).expect("the emulator");
        let url = format!("http://{}", server.addr);
        let manifests = dir.path().join("manifests");
        std::fs::create_dir_all(&manifests).expect("a manifest folder");
        std::fs::write(manifests.join("sync.yaml"), tenant::SYNTHETIC_SYNC).expect("the sync");
        std::fs::write(
            manifests.join("workspace.yaml"),
            format!(
                "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {{name: bench}}\nspec:\n  \
                 backend: google\n  google:\n    adminUser: admin@example.com\n    \
                 credentialsFile: {}\n    concurrency: {concurrency}\n    quota: {quota}\n    endpoints: {{people: \
                 \"{url}\", directory: \"{url}\", token: \"{url}/token\"}}\n",
                key.display()
            ),
        )
        .expect("the workspace");
        Self { dir, server }
    }

    fn options(&self) -> LoadOptions {
        LoadOptions { paths: vec![self.dir.path().join("manifests")], ..LoadOptions::default() }
    }

    fn stats_url(&self) -> String {
        format!("http://{}/_emulator/stats", self.server.addr)
    }

    async fn counts(&self) -> Counts {
        Counts::from_stats(&self.server.stats().await.expect("emulator stats"))
    }

    /// A backend as `contact-sync apply` opens it (`read_only`: as `plan` does).
    fn backend(&self, read_only: bool) -> (contact_sync::input::PlanInput, Metered) {
        let (input, target) = input::load(&self.options()).expect("the manifests load");
        let inner = if read_only { target.open_read_only() } else { target.open() };
        (input, Metered::new(inner.expect("the backend opens"), self.stats_url()))
    }
}

/// A workload's numbers count only if its traffic was Google's: the emulator,
/// strict by Google's discovery documents, must have refused none of it.
impl Drop for Emulated {
    fn drop(&mut self) {
        if std::thread::panicking() {
            return;
        }
        let checks = self.server.checks();
        let invalid = checks["invalid"].as_u64().unwrap_or_default();
        assert!(
            invalid == 0,
            "the emulator refused {invalid} request(s) of this workload as Google would: {:#}",
            checks["refusals"]
        );
    }
}

/// Limits no workload reaches: workloads 1 and 2 count requests, not waits (their
/// edits between runs would otherwise meet the one-minute window).
fn lifted() -> Limits {
    Limits {
        window: Duration::from_secs(60),
        critical_read: 1_000_000,
        critical_write: 1_000_000,
        delete_and_group_write: 1_000_000,
        group_read: 1_000_000,
        directory: 1_000_000,
    }
}

/// The backend, passing everything through, except that the emulator's counts are
/// read before and after the inventory is read or written: the reader reads it
/// first, and apply writes it before and after the destinations, so nothing else
/// is in flight then and the difference is the inventory's own.
struct Metered {
    inner: Arc<dyn Backend>,
    stats_url: String,
    http: reqwest::Client,
    inventory: Mutex<Counts>,
}

impl Metered {
    fn new(inner: Arc<dyn Backend>, stats_url: String) -> Self {
        Self { inner, stats_url, http: reqwest::Client::new(), inventory: Mutex::default() }
    }

    async fn snapshot(&self) -> Counts {
        let get = self.http.get(&self.stats_url).send().await.expect("emulator stats");
        Counts::from_stats(&get.json().await.expect("emulator stats"))
    }

    async fn metered<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        let before = self.snapshot().await;
        let out = f.await;
        let spent = self.snapshot().await.since(&before);
        self.inventory.lock().expect("counts").add(&spent);
        out
    }

    fn inventory(&self) -> Counts {
        self.inventory.lock().expect("counts").clone()
    }
}

#[async_trait]
impl Backend for Metered {
    async fn user(&self, key: &str) -> backend::Result<Option<DirectoryUser>> {
        self.inner.user(key).await
    }

    async fn users(&self, scope: UserScope) -> backend::Result<Vec<DirectoryUser>> {
        self.inner.users(scope).await
    }

    async fn group_members(&self, group: &str) -> backend::Result<Option<Vec<String>>> {
        self.inner.group_members(group).await
    }

    async fn contact_groups(&self, user: &str) -> backend::Result<Vec<ContactGroup>> {
        self.inner.contact_groups(user).await
    }

    async fn contact_groups_synced(
        &self,
        user: &str,
    ) -> backend::Result<(Vec<ContactGroup>, Option<String>)> {
        self.inner.contact_groups_synced(user).await
    }

    async fn contacts_synced(&self, user: &str) -> backend::Result<(Vec<Contact>, Option<String>)> {
        self.inner.contacts_synced(user).await
    }

    async fn unchanged_since(
        &self,
        user: &str,
        tokens: &backend::SyncTokens,
    ) -> backend::Result<Option<backend::SyncTokens>> {
        self.inner.unchanged_since(user, tokens).await
    }

    async fn contacts(&self, user: &str) -> backend::Result<Vec<Contact>> {
        self.inner.contacts(user).await
    }

    async fn create_contacts(
        &self,
        user: &str,
        contacts: Vec<NewContact<'_>>,
    ) -> backend::Result<Vec<Contact>> {
        self.inner.create_contacts(user, contacts).await
    }

    async fn update_contacts(
        &self,
        user: &str,
        updates: Vec<ContactUpdate>,
    ) -> backend::Result<Vec<Contact>> {
        self.inner.update_contacts(user, updates).await
    }

    async fn delete_contacts(
        &self,
        user: &str,
        resource_names: Vec<String>,
    ) -> backend::Result<()> {
        self.inner.delete_contacts(user, resource_names).await
    }

    async fn create_group(
        &self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
    ) -> backend::Result<ContactGroup> {
        self.inner.create_group(user, name, client_data).await
    }

    async fn update_group(&self, user: &str, group: ContactGroup) -> backend::Result<ContactGroup> {
        self.inner.update_group(user, group).await
    }

    async fn delete_group(&self, user: &str, resource_name: &str) -> backend::Result<()> {
        self.inner.delete_group(user, resource_name).await
    }

    async fn modify_members(
        &self,
        user: &str,
        group: &str,
        add: Vec<String>,
        remove: Vec<String>,
    ) -> backend::Result<()> {
        self.inner.modify_members(user, group, add, remove).await
    }

    async fn commit(&self) -> backend::Result<()> {
        self.inner.commit().await
    }

    async fn try_lease(&self, holder: &str, ttl: Duration) -> backend::Result<LeaseAttempt> {
        self.inner.try_lease(holder, ttl).await
    }

    async fn renew_lease(&self, holder: &str, ttl: Duration) -> backend::Result<LeaseAttempt> {
        self.inner.renew_lease(holder, ttl).await
    }

    async fn release_lease(&self, holder: &str) -> backend::Result<()> {
        self.inner.release_lease(holder).await
    }

    async fn read_inventory(&self) -> backend::Result<Option<StoredInventory>> {
        self.metered(self.inner.read_inventory()).await
    }

    async fn write_inventory(
        &self,
        old: &StoredInventory,
        new: &Inventory,
    ) -> backend::Result<StoredInventory> {
        self.metered(self.inner.write_inventory(old, new)).await
    }

    fn guard_writes(&self, guard: Option<WriteGuard>) {
        self.inner.guard_writes(guard)
    }

    fn request_timeout(&self) -> Duration {
        self.inner.request_timeout()
    }

    fn concurrency(&self) -> usize {
        self.inner.concurrency()
    }

    fn users_in_flight(&self) -> usize {
        self.inner.users_in_flight()
    }

    async fn user_schemas(&self) -> backend::Result<Vec<UserSchema>> {
        self.inner.user_schemas().await
    }

    fn want_custom_schemas(&self, schemas: &[String]) {
        self.inner.want_custom_schemas(schemas)
    }

    async fn shared_contacts(&self) -> backend::Result<Vec<Contact>> {
        self.inner.shared_contacts().await
    }

    async fn contact_photo(&self, user: &str, url: &str) -> backend::Result<Option<Vec<u8>>> {
        self.inner.contact_photo(user, url).await
    }

    async fn user_photo(&self, user_key: &str) -> backend::Result<Option<Vec<u8>>> {
        self.inner.user_photo(user_key).await
    }

    async fn set_contact_photo(
        &self,
        user: &str,
        resource_name: &str,
        bytes: &[u8],
    ) -> backend::Result<Contact> {
        self.inner.set_contact_photo(user, resource_name, bytes).await
    }

    async fn delete_contact_photo(
        &self,
        user: &str,
        resource_name: &str,
    ) -> backend::Result<Contact> {
        self.inner.delete_contact_photo(user, resource_name).await
    }
}

/// What one run (a plan, or a plan and its apply) asked of the emulator.
struct Phase {
    plan: Plan,
    counts: Counts,
    /// The part of `counts` that read or wrote the inventory.
    inventory: Counts,
    plan_time: Duration,
    apply_time: Option<Duration>,
}

impl Phase {
    fn time(&self) -> Duration {
        self.plan_time + self.apply_time.unwrap_or_default()
    }
}

/// Plans (and applies, if `apply`) with a backend opened for the run, as the
/// command line does: `plan` read-only, `apply` planning and applying with one.
async fn run(e: &Emulated, apply: bool) -> Phase {
    let before = e.counts().await;
    let (input, backend) = e.backend(!apply);
    let t = Instant::now();
    let plan = reader::plan(&backend, &input).await.expect("the plan");
    let plan_time = t.elapsed();
    assert_eq!(plan.summary.errors, 0, "{}", text(&plan));
    let mut apply_time = None;
    if apply {
        let t = Instant::now();
        let report = apply::apply(&backend, &plan, &|_| {}).await;
        apply_time = Some(t.elapsed());
        assert!(!report.failed(), "{}", report.summary(0));
        assert!(report.inventory_warning.is_none(), "{:?}", report.inventory_warning);
    }
    let counts = e.counts().await.since(&before);
    Phase { plan, counts, inventory: backend.inventory(), plan_time, apply_time }
}

/// The first lines of a plan, for a failed assertion.
fn text(plan: &Plan) -> String {
    let text = contact_sync::plan::render::text(plan, Default::default());
    text.lines().take(40).collect::<Vec<_>>().join("\n")
}

fn assert_empty(phase: &Phase, what: &str) {
    assert!(
        !phase.plan.summary.has_changes(),
        "{what}: the plan is not empty:\n{}",
        text(&phase.plan)
    );
}

/// Prints a phase's requests by endpoint beside `bound`, and returns the summary
/// row.
fn report(workload: &str, title: &str, phase: &Phase, bound: &Bound, tokens: (u64, &str)) -> Row {
    let c = &phase.counts;
    let inv = &phase.inventory;
    let times = match phase.apply_time {
        Some(a) => format!("plan {}, apply {}", secs(phase.plan_time), secs(a)),
        None => format!("plan {}", secs(phase.plan_time)),
    };
    println!("### {title}\n");
    println!(
        "{times}; plan: {} to add, {} to change, {} to delete{}.\n",
        phase.plan.summary.create,
        phase.plan.summary.update,
        phase.plan.summary.delete,
        if phase.plan.survey.full {
            "; a full scan (no inventory yet: every user listed and every user's groups read, \
             beyond the bound)"
        } else {
            ""
        }
    );
    println!("| endpoint | requests | not 2xx | of which inventory | lower bound | formula |");
    println!("|---|---:|---:|---:|---:|---|");
    let mut endpoints: BTreeSet<String> = c.endpoints();
    endpoints.extend(bound.0.iter().map(|(e, _, _)| (*e).to_owned()));
    endpoints.remove(TOKEN);
    for e in &endpoints {
        let (b, formula) = bound.get(e).unwrap_or((0, "not needed"));
        println!(
            "| `{e}` | {} | {} | {} | {b} | {formula} |",
            c.endpoint(e),
            c.refused(e),
            inv.endpoint(e)
        );
    }
    let (reads, writes) = (c.reads(), c.writes());
    let (inv_reads, inv_writes) = (inv.reads(), inv.writes());
    println!(
        "| **reads** | **{reads}** | | {inv_reads} | **{}** | ratio {} (without the inventory {}) |",
        bound.reads(),
        ratio(reads, bound.reads()),
        ratio(reads - inv_reads, bound.reads())
    );
    println!(
        "| **writes** | **{writes}** | | {inv_writes} | **{}** | ratio {} (without the inventory {}) |",
        bound.writes(),
        ratio(writes, bound.writes()),
        ratio(writes - inv_writes, bound.writes())
    );
    println!(
        "| **all** | **{}** | | {} | **{}** | ratio {} (without the inventory {}) |",
        c.requests(),
        inv.requests(),
        bound.total(),
        ratio(c.requests(), bound.total()),
        ratio(c.requests() - inv.requests(), bound.total())
    );
    println!(
        "| `{TOKEN}` (token grants) | {} | {} | | {} | {} |\n",
        c.tokens(),
        c.refused(TOKEN),
        tokens.0,
        tokens.1
    );
    Row {
        label: format!("{workload}: {}", title.to_lowercase()),
        requests: c.requests().to_string(),
        bound: bound.total().to_string(),
        ratio: ratio(c.requests(), bound.total()),
        without: ratio(c.requests() - inv.requests(), bound.total()),
        time: secs(phase.time()),
        time_bound: String::new(),
        time_ratio: String::new(),
    }
}

/// A line of the summary table.
struct Row {
    label: String,
    requests: String,
    bound: String,
    ratio: String,
    without: String,
    time: String,
    time_bound: String,
    time_ratio: String,
}

impl std::fmt::Display for Row {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            self.label,
            self.requests,
            self.bound,
            self.ratio,
            self.without,
            self.time,
            self.time_bound,
            self.time_ratio
        )
    }
}

/// Token grants a run needs: one per user it reads or writes as, one for the
/// directory (as the admin) and one for the state user's contact groups.
fn token_bound(users: u64) -> (u64, String) {
    (users + 2, format!("users touched + 2 = {users} + 2 (the directory; the inventory)"))
}

// ---------------------------------------------------------------------------
// A deterministic generator (SplitMix64) for the churn workload's choices

struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// `k` distinct numbers below `n` not in `not`, sorted.
    fn pick(&mut self, k: usize, n: usize, not: &BTreeSet<usize>) -> BTreeSet<usize> {
        assert!(k + not.len() <= n);
        let mut out = BTreeSet::new();
        while out.len() < k {
            let i = self.below(n);
            if !not.contains(&i) {
                out.insert(i);
            }
        }
        out
    }
}

/// The synthetic contact number `i` of the source (`Contact 00042`), by its family name.
fn index_of(c: &Contact) -> Option<usize> {
    c.fields.get("names")?[0]["familyName"].as_str()?.parse().ok()
}

// ---------------------------------------------------------------------------
// Workload 1

async fn workload_1(sizes: &Sizes, summary: &mut Vec<Row>) {
    let (n, d) = sizes.w1;
    let (n64, d64) = (n as u64, d as u64);
    println!("## 1. First sync, no-change run, churn: {n} contacts to {d} destinations\n");
    println!(
        "Google backend against the emulator (concurrency 8, the default; per-user quotas \
         lifted: this workload counts requests). `source@example.com` keeps N = {n} contacts in \
         \"Shared\", copied to the D = {d} users of /Dest. Each run opens its backend afresh, as \
         a command does: a plan + apply is `contact-sync apply`, a plan alone `contact-sync \
         plan` (without the writer lease, which costs a few requests of the state user per \
         apply). The inventory (contact groups of the state user, admin@example.com) is counted \
         apart: 1 group list per plan, and its own group writes on apply.\n"
    );
    let e = Emulated::start(&tenant::synthetic(n, d), lifted(), 8);
    let none: Vec<u64> = vec![0; d];
    let full: Vec<u64> = vec![n64; d];

    // First sync.
    let first = run(&e, true).await;
    let mut bound = read_bound(n64, &none);
    bound.add(CREATE_GROUP, d64, format!("D = {d}: a target group per destination"));
    let batches = n64.div_ceil(CREATE_BATCH);
    bound.add(BATCH_CREATE, d64 * batches, format!("D × ceil(N/200) = {d} × {batches}"));
    let tb = token_bound(d64 + 1);
    summary.push(report("1", "First sync (plan + apply)", &first, &bound, (tb.0, &tb.1)));
    assert_eq!(first.plan.summary.create, d * (n + 1));

    // An immediate no-change run.
    let again = run(&e, true).await;
    assert_empty(&again, "the run after the first sync");
    assert_eq!(again.counts.writes(), 0, "a no-change run writes nothing: {:?}", again.counts);
    let bound = read_bound(n64, &full);
    summary.push(report("1", "No-change run (plan + apply)", &again, &bound, (tb.0, &tb.1)));

    // Churn, made through the API as the Contacts app would (not counted).
    let edited = n * 5 / 100;
    let moved = (n / 100).max(1);
    let copies = d * n * 2 / 100;
    println!(
        "Churn, made between the runs through the API as the Contacts app would (not counted): \
         at the source, {edited} contacts (5 %) get a new phone number, {moved} (1 %) are deleted \
         and {moved} new ones added to \"Shared\"; at the destinations, {copies} copies (2 % of \
         D × N, seeded, spread over the destinations, none of a deleted contact) get their \
         organization's title edited. Per destination the bound is ceil(u_d/200) batch updates, \
         u_d = the source's edited contacts ∪ the copies edited there (edited copies are reverted \
         by update), ceil(added/200) batch creates and ceil(deleted/500) batch deletes.\n"
    );
    let (input, user) = e.backend(false);
    drop(input);
    let mut rng = Seeded(0x5EED);
    let changed = rng.pick(edited, n, &BTreeSet::new());
    let deleted = rng.pick(moved, n, &changed);
    let at_source = user.contacts(SOURCE).await.expect("the source's contacts");
    let by_index: BTreeMap<usize, &Contact> =
        at_source.iter().filter_map(|c| Some((index_of(c)?, c))).collect();
    let updates = changed
        .iter()
        .map(|i| {
            let c = by_index[i];
            let mut fields = contact_sync::model::PersonFields::new();
            fields.insert(
                "phoneNumbers".into(),
                json!([{ "value": format!("+1 555 9{i:04}"), "type": "work" }]),
            );
            ContactUpdate {
                resource_name: c.resource_name.clone(),
                etag: c.etag.clone(),
                fields,
                update_mask: vec!["phoneNumbers".into()],
                client_data: c.client_data.clone(),
            }
        })
        .collect();
    user.update_contacts(SOURCE, updates).await.expect("edits at the source");
    let gone = deleted.iter().map(|i| by_index[i].resource_name.clone()).collect();
    user.delete_contacts(SOURCE, gone).await.expect("deletes at the source");
    let shared = user.contact_groups(SOURCE).await.expect("the source's groups");
    let shared = shared.into_iter().find(|g| g.name == "Shared").expect("Shared").resource_name;
    let extra = tenant::synthetic(n + moved, 0).users[1].contacts[n..].to_vec();
    let added: Vec<NewContact<'_>> = extra
        .into_iter()
        .map(|c| NewContact {
            fields: std::borrow::Cow::Owned(c.fields.into_iter().collect()),
            memberships: vec![shared.clone()],
            client_data: Vec::new(),
        })
        .collect();
    user.create_contacts(SOURCE, added).await.expect("new contacts at the source");
    let mut at: BTreeMap<usize, BTreeSet<usize>> = BTreeMap::new();
    let mut picked = 0;
    while picked < copies {
        let (dest, i) = (rng.below(d), rng.below(n));
        if !deleted.contains(&i) && at.entry(dest).or_default().insert(i) {
            picked += 1;
        }
    }
    for (dest, indices) in &at {
        let address = format!("d{dest:03}@example.com");
        let have = user.contacts(&address).await.expect("a destination's contacts");
        let updates = have
            .iter()
            .filter(|c| index_of(c).is_some_and(|i| indices.contains(&i)))
            .map(|c| {
                let mut fields = contact_sync::model::PersonFields::new();
                fields.insert(
                    "organizations".into(),
                    json!([{ "name": "Partner Inc", "title": "Buyer (edited here)" }]),
                );
                ContactUpdate {
                    resource_name: c.resource_name.clone(),
                    etag: c.etag.clone(),
                    fields,
                    update_mask: vec!["organizations".into()],
                    client_data: c.client_data.clone(),
                }
            })
            .collect::<Vec<_>>();
        assert_eq!(updates.len(), indices.len());
        user.update_contacts(&address, updates).await.expect("edits at a destination");
    }
    drop(user);

    let churn = run(&e, true).await;
    let n_after = n64; // as many added as deleted
    let mut bound = read_bound(n_after, &full);
    let mut update_batches = 0;
    let mut u_max = 0;
    for dest in 0..d {
        let u = changed.union(at.get(&dest).unwrap_or(&BTreeSet::new())).count() as u64;
        u_max = u_max.max(u);
        update_batches += u.div_ceil(UPDATE_BATCH);
    }
    bound.add(
        BATCH_UPDATE,
        update_batches,
        format!("Σ ceil(u_d/200), u_d ≤ {u_max}: changed at the source ∪ edited at d"),
    );
    let (m, m64) = (moved, moved as u64);
    bound.add(BATCH_CREATE, d64 * m64.div_ceil(CREATE_BATCH), format!("D × ceil({m}/200)"));
    bound.add(BATCH_DELETE, d64 * m64.div_ceil(DELETE_BATCH), format!("D × ceil({m}/500)"));
    let expected_updates: usize =
        (0..d).map(|dest| changed.union(at.get(&dest).unwrap_or(&BTreeSet::new())).count()).sum();
    assert_eq!(churn.plan.summary.update, expected_updates, "{}", text(&churn.plan));
    assert_eq!(churn.plan.summary.create, d * m);
    assert_eq!(churn.plan.summary.delete, d * m);
    summary.push(report("1", "Churn run (plan + apply)", &churn, &bound, (tb.0, &tb.1)));

    let last = run(&e, false).await;
    assert_empty(&last, "the plan after the churn run");
    let bound = read_bound(n_after, &full);
    summary.push(report("1", "Final plan", &last, &bound, (tb.0, &tb.1)));
}

// ---------------------------------------------------------------------------
// Workload 2

async fn workload_2(sizes: &Sizes, summary: &mut Vec<Row>) {
    let (users, n, d) = sizes.w2;
    let small_users = d + 2;
    println!(
        "## 2. A no-change run in a {users}-user tenant against a {small_users}-user one: one \
         sync of {n} contacts to {d} users\n"
    );
    println!(
        "The same sync (source, {d} destinations in /Dest, admin@example.com) in two tenants: \
         the large one has {} more users in /Other that no sync selects. Each converges first \
         (a full scan: no inventory yet), then a no-change plan (`contact-sync plan`) and a \
         no-change apply (`contact-sync apply`: plan + apply) are counted. Concurrency 8, quotas \
         lifted. Target: the large tenant's reads ≤ 1.1 × the small tenant's reads without the \
         inventory + 1 (the inventory's read); token grants ≤ users touched + 2; no writes.\n",
        users - small_users
    );
    let mut figures = Vec::new();
    for total in [small_users, users] {
        let mut t = tenant::synthetic(n, d);
        t.users.extend((0..total - small_users).map(|i| TenantUser {
            primary_email: format!("other{i:05}@example.com"),
            org_unit_path: "/Other".into(),
            ..TenantUser::default()
        }));
        let e = Emulated::start(&t, lifted(), 8);
        let first = run(&e, true).await;
        assert!(first.plan.survey.full);
        println!(
            "{total}-user tenant, first converge (full scan): {} reads, {} writes, {} token \
             grants, {}.\n",
            first.counts.reads(),
            first.counts.writes(),
            first.counts.tokens(),
            secs(first.time())
        );
        let bound = read_bound(n as u64, &vec![n as u64; d]);
        let tb = token_bound(d as u64 + 1);
        let plan = run(&e, false).await;
        assert_empty(&plan, "the no-change plan");
        let title = format!("{total}-user tenant: no-change plan");
        summary.push(report("2", &title, &plan, &bound, (tb.0, &tb.1)));
        let applied = run(&e, true).await;
        assert_empty(&applied, "the no-change apply");
        assert_eq!(applied.counts.writes(), 0, "a no-change apply writes nothing");
        let title = format!("{total}-user tenant: no-change apply");
        summary.push(report("2", &title, &applied, &bound, (tb.0, &tb.1)));
        figures.push((total, [plan, applied], bound.reads(), tb.0));
    }
    println!("### Large against small\n");
    println!(
        "| run | tenant | reads | of which inventory | writes | token grants | read bound | \
         target (large) | within target |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    let small = &figures[0];
    for (i, what) in ["no-change plan", "no-change apply"].iter().enumerate() {
        let s = &small.1[i];
        let target = 1.1 * (s.counts.reads() - s.inventory.reads()) as f64 + 1.0;
        for f in &figures {
            let p = &f.1[i];
            let large = f.0 != small.0;
            println!(
                "| {what} | {} users | {} | {} | {} | {} (bound {}) | {} | {} | {} |",
                f.0,
                p.counts.reads(),
                p.inventory.reads(),
                p.counts.writes(),
                p.counts.tokens(),
                f.3,
                f.2,
                if large { format!("{target:.1}") } else { String::new() },
                if !large {
                    String::new()
                } else if p.counts.reads() as f64 <= target && p.counts.tokens() <= f.3 {
                    "yes".into()
                } else {
                    "**no**".into()
                }
            );
        }
    }
    println!();
}

// ---------------------------------------------------------------------------
// Workload 3

async fn workload_3(sizes: &Sizes, summary: &mut Vec<Row>) {
    let (n, ref ds, c, window) = sizes.w3;
    let limits = Limits { window, ..Limits::default() };
    let n64 = n as u64;
    let batches = n64.div_ceil(CREATE_BATCH);
    let per_window = WRITE_UNITS / BATCH_COST;
    let windows = batches.div_ceil(per_window);
    let naive_windows = n64.div_ceil(WRITE_UNITS);
    let w = window.as_secs_f64();
    println!(
        "## 3. Time to converge under Google's per-user quotas: a first sync of {n} contacts\n"
    );
    println!(
        "Google's default per-user quotas ({} critical write units, {} delete and group write \
         units, {} critical reads, {} group reads per window) with the window compressed from \
         60 s to {w} s (not 1 s: the client and the emulator share this machine's cores, and the \
         first batches of every user take seconds to send, so a 1 s window would never fill \
         and the figure would measure the machine, not the quotas); concurrency C = {c} (the \
         default); default retries (a 429 waits the server's `Retry-After`). A user needs \
         ceil(N/200) = {batches} batch creates of 6 units each, {per_window} per window, so W = \
         ceil({batches}/{per_window}) = {windows} windows. Quotas are per user, so users wait \
         for their windows side by side, and a user waiting for its window holds no request \
         slot: only the last window a user strictly needs must be waited for, once. Bound on \
         time: (W − 1) × window + the request time, where the request time is the same first \
         sync measured on a fresh emulator with the quotas lifted (same D, same C: what the \
         requests themselves take on this machine). Beside it, what a client that keeps a slot \
         while it waits would take: ceil(D/C) waves of (W − 1) windows. The naive way, one \
         create per contact (1 unit each, 30 per window): D × N + D requests and ceil(N/30) − 1 \
         = {} windows to wait (the same rule: the last window is not waited out). Requests: \
         bound = the reads of workload 1 + D group creates + D × {batches} batch creates; \
         answers 429 are extra requests.\n",
        limits.critical_write,
        limits.delete_and_group_write,
        limits.critical_read,
        limits.group_read,
        naive_windows - 1
    );
    let mut rows = Vec::new();
    for &d in ds {
        let d64 = d as u64;
        // The request time: the same first sync with nothing to wait for.
        let free = Emulated::start(&tenant::synthetic(n, d), lifted(), c);
        let unpaced = run(&free, true).await;
        assert_eq!(unpaced.plan.summary.create, d * (n + 1));
        drop(free);
        let e = Emulated::start(&tenant::synthetic(n, d), limits.clone(), c);
        let phase = run(&e, true).await;
        assert_eq!(phase.plan.summary.create, d * (n + 1));
        let mut bound = read_bound(n64, &vec![0; d]);
        bound.add(CREATE_GROUP, d64, format!("D = {d}"));
        bound.add(BATCH_CREATE, d64 * batches, format!("D × ceil(N/200) = {d} × {batches}"));
        let request_time = unpaced.time().as_secs_f64();
        let time_bound = (windows - 1) as f64 * w + request_time;
        let waves = d64.div_ceil(c as u64);
        let slot_holding = waves as f64 * (windows - 1) as f64 * w;
        let naive_time = (naive_windows - 1) as f64 * w;
        let naive_requests = d64 * n64 + d64;
        let tb = token_bound(d64 + 1);
        let title = format!("First sync to {d} destinations under quotas, C = {c}");
        let mut row = report("3", &title, &phase, &bound, (tb.0, &tb.1));
        row.label = format!("3: first sync to {d} destinations under quotas, C = {c}");
        row.time_bound = format!("{time_bound:.1} s");
        row.time_ratio = ratio_f(phase.time().as_secs_f64(), time_bound);
        summary.push(row);
        let last = run(&e, false).await;
        assert_empty(&last, "the plan after the first sync under quotas");
        rows.push((
            d,
            phase,
            bound.total(),
            request_time,
            time_bound,
            slot_holding,
            naive_requests,
            naive_time,
        ));
    }
    println!("### Time against the bound and the naive way\n");
    println!(
        "| D | C | requests | of which 429 | bound | ratio | request time (quotas lifted) | \
         time (plan + apply) | time bound | ratio | slot-holding waves | naive requests | \
         naive wait | at a 60 s window: bound | naive |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let scale = 60.0 / w;
    for (d, phase, bound, request_time, time_bound, slot_holding, naive_requests, naive_time) in
        &rows
    {
        let took = phase.time().as_secs_f64();
        println!(
            "| {d} | {c} | {} | {} | {bound} | {} | {request_time:.1} s | {took:.1} s | {time_bound:.1} s | {} | {slot_holding:.0} s | {naive_requests} | {naive_time:.0} s | {} | {} |",
            phase.counts.requests(),
            phase.counts.sum(|_, s| s == 429),
            ratio(phase.counts.requests(), *bound),
            ratio_f(took, *time_bound),
            minutes((windows - 1) as f64 * 60.0 + request_time),
            minutes(naive_time * scale),
        );
    }
    println!();
}

fn ratio_f(x: f64, bound: f64) -> String {
    if bound == 0.0 { "∞".into() } else { format!("{:.2}", x / bound) }
}

fn minutes(s: f64) -> String {
    if s >= 3600.0 { format!("{:.1} h", s / 3600.0) } else { format!("{:.0} min", s / 60.0) }
}

// ---------------------------------------------------------------------------
// Workload 4

/// One size of workload 4, in a process of its own: loads the manifests in `dir`,
/// plans on the local backend, and prints its figures as one JSON line.
fn child(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let rt = rt.expect("a runtime");
    let cpu = cpu_ms();
    let t = Instant::now();
    let options = LoadOptions { paths: vec![dir.join("manifests")], ..LoadOptions::default() };
    let (input, target) = input::load(&options).expect("the manifests load");
    let backend = target.open_read_only().expect("the tenant file");
    let plan = rt.block_on(reader::plan(backend.as_ref(), &input)).expect("the plan");
    let wall = t.elapsed();
    let cpu = cpu_ms() - cpu;
    let out = json!({
        "wall_ms": wall.as_secs_f64() * 1e3,
        "cpu_ms": cpu,
        "vmhwm_kb": status_kb("VmHWM"),
        "creates": plan.summary.create,
    });
    println!("{out}");
}

/// CPU time of this process (user + system), from /proc/self/stat, in
/// milliseconds (Linux reports it in ticks of 1/100 s).
fn cpu_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are the 14th and 15th fields; `after` starts at the 3rd.
    (fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0)) * 10
}

/// A `kB` line of /proc/self/status.
fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs this binary again with the private argument `arg` on `dir`, and returns
/// the JSON line it prints.
fn run_child(arg: &str, dir: &Path) -> Value {
    let exe = std::env::current_exe().expect("this binary");
    let out = std::process::Command::new(exe)
        .arg(arg)
        .arg(dir)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("the child runs");
    assert!(out.status.success(), "the child failed: {}", String::from_utf8_lossy(&out.stdout));
    let line = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(line.trim()).expect("the child's JSON line")
}

fn load_average() -> String {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    avg.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

fn workload_4(sizes: &Sizes, summary: &mut Vec<Row>) {
    let (n, ref ds) = sizes.w4;
    println!(
        "## 4. Planning on the local backend: {n} contacts to a growing number of destinations\n"
    );
    println!(
        "A first sync's plan (every copy to create) of the synthetic tenant, on the local \
         backend, each size in a child process of its own (this binary, run again), which \
         loads the manifests and the tenant file, plans, and reports its wall time, CPU time \
         (user + system) and peak resident memory (VmHWM, the whole process). Growth is \
         against the first size.\n"
    );
    println!(
        "| destinations | changes | wall time | CPU time | peak memory | size × | time × | CPU × \
         | memory × |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut first: Option<(f64, f64, f64, f64)> = None;
    for &d in ds {
        let dir = tempfile::tempdir().expect("a temporary folder");
        write_local(dir.path(), n, d);
        let v = run_child(CHILD, dir.path());
        let wall = v["wall_ms"].as_f64().unwrap_or_default();
        let cpu = v["cpu_ms"].as_f64().unwrap_or_default();
        let mem = v["vmhwm_kb"].as_f64().unwrap_or_default();
        let creates = v["creates"].as_u64().unwrap_or_default();
        assert_eq!(creates as usize, d * (n + 1));
        let base = *first.get_or_insert((d as f64, wall, cpu, mem));
        let x = |a: f64, b: f64| if b > 0.0 { format!("{:.2}", a / b) } else { "—".into() };
        println!(
            "| {d} | {creates} | {:.2} s | {:.2} s | {:.0} MiB | {} | {} | {} | {} |",
            wall / 1e3,
            cpu / 1e3,
            mem / 1024.0,
            x(d as f64, base.0),
            x(wall, base.1),
            x(cpu, base.2),
            x(mem, base.3)
        );
        summary.push(Row {
            label: format!("4: local plan, {n} contacts to {d} destinations"),
            requests: "—".into(),
            bound: "—".into(),
            ratio: "—".into(),
            without: "—".into(),
            time: format!(
                "{:.2} s (CPU {:.2} s, peak {:.0} MiB)",
                wall / 1e3,
                cpu / 1e3,
                mem / 1024.0
            ),
            time_bound: String::new(),
            time_ratio: String::new(),
        });
    }
    println!();
}

/// Workload 5: the same first sync applied on the local backend and through the
/// emulator, for a growing number of destinations.
async fn workload_5(sizes: &Sizes, summary: &mut Vec<Row>) {
    let (n, ref ds) = sizes.w5;
    println!("## 5. The emulator beside the local backend: a first sync of {n} contacts\n");
    println!(
        "The same plan applied on the local backend (its tenant file rewritten once) and \
         through the google backend against the emulator (every batch an HTTP request, the \
         emulator's database written as they come). Target: the emulator within 5 × the \
         local backend, and linear in destinations.\n"
    );
    println!("| destinations | local apply | emulator apply | ratio | emulator per destination |");
    println!("|---:|---:|---:|---:|---:|");
    for &d in ds {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let manifests = write_local(dir.path(), n, d);
        let options = LoadOptions { paths: vec![manifests], ..LoadOptions::default() };
        let (input, target) = input::load(&options).expect("the manifests load");
        let backend = target.open().expect("the local backend");
        let plan = reader::plan(backend.as_ref(), &input).await.expect("the plan");
        let t = Instant::now();
        let report = apply::apply(backend.as_ref(), &plan, &|_| {}).await;
        let local = t.elapsed();
        assert!(!report.failed(), "{}", report.summary(0));

        let e = Emulated::start(&tenant::synthetic(n, d), lifted(), 8);
        let phase = run(&e, true).await;
        let emulated = phase.apply_time.expect("applied");
        let ratio = emulated.as_secs_f64() / local.as_secs_f64().max(1e-3);
        println!(
            "| {d} | {} | {} | {ratio:.2} | {:.1} ms |",
            secs(local),
            secs(emulated),
            emulated.as_secs_f64() * 1e3 / d as f64
        );
        summary.push(Row {
            label: format!("5: apply of {n} contacts to {d} destinations, emulator vs local"),
            requests: "—".into(),
            bound: "—".into(),
            ratio: "—".into(),
            without: "—".into(),
            time: secs(emulated),
            time_bound: format!("5 × {}", secs(local)),
            time_ratio: format!("{:.2}", ratio / 5.0),
        });
    }
    println!();
}

/// The synthetic tenant on the local backend, in `dir`.
fn write_local(dir: &Path, n: usize, d: usize) -> PathBuf {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).expect("a manifest folder");
    tenant::write_atomic(&dir.join("tenant.yaml"), &tenant::synthetic(n, d)).expect("the tenant");
    std::fs::write(manifests.join("sync.yaml"), tenant::SYNTHETIC_SYNC).expect("the sync");
    std::fs::write(
        manifests.join("workspace.yaml"),
        "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: bench}\nspec: {backend: \
         local, local: {path: ../tenant.yaml}}\n",
    )
    .expect("the workspace");
    manifests
}

// ---------------------------------------------------------------------------
// Workload 6

/// The photo endpoints: writes, removals, downloads of contact photo URLs.
const PHOTO_WRITE: &str = "PATCH /v1/people/{id}";
const PHOTO_DELETE: &str = "DELETE /v1/people/{id}";
const PHOTO_DOWNLOAD: &str = "GET /_photos/{*path}";

async fn workload_6(sizes: &Sizes) {
    let (n, p, d) = sizes.w6;
    let (p64, d64) = (p as u64, d as u64);
    println!("## 6. Photos: {n} contacts, {p} with a photo, to {d} destinations\n");
    println!(
        "Google backend against the emulator (per-user quotas lifted). The workload-1 tenant, \
         with a distinct PNG photo on P = {p} of the N = {n} source contacts. Bounds: a first \
         sync makes one photo write per copy with a photo (D × P) and downloads each source \
         photo once (P); a no-change run makes no photo request at all (the photo markers of \
         the copies name the source photo's version, read from the listings).\n"
    );
    let mut t = tenant::synthetic(n, d);
    let source = t.users.iter_mut().find(|u| u.primary_email == SOURCE).expect("the source");
    for (i, c) in source.contacts.iter_mut().take(p).enumerate() {
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(format!("photo {i}").as_bytes());
        c.fields.insert(
            tenant::PHOTO_DATA.into(),
            contact_sync::model::photo::encode_base64(&png).into(),
        );
    }
    let e = Emulated::start(&t, lifted(), 8);
    let first = run(&e, true).await;
    let again = run(&e, true).await;
    assert_empty(&again, "the run after the first sync with photos");
    println!("| run | photo writes | bound | photo removals | bound | downloads | bound |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    let mut over = Vec::new();
    for (label, phase, writes, downloads) in
        [("First sync", &first, d64 * p64, p64), ("No-change run", &again, 0, 0)]
    {
        let c = &phase.counts;
        let (w, r, g) =
            (c.endpoint(PHOTO_WRITE), c.endpoint(PHOTO_DELETE), c.endpoint(PHOTO_DOWNLOAD));
        println!("| {label} | {w} | {writes} | {r} | 0 | {g} | {downloads} |");
        if w > writes || r > 0 || g > downloads {
            over.push(format!("{label}: {w} writes, {r} removals, {g} downloads"));
        }
    }
    println!();
    assert!(over.is_empty(), "photo requests above the bound: {over:?}");
}

// ---------------------------------------------------------------------------
// Workload 7

/// API requests (token grants apart) and bytes moved (request and response
/// bodies), from the emulator's counts.
#[derive(Clone, Copy, Default)]
struct Traffic {
    requests: u64,
    listings: u64,
    bytes: u64,
}

impl Traffic {
    fn of(stats: &Value) -> Self {
        let mut t = Self::default();
        for r in stats["requests"].as_array().into_iter().flatten() {
            let endpoint = r["endpoint"].as_str().unwrap_or_default();
            if endpoint == TOKEN || endpoint.starts_with("GET /_emulator") {
                continue;
            }
            let n = r["count"].as_u64().unwrap_or_default();
            t.requests += n;
            if endpoint == CONNECTIONS || endpoint == "GET /v1/contactGroups" {
                t.listings += n;
            }
            t.bytes += r["requestBytes"].as_u64().unwrap_or_default()
                + r["responseBytes"].as_u64().unwrap_or_default();
        }
        t
    }

    fn since(self, before: Self) -> Self {
        Self {
            requests: self.requests - before.requests,
            listings: self.listings - before.listings,
            bytes: self.bytes - before.bytes,
        }
    }
}

/// A plan (and its apply, if `apply`) with the read cache in `cache`, as
/// `contact-sync plan --cache-dir` and `apply --cache-dir` run it; `None` reads in
/// full. What it moved, and the plan.
async fn cached_run(e: &Emulated, cache: Option<&Path>, apply: bool) -> (Plan, Traffic) {
    let before = Traffic::of(&e.server.stats().await.expect("stats"));
    let (input, target) = input::load(&e.options()).expect("the manifests load");
    let backend = if apply { target.open() } else { target.open_read_only() };
    let backend = backend.expect("the backend opens");
    let cache = cache.and_then(|dir| contact_sync::cache::ReadCache::open(&target, Some(dir)));
    let plan = reader::plan_cached(backend.as_ref(), &input, &|_, _| {}, cache.as_ref())
        .await
        .expect("the plan");
    if let Some(cache) = &cache {
        cache.forget_planned(&plan);
        cache.save().expect("the cache is saved");
    }
    if apply {
        let report = apply::apply(backend.as_ref(), &plan, &|_| {}).await;
        assert!(!report.failed(), "{}", report.summary(0));
    }
    let after = Traffic::of(&e.server.stats().await.expect("stats"));
    (plan, after.since(before))
}

fn mb(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

async fn workload_7(sizes: &Sizes) {
    println!(
        "## 7. Quiet nights with the read cache: requests and bytes against a full read
"
    );
    println!(
        "The Google backend against the emulator (concurrency 8, quotas lifted). After a \
         first sync and a second run (which reads the written users in full: \
         read-after-write), each no-change plan asks each destination's two listings only for \
         what changed since the cache's sync tokens. Bytes are the request and response \
         bodies the emulator counted (HTTP headers and token grants apart). The full read is \
         the same no-change plan without the cache. Churn: one copy edited behind the tool's \
         back at 5 % of the destinations (those are read in full, and reverted). The source is \
         always read in full.\n"
    );
    println!(
        "| tenant | run | users read in full | from the cache | requests | listing requests \
         | bytes | requests vs full read | bytes vs full read |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for &(users, n, d) in &sizes.w7 {
        let mut t = tenant::synthetic(n, d);
        let others = users.saturating_sub(d + 2);
        t.users.extend((0..others).map(|i| TenantUser {
            primary_email: format!("other{i:05}@example.com"),
            org_unit_path: "/Other".into(),
            ..TenantUser::default()
        }));
        let e = Emulated::start(&t, lifted(), 8);
        let dir = tempfile::tempdir().expect("a cache folder");
        let cache = Some(dir.path());
        let label = format!("{users} users, {n} contacts to {d}");
        cached_run(&e, cache, true).await;
        let (settle, _) = cached_run(&e, cache, true).await;
        assert_empty_plan(&settle, "the run after the first sync");
        let (full_plan, full) = cached_run(&e, None, false).await;
        assert_empty_plan(&full_plan, "the full read");
        let row = |run: &str, plan: &Plan, t: Traffic| {
            println!(
                "| {label} | {run} | {} | {} | {} | {} | {} | {:.1} % | {:.1} % |",
                plan.survey.read_full,
                plan.survey.read_incremental,
                t.requests,
                t.listings,
                mb(t.bytes),
                100.0 * t.requests as f64 / full.requests as f64,
                100.0 * t.bytes as f64 / full.bytes as f64
            );
        };
        row("full read (no cache)", &full_plan, full);
        let (quiet, q) = cached_run(&e, cache, false).await;
        assert_empty_plan(&quiet, "the no-change run with the cache");
        assert_eq!(quiet, full_plan, "the cached plan is the full read's");
        assert_eq!(quiet.survey.read_incremental, d, "every destination from the cache");
        row("no change", &quiet, q);
        // Churn: one copy edited by hand at 5 % of the destinations.
        let edited = (d * 5 / 100).max(1);
        let (_, backend) = e.backend(false);
        for i in 0..edited {
            let user = format!("d{:03}@example.com", i * (d / edited));
            let contacts = backend.contacts(&user).await.expect("contacts");
            let c = contacts.iter().find(|c| c.owner().is_some()).expect("a copy");
            let mut fields = contact_sync::model::PersonFields::new();
            fields.insert("nicknames".into(), json!([{ "value": "edited by hand" }]));
            let update = ContactUpdate {
                resource_name: c.resource_name.clone(),
                etag: c.etag.clone(),
                fields,
                update_mask: vec!["nicknames".into()],
                client_data: Vec::new(),
            };
            backend.update_contacts(&user, vec![update]).await.expect("the edit");
        }
        let (churned, c) = cached_run(&e, cache, false).await;
        assert_eq!(churned.summary.update, edited, "each edit is found");
        assert_eq!(churned.survey.read_full, edited);
        row(&format!("after 5 % churn ({edited} destinations edited)"), &churned, c);
        cached_run(&e, cache, true).await;
        // The cache deleted: every destination read in full again.
        for entry in std::fs::read_dir(dir.path()).expect("the cache folder") {
            std::fs::remove_file(entry.expect("an entry").path()).expect("removed");
        }
        let (lost, l) = cached_run(&e, cache, false).await;
        assert_empty_plan(&lost, "the run after the cache was deleted");
        assert_eq!(lost.survey.read_full, d);
        row("cache deleted", &lost, l);
        let (back, b) = cached_run(&e, cache, false).await;
        assert_eq!(back.survey.read_incremental, d);
        row("the night after", &back, b);
        if d >= 200 {
            assert!(q.bytes * 20 <= full.bytes, "a quiet night moves at most 5 % of the bytes");
        }
    }
    println!();
}

fn assert_empty_plan(plan: &Plan, what: &str) {
    assert!(!plan.summary.has_changes(), "{what}: the plan is not empty:\n{}", text(plan));
}

// ---------------------------------------------------------------------------
// Workload 8

/// One run of workload 8, in a process of its own: loads the manifests in `dir`
/// (a google Workspace pointing at an emulator in the parent process), plans and
/// applies, and prints its figures as one JSON line. The emulator runs in the
/// parent, so the peak memory is the client's alone.
fn apply_child(dir: &Path) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build();
    let rt = rt.expect("a runtime");
    let t = Instant::now();
    let options = LoadOptions { paths: vec![dir.join("manifests")], ..LoadOptions::default() };
    let (input, target) = input::load(&options).expect("the manifests load");
    let backend = target.open().expect("the backend opens");
    let plan = rt.block_on(reader::plan(backend.as_ref(), &input)).expect("the plan");
    let planned_kb = status_kb("VmHWM");
    let report = rt.block_on(apply::apply(backend.as_ref(), &plan, &|_| {}));
    assert!(!report.failed(), "{}", report.summary(0));
    let out = json!({
        "wall_ms": t.elapsed().as_secs_f64() * 1e3,
        "planned_kb": planned_kb,
        "vmhwm_kb": status_kb("VmHWM"),
        "creates": plan.summary.create,
    });
    println!("{out}");
}

/// Workload 8: apply's peak memory against the concurrency, each run a child process
/// applying a first sync through an emulator in this one.
fn workload_8(rt: &tokio::runtime::Runtime, sizes: &Sizes, summary: &mut Vec<Row>) {
    let (n, d, ref cs) = sizes.w8;
    println!(
        "## 8. Apply's peak memory against the concurrency: {n} contacts to {d} destinations\n"
    );
    println!(
        "A first sync planned and applied through the emulator (quotas lifted), once per \
         concurrency C, each in a child process of its own (this binary, run again) while \
         the emulator runs in this one, so the peak resident memory (VmHWM) is the \
         client's alone: after the plan, and at the end of the apply. The apply works on \
         up to max(256, C) users at once, each holding its new contacts' markers, and \
         sends at most C requests at once, each making its body piece by piece while it \
         is sent; the plan is held in full. Growth is against the first concurrency.\n"
    );
    println!(
        "| C | changes | wall time | peak after the plan | peak of the apply | apply's own | memory × |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    let mut first: Option<f64> = None;
    for &c in cs {
        let e = Emulated::start(&tenant::synthetic(n, d), lifted(), c);
        let v = run_child(APPLY_CHILD, e.dir.path());
        let wall = v["wall_ms"].as_f64().unwrap_or_default();
        let planned = v["planned_kb"].as_f64().unwrap_or_default();
        let mem = v["vmhwm_kb"].as_f64().unwrap_or_default();
        let creates = v["creates"].as_u64().unwrap_or_default();
        assert_eq!(creates as usize, d * (n + 1));
        let base = *first.get_or_insert(mem);
        if d >= 200 {
            assert!(mem <= base * 1.1, "apply's peak memory grows with C: {mem} KiB at C = {c}");
        }
        println!(
            "| {c} | {creates} | {:.2} s | {:.0} MiB | {:.0} MiB | {:.0} MiB | {:.2} |",
            wall / 1e3,
            planned / 1024.0,
            mem / 1024.0,
            (mem - planned) / 1024.0,
            mem / base.max(1.0)
        );
        summary.push(Row {
            label: format!("8: apply of {n} contacts to {d} destinations, C = {c}"),
            requests: "—".into(),
            bound: "—".into(),
            ratio: "—".into(),
            without: "—".into(),
            time: format!("{:.2} s (peak {:.0} MiB)", wall / 1e3, mem / 1024.0),
            time_bound: String::new(),
            time_ratio: String::new(),
        });
        let (input, backend) = e.backend(true);
        let plan = rt.block_on(reader::plan(&backend, &input)).expect("the plan");
        assert_empty_plan(&plan, "the plan after the apply of workload 8");
    }
    println!();
}
