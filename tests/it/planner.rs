//! The planner on its own: no backend, no files, no runtime. A tenant is built in
//! memory ([`Store`]), the directory's answers are taken from it, the planner is fed
//! by a synchronous driver, its operations are applied to the store, and planning
//! again must change nothing — one test per error kind and per reason.

use std::collections::BTreeMap;

use serde_json::json;

use contact_sync::apply::{self, Batches, GroupWrite};
use contact_sync::backend::UserScope;
use contact_sync::backend::store::Store;
use contact_sync::backend::tenant;
use contact_sync::input::PlanInput;
use contact_sync::manifest::{ContactSync, OrphanPolicy, SyncType};
use contact_sync::model::resolution::{
    Cause, Exclusion, Resolution, Selection, SourceResolution, SyncResolution, Unreadable,
};
use contact_sync::model::{ClientData, MARKER_SYNC, NewContact};
use contact_sync::plan::planner::Planner;
use contact_sync::plan::{Action, ErrorKind, Plan, PlanError, Reason, Status, SyncInput};

use crate::harness::{contact, group, set_field};

const SALES: &str = "
apiVersion: contact-sync/v1
kind: ContactSync
metadata: { name: sales }
spec:
  source: { user: salesuser@example.com, contactGroup: Sales Contacts }
  destinations: { groups: [accounting@example.com], orgUnits: [/Accounting] }
";

const DIRECTORY: &str = "
apiVersion: contact-sync/v1
kind: ContactSync
metadata: { name: everyone }
spec:
  type: directory
  source: { directory: { orgUnits: [/Accounting] } }
  destinations: { orgUnits: [/Accounting] }
";

/// The example tenant, in memory.
fn store() -> Store {
    let text = include_str!("../../examples/workspace.yaml").to_owned();
    Store::new(tenant::parse("workspace.yaml".as_ref(), text).unwrap())
}

fn sync(yaml: &str) -> SyncInput {
    let manifest: ContactSync = serde_yaml::from_str(yaml).unwrap();
    SyncInput { manifest, locations: BTreeMap::new() }
}

fn input(syncs: Vec<SyncInput>) -> PlanInput {
    PlanInput {
        known_syncs: syncs.iter().map(|s| s.name().to_owned()).collect(),
        approved_deletes: Default::default(),
        rerun: String::new(),
        syncs,
        partial: None,
        orphans: OrphanPolicy::Delete,
        max_delete_percent: 100,
        allow_deletes: false,
        full_scan: contact_sync::plan::FullScan::Never,
        adopt: None,
    }
}

/// What the directory says, from the store: what `directory::resolve` reads.
fn resolve(store: &Store, input: &PlanInput) -> Resolution {
    let user = |key: &str| store.user(key).unwrap();
    let users = |scope: UserScope| store.users(&scope).unwrap();
    let members = |group: &str| store.group_members(group).unwrap();
    let mut all = users(UserScope::All);
    all.sort_by_key(|u| u.primary_email.to_lowercase());
    let syncs = input
        .syncs
        .iter()
        .map(|s| {
            let spec = &s.manifest.spec;
            let source = match spec.sync_type {
                SyncType::Personal => SourceResolution::Personal(
                    user(spec.source.user.as_deref().unwrap()).map(Box::new),
                ),
                SyncType::Directory => {
                    let d = spec.source.directory.clone().unwrap_or_default();
                    let units: Vec<_> = d
                        .org_units
                        .iter()
                        .map(|ou| users(UserScope::OrgUnit(ou.clone())))
                        .collect();
                    let domains: Vec<_> =
                        d.domains.iter().map(|dm| users(UserScope::Domain(dm.clone()))).collect();
                    let groups = d.groups.iter().map(|g| members(g)).collect();
                    SourceResolution::Directory {
                        org_units: units.iter().map(Vec::len).collect(),
                        domains: domains.iter().map(Vec::len).collect(),
                        listed: units.into_iter().chain(domains).flatten().collect(),
                        groups,
                        schemas: None,
                        shared: None,
                    }
                }
            };
            let dest = &spec.destinations;
            let units: Vec<_> =
                dest.org_units.iter().map(|ou| users(UserScope::OrgUnit(ou.clone()))).collect();
            let domains: Vec<_> =
                dest.domains.iter().map(|d| users(UserScope::Domain(d.clone()))).collect();
            Ok(SyncResolution {
                source,
                destinations: Selection {
                    users: dest.users.iter().map(|u| user(u)).collect(),
                    groups: dest.groups.iter().map(|g| members(g)).collect(),
                    org_units: units.iter().map(Vec::len).collect(),
                    domains: domains.iter().map(Vec::len).collect(),
                    scoped: units.into_iter().chain(domains).flatten().collect(),
                },
                exclude: Exclusion {
                    users: dest.exclude.users.iter().map(|u| user(u)).collect(),
                    groups: dest.exclude.groups.iter().map(|g| members(g)).collect(),
                    org_units: dest
                        .exclude
                        .org_units
                        .iter()
                        .map(|ou| users(UserScope::OrgUnit(ou.clone())).len())
                        .collect(),
                },
            })
        })
        .collect();
    let names = Some(contact_sync::model::resolution::DirectoryNames::of(&all));
    Resolution { users: all, syncs, names }
}

