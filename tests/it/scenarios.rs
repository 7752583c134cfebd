//! Scenario tests of plan and apply on the local backend (issue: plan and apply
//! against the embedded local workspace). Each snapshots the text plan, asserts the
//! JSON a script would read, and ends with apply → plan → no changes.

use serde_json::json;

use crate::harness::{ACCOUNTING, SYNC, Seed, contact, destination, group, set_field, status};
use contact_sync::plan::Status;

fn json(plan: &contact_sync::plan::Plan) -> serde_json::Value {
    plan.to_json(false)
}

/// The changes of one destination as `[action, resource, name, reason]` rows.
fn rows(plan: &contact_sync::plan::Plan, user: &str) -> Vec<[String; 4]> {
    destination(plan, SYNC, user)
        .changes
        .iter()
        .map(|c| {
            let j = serde_json::to_value(c).unwrap();
            [&j["action"], &j["resource"], &j["name"], &j["reason"]]
                .map(|v| v.as_str().unwrap().to_owned())
        })
        .collect()
}

/// Runs a scenario on the local backend and, with the same snapshots (so with
/// identical plans), on the google backend against the emulator.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name(crate::harness::Seed::new()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn google() {
                super::$name(crate::harness::Seed::google()).await
            }
        }
    )*};
}

on_both_backends!(
    first_sync_of_the_seed_scenario,
    source_adds_edits_and_removes_contacts,
    destination_edits_are_reverted,
    contacts_a_destination_adds_to_the_target_group_are_kept,
    a_destination_that_leaves_the_selection_is_cleaned_up,
    renaming_the_target_group_renames_in_place,
    add_to_my_contacts_toggles_membership,
    a_renamed_source_holds_the_sync_back_until_the_manifest_is_fixed,
    a_renamed_destination_is_held_back_and_the_others_proceed,
    an_unmarked_group_with_the_target_name_is_a_conflict,
    an_unmarked_group_is_adopted_on_request,
    an_emptied_source_group_trips_the_deletion_guard,
    a_deleted_sync_manifest_is_cleaned_up_with_orphans_delete,
    a_deleted_sync_manifest_is_listed_with_orphans_keep,
    a_suspended_destination_is_skipped_not_pruned,
    a_missing_source_group_suggests_the_closest_name,
    a_suspended_sync_is_planned_but_not_applied,
    duplicate_copies_are_cleaned_up,
    a_replaced_source_account_is_an_identity_change,
    a_directory_sync_copies_the_directory,
    a_directory_sync_copies_no_hidden_user_and_nobody_to_themselves,
    a_directory_sync_copies_directory_fields_as_people_fields,
);

#[tokio::test]
async fn one_failing_destination_on_the_local_backend() {
    one_failing_destination_does_not_stop_the_others(Seed::new()).await
}

async fn first_sync_of_the_seed_scenario(seed: Seed) {
    let plan = seed.plan().await;
    insta::assert_snapshot!("first_sync", seed.text(&plan));
    let j = json(&plan);
    assert_eq!(j["formatVersion"], "1");
    assert_eq!(j["summary"], json!({"create": 35, "update": 0, "delete": 0, "errors": 0}));
    for user in ACCOUNTING {
        assert_eq!(status(&plan, SYNC, user), Status::Changes);
        assert_eq!(rows(&plan, user).len(), 7, "{user}: a group and six contacts");
    }
    // The suspended user is skipped; the source user and people outside
    // Accounting are not destinations; personal contacts are not copied.
    assert_eq!(status(&plan, SYNC, "erin@example.com"), Status::Skipped);
    let users: Vec<&str> = plan.syncs[0].destinations.iter().map(|d| d.user.as_str()).collect();
    assert!(!users.contains(&"salesuser@example.com") && !users.contains(&"frank@example.com"));
    assert!(!seed.text(&plan).contains("Mum"));
    seed.converge().await;
    // Copies carry the markers and every field of the source.
    let copies = seed.contacts("ann@example.com").await;
    let ada = copies.iter().find(|c| c.display_name() == "Ada Lovelace").unwrap();
    assert_eq!(ada.owner(), Some(SYNC));
    assert_eq!(ada.fields["emailAddresses"][0]["value"], "ada@acme.test");
    assert_eq!(ada.fields["birthdays"][0]["date"]["year"], 1815);
}

