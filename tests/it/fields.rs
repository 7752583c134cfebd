//! Field selection (`spec.fields`): what `validate` says of a bad selection, and
//! scenarios on both backends — a directory sync that copies the work phone and
//! never the mobile number, a personal sync under the Workspace's default and its
//! own selection — each selection change a plan of `fieldsChanged` updates that
//! ends, once applied, with an empty plan.

use serde_json::{Value, json};

use crate::harness::{SYNC, Seed, destination};
use contact_sync::model::normalize::normalize;
use contact_sync::plan::Plan;
use contact_sync::plan::render::{self, Style};

/// Runs a scenario on the local backend and on the google backend (emulator).
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
    a_directory_sync_leaves_out_the_excluded_phones_and_addresses,
    a_personal_sync_follows_the_workspace_default_and_its_own_selection,
);

// ---------------------------------------------------------------- validation

/// `line:col: pointer: message` of every problem `validate` finds in `text`.
fn errors(text: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.yaml");
    std::fs::write(&path, text).unwrap();
    contact_sync::validate::validate_paths(&[path])
        .diagnostics
        .iter()
        .map(|d| {
            let loc = d.location.as_ref().expect("a position");
            format!(
                "{}:{}: {}: {}",
                loc.mark.line,
                loc.mark.column,
                d.pointer.clone().unwrap_or_default(),
                d.message
            )
        })
        .collect()
}

fn sync_with(fields: &str) -> String {
    format!(
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {{name: s}}\nspec:\n  source: {{user: sam@example.com, contactGroup: Sales}}\n  destinations: {{users: [ann@example.com]}}\n  fields:\n{fields}"
    )
}

fn one_error(text: &str) -> String {
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
    errs.into_iter().next().unwrap()
}

#[test]
fn good_selections_validate() {
    for fields in [
        "    exclude: [birthdays, phoneNumbers.mobile, addresses.home, photo]\n",
        "    include: [phoneNumbers.work, organizations, emailAddresses.Work, photo]\n",
        "    exclude: [phoneNumbers.Assistant, emailAddresses.home]\n",
        "    include: []\n",
        "    {}\n",
    ] {
        assert_eq!(errors(&sync_with(fields)), Vec::<String>::new(), "{fields}");
    }
}

#[test]
fn an_unknown_field_is_placed_and_gets_a_suggestion() {
    let e = one_error(&sync_with("    exclude:\n      - birthdays\n      - phoneNumber.mobile\n"));
    assert!(
        e.starts_with(
            "10:9: /spec/fields/exclude/1: `phoneNumber.mobile` names no Person field (did you \
             mean `phoneNumbers.mobile`?)"
        ),
        "{e}"
    );
    let e = one_error(&sync_with("    include: [birthday]\n"));
    assert!(e.starts_with("8:15: /spec/fields/include/0: `birthday` names no Person field (did you mean `birthdays`?)"), "{e}");
    assert!(e.contains("expected a field (addresses, biographies,"), "{e}");
    let e = one_error(&sync_with("    exclude: [photos]\n"));
    assert!(e.contains("(did you mean `photo`?)"), "{e}");
    let e = one_error(&sync_with("    exclude: [birthdays.home]\n"));
    assert!(e.contains("the items of `birthdays` have no type"), "{e}");
}

#[test]
fn include_and_exclude_together_are_refused() {
    let e = one_error(&sync_with("    include: [urls]\n    exclude: [birthdays]\n"));
    assert!(
        e.starts_with("9:5: /spec/fields/exclude: `include` and `exclude` are both set; keep one"),
        "{e}"
    );
}

#[test]
fn what_identifies_a_contact_cannot_be_excluded() {
    let e = one_error(&sync_with("    exclude: [birthdays, names]\n"));
    assert!(e.starts_with("8:26: /spec/fields/exclude/1: `names` cannot be excluded"), "{e}");
    let e = one_error(&sync_with("    exclude: [emailAddresses]\n"));
    assert!(e.contains("`emailAddresses` cannot be excluded: the first e-mail address"), "{e}");
    assert!(e.contains("exclude `emailAddresses.TYPE`"), "{e}");
    // An include list needs not name them: they are copied anyway.
    assert!(errors(&sync_with("    include: [phoneNumbers]\n")).is_empty());
}

#[test]
fn the_workspace_default_is_checked_too() {
    let text = "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: w}\nspec:\n  backend: google\n  google: {adminUser: admin@example.com}\n  fields: {exclude: [names, phoneNumbers.mobil]}\n";
    let errs = errors(text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("7:22: /spec/fields/exclude/0: `names` cannot be excluded"),
        "{errs:#?}"
    );
    // A type is free text: `mobil` is a type no item has, not an error.
    let text = text.replace("names, ", "");
    assert!(errors(&text).is_empty(), "{:#?}", errors(&text));
}

// ---------------------------------------------------------------- scenarios

const DIRECTORY: &str = "accounting-directory";

