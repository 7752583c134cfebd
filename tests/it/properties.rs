//! Properties over random tenants and syncs: apply never touches what contact-sync
//! did not write, and a plan right after an apply is empty.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::json;

use contact_sync::apply;
use contact_sync::backend::Backend;
use contact_sync::backend::local::LocalBackend;
use contact_sync::backend::tenant::{
    self, TenantContact, TenantContactGroup, TenantFile, TenantGroup, TenantUser,
};
use contact_sync::input::{self, LoadOptions};
use contact_sync::reader;

const NAMES: [&str; 6] = ["Ada", "Grace", "Alan", "Linus", "Mum", "Pat"];
/// Users' own groups; the target is one of these (a conflict when the destination
/// has it) or `Synced`, which no user has.
const GROUPS: [&str; 3] = ["Sales Contacts", "Friends", "Shared"];
const TARGETS: [&str; 3] = ["Synced", "Sales Contacts", "Friends"];
const UNITS: [&str; 3] = ["/A", "/A/B", "/C"];

fn contact() -> impl Strategy<Value = TenantContact> {
    (0..NAMES.len(), any::<bool>(), any::<bool>(), prop::collection::vec(0..GROUPS.len() + 1, 0..3))
        .prop_map(|(name, email, phone, groups)| {
            let mut fields = serde_json::Map::new();
            fields.insert("names".into(), json!([{ "givenName": NAMES[name] }]));
            if email {
                fields.insert(
                    "emailAddresses".into(),
                    json!([{ "value": format!("{}@x.test", NAMES[name].to_lowercase()) }]),
                );
            }
            if phone {
                fields.insert("phoneNumbers".into(), json!([{ "value": "+1 555 0100" }]));
            }
            let mut contact_groups: Vec<String> = groups
                .into_iter()
                .map(|g| GROUPS.get(g).map_or("myContacts".to_owned(), |n| (*n).to_owned()))
                .collect();
            contact_groups.dedup();
            TenantContact { contact_groups, fields, ..Default::default() }
        })
}

fn user(i: usize) -> impl Strategy<Value = TenantUser> {
    let groups = prop::collection::vec(prop::bool::weighted(0.3), GROUPS.len());
    (0..UNITS.len(), prop::bool::weighted(0.15), groups, prop::collection::vec(contact(), 0..5))
        .prop_map(move |(unit, suspended, has, mut contacts)| {
            // The source user always has the source group.
            let has: Vec<bool> =
                has.iter().enumerate().map(|(g, h)| *h || (i == 0 && g == 0)).collect();
            let names: Vec<&str> =
                GROUPS.iter().zip(&has).filter(|(_, h)| **h).map(|(g, _)| *g).collect();
            for c in &mut contacts {
                c.contact_groups.retain(|g| g == "myContacts" || names.contains(&g.as_str()));
            }
            TenantUser {
                primary_email: format!("u{i}@example.com"),
                org_unit_path: UNITS[unit].into(),
                suspended: suspended && i > 0,
                contact_groups: names
                    .iter()
                    .map(|g| TenantContactGroup { name: (*g).into(), ..Default::default() })
                    .collect(),
                contacts,
                ..Default::default()
            }
        })
}

fn tenant() -> impl Strategy<Value = TenantFile> {
    (2usize..6)
        .prop_flat_map(|n| {
            ((0..n).map(user).collect::<Vec<_>>(), prop::collection::vec(0..n, 0..n))
        })
        .prop_map(|(users, team)| TenantFile {
            domains: vec!["example.com".into()],
            groups: vec![TenantGroup {
                email: "team@example.com".into(),
                members: team.into_iter().map(|i| format!("u{i}@example.com")).collect(),
                ..Default::default()
            }],
            users,
            ..Default::default()
        })
}

#[derive(Debug, Clone)]
struct Sync {
    users: Vec<usize>,
    team: bool,
    unit: Option<usize>,
    target: usize,
    my_contacts: bool,
}

fn sync() -> impl Strategy<Value = Sync> {
    (
        prop::collection::vec(0usize..6, 0..3),
        any::<bool>(),
        prop::option::of(0..UNITS.len()),
        0..TARGETS.len(),
        any::<bool>(),
    )
        .prop_map(|(users, team, unit, target, my_contacts)| Sync {
            users,
            team,
            unit,
            target,
            my_contacts,
        })
}