/// The planner fed synchronously, as the driver feeds it; `unreadable` users'
/// reads fail.
fn plan_with(
    store: &Store,
    input: &PlanInput,
    resolution: &Resolution,
    unreadable: &[&str],
) -> Plan {
    let mut planner = Planner::new(input, resolution);
    for (i, source) in planner.source_reads() {
        let cause = |e: contact_sync::backend::Error| -> Cause { std::sync::Arc::new(e) };
        let user = source.clone();
        let groups = store
            .contact_groups(&source)
            .map_err(|e| Unreadable::ContactGroups { user: user.clone(), cause: cause(e) });
        if planner.source_groups(i, groups) {
            let contacts =
                store.contacts(&source).map_err(|e| Unreadable::Contacts { user, cause: cause(e) });
            planner.source_contacts(i, contacts);
        }
    }
    let reads = planner.reads(None);
    for user in resolution.users.iter().filter(|u| !u.inactive()) {
        if unreadable.contains(&user.primary_email.as_str()) {
            let cause: Box<dyn std::error::Error + Send + Sync> = "HTTP 500".into();
            let email = user.primary_email.clone();
            planner.unreadable(user, &Unreadable::Contacts { user: email, cause: cause.into() });
            continue;
        }
        let groups = store.contact_groups(&user.primary_email).unwrap();
        if reads.needs_contacts(user, &groups) {
            let contacts = store.contacts(&user.primary_email).unwrap();
            planner.user(user, &groups, &contacts);
        }
    }
    planner.finish()
}

fn plan(store: &Store, input: &PlanInput) -> Plan {
    plan_with(store, input, &resolve(store, input), &[])
}

/// Carries a plan's operations out on the store: apply's batches, sent
/// synchronously.
fn apply(store: &mut Store, plan: &Plan) {
    for sync in plan.syncs.iter().filter(|s| s.applicable()) {
        for dest in sync.destinations.iter().filter(|d| d.status == Status::Changes) {
            let user = dest.user.as_str();
            let batches = Batches::of(&dest.changes);
            let mut created = None;
            for write in &batches.groups {
                match *write {
                    GroupWrite::Create { name, client_data } => {
                        let group = store.create_group(user, name, client_data.to_vec()).unwrap();
                        created = Some(group.resource_name);
                    }
                    GroupWrite::Update { group } => {
                        store.update_group(user, group.clone()).unwrap();
                    }
                }
            }
            let created = created.as_deref();
            let creates = batches.new_contacts(created).unwrap();
            if !creates.is_empty() {
                store.create_contacts(user, creates).unwrap();
            }
            if !batches.updates.is_empty() {
                store.update_contacts(user, batches.updates).unwrap();
            }
            for (group, (add, remove)) in &batches.members {
                store
                    .modify_members(user, &apply::resolve(group, created).unwrap(), add, remove)
                    .unwrap();
            }
            if !batches.deletes.is_empty() {
                store.delete_contacts(user, &batches.deletes).unwrap();
            }
            for group in &batches.delete_groups {
                store.delete_group(user, group).unwrap();
            }
        }
    }
}

/// Apply, plan again: nothing left to change.
fn converge(store: &mut Store, input: &PlanInput) -> Plan {
    let first = plan(store, input);
    apply(store, &first);
    let again = plan(store, input);
    assert!(!again.summary.has_changes(), "planning again changes something: {:#?}", again.summary);
    first
}

