//! A copy of the seed scenario in a temporary folder, with helpers to plan, apply,
//! and change the tenant or the manifests the way a scenario needs.

use std::path::PathBuf;

use contact_sync::apply::{self, Report};
use contact_sync::backend::local::LocalBackend;
use contact_sync::backend::store::Store;
use contact_sync::backend::tenant::{self, TenantFile};
use contact_sync::backend::{Backend, ContactUpdate};
use contact_sync::cache::ReadCache;
use contact_sync::emulator;
use contact_sync::input::{self, LoadOptions};
use contact_sync::model::{Contact, ContactGroup, PersonFields};
use contact_sync::plan::render::{self, Style};
use contact_sync::plan::{Plan, Status};
use contact_sync::reader;

/// The seed scenario of `examples/`, copied; on the local backend, or on the
/// google backend talking to an emulator that serves the same tenant.
pub struct Seed {
    pub dir: tempfile::TempDir,
    /// The tenant file (the local backend's, or the one the emulator serves).
    pub tenant: PathBuf,
    pub emulator: Option<EmulatorThread>,
    /// How the emulator was configured, to restart it.
    pub emulator_config: Option<emulator::Config>,
}

impl Seed {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let examples = crate::root().join("examples");
        std::fs::create_dir_all(dir.path().join("syncs")).unwrap();
        for file in ["contact-sync.yaml", "workspace.yaml", "syncs/sales-to-accounting.yaml"] {
            std::fs::copy(examples.join(file), dir.path().join(file)).unwrap();
        }
        let tenant = dir.path().join("workspace.yaml");
        Self { dir, tenant, emulator: None, emulator_config: None }
    }

    /// The seed on the google backend, against an emulator started for it.
    pub fn google() -> Self {
        Self::google_with(|_| {})
    }

    /// [`Seed::google`] with the emulator's configuration adjusted (faults, quotas).
    pub fn google_with(adjust: impl FnOnce(&mut emulator::Config)) -> Self {
        let examples = crate::root().join("examples");
        let sync =
            std::fs::read_to_string(examples.join("syncs/sales-to-accounting.yaml")).unwrap();
        Self::google_on(
            |tenant| {
                std::fs::copy(examples.join("workspace.yaml"), tenant).unwrap();
            },
            "sales-to-accounting.yaml",
            &sync,
            adjust,
        )
    }

    /// A synthetic tenant on the google backend: `source@example.com` keeps
    /// `contacts` contacts in its "Shared" group, copied by the sync `bulk` to the
    /// `destinations` users of the org unit /Dest (`d000@example.com`…).
    pub fn synthetic_google(
        contacts: usize,
        destinations: usize,
        adjust: impl FnOnce(&mut emulator::Config),
    ) -> Self {
        let t = tenant::synthetic(contacts, destinations);
        Self::google_on(
            |path| {
                tenant::write_atomic(path, &t).unwrap();
            },
            "bulk.yaml",
            BULK_SYNC,
            adjust,
        )
    }

    /// The google backend against an emulator serving the tenant `write_tenant`
    /// makes, with the sync manifest `sync` in `syncs/<sync_file>`.
    fn google_on(
        write_tenant: impl FnOnce(&std::path::Path),
        sync_file: &str,
        sync: &str,
        adjust: impl FnOnce(&mut emulator::Config),
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("syncs")).unwrap();
        std::fs::create_dir_all(dir.path().join("tenant")).unwrap();
        std::fs::write(dir.path().join("syncs").join(sync_file), sync).unwrap();
        let tenant = dir.path().join("tenant/workspace.yaml");
        write_tenant(&tenant);
        std::fs::write(dir.path().join(".contactsyncignore"), "tenant/\n").unwrap();
        let (key_file, public) = service_account();
        let mut config = emulator::Config::new(tenant.clone());
        config.trusted_key = Some(public);
        config.check_responses = true;
        adjust(&mut config);
        let emulator_config = Some(config.clone());
        // The client paces writes by the same quota window the emulator keeps.
        let window = config.limits.window.as_secs().max(1);
        let emulator = EmulatorThread::start(config).unwrap();
        let url = format!("http://{}", emulator.addr);
        std::fs::write(
            dir.path().join("contact-sync.yaml"),
            format!(
                "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {{ name: emulated }}\nspec:\n  backend: google\n  google:\n    adminUser: admin@example.com\n    credentialsFile: {}\n    concurrency: 4\n    retry: {{ baseDelayMs: 10, maxAttempts: 12 }}\n    quota: {{ windowSeconds: {window} }}\n    endpoints: {{ people: \"{url}\", directory: \"{url}\", token: \"{url}/token\" }}\n  orphans: delete\n  maxDeletePercent: 50\n",
                key_file.display()
            ),
        )
        .unwrap();
        Self { dir, tenant, emulator: Some(emulator), emulator_config }
    }

    /// Stops the emulator and starts a new one on the same address and data, with
    /// its configuration adjusted: everything it kept in memory (tokens, quotas) is
    /// forgotten, as after a restart of a real service.
    pub fn restart_emulator(&mut self, adjust: impl FnOnce(&mut emulator::Config)) {
        let old = self.emulator.take().expect("an emulator");
        assert_google_traffic(&old);
        old.flush().unwrap();
        let addr = old.addr;
        drop(old);
        let mut config = self.emulator_config.clone().expect("an emulator config");
        adjust(&mut config);
        self.emulator = Some(EmulatorThread::start_on(config, addr).unwrap());
    }

    /// Requests the emulator answered so far.
    pub async fn stats(&self) -> serde_json::Value {
        self.emulator.as_ref().expect("an emulator").stats().await.unwrap()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn options(&self) -> LoadOptions {
        LoadOptions { paths: vec![self.dir.path().to_path_buf()], ..LoadOptions::default() }
    }

    pub async fn plan(&self) -> Plan {
        self.plan_with(self.options()).await
    }

    pub async fn plan_with(&self, options: LoadOptions) -> Plan {
        let (input, target) = input::load(&options).unwrap();
        let backend = target.open().unwrap();
        reader::plan(backend.as_ref(), &input).await.unwrap()
    }

    /// [`Seed::plan`] with the read cache in `dir`, as `contact-sync plan
    /// --cache-dir DIR` plans: what it read is in `plan.survey`.
    pub async fn plan_cached(&self, dir: &std::path::Path) -> Plan {
        let (input, target) = input::load(&self.options()).unwrap();
        let backend = target.open().unwrap();
        let cache = ReadCache::open(&target, Some(dir));
        let plan = reader::plan_cached(backend.as_ref(), &input, &|_, _| {}, cache.as_ref())
            .await
            .unwrap();
        if let Some(cache) = &cache {
            cache.forget_planned(&plan);
            cache.save().unwrap();
        }
        plan
    }

    /// The tenant file as the local backend reads it (with the google backend too:
    /// tests look at and edit the emulator's data directly).
    pub fn backend(&self) -> LocalBackend {
        self.flush();
        LocalBackend::open(&self.tenant).unwrap()
    }

    /// Has the emulator write its tenant back to the tenant file now, so the file
    /// can be read or edited (it does so on its own only when it stops).
    pub fn flush(&self) {
        if let Some(emulator) = &self.emulator {
            emulator.flush().unwrap();
        }
    }

    /// Changes one field of a user's contact, as an edit in the Contacts app does.
    pub async fn set_field(&self, user: &str, name: &str, field: &str, value: serde_json::Value) {
        self.edit(|s| set_field(s, user, name, field, value)).await
    }

    /// Applies with the backend the manifests name.
    pub async fn apply(&self, plan: &Plan) -> Report {
        let (_, target) = input::load(&self.options()).unwrap();
        let backend = target.open().unwrap();
        apply::apply(backend.as_ref(), plan, &|_| {}).await
    }

    /// Apply → plan again → no changes (the idempotency check every scenario ends with).
    pub async fn converge(&self) -> Plan {
        self.converge_with(self.options()).await
    }

    /// [`Seed::converge`] for tests that are not async.
    pub fn converge_blocking(&self) -> Plan {
        tokio::runtime::Runtime::new().unwrap().block_on(self.converge())
    }

    pub async fn converge_with(&self, options: LoadOptions) -> Plan {
        let plan = self.plan_with(options.clone()).await;
        let report = self.apply(&plan).await;
        assert!(report.commit_error.is_none(), "{report:?}");
        assert!(report.destinations.iter().all(|d| d.error.is_none()), "{report:?}");
        let again = self.plan_with(options).await;
        assert!(!again.summary.has_changes(), "second plan is not empty:\n{}", self.text(&again));
        again
    }

    /// The text plan with the temporary folder replaced by `[dir]`.
    pub fn text(&self, plan: &Plan) -> String {
        render::text(plan, Style::default())
            .replace(&self.dir.path().display().to_string(), "[dir]")
    }

    /// Changes the tenant file directly (directory changes: renames, suspensions).
    pub fn edit_file(&self, f: impl FnOnce(&mut TenantFile)) {
        self.flush();
        let path = self.tenant.clone();
        let mut t = tenant::parse(&path, std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut t);
        tenant::write_atomic(&path, &t).unwrap();
    }

    /// Changes the tenant through the store, as a user of the Contacts app would.
    pub async fn edit(&self, f: impl FnOnce(&mut Store)) {
        let backend = self.backend();
        backend.with_store(f);
        backend.commit().await.unwrap();
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        self.flush();
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub async fn contacts(&self, user: &str) -> Vec<Contact> {
        self.backend().contacts(user).await.unwrap()
    }
}

/// Every use of the google backend ends with the proof that its traffic was
/// Google's: the emulator refused nothing as Google would, and answered nothing
/// unlike Google.
impl Drop for Seed {
    fn drop(&mut self) {
        if let Some(emulator) = &self.emulator {
            assert_google_traffic(emulator);
        }
    }
}

/// Panics (unless the test already panics) when `emulator` refused a request as
/// Google's front end would, or gave an answer its response schema does not
/// allow, listing them.
pub fn assert_google_traffic(emulator: &EmulatorThread) {
    if std::thread::panicking() {
        return;
    }
    let checks = emulator.checks();
    let count = |key: &str| checks[key].as_u64().unwrap_or_default();
    let list = |key: &str| -> String {
        checks[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                format!("  {}: {}\n", r["endpoint"], r["message"].as_str().unwrap_or_default())
            })
            .collect()
    };
    assert!(
        count("invalid") == 0 && count("invalidResponses") == 0,
        "the emulator refused {} request(s) as Google would:\n{}and gave {} answer(s) Google \
         would not:\n{}",
        count("invalid"),
        list("refusals"),
        count("invalidResponses"),
        list("responseProblems"),
    );
}