async fn source_adds_edits_and_removes_contacts(seed: Seed) {
    seed.converge().await;
    seed.edit(|s| {
        set_field(
            s,
            "salesuser@example.com",
            "Grace Hopper",
            "phoneNumbers",
            json!([{"value": "+1 555 0142", "type": "work"}]),
        );
        let alan = contact(s, "salesuser@example.com", "Alan Turing");
        s.delete_contacts("salesuser@example.com", &[alan.resource_name]).unwrap();
        let new = contact_sync::backend::NewContact {
            fields: serde_json::from_value(json!({
                "names": [{"givenName": "Barbara", "familyName": "Liskov"}],
                "emailAddresses": [{"value": "barbara@clu.test"}]
            }))
            .unwrap(),
            memberships: vec![group(s, "salesuser@example.com", "Sales Contacts").resource_name],
            client_data: vec![],
        };
        s.create_contacts("salesuser@example.com", vec![new]).unwrap();
    })
    .await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("source_changes", seed.text(&plan));
    assert_eq!(
        rows(&plan, "ann@example.com"),
        [
            ["delete", "contact", "Alan Turing", "removedFromSource"],
            ["create", "contact", "Barbara Liskov", "missing"],
            ["update", "contact", "Grace Hopper", "sourceChanged"],
        ]
        .map(|r| r.map(String::from))
    );
    let grace = &destination(&plan, SYNC, "ann@example.com").changes[2];
    assert_eq!(grace.fields[0].field, "phoneNumbers[0].value");
    assert_eq!(json(&plan)["summary"], json!({"create": 5, "update": 5, "delete": 5, "errors": 0}));
    seed.converge().await;
}

async fn destination_edits_are_reverted(seed: Seed) {
    seed.converge().await;
    seed.set_field(
        "bob@example.com",
        "Grace Hopper",
        "phoneNumbers",
        json!([{"value": "+1 555 0000"}]),
    )
    .await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("edited_outside", seed.text(&plan));
    assert_eq!(
        rows(&plan, "bob@example.com"),
        [["update", "contact", "Grace Hopper", "editedOutside"].map(String::from)]
    );
    assert_eq!(status(&plan, SYNC, "ann@example.com"), Status::UpToDate);
    seed.converge().await;
    let bob = seed.contacts("bob@example.com").await;
    let grace = bob.iter().find(|c| c.display_name() == "Grace Hopper").unwrap();
    assert_eq!(grace.fields["phoneNumbers"][0]["value"], "+1 555 0199");
}

async fn contacts_a_destination_adds_to_the_target_group_are_kept(seed: Seed) {
    seed.converge().await;
    seed.edit(|s| {
        let group = group(s, "ann@example.com", "Sales Contacts");
        let mine = contact(s, "ann@example.com", "Tax Advisor");
        s.modify_members("ann@example.com", &group.resource_name, &[mine.resource_name], &[])
            .unwrap();
    })
    .await;
    let plan = seed.plan().await;
    assert_eq!(status(&plan, SYNC, "ann@example.com"), Status::UpToDate);
    seed.converge().await;
    assert!(
        seed.contacts("ann@example.com").await.iter().any(|c| c.display_name() == "Tax Advisor")
    );
}

async fn a_destination_that_leaves_the_selection_is_cleaned_up(seed: Seed) {
    seed.converge().await;
    // Ann leaves the accounting group and the Accounting org unit; her own contact
    // in the target group survives the group's deletion.
    seed.edit(|s| {
        let group = group(s, "ann@example.com", "Sales Contacts");
        let mine = contact(s, "ann@example.com", "Tax Advisor");
        s.modify_members("ann@example.com", &group.resource_name, &[mine.resource_name], &[])
            .unwrap();
    })
    .await;
    seed.edit_file(|t| {
        t.groups[0].members.retain(|m| m != "ann@example.com");
        t.users.iter_mut().find(|u| u.primary_email == "ann@example.com").unwrap().org_unit_path =
            "/Sales".into();
    });
    let plan = seed.plan().await;
    insta::assert_snapshot!("destination_removed", seed.text(&plan));
    let ann = rows(&plan, "ann@example.com");
    assert_eq!(ann.len(), 7);
    assert!(ann.iter().all(|r| r[0] == "delete" && r[3] == "destinationRemoved"), "{ann:?}");
    // Six of 35 managed contacts is under the 50% guard.
    assert!(plan.syncs[0].errors.is_empty());
    seed.converge().await;
    let left = seed.contacts("ann@example.com").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].display_name(), "Tax Advisor");
    assert!(left[0].memberships.iter().all(|m| !m.contains("Sales")));
}

async fn renaming_the_target_group_renames_in_place(seed: Seed) {
    seed.converge().await;
    let before = seed.backend().with_store(|s| s.contact_groups("ann@example.com").unwrap());
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("groupName: Sales Contacts", "groupName: Sales (read-only)");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let plan = seed.plan().await;
    insta::assert_snapshot!("target_renamed", seed.text(&plan));
    assert_eq!(
        rows(&plan, "ann@example.com"),
        [["update", "group", "Sales (read-only)", "sourceChanged"].map(String::from)]
    );
    seed.converge().await;
    let after = seed.backend().with_store(|s| s.contact_groups("ann@example.com").unwrap());
    let old = before.iter().find(|g| g.name == "Sales Contacts").unwrap();
    let new = after.iter().find(|g| g.name == "Sales (read-only)").unwrap();
    assert_eq!(old.resource_name, new.resource_name, "renamed, not recreated");
}