fn reasons(plan: &Plan) -> Vec<(String, Action, Reason)> {
    plan.syncs
        .iter()
        .flat_map(|s| &s.destinations)
        .flat_map(|d| d.changes.iter().map(move |c| (d.user.clone(), c.action, c.reason)))
        .collect()
}

fn has_reason(plan: &Plan, action: Action, reason: Reason) -> bool {
    reasons(plan).iter().any(|(_, a, r)| *a == action && *r == reason)
}

fn error_kinds(plan: &Plan) -> Vec<ErrorKind> {
    let mut kinds: Vec<ErrorKind> = plan.errors.iter().map(PlanError::kind).collect();
    for s in &plan.syncs {
        kinds.extend(s.errors.iter().map(PlanError::kind));
        kinds.extend(s.destinations.iter().filter_map(|d| d.error.as_ref()).map(PlanError::kind));
    }
    kinds
}

// --- reasons ---------------------------------------------------------------

#[test]
fn missing_copies_are_created_then_nothing() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    let first = converge(&mut store, &input);
    assert!(has_reason(&first, Action::Create, Reason::Missing));
    assert_eq!(first.summary.create, 35, "{:?}", first.summary);
}

#[test]
fn a_change_at_the_source_is_copied() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    converge(&mut store, &input);
    set_field(
        &mut store,
        "salesuser@example.com",
        "Ada Lovelace",
        "phoneNumbers",
        json!([{"value": "+1 555 0199"}]),
    );
    let plan = converge(&mut store, &input);
    assert!(has_reason(&plan, Action::Update, Reason::SourceChanged), "{:?}", reasons(&plan));
}

#[test]
fn an_edit_behind_contact_syncs_back_is_reverted() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    converge(&mut store, &input);
    set_field(
        &mut store,
        "bob@example.com",
        "Ada Lovelace",
        "phoneNumbers",
        json!([{"value": "+1 555 0000"}]),
    );
    let plan = converge(&mut store, &input);
    assert_eq!(reasons(&plan), [("bob@example.com".into(), Action::Update, Reason::EditedOutside)]);
}

#[test]
fn a_contact_removed_from_the_source_group_is_deleted() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    converge(&mut store, &input);
    let ada = contact(&store, "salesuser@example.com", "Ada Lovelace");
    let group = ada.memberships.iter().find(|m| m.starts_with("contactGroups/")).unwrap().clone();
    store.modify_members("salesuser@example.com", &group, &[], &[ada.resource_name]).unwrap();
    let plan = converge(&mut store, &input);
    assert!(has_reason(&plan, Action::Delete, Reason::RemovedFromSource), "{:?}", reasons(&plan));
    assert_eq!(plan.summary.delete, 5);
}

#[test]
fn a_user_no_longer_selected_loses_the_copies() {
    let mut store = store();
    converge(&mut store, &input(vec![sync(SALES)]));
    let narrowed = SALES.replace(
        "{ groups: [accounting@example.com], orgUnits: [/Accounting] }",
        "{ users: [ann@example.com] }",
    );
    let plan = converge(&mut store, &input(vec![sync(&narrowed)]));
    assert!(has_reason(&plan, Action::Delete, Reason::DestinationRemoved), "{:?}", reasons(&plan));
    assert!(reasons(&plan).iter().all(|(u, _, _)| u != "ann@example.com"));
}

#[test]
fn a_deleted_manifest_is_pruned_under_orphans_delete() {
    let mut store = store();
    converge(&mut store, &input(vec![sync(SALES)]));
    let plan = converge(&mut store, &input(vec![]));
    assert!(has_reason(&plan, Action::Delete, Reason::SyncDeleted), "{:?}", reasons(&plan));
    assert!(plan.syncs.iter().all(|s| s.orphaned));
}

#[test]
fn a_second_copy_of_one_source_contact_is_deleted() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    converge(&mut store, &input);
    let copy = contact(&store, "bob@example.com", "Ada Lovelace");
    let twin = NewContact {
        fields: std::borrow::Cow::Owned(copy.fields),
        memberships: copy.memberships,
        client_data: copy.client_data,
    };
    store.create_contacts("bob@example.com", vec![twin]).unwrap();
    let plan = converge(&mut store, &input);
    assert_eq!(reasons(&plan), [("bob@example.com".into(), Action::Delete, Reason::Duplicate)]);
}

