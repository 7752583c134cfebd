//! A copy of the seed scenario in a temporary folder, with helpers to plan, apply,
//! and change the tenant or the manifests the way a scenario needs.

use std::path::PathBuf;

use contact_sync::apply::{self, Report};
use contact_sync::backend::local::LocalBackend;
use contact_sync::backend::store::Store;
use contact_sync::backend::tenant::{self, TenantFile};
use contact_sync::backend::{Backend, ContactUpdate};
use contact_sync::inventory;
use contact_sync::model::{Contact, PersonFields};
use contact_sync::plan::render::{self, Style};
use contact_sync::plan::{Plan, Status};
use contact_sync::workspace::{self, LoadOptions};

/// The seed scenario of `examples/`, copied.
pub struct Seed {
    pub dir: tempfile::TempDir,
}

impl Seed {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let examples = crate::root().join("examples");
        std::fs::create_dir_all(dir.path().join("syncs")).unwrap();
        for file in ["contact-sync.yaml", "workspace.yaml", "syncs/sales-to-accounting.yaml"] {
            std::fs::copy(examples.join(file), dir.path().join(file)).unwrap();
        }
        Self { dir }
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
        let (input, target) = workspace::load(&options).unwrap();
        let backend = target.open().unwrap();
        inventory::plan(backend.as_ref(), &input).await.unwrap()
    }

    pub fn backend(&self) -> LocalBackend {
        LocalBackend::open(&self.path("workspace.yaml")).unwrap()
    }

    pub async fn apply(&self, plan: &Plan) -> Report {
        apply::apply(&self.backend(), plan, &|_| {}).await
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
        let path = self.path("workspace.yaml");
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
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    pub async fn contacts(&self, user: &str) -> Vec<Contact> {
        self.backend().contacts(user).await.unwrap()
    }
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
pub const ACCOUNTING: [&str; 5] = [
    "ann@example.com",
    "bob@example.com",
    "caroline@example.com",
    "dave@example.com",
    "gina@example.com",
];