/// Finds a user's contact by display name.
pub fn contact(store: &Store, user: &str, name: &str) -> Contact {
    store
        .contacts(user)
        .unwrap()
        .into_iter()
        .find(|c| c.display_name() == name)
        .unwrap_or_else(|| panic!("{user} has no contact {name}"))
}

/// `user`'s contact group called `name`.
pub fn group(store: &Store, user: &str, name: &str) -> ContactGroup {
    store
        .contact_groups(user)
        .unwrap()
        .into_iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("{user} has no contact group {name}"))
}

/// Takes every contact out of `user`'s group `name` (the contacts stay).
pub fn empty_group(store: &mut Store, user: &str, name: &str) {
    let group = group(store, user, name);
    let members: Vec<String> = store
        .contacts(user)
        .unwrap()
        .into_iter()
        .filter(|c| c.memberships.contains(&group.resource_name))
        .map(|c| c.resource_name)
        .collect();
    store.modify_members(user, &group.resource_name, &[], &members).unwrap();
}

/// Replaces one field of a contact, as an edit in the Contacts app does.
pub fn set_field(store: &mut Store, user: &str, name: &str, field: &str, value: serde_json::Value) {
    let c = contact(store, user, name);
    let mut fields = PersonFields::new();
    fields.insert(field.into(), value);
    let update = ContactUpdate {
        resource_name: c.resource_name,
        etag: c.etag,
        fields,
        update_mask: vec![field.into()],
        client_data: Vec::new(),
    };
    store.update_contacts(user, vec![update]).unwrap();
}