async fn add_to_my_contacts_toggles_membership(seed: Seed) {
    seed.converge().await;
    let manifest = seed.read("syncs/sales-to-accounting.yaml");
    seed.write(
        "syncs/sales-to-accounting.yaml",
        &manifest.replace("addToMyContacts: false", "addToMyContacts: true"),
    );
    let plan = seed.plan().await;
    insta::assert_snapshot!("my_contacts_on", seed.text(&plan));
    assert!(
        rows(&plan, "ann@example.com").iter().all(|r| r[0] == "update" && r[3] == "membership")
    );
    assert_eq!(plan.summary.update, 30);
    seed.converge().await;
    let ann = seed.contacts("ann@example.com").await;
    assert!(
        ann.iter()
            .filter(|c| c.owner() == Some(SYNC))
            .all(|c| c.memberships.contains(&"contactGroups/myContacts".to_string()))
    );
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let plan = seed.plan().await;
    assert_eq!(plan.summary.update, 30);
    seed.converge().await;
    let ann = seed.contacts("ann@example.com").await;
    assert!(
        ann.iter()
            .filter(|c| c.owner() == Some(SYNC))
            .all(|c| !c.memberships.contains(&"contactGroups/myContacts".to_string()))
    );
}

fn rename_user(t: &mut contact_sync::backend::tenant::TenantFile, from: &str, to: &str) {
    let u = t.users.iter_mut().find(|u| u.primary_email == from).unwrap();
    u.aliases.push(from.into());
    u.primary_email = to.into();
    for g in &mut t.groups {
        for m in &mut g.members {
            if m == from {
                *m = to.into();
            }
        }
    }
}

async fn a_renamed_source_holds_the_sync_back_until_the_manifest_is_fixed(seed: Seed) {
    seed.converge().await;
    seed.edit_file(|t| rename_user(t, "salesuser@example.com", "sam.sales@example.com"));
    let plan = seed.plan().await;
    insta::assert_snapshot!("source_renamed", seed.text(&plan));
    let j = json(&plan);
    assert_eq!(j["syncs"][0]["errors"][0]["kind"], "sourceRenamed");
    assert_eq!(j["syncs"][0]["errors"][0]["renamedTo"], "sam.sales@example.com");
    assert!(
        j["syncs"][0]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("sales-to-accounting.yaml:13:11")
    );
    assert_eq!(plan.summary.errors, 1);
    assert!(!plan.summary.has_changes(), "nothing is deleted while the source is renamed");
    // The fix the error spells out converges.
    let manifest =
        seed.read("syncs/sales-to-accounting.yaml").replace("user: salesuser@", "user: sam.sales@");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let plan = seed.converge().await;
    assert_eq!(plan.summary.errors, 0);
}

async fn a_renamed_destination_is_held_back_and_the_others_proceed(seed: Seed) {
    let manifest = seed.read("syncs/sales-to-accounting.yaml").replace(
        "orgUnits: [/Accounting]",
        "orgUnits: [/Accounting]\n    users: [frank@example.com]",
    );
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    seed.converge().await;
    seed.edit_file(|t| rename_user(t, "frank@example.com", "franz@example.com"));
    seed.set_field("ann@example.com", "Grace Hopper", "nicknames", json!([{"value": "Amazing"}]))
        .await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("destination_renamed", seed.text(&plan));
    let d = destination(&plan, SYNC, "frank@example.com");
    assert_eq!(d.status, Status::Error);
    let e = serde_json::to_value(d.error.as_ref().unwrap()).unwrap();
    assert_eq!(e["kind"], "destinationRenamed");
    assert_eq!(e["renamedTo"], "franz@example.com");
    assert_eq!(status(&plan, SYNC, "ann@example.com"), Status::Changes);
    assert!(
        plan.syncs[0].destinations.iter().all(|d| d.user != "franz@example.com"),
        "nothing deleted from the renamed user"
    );
    seed.converge().await;
    assert_eq!(seed.contacts("franz@example.com").await.len(), 6);
}

async fn an_unmarked_group_with_the_target_name_is_a_conflict(seed: Seed) {
    seed.edit(|s| {
        s.create_group("bob@example.com", "Sales Contacts", vec![]).unwrap();
    })
    .await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("target_conflict", seed.text(&plan));
    let d = destination(&plan, SYNC, "bob@example.com");
    assert_eq!(d.status, Status::Error);
    assert_eq!(
        serde_json::to_value(d.error.as_ref().unwrap()).unwrap()["kind"],
        "targetGroupConflict"
    );
    assert_eq!(status(&plan, SYNC, "ann@example.com"), Status::Changes);
    seed.converge().await;
    let groups = seed.backend().with_store(|s| s.contact_groups("bob@example.com").unwrap());
    let g = groups.iter().find(|g| g.name == "Sales Contacts").unwrap();
    assert!(g.client_data.is_empty(), "bob's own group is untouched");
    assert!(seed.contacts("bob@example.com").await.is_empty());
}