fn manifests(dir: &std::path::Path, t: &TenantFile, s: &Sync) {
    std::fs::write(
        dir.join("contact-sync.yaml"),
        "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: p}\nspec: {backend: local, local: {path: tenant.yaml}}\n",
    )
    .unwrap();
    let users: Vec<String> = s
        .users
        .iter()
        .filter(|i| **i < t.users.len())
        .map(|i| format!("u{i}@example.com"))
        .collect();
    let mut dest = format!("    users: {users:?}\n");
    if s.team || users.is_empty() {
        dest.push_str("    groups: [team@example.com]\n");
    }
    if let Some(u) = s.unit {
        dest.push_str(&format!("    orgUnits: [\"{}\"]\n", UNITS[u]));
    }
    std::fs::write(
        dir.join("sync.yaml"),
        format!(
            "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {{name: prop}}\nspec:\n  source: {{user: u0@example.com, contactGroup: Sales Contacts}}\n  target: {{groupName: {}, addToMyContacts: {}}}\n  destinations:\n{dest}",
            TARGETS[s.target], s.my_contacts
        ),
    )
    .unwrap();
    tenant::write_atomic(&dir.join("tenant.yaml"), t).unwrap();
}

type Unmarked = BTreeMap<String, String>;

/// Everything without a contact-sync marker, by user and resource name.
async fn unmarked(backend: &LocalBackend, t: &TenantFile) -> Unmarked {
    let mut out = BTreeMap::new();
    for u in &t.users {
        for c in backend
            .contacts(&u.primary_email)
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.owner().is_none())
        {
            out.insert(
                format!("{} {}", u.primary_email, c.resource_name),
                serde_json::to_string(&c).unwrap(),
            );
        }
        for g in backend
            .contact_groups(&u.primary_email)
            .await
            .unwrap()
            .into_iter()
            .filter(|g| g.owner().is_none())
        {
            out.insert(
                format!("{} {}", u.primary_email, g.resource_name),
                serde_json::to_string(&g).unwrap(),
            );
        }
    }
    out
}

async fn round(dir: &std::path::Path, t: &TenantFile) -> Result<(), TestCaseError> {
    let options =
        LoadOptions { paths: vec![dir.to_path_buf()], allow_deletes: true, ..Default::default() };
    let (input, target) = input::load(&options).unwrap();
    let backend = LocalBackend::open(&dir.join("tenant.yaml")).unwrap();
    let before = unmarked(&backend, t).await;
    let plan = reader::plan(&backend, &input).await.unwrap();
    let report = apply::apply(&backend, &plan, &|_| {}).await;
    prop_assert!(
        report.commit_error.is_none() && report.destinations.iter().all(|d| d.error.is_none()),
        "{report:?}"
    );
    let backend = target.open().unwrap();
    let after_backend = LocalBackend::open(&dir.join("tenant.yaml")).unwrap();
    prop_assert_eq!(
        &before,
        &unmarked(&after_backend, t).await,
        "an unmarked contact or group changed"
    );
    let again = reader::plan(backend.as_ref(), &input).await.unwrap();
    prop_assert!(
        !again.summary.has_changes(),
        "{}",
        contact_sync::plan::render::text(&again, Default::default())
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn apply_touches_only_marked_contacts_and_converges(t in tenant(), s in sync(), drop_first in any::<bool>()) {
        let dir = tempfile::tempdir().unwrap();
        manifests(dir.path(), &t, &s);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(round(dir.path(), &t))?;
        // The source changes (a contact leaves the group), and the next run is as careful.
        if drop_first {
            let path = dir.path().join("tenant.yaml");
            let mut now = tenant::parse(&path, std::fs::read_to_string(&path).unwrap()).unwrap();
            if let Some(c) = now.users[0].contacts.iter_mut().find(|c| c.contact_groups.iter().any(|g| g == "Sales Contacts")) {
                c.contact_groups.retain(|g| g != "Sales Contacts");
            }
            tenant::write_atomic(&path, &now).unwrap();
        }
        rt.block_on(round(dir.path(), &t))?;
    }
}