/// The destination plan of `user` in the first sync named `sync`.
pub fn destination<'a>(
    plan: &'a Plan,
    sync: &str,
    user: &str,
) -> &'a contact_sync::plan::DestinationPlan {
    plan.syncs
        .iter()
        .find(|s| s.name == sync)
        .unwrap_or_else(|| panic!("no sync {sync}"))
        .destinations
        .iter()
        .find(|d| d.user == user)
        .unwrap_or_else(|| panic!("no destination {user} in {sync}"))
}

pub fn status(plan: &Plan, sync: &str, user: &str) -> Status {
    destination(plan, sync, user).status
}

pub const SYNC: &str = "sales-to-accounting";

/// A local synthetic tenant: `contacts` contacts of `source@example.com` for the
/// `destinations` users of /Dest; returns the folder and its manifests.
pub fn synthetic_local(
    contacts: usize,
    destinations: usize,
) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    let tenant = tenant::synthetic(contacts, destinations);
    tenant::write_atomic(&dir.path().join("tenant.yaml"), &tenant).unwrap();
    std::fs::write(manifests.join("sync.yaml"), tenant::SYNTHETIC_SYNC).unwrap();
    std::fs::write(
        manifests.join("workspace.yaml"),
        "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: t}\nspec: {backend: local, local: {path: ../tenant.yaml}}\n",
    )
    .unwrap();
    (dir, manifests)
}

/// The sync of [`Seed::synthetic_google`].
pub const BULK_SYNC: &str = tenant::SYNTHETIC_SYNC;
pub const ACCOUNTING: [&str; 5] = [
    "ann@example.com",
    "bob@example.com",
    "caroline@example.com",
    "dave@example.com",
    "gina@example.com",
];

/// The tests' throwaway service-account key (trusted by nothing but the emulators
/// they start): (key file, public key).
pub fn service_account() -> (PathBuf, emulator::TrustedKey) {
    let path = crate::root().join("tests/fixtures/service-account.json");
    let public = emulator::public_key(&path).unwrap();
    (path, public)
}

/// Requests the emulator answered (its `/_emulator/stats`), by `METHOD path` and
/// status.
pub fn count(stats: &serde_json::Value, endpoint: &str, status: Option<u64>) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["endpoint"] == endpoint && status.is_none_or(|s| r["status"] == s))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// The emulator in a background thread.
pub type EmulatorThread = emulator::Background;