/// `contact-sync adopt`: Bob's own "Sales Contacts" group becomes the sync's, with
/// his copy of Grace Hopper (matched by address) and without his plumber.
async fn an_unmarked_group_is_adopted_on_request(seed: Seed) {
    seed.edit(|s| {
        let g = s.create_group("bob@example.com", "Sales Contacts", vec![]).unwrap();
        let contact = |given: &str, family: &str, email: Option<&str>| {
            let mut fields = contact_sync::model::PersonFields::new();
            fields.insert("names".into(), json!([{"givenName": given, "familyName": family}]));
            if let Some(email) = email {
                fields.insert("emailAddresses".into(), json!([{ "value": email }]));
            }
            contact_sync::model::NewContact {
                fields: std::borrow::Cow::Owned(fields),
                memberships: vec![g.resource_name.clone()],
                client_data: vec![],
            }
        };
        s.create_contacts(
            "bob@example.com",
            vec![
                contact("Grace", "Hopper (old)", Some("grace@navy.test")),
                contact("Pete", "Plumber", None),
            ],
        )
        .unwrap();
    })
    .await;
    let adopt = contact_sync::plan::Adopt {
        sync: SYNC.into(),
        users: ["bob@example.com".to_owned()].into(),
    };
    let options = contact_sync::input::LoadOptions {
        syncs: vec![SYNC.into()],
        adopt: Some(adopt),
        ..seed.options()
    };
    let plan = seed.plan_with(options).await;
    let only_bob: Vec<&str> = plan.syncs[0]
        .destinations
        .iter()
        .filter(|d| !d.changes.is_empty())
        .map(|d| d.user.as_str())
        .collect();
    assert_eq!(only_bob, ["bob@example.com"], "{}", seed.text(&plan));
    let rows = rows(&plan, "bob@example.com");
    assert!(rows.contains(&["update", "group", "Sales Contacts", "adopted"].map(String::from)));
    assert!(rows.contains(&["update", "contact", "Grace Hopper", "adopted"].map(String::from)));
    assert_eq!(rows.iter().filter(|r| r[0] == "create").count(), 5, "{rows:?}");
    assert!(rows.iter().all(|r| r[0] != "delete"), "{rows:?}");
    let report = seed.apply(&plan).await;
    assert!(report.destinations.iter().all(|d| d.error.is_none()), "{report:?}");
    // From now on the group is the sync's: an ordinary run finds nothing for Bob.
    let after = seed.converge().await;
    assert_eq!(status(&after, SYNC, "bob@example.com"), Status::UpToDate);
    let contacts = seed.contacts("bob@example.com").await;
    let plumber = contacts
        .iter()
        .find(|c| contact_sync::model::display_name(&c.fields) == "Pete Plumber")
        .expect("the unmatched contact is kept");
    assert!(plumber.client_data.is_empty(), "and left unmarked");
    assert_eq!(contacts.iter().filter(|c| c.owner() == Some(SYNC)).count(), 6);
}

async fn an_emptied_source_group_trips_the_deletion_guard(seed: Seed) {
    seed.converge().await;
    seed.edit(|s| crate::harness::empty_group(s, "salesuser@example.com", "Sales Contacts")).await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("delete_guard", seed.text(&plan));
    let j = json(&plan);
    assert_eq!(j["syncs"][0]["errors"][0]["kind"], "deleteGuard");
    // What the guard refused is counted apart: apply would delete nothing.
    assert_eq!((plan.summary.delete, plan.summary.held_back), (0, 30));
    // Apply refuses that sync: nothing is deleted.
    let report = seed.apply(&plan).await;
    assert!(report.failed());
    assert_eq!(seed.contacts("ann@example.com").await.len(), 7);
    // With --allow-deletes it goes through.
    let options = contact_sync::input::LoadOptions { allow_deletes: true, ..seed.options() };
    let plan = seed.plan_with(options.clone()).await;
    assert!(plan.syncs[0].errors.is_empty());
    seed.converge_with(options).await;
    assert_eq!(seed.contacts("ann@example.com").await.len(), 1, "only Ann's own contact is left");
}