fn directory_sync(fields: &str) -> String {
    format!(
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {{name: {DIRECTORY}}}\nspec:\n  type: directory\n  source: {{ directory: {{ orgUnits: [/Accounting] }} }}\n  destinations: {{ users: [frank@example.com] }}\n{fields}"
    )
}

/// `(action, name, reason)` of the contact changes of `user` in `sync`.
fn changes(plan: &Plan, sync: &str, user: &str) -> Vec<[String; 3]> {
    destination(plan, sync, user)
        .changes
        .iter()
        .filter(|c| c.resource == contact_sync::plan::Resource::Contact)
        .map(|c| {
            let j = serde_json::to_value(c).unwrap();
            [&j["action"], &j["name"], &j["reason"]].map(|v| v.as_str().unwrap().to_owned())
        })
        .collect()
}

fn row(action: &str, name: &str, reason: &str) -> [String; 3] {
    [action, name, reason].map(String::from)
}

/// The normalised fields of `user`'s copy of `name`.
async fn copy(seed: &Seed, user: &str, name: &str) -> Value {
    let contacts = seed.contacts(user).await;
    let c = contacts
        .iter()
        .find(|c| c.display_name() == name)
        .unwrap_or_else(|| panic!("{user} has no {name}"));
    serde_json::to_value(normalize(&c.fields)).unwrap()
}