#[test]
fn a_copy_taken_out_of_the_target_group_is_put_back() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    converge(&mut store, &input);
    let copy = contact(&store, "bob@example.com", "Ada Lovelace");
    let group = copy.memberships.iter().find(|m| m.starts_with("contactGroups/")).unwrap().clone();
    store.modify_members("bob@example.com", &group, &[], &[copy.resource_name]).unwrap();
    let plan = converge(&mut store, &input);
    assert_eq!(reasons(&plan), [("bob@example.com".into(), Action::Update, Reason::Membership)]);
}

#[test]
fn a_user_hidden_from_the_address_list_is_no_longer_copied() {
    let mut store = store();
    let input = input(vec![sync(DIRECTORY)]);
    converge(&mut store, &input);
    let mut tenant = store.tenant().unwrap();
    let dave = tenant.users.iter_mut().find(|u| u.primary_email == "dave@example.com").unwrap();
    dave.include_in_global_address_list = false;
    let mut store = Store::new(tenant);
    let plan = converge(&mut store, &input);
    assert!(has_reason(&plan, Action::Delete, Reason::Hidden), "{:?}", reasons(&plan));
    assert!(!has_reason(&plan, Action::Create, Reason::Missing));
}

#[test]
fn a_users_own_directory_entry_is_removed() {
    let mut store = store();
    let input = input(vec![sync(DIRECTORY)]);
    converge(&mut store, &input);
    let named = |user: &str, name: &str| {
        store.contacts(user).unwrap().iter().any(|c| c.display_name() == name)
    };
    assert!(named("ann@example.com", "Bob Baker"), "Ann has Bob's entry");
    assert!(!named("bob@example.com", "Bob Baker"), "no destination is given itself");
    // A copy of Bob's own entry in Bob's contacts (made by an older version).
    let entry = contact(&store, "ann@example.com", "Bob Baker");
    let groups = store.contact_groups("bob@example.com").unwrap();
    let target =
        groups.iter().find(|g| g.owner() == Some("everyone")).unwrap().resource_name.clone();
    let own = NewContact {
        fields: std::borrow::Cow::Owned(entry.fields),
        memberships: vec![target],
        client_data: entry.client_data,
    };
    store.create_contacts("bob@example.com", vec![own]).unwrap();
    let plan = converge(&mut store, &input);
    assert_eq!(reasons(&plan), [("bob@example.com".into(), Action::Delete, Reason::OwnEntry)]);
}

// --- error kinds -----------------------------------------------------------

#[test]
fn a_source_address_that_became_an_alias_is_a_rename() {
    let mut store = store();
    let input = input(vec![sync(&SALES.replace("salesuser@example.com", "sales@example.com"))]);
    let plan = converge(&mut store, &input);
    let e = &plan.syncs[0].errors[0];
    assert_eq!(e.kind(), ErrorKind::SourceRenamed);
    assert_eq!(e.renamed_to(), Some("salesuser@example.com"));
    assert!(!plan.summary.has_changes());
}

#[test]
fn a_source_nobody_has_is_not_found() {
    let mut store = store();
    let plan = converge(&mut store, &input(vec![sync(&SALES.replace("salesuser@", "nobody@"))]));
    assert_eq!(error_kinds(&plan), [ErrorKind::SourceNotFound]);
}

#[test]
fn a_suspended_source_holds_the_sync_back() {
    let mut store = store();
    let plan = converge(&mut store, &input(vec![sync(&SALES.replace("salesuser@", "erin@"))]));
    assert_eq!(error_kinds(&plan), [ErrorKind::SourceSuspended]);
}

#[test]
fn a_missing_source_group_is_named_with_a_suggestion() {
    let mut store = store();
    let plan = converge(
        &mut store,
        &input(vec![sync(&SALES.replace("Sales Contacts", "Sales Contactz"))]),
    );
    assert_eq!(error_kinds(&plan), [ErrorKind::SourceGroupNotFound]);
    assert!(plan.syncs[0].errors[0].message().contains("did you mean \"Sales Contacts\""));
}

#[test]
fn a_source_that_now_names_another_user_is_held_back() {
    let mut store = store();
    converge(&mut store, &input(vec![sync(SALES)]));
    // Frank keeps a "Sales Contacts" group too; the manifest now names him.
    store.create_group("frank@example.com", "Sales Contacts", vec![]).unwrap();
    let plan = converge(&mut store, &input(vec![sync(&SALES.replace("salesuser@", "frank@"))]));
    assert!(error_kinds(&plan).iter().all(|k| *k == ErrorKind::SourceIdentityChanged));
    assert_eq!(error_kinds(&plan).len(), 5, "each destination that holds the old copies");
}