async fn a_deleted_sync_manifest_is_cleaned_up_with_orphans_delete(seed: Seed) {
    seed.converge().await;
    std::fs::remove_file(seed.path("syncs/sales-to-accounting.yaml")).unwrap();
    // The only sync is gone: its deletions are every contact contact-sync manages,
    // more than maxDeletePercent, so the guard holds them back.
    let plan = seed.plan().await;
    insta::assert_snapshot!("orphans_delete_guarded", seed.text(&plan));
    assert_eq!(json(&plan)["syncs"][0]["errors"][0]["kind"], "deleteGuard");
    let report = seed.apply(&plan).await;
    assert!(report.failed());
    assert_eq!(seed.contacts("bob@example.com").await.len(), 6, "nothing was deleted");
    // Deleted on purpose: --allow-deletes lets it through.
    let options = contact_sync::input::LoadOptions { allow_deletes: true, ..seed.options() };
    let plan = seed.plan_with(options.clone()).await;
    insta::assert_snapshot!("orphans_delete", seed.text(&plan));
    assert_eq!(plan.syncs.len(), 1);
    assert!(plan.syncs[0].orphaned);
    let reasons: Vec<String> = plan.syncs[0]
        .destinations
        .iter()
        .flat_map(|d| &d.changes)
        .map(|c| serde_json::to_value(c.reason).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(reasons.len(), 35);
    assert!(reasons.iter().all(|r| r == "syncDeleted"));
    seed.converge_with(options).await;
    assert_eq!(seed.contacts("bob@example.com").await.len(), 0);
    assert_eq!(seed.contacts("ann@example.com").await.len(), 1);
}

async fn a_deleted_sync_manifest_is_listed_with_orphans_keep(seed: Seed) {
    seed.converge().await;
    std::fs::remove_file(seed.path("syncs/sales-to-accounting.yaml")).unwrap();
    let ws = seed.read("contact-sync.yaml").replace("orphans: delete", "orphans: keep");
    seed.write("contact-sync.yaml", &ws);
    let plan = seed.plan().await;
    insta::assert_snapshot!("orphans_keep", seed.text(&plan));
    let j = json(&plan);
    assert_eq!(j["orphans"].as_array().unwrap().len(), 5);
    assert_eq!(
        j["orphans"][0],
        json!({"sync": SYNC, "user": "ann@example.com", "contacts": 6, "groups": 1})
    );
    assert!(!plan.summary.has_changes());
    seed.converge().await;
    assert_eq!(seed.contacts("bob@example.com").await.len(), 6);
}

async fn a_suspended_destination_is_skipped_not_pruned(seed: Seed) {
    seed.converge().await;
    seed.edit_file(|t| {
        t.users.iter_mut().find(|u| u.primary_email == "dave@example.com").unwrap().suspended = true
    });
    seed.edit(|s| {
        let alan = contact(s, "salesuser@example.com", "Alan Turing");
        s.delete_contacts("salesuser@example.com", &[alan.resource_name]).unwrap();
    })
    .await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("suspended_destination", seed.text(&plan));
    assert_eq!(status(&plan, SYNC, "dave@example.com"), Status::Skipped);
    seed.converge().await;
    assert_eq!(seed.contacts("dave@example.com").await.len(), 6, "untouched while suspended");
    seed.edit_file(|t| {
        t.users.iter_mut().find(|u| u.primary_email == "dave@example.com").unwrap().suspended =
            false
    });
    let plan = seed.plan().await;
    assert_eq!(
        rows(&plan, "dave@example.com"),
        [["delete", "contact", "Alan Turing", "removedFromSource"].map(String::from)]
    );
    seed.converge().await;
}

async fn a_missing_source_group_suggests_the_closest_name(seed: Seed) {
    let manifest = seed
        .read("syncs/sales-to-accounting.yaml")
        .replace("contactGroup: Sales Contacts", "contactGroup: Sales Contact");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let plan = seed.plan().await;
    let j = json(&plan);
    assert_eq!(j["syncs"][0]["errors"][0]["kind"], "sourceGroupNotFound");
    let message = j["syncs"][0]["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("did you mean \"Sales Contacts\"?")
            && message.contains("sales-to-accounting.yaml:14:19"),
        "{message}"
    );
    seed.converge().await;
}

async fn a_suspended_sync_is_planned_but_not_applied(seed: Seed) {
    let manifest =
        seed.read("syncs/sales-to-accounting.yaml").replace("suspend: false", "suspend: true");
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let plan = seed.plan().await;
    assert!(plan.syncs[0].suspended);
    assert_eq!(destination(&plan, SYNC, "ann@example.com").changes.len(), 7);
    assert!(!plan.summary.has_changes(), "a suspended sync's changes are not counted");
    seed.converge().await;
    assert!(seed.contacts("bob@example.com").await.is_empty());
}