/// The selection change shows alike in the text, markdown and JSON plans.
fn shows_fields_changed(seed: &Seed, plan: &Plan) {
    let text = seed.text(plan);
    assert!(text.contains("(field selection changed)"), "{text}");
    let md = render::markdown(plan, Style::default(), None, &|_| None);
    assert!(md.contains("field selection changed"), "{md}");
    let json = plan.to_json(false).to_string();
    assert!(json.contains(r#""reason":"fieldsChanged""#), "{json}");
    assert!(!json.contains("sourceChanged") && !json.contains("editedOutside"), "{json}");
}

async fn a_directory_sync_leaves_out_the_excluded_phones_and_addresses(seed: Seed) {
    seed.edit_file(|t| {
        let ann = t.users.iter_mut().find(|u| u.primary_email == "ann@example.com").unwrap();
        ann.phones = vec![
            json!({ "value": "+1 555 0100", "type": "work", "primary": true }),
            json!({ "value": "+1 555 0177", "type": "mobile" }),
        ];
        ann.addresses = vec![
            json!({ "type": "work", "locality": "London" }),
            json!({ "type": "home", "locality": "Slough" }),
        ];
        let bob = t.users.iter_mut().find(|u| u.primary_email == "bob@example.com").unwrap();
        bob.phones = vec![json!({ "value": "+1 555 0188", "type": "mobile" })];
    });
    seed.write(
        "syncs/directory.yaml",
        &directory_sync(
            "  fields: { exclude: [phoneNumbers.mobile, addresses.home, birthdays] }\n",
        ),
    );
    let plan = seed.plan().await;
    let shown = format!("{}{}", seed.text(&plan), plan.to_json(false));
    assert!(!shown.contains("0177") && !shown.contains("0188"), "{shown}");
    assert!(!shown.contains("Slough"), "{shown}");
    seed.converge().await;
    let ann = copy(&seed, "frank@example.com", "Ann Archer").await;
    assert_eq!(ann["phoneNumbers"], json!([{ "value": "+1 555 0100", "type": "work" }]));
    assert_eq!(ann["addresses"], json!([{ "city": "London", "type": "work" }]));
    let bob = copy(&seed, "frank@example.com", "Bob Baker").await;
    assert!(bob.get("phoneNumbers").is_none(), "{bob}");

    // Addresses left out altogether: Ann's copy loses hers, for that reason.
    seed.write(
        "syncs/directory.yaml",
        &directory_sync("  fields: { exclude: [phoneNumbers.mobile, addresses, birthdays] }\n"),
    );
    let plan = seed.plan().await;
    assert_eq!(
        changes(&plan, DIRECTORY, "frank@example.com"),
        [row("update", "Ann Archer", "fieldsChanged")]
    );
    shows_fields_changed(&seed, &plan);
    seed.converge().await;
    assert!(copy(&seed, "frank@example.com", "Ann Archer").await.get("addresses").is_none());

    // Naming a type the directory keeps out by default opts in to it: only the
    // phones are copied now, the mobile numbers too.
    seed.write(
        "syncs/directory.yaml",
        &directory_sync("  fields: { include: [phoneNumbers.work, phoneNumbers.mobile] }\n"),
    );
    let plan = seed.plan().await;
    let rows = changes(&plan, DIRECTORY, "frank@example.com");
    assert!(rows.contains(&row("update", "Ann Archer", "fieldsChanged")), "{rows:?}");
    assert!(rows.contains(&row("update", "Bob Baker", "fieldsChanged")), "{rows:?}");
    assert!(rows.iter().all(|r| r[2] == "fieldsChanged"), "{rows:?}");
    seed.converge().await;
    let ann = copy(&seed, "frank@example.com", "Ann Archer").await;
    assert_eq!(
        ann,
        json!({
            "names": [{ "givenName": "Ann", "familyName": "Archer" }],
            "emailAddresses": [{ "value": "ann@example.com", "type": "work" }],
            "phoneNumbers": [{ "value": "+1 555 0100", "type": "work" },
                             { "value": "+1 555 0177", "type": "mobile" }],
        })
    );

    // No selection: the directory's defaults again.
    seed.write("syncs/directory.yaml", &directory_sync(""));
    let plan = seed.plan().await;
    assert!(
        changes(&plan, DIRECTORY, "frank@example.com").iter().all(|r| r[2] == "fieldsChanged"),
        "{}",
        seed.text(&plan)
    );
    seed.converge().await;
    let ann = copy(&seed, "frank@example.com", "Ann Archer").await;
    assert_eq!(ann["phoneNumbers"], json!([{ "value": "+1 555 0100", "type": "work" }]));
    assert_eq!(ann["addresses"], json!([{ "city": "London", "type": "work" }]));
}

async fn a_personal_sync_follows_the_workspace_default_and_its_own_selection(seed: Seed) {
    seed.converge().await;
    let ada = copy(&seed, "ann@example.com", "Ada Lovelace").await;
    assert!(ada.get("birthdays").is_some(), "{ada}");

    // The Workspace's default: every sync without a selection of its own.
    let workspace = seed.read("contact-sync.yaml");
    seed.write("contact-sync.yaml", &format!("{workspace}  fields: {{ exclude: [birthdays] }}\n"));
    let plan = seed.plan().await;
    let rows = changes(&plan, SYNC, "ann@example.com");
    assert_eq!(rows, [row("update", "Ada Lovelace", "fieldsChanged")], "{}", seed.text(&plan));
    shows_fields_changed(&seed, &plan);
    seed.converge().await;
    assert!(copy(&seed, "ann@example.com", "Ada Lovelace").await.get("birthdays").is_none());

    // The sync's own selection wins over the default: the birthday is back; the
    // mobile numbers and the second (home) address go, the first address stays.
    let manifest = seed.read("syncs/sales-to-accounting.yaml");
    seed.write(
        "syncs/sales-to-accounting.yaml",
        &format!("{manifest}  fields:\n    exclude: [phoneNumbers.mobile, emailAddresses.home]\n"),
    );
    let plan = seed.plan().await;
    let rows = changes(&plan, SYNC, "ann@example.com");
    assert_eq!(
        rows,
        [
            row("update", "Ada Lovelace", "fieldsChanged"),
            row("update", "Linus Torvalds", "fieldsChanged")
        ],
        "{}",
        seed.text(&plan)
    );
    shows_fields_changed(&seed, &plan);
    seed.converge().await;
    let ada = copy(&seed, "ann@example.com", "Ada Lovelace").await;
    assert!(ada.get("birthdays").is_some(), "{ada}");
    assert_eq!(ada["phoneNumbers"], json!([{ "value": "+1 555 0100", "type": "work" }]));
    assert_eq!(ada["emailAddresses"], json!([{ "value": "ada@acme.test", "type": "work" }]));
    let linus = copy(&seed, "ann@example.com", "Linus Torvalds").await;
    assert!(linus.get("phoneNumbers").is_none(), "{linus}");

    // A change the selection leaves out reaches no plan: not even as a change.
    seed.set_field(
        "salesuser@example.com",
        "Ada Lovelace",
        "phoneNumbers",
        json!([
            { "value": "+1 555 0100", "type": "work" },
            { "value": "+1 555 0666", "type": "mobile" },
        ]),
    )
    .await;
    let plan = seed.plan().await;
    assert!(!plan.summary.has_changes(), "{}", seed.text(&plan));
    let saved = seed.path("saved.json");
    crate::contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .arg("--out")
        .arg(&saved)
        .assert()
        .success();
    let saved = std::fs::read_to_string(&saved).unwrap();
    assert!(saved.contains("phoneNumbers.mobile"), "the saved manifests hold the selection");
    assert!(!saved.contains("0666") && !saved.contains("0101"), "{saved}");

    // A destination's own edit of a copy is still an edit, whatever the selection.
    seed.set_field("ann@example.com", "Margaret Hamilton", "nicknames", json!([{ "value": "M" }]))
        .await;
    let plan = seed.plan().await;
    assert_eq!(
        changes(&plan, SYNC, "ann@example.com"),
        [row("update", "Margaret Hamilton", "editedOutside")]
    );

    // Both selections gone: every field again, the mobile numbers with the new one.
    seed.write("contact-sync.yaml", &workspace);
    seed.write("syncs/sales-to-accounting.yaml", &manifest);
    let plan = seed.plan().await;
    let rows = changes(&plan, SYNC, "ann@example.com");
    assert!(rows.contains(&row("update", "Ada Lovelace", "fieldsChanged")), "{rows:?}");
    assert!(rows.contains(&row("update", "Linus Torvalds", "fieldsChanged")), "{rows:?}");
    seed.converge().await;
    let ada = copy(&seed, "ann@example.com", "Ada Lovelace").await;
    assert_eq!(ada["phoneNumbers"][1]["value"], "+1 555 0666");
}