#[test]
fn a_destination_address_that_became_an_alias_is_held_back() {
    let mut store = store();
    let yaml = SALES.replace(
        "groups: [accounting@example.com], orgUnits: [/Accounting]",
        "users: [carol@example.com, ann@example.com]",
    );
    let plan = converge(&mut store, &input(vec![sync(&yaml)]));
    assert_eq!(error_kinds(&plan), [ErrorKind::DestinationRenamed]);
    assert!(
        plan.syncs[0]
            .destinations
            .iter()
            .any(|d| d.user == "ann@example.com" && d.status == Status::Changes)
    );
}

#[test]
fn a_destination_nobody_has_is_not_found() {
    let mut store = store();
    let yaml = SALES.replace("groups: [accounting@example.com]", "groups: [nobody@example.com]");
    let plan = converge(&mut store, &input(vec![sync(&yaml)]));
    assert_eq!(error_kinds(&plan), [ErrorKind::DestinationNotFound]);
}

#[test]
fn an_unmarked_group_of_the_target_name_is_a_conflict() {
    let mut store = store();
    store.create_group("bob@example.com", "Sales Contacts", vec![]).unwrap();
    let plan = converge(&mut store, &input(vec![sync(SALES)]));
    assert_eq!(error_kinds(&plan), [ErrorKind::TargetGroupConflict]);
    let bob = plan.syncs[0].destinations.iter().find(|d| d.user == "bob@example.com").unwrap();
    assert_eq!(bob.status, Status::Error);
}

#[test]
fn deleting_more_than_the_guard_allows_is_refused() {
    let mut store = store();
    let mut guarded = input(vec![sync(SALES)]);
    guarded.max_delete_percent = 50;
    converge(&mut store, &guarded);
    let contacts = store.contacts("salesuser@example.com").unwrap();
    let group = group(&store, "salesuser@example.com", "Sales Contacts");
    let members: Vec<String> = contacts
        .iter()
        .filter(|c| c.memberships.contains(&group.resource_name))
        .map(|c| c.resource_name.clone())
        .collect();
    store.modify_members("salesuser@example.com", &group.resource_name, &[], &members).unwrap();
    let held = plan(&store, &guarded);
    assert_eq!(error_kinds(&held), [ErrorKind::DeleteGuard]);
    assert!(!held.syncs[0].applicable());
    apply(&mut store, &held);
    assert_eq!(plan(&store, &guarded), held, "a held-back sync writes nothing");
    // Meant: --allow-deletes.
    guarded.allow_deletes = true;
    let plan = converge(&mut store, &guarded);
    assert_eq!(plan.summary.delete, 30, "every copy, the groups stay: {:?}", plan.summary);
}

#[test]
fn reads_that_fail_hold_back_what_they_concern_only() {
    let mut store = store();
    let input = input(vec![sync(SALES)]);
    // A sync whose selectors could not be read.
    let mut resolution = resolve(&store, &input);
    let cause: Box<dyn std::error::Error + Send + Sync> = "HTTP 503".into();
    resolution.syncs[0] = Err(Unreadable::Selectors { sync: "sales".into(), cause: cause.into() });
    let plan = plan_with(&store, &input, &resolution, &[]);
    assert_eq!(error_kinds(&plan), [ErrorKind::Api]);
    assert!(plan.syncs[0].destinations.is_empty() && !plan.summary.has_changes());
    // A destination whose contacts could not be read: the others proceed.
    let plan = plan_with(&store, &input, &resolve(&store, &input), &["bob@example.com"]);
    assert_eq!(error_kinds(&plan), [ErrorKind::Api]);
    apply(&mut store, &plan);
    let again = plan_with(&store, &input, &resolve(&store, &input), &["bob@example.com"]);
    assert!(!again.summary.has_changes());
    let marked = |user: &str| {
        store
            .contacts(user)
            .unwrap()
            .iter()
            .filter(|c| c.client_data.iter().any(|d: &ClientData| d.key == MARKER_SYNC))
            .count()
    };
    assert_eq!((marked("ann@example.com"), marked("bob@example.com")), (6, 0));
}