async fn duplicate_copies_are_cleaned_up(seed: Seed) {
    seed.converge().await;
    seed.edit(|s| {
        let ada = contact(s, "bob@example.com", "Ada Lovelace");
        let copy = contact_sync::backend::NewContact {
            fields: std::borrow::Cow::Owned(ada.fields.clone()),
            memberships: ada.memberships.clone(),
            client_data: ada.client_data.clone(),
        };
        s.create_contacts("bob@example.com", vec![copy]).unwrap();
    })
    .await;
    let plan = seed.plan().await;
    assert_eq!(
        rows(&plan, "bob@example.com"),
        [["delete", "contact", "Ada Lovelace", "duplicate"].map(String::from)]
    );
    seed.converge().await;
    assert_eq!(seed.contacts("bob@example.com").await.len(), 6);
}

async fn a_replaced_source_account_is_an_identity_change(seed: Seed) {
    seed.converge().await;
    // The source account was deleted and a new one created with the same address.
    seed.edit_file(|t| {
        t.users.iter_mut().find(|u| u.primary_email == "salesuser@example.com").unwrap().id =
            Some("1999".into())
    });
    let plan = seed.plan().await;
    for user in ACCOUNTING {
        let d = destination(&plan, SYNC, user);
        assert_eq!(d.status, Status::Error, "{user}");
        assert_eq!(
            serde_json::to_value(d.error.as_ref().unwrap()).unwrap()["kind"],
            "sourceIdentityChanged"
        );
    }
    assert!(!plan.summary.has_changes(), "nothing is replaced while the identity is in doubt");
    seed.converge().await;
}

async fn one_failing_destination_does_not_stop_the_others(seed: Seed) {
    seed.converge().await;
    seed.set_field(
        "salesuser@example.com",
        "Grace Hopper",
        "nicknames",
        json!([{"value": "Amazing Grace"}]),
    )
    .await;
    let plan = seed.plan().await;
    assert_eq!(plan.summary.update, 5);
    // Between plan and apply, Bob edits his copy: the planned update of it is stale.
    seed.set_field(
        "bob@example.com",
        "Grace Hopper",
        "phoneNumbers",
        json!([{"value": "+1 555 0000"}]),
    )
    .await;
    let report = seed.apply(&plan).await;
    assert!(report.failed());
    let bob = report.destinations.iter().find(|d| d.user == "bob@example.com").unwrap();
    assert!(bob.error.as_ref().unwrap().to_string().contains("stale etag"), "{bob:?}");
    let done: Vec<&str> =
        report.destinations.iter().filter(|d| d.error.is_none()).map(|d| d.user.as_str()).collect();
    assert_eq!(
        done,
        ["ann@example.com", "caroline@example.com", "dave@example.com", "gina@example.com"]
    );
    assert_eq!(report.totals(), (0, 4, 0));
    // The next run picks Bob up again.
    let plan = seed.plan().await;
    assert_eq!(
        rows(&plan, "bob@example.com"),
        [["update", "contact", "Grace Hopper", "editedOutside"].map(String::from)]
    );
    seed.converge().await;
}

async fn a_directory_sync_copies_the_directory(seed: Seed) {
    seed.write(
        "syncs/directory.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: accounting-directory}\nspec:\n  type: directory\n  source: { directory: { orgUnits: [/Accounting] } }\n  destinations: { users: [frank@example.com] }\n",
    );
    let plan = seed.plan().await;
    insta::assert_snapshot!("directory_sync", seed.text(&plan));
    let frank: Vec<String> =
        plan.syncs[0].destinations[0].changes.iter().map(|c| c.name.clone()).collect();
    // Active users of /Accounting and its sub-units; Erin is suspended.
    assert_eq!(frank, ["Directory", "Ann Archer", "Bob Baker", "Caroline Clark", "Dave Davis"]);
    seed.converge().await;
    let copies = seed.contacts("frank@example.com").await;
    let ann = copies.iter().find(|c| c.display_name() == "Ann Archer").unwrap();
    assert_eq!(ann.fields["emailAddresses"][0]["value"], "ann@example.com");
}

const DIRECTORY_SYNC: &str = "accounting-directory";

/// The names of the contacts a destination of [`DIRECTORY_SYNC`] gets, and the
/// `(action, name, reason)` of every contact change.
fn directory_changes(plan: &contact_sync::plan::Plan, user: &str) -> Vec<[String; 3]> {
    destination(plan, DIRECTORY_SYNC, user)
        .changes
        .iter()
        .filter(|c| c.resource == contact_sync::plan::Resource::Contact)
        .map(|c| {
            let j = serde_json::to_value(c).unwrap();
            [&j["action"], &j["name"], &j["reason"]].map(|v| v.as_str().unwrap().to_owned())
        })
        .collect()
}

fn hide(t: &mut contact_sync::backend::tenant::TenantFile, address: &str) {
    let user = t.users.iter_mut().find(|u| u.primary_email == address).unwrap();
    user.include_in_global_address_list = false;
}

async fn a_directory_sync_copies_no_hidden_user_and_nobody_to_themselves(seed: Seed) {
    seed.write(
        "syncs/directory.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: accounting-directory}\nspec:\n  type: directory\n  source: { directory: { orgUnits: [/Accounting] } }\n  destinations: { orgUnits: [/Accounting] }\n",
    );
    // Dave is hidden from the Global Address List.
    seed.edit_file(|t| hide(t, "dave@example.com"));
    let file = std::fs::read_to_string(&seed.tenant).unwrap();
    assert_eq!(file.matches("includeInGlobalAddressList").count(), 1, "{file}");
    let plan = seed.plan().await;
    let create = |name: &str| [String::from("create"), name.into(), "missing".into()];
    assert_eq!(
        directory_changes(&plan, "ann@example.com"),
        [create("Bob Baker"), create("Caroline Clark")]
    );
    assert_eq!(
        directory_changes(&plan, "bob@example.com"),
        [create("Ann Archer"), create("Caroline Clark")]
    );
    assert_eq!(
        directory_changes(&plan, "caroline@example.com"),
        [create("Ann Archer"), create("Bob Baker")]
    );
    // Dave is hidden, not gone: he still gets the others.
    assert_eq!(
        directory_changes(&plan, "dave@example.com"),
        [create("Ann Archer"), create("Bob Baker"), create("Caroline Clark")]
    );
    seed.converge().await;
    for user in ACCOUNTING {
        let copies = seed.contacts(user).await;
        assert!(!copies.iter().any(|c| c.display_name() == "Dave Davis"), "{user} has Dave");
    }

    // Caroline is hidden too now, and Ann holds a copy of herself (made by an
    // earlier version): both copies go.
    seed.edit_file(|t| hide(t, "caroline@example.com"));
    seed.edit(|s| {
        let group = group(s, "ann@example.com", "Directory");
        let own = contact_sync::backend::NewContact {
            fields: serde_json::from_value(json!({
                "names": [{"givenName": "Ann", "familyName": "Archer"}],
                "emailAddresses": [{"value": "ann@example.com", "type": "work"}]
            }))
            .unwrap(),
            memberships: vec![group.resource_name],
            client_data: serde_json::from_value(json!([
                {"key": "contact-sync/sync", "value": DIRECTORY_SYNC},
                {"key": "contact-sync/source", "value": "directory/2001"},
                {"key": "contact-sync/hash", "value": "0123456789abcdef"}
            ]))
            .unwrap(),
        };
        s.create_contacts("ann@example.com", vec![own]).unwrap();
    })
    .await;
    let plan = seed.plan().await;
    insta::assert_snapshot!("directory_visibility", seed.text(&plan));
    let delete = |name: &str, reason: &str| [String::from("delete"), name.into(), reason.into()];
    assert_eq!(
        directory_changes(&plan, "ann@example.com"),
        [delete("Ann Archer", "ownEntry"), delete("Caroline Clark", "hidden")]
    );
    for user in ["bob@example.com", "dave@example.com"] {
        assert_eq!(directory_changes(&plan, user), [delete("Caroline Clark", "hidden")]);
    }
    assert!(directory_changes(&plan, "caroline@example.com").is_empty());
    seed.converge().await;
    let ann: Vec<String> = seed
        .contacts("ann@example.com")
        .await
        .iter()
        .filter(|c| c.owner() == Some(DIRECTORY_SYNC))
        .map(|c| c.display_name())
        .collect();
    assert_eq!(ann, ["Bob Baker"]);
}

/// Ann's Directory fields as the Admin console and the Directory API hold them:
/// primary flags, custom types, a formatted address, `fullTimeEquivalent`, and
/// personal items beside the work ones.
fn directory_fields(t: &mut contact_sync::backend::tenant::TenantFile) {
    let list = |v: serde_json::Value| serde_json::from_value::<Vec<serde_json::Value>>(v).unwrap();
    let ann = t.users.iter_mut().find(|u| u.primary_email == "ann@example.com").unwrap();
    ann.phones = list(json!([
        { "value": "+1 555 0123", "type": "mobile" },
        { "value": "+1 555 0190", "type": "work_fax" },
        { "value": "+1 555 0100", "type": "work", "primary": true },
        { "value": "+1 555 0111", "type": "home" },
        { "value": "+1 555 0105", "type": "custom", "customType": "Hotline" },
    ]));
    ann.organizations = list(json!([
        { "name": "Example Corp", "title": "Accountant", "department": "Accounting",
          "description": "Closes the books", "costCenter": "CC-200",
          "fullTimeEquivalent": 80000, "primary": true, "customType": "" },
        { "name": "Open University", "type": "school" },
    ]));
    ann.addresses = list(json!([
        { "type": "home", "formatted": "1 Home Lane, Slough", "locality": "Slough" },
        { "type": "work", "primary": true, "formatted": "1 Main St\nLondon N1 1AA",
          "streetAddress": "1 Main St", "locality": "London", "postalCode": "N1 1AA",
          "countryCode": "GB", "sourceIsStructured": true },
    ]));
    ann.relations = list(json!([
        { "value": "gina@example.com", "type": "manager" },
        { "value": "Alex Archer", "type": "spouse" },
        { "value": "bob@example.com", "type": "custom", "customType": "Mentor" },
    ]));
    ann.locations = list(json!([
        { "type": "desk", "area": "London", "buildingId": "LON-1", "floorName": "2",
          "deskCode": "2B-17" },
    ]));
    ann.external_ids = list(json!([{ "value": "E-2001", "type": "organization" }]));
    let bob = t.users.iter_mut().find(|u| u.primary_email == "bob@example.com").unwrap();
    bob.phones = list(json!([{ "value": "+1 555 0211", "type": "custom", "customType": "Desk" }]));
    bob.organizations = list(json!([
        { "name": "Example Corp", "title": "Clerk", "type": "custom", "customType": "Contractor" },
    ]));
    bob.ims = list(json!([{ "im": "bob.baker", "protocol": "gtalk", "type": "work" }]));
    bob.websites = list(json!([
        { "value": "https://bob.example.com", "type": "home_page" },
        { "value": "https://example.com/bob", "type": "work" },
    ]));
}

async fn a_directory_sync_copies_directory_fields_as_people_fields(seed: Seed) {
    use contact_sync::model::normalize::normalize;
    seed.write(
        "syncs/directory.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: accounting-directory}\nspec:\n  type: directory\n  source: { directory: { orgUnits: [/Accounting] } }\n  destinations: { users: [frank@example.com] }\n",
    );
    seed.edit_file(directory_fields);
    // The workspace file keeps them in the Directory's shape.
    let file = std::fs::read_to_string(&seed.tenant).unwrap();
    assert!(
        file.contains("fullTimeEquivalent: 80000") && file.contains("customType: Hotline"),
        "{file}"
    );
    seed.converge().await;
    let copies = seed.contacts("frank@example.com").await;
    let copy = |name: &str| {
        let c = copies.iter().find(|c| c.display_name() == name).unwrap();
        serde_json::to_value(normalize(&c.fields)).unwrap()
    };
    assert_eq!(
        copy("Ann Archer"),
        json!({
            "addresses": [{ "streetAddress": "1 Main St", "city": "London",
                            "postalCode": "N1 1AA", "countryCode": "GB", "type": "work" }],
            "emailAddresses": [{ "value": "ann@example.com", "type": "work" }],
            "locations": [{ "value": "London", "buildingId": "LON-1", "floor": "2",
                            "deskCode": "2B-17", "type": "desk" }],
            "names": [{ "givenName": "Ann", "familyName": "Archer" }],
            "organizations": [{ "name": "Example Corp", "title": "Accountant",
                                "department": "Accounting", "jobDescription": "Closes the books",
                                "costCenter": "CC-200", "fullTimeEquivalentMillipercent": 80000 }],
            "phoneNumbers": [{ "value": "+1 555 0100", "type": "work" },
                             { "value": "+1 555 0190", "type": "workFax" }],
            "relations": [{ "person": "gina@example.com", "type": "manager" }],
        })
    );
    assert_eq!(
        copy("Bob Baker"),
        json!({
            "emailAddresses": [{ "value": "bob@example.com", "type": "work" }],
            "imClients": [{ "username": "bob.baker", "type": "work", "protocol": "googleTalk" }],
            "names": [{ "givenName": "Bob", "familyName": "Baker" }],
            "organizations": [{ "name": "Example Corp", "title": "Clerk", "type": "Contractor" }],
            "urls": [{ "value": "https://example.com/bob", "type": "work" }],
        })
    );

    // A personal item changes nothing; a mapped one is copied, and a plan saved
    // before it no longer matches the tenant.
    seed.edit_file(|t| {
        let ann = t.users.iter_mut().find(|u| u.primary_email == "ann@example.com").unwrap();
        ann.phones[0]["value"] = json!("+1 555 0124");
    });
    let quiet = seed.plan().await;
    assert!(!quiet.summary.has_changes(), "{}", seed.text(&quiet));
    seed.edit_file(|t| {
        let ann = t.users.iter_mut().find(|u| u.primary_email == "ann@example.com").unwrap();
        ann.locations[0]["deskCode"] = json!("3A-01");
    });
    let plan = seed.plan().await;
    assert_ne!(plan.fingerprint, quiet.fingerprint);
    assert_eq!(
        directory_changes(&plan, "frank@example.com"),
        [["update", "Ann Archer", "sourceChanged"].map(String::from)]
    );
    seed.converge().await;
    let copies = seed.contacts("frank@example.com").await;
    let ann = copies.iter().find(|c| c.display_name() == "Ann Archer").unwrap();
    assert_eq!(ann.fields["locations"][0]["deskCode"], "3A-01");
}
