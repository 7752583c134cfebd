//! Directory syncs beyond the users' Directory fields, on both backends: custom
//! schema fields copied as `userDefined` entries and external ids, an unknown
//! schema or field as a plan error at its manifest line, and the domain's shared
//! contacts joining the sync (and leaving it); plus the emulator's
//! `people.listDirectoryPeople` paging and `projection=custom`.

use serde_json::{Value, json};

use crate::emulator::{ADMIN, Api};
use crate::harness::Seed;
use contact_sync::backend::google::{DIRECTORY_READONLY, USERS_READONLY, USERSCHEMA_READONLY};
use contact_sync::backend::tenant::{TenantContact, TenantFile};
use contact_sync::model::normalize::normalize;
use contact_sync::plan::Plan;

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
    an_employee_number_in_a_custom_schema_is_a_user_defined_entry_of_every_copy,
    an_unknown_custom_schema_or_field_is_a_plan_error_at_its_line,
    shared_contacts_join_the_directory_sync_and_leave_it,
);

const SYNC: &str = "accounting-directory";

fn directory_sync(source: &str) -> String {
    format!(
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {{name: {SYNC}}}\nspec:\n  type: directory\n  source:\n    directory:\n      orgUnits: [/Accounting]\n{source}  destinations: {{ users: [frank@example.com, gina@example.com] }}\n"
    )
}

const CUSTOM: &str = "      customFields:\n        - { schema: EmployeeInfo, field: EmployeeNumber, as: Employee number }\n        - { schema: EmployeeInfo, field: Badges, as: Badge, into: externalId }\n";

fn employee_numbers(t: &mut TenantFile) {
    for u in &mut t.users {
        let info = match u.primary_email.as_str() {
            "ann@example.com" => json!({ "EmployeeNumber": "E-1001",
                                         "Badges": [{ "value": "B-1" }, { "value": "B-2", "type": "work" }] }),
            "bob@example.com" => json!({ "EmployeeNumber": "E-1002" }),
            "gina@example.com" => json!({ "EmployeeNumber": "E-1003" }),
            _ => continue,
        };
        u.custom_schemas.insert("EmployeeInfo".into(), info);
        u.custom_schemas.insert("Secret".into(), json!({ "Salary": "1" }));
    }
}

/// `(action, name, reason)` of the sync's changes in `user`.
fn changes(plan: &Plan, user: &str) -> Vec<[String; 3]> {
    let sync = plan.syncs.iter().find(|s| s.name == SYNC).unwrap();
    let dest = sync.destinations.iter().find(|d| d.user == user).unwrap();
    dest.changes
        .iter()
        .map(|c| {
            let j = serde_json::to_value(c).unwrap();
            [&j["action"], &j["name"], &j["reason"]].map(|v| v.as_str().unwrap().to_owned())
        })
        .filter(|[_, name, _]| name != "Directory")
        .collect()
}

fn copy(contacts: &[contact_sync::model::Contact], name: &str) -> Value {
    let c = contacts.iter().find(|c| c.display_name() == name).unwrap_or_else(|| {
        panic!(
            "no copy of {name}: {:?}",
            contacts.iter().map(|c| c.display_name()).collect::<Vec<_>>()
        )
    });
    serde_json::to_value(normalize(&c.fields)).unwrap()
}

async fn an_employee_number_in_a_custom_schema_is_a_user_defined_entry_of_every_copy(seed: Seed) {
    seed.write("syncs/directory.yaml", &directory_sync(CUSTOM));
    seed.edit_file(employee_numbers);
    let file = std::fs::read_to_string(&seed.tenant).unwrap();
    assert!(file.contains("EmployeeNumber: E-1001"), "{file}");
    seed.converge().await;
    for dest in ["frank@example.com", "gina@example.com"] {
        let copies = seed.contacts(dest).await;
        let ann = copy(&copies, "Ann Archer");
        assert_eq!(ann["userDefined"], json!([{ "key": "Employee number", "value": "E-1001" }]));
        assert_eq!(
            ann["externalIds"],
            json!([{ "value": "B-1", "type": "Badge" }, { "value": "B-2", "type": "Badge" }])
        );
        let bob = copy(&copies, "Bob Baker");
        assert_eq!(bob["userDefined"], json!([{ "key": "Employee number", "value": "E-1002" }]));
        assert!(bob.get("externalIds").is_none(), "{bob}");
        // A schema the sync does not name never reaches a copy.
        assert!(!serde_json::to_string(&copies).unwrap().contains("Salary"));
    }
    // A changed employee number is an update of every copy, then nothing.
    seed.edit_file(|t| {
        let bob = t.users.iter_mut().find(|u| u.primary_email == "bob@example.com").unwrap();
        bob.custom_schemas.insert("EmployeeInfo".into(), json!({ "EmployeeNumber": "E-2002" }));
    });
    let plan = seed.plan().await;
    for dest in ["frank@example.com", "gina@example.com"] {
        assert_eq!(
            changes(&plan, dest),
            [["update", "Bob Baker", "sourceChanged"].map(String::from)]
        );
    }
    let text = seed.text(&plan);
    assert!(text.contains("E-2002"), "{text}");
    let json = plan.to_json(false).to_string();
    assert!(json.contains("E-2002"), "{json}");
    let markdown = contact_sync::plan::render::markdown(&plan, Default::default(), None, &|_| None);
    assert!(markdown.contains("Bob Baker"), "{markdown}");
    seed.converge().await;
    let bob = copy(&seed.contacts("frank@example.com").await, "Bob Baker");
    assert_eq!(bob["userDefined"], json!([{ "key": "Employee number", "value": "E-2002" }]));
}

async fn an_unknown_custom_schema_or_field_is_a_plan_error_at_its_line(seed: Seed) {
    seed.edit_file(employee_numbers);
    seed.write(
        "syncs/directory.yaml",
        &directory_sync(
            "      customFields:\n        - { schema: EmployeeInf, field: EmployeeNumber, as: No }\n        - { schema: EmployeeInfo, field: EmployeeNumbr, as: Number }\n",
        ),
    );
    let plan = seed.plan().await;
    let sync = plan.syncs.iter().find(|s| s.name == SYNC).unwrap();
    let errors: Vec<Value> = sync.errors.iter().map(|e| serde_json::to_value(e).unwrap()).collect();
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0]["kind"], "sourceNotFound");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(
        message.contains("no custom schema \"EmployeeInf\" (did you mean \"EmployeeInfo\"?)"),
        "{message}"
    );
    let at = &errors[0]["location"];
    assert!(at["file"].as_str().unwrap().ends_with("syncs/directory.yaml"), "{errors:#?}");
    assert_eq!((at["line"].as_u64(), at["column"].as_u64()), (Some(10), Some(21)), "{at}");
    let message = errors[1]["message"].as_str().unwrap();
    assert!(
        message.contains(
            "\"EmployeeInfo\" has no field \"EmployeeNumbr\" (did you mean \"EmployeeNumber\"?)"
        ),
        "{message}"
    );
    let at = &errors[1]["location"];
    assert!(at["file"].as_str().unwrap().ends_with("syncs/directory.yaml"), "{errors:#?}");
    assert_eq!((at["line"].as_u64(), at["column"].as_u64()), (Some(11), Some(42)), "{at}");
    assert!(
        sync.destinations.iter().all(|d| d.changes.is_empty()),
        "held back: nothing is planned"
    );
    let text = seed.text(&plan);
    assert!(text.contains("syncs/directory.yaml:10:21"), "{text}");
    // Fixed, the sync runs and converges.
    seed.write("syncs/directory.yaml", &directory_sync(CUSTOM));
    seed.converge().await;
}

fn shared(given: &str, family: &str, email: &str) -> TenantContact {
    let mut c = TenantContact::default();
    c.fields.insert("names".into(), json!([{ "givenName": given, "familyName": family }]));
    c.fields.insert("emailAddresses".into(), json!([{ "value": email, "type": "work" }]));
    c.fields.insert("organizations".into(), json!([{ "name": "Supplier Ltd" }]));
    c
}

async fn shared_contacts_join_the_directory_sync_and_leave_it(seed: Seed) {
    seed.edit_file(|t| {
        t.shared_contacts = vec![
            shared("Vera", "Vendor", "vera@supplier.test"),
            shared("Sam", "Shipper", "sam@shipper.test"),
        ];
    });
    seed.write("syncs/directory.yaml", &directory_sync("      sharedContacts: true\n"));
    // resolve says how many shared contacts the sync adds, in text and JSON.
    let (input, target) = contact_sync::input::load(&seed.options()).unwrap();
    let backend = target.open().unwrap();
    let reaches = contact_sync::reader::reach(backend.as_ref(), &input).await.unwrap();
    let text = contact_sync::plan::render::reach_text(&reaches);
    assert!(text.contains("and adds 2 shared contacts of the domain"), "{text}");
    let doc =
        serde_json::to_value(contact_sync::plan::reach::ReachDocument::new(&reaches)).unwrap();
    let sync = doc["syncs"].as_array().unwrap().iter().find(|s| s["name"] == SYNC).unwrap();
    assert_eq!(sync["sharedContacts"], 2);

    let plan = seed.plan().await;
    let creates = changes(&plan, "frank@example.com");
    for name in ["Vera Vendor", "Sam Shipper", "Ann Archer"] {
        assert!(creates.contains(&["create", name, "missing"].map(String::from)), "{creates:?}");
    }
    seed.converge().await;
    let copies = seed.contacts("gina@example.com").await;
    let vera = copies.iter().find(|c| c.display_name() == "Vera Vendor").unwrap();
    let source =
        contact_sync::model::client_data(&vera.client_data, "contact-sync/source").unwrap();
    assert!(source.starts_with("shared/c"), "{source}");
    assert_eq!(copy(&copies, "Vera Vendor")["organizations"], json!([{ "name": "Supplier Ltd" }]));
    // Their ids are assigned and written back like users' ids.
    seed.flush();
    let file = std::fs::read_to_string(&seed.tenant).unwrap();
    let listed = file.split("sharedContacts:").nth(1).unwrap_or_default();
    assert!(
        listed.contains(&format!("resourceName: people/{}", &source["shared/".len()..])),
        "{file}"
    );

    // A shared contact removed from the domain: its copies are deleted.
    seed.edit_file(|t| t.shared_contacts.retain(|c| c.fields["names"][0]["givenName"] != "Vera"));
    let plan = seed.plan().await;
    for dest in ["frank@example.com", "gina@example.com"] {
        assert_eq!(
            changes(&plan, dest),
            [["delete", "Vera Vendor", "removedFromSource"].map(String::from)]
        );
    }
    seed.converge().await;
    let copies = seed.contacts("frank@example.com").await;
    assert!(copies.iter().all(|c| c.display_name() != "Vera Vendor"));
    assert!(copies.iter().any(|c| c.display_name() == "Sam Shipper"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_contacts_need_the_directory_scope_delegated() {
    let seed = Seed::google_with(|c| {
        let mut scopes: Vec<String> =
            contact_sync::emulator::DELEGATED.iter().map(|s| (*s).to_owned()).collect();
        scopes.retain(|s| s != DIRECTORY_READONLY);
        c.delegated_scopes = Some(scopes);
    });
    seed.write("syncs/directory.yaml", &directory_sync("      sharedContacts: true\n"));
    let plan = seed.plan().await;
    let sync = plan.syncs.iter().find(|s| s.name == SYNC).unwrap();
    let message = sync.errors.first().map(|e| e.message()).unwrap_or_default();
    assert!(message.contains("directory.readonly"), "{message}");
    assert!(message.contains("shared contacts"), "{message}");
}

/// An emulator whose tenant has `n` shared contacts and Ann's custom schemas.
fn api(n: usize) -> Api {
    Api::start_with(|config| {
        let text = std::fs::read_to_string(&config.data).unwrap();
        let mut t = contact_sync::backend::tenant::parse(&config.data, text).unwrap();
        t.shared_contacts =
            (0..n).map(|i| shared("Shared", &format!("{i:03}"), &format!("s{i}@x.test"))).collect();
        employee_numbers(&mut t);
        contact_sync::backend::tenant::write_atomic(&config.data, &t).unwrap();
        config.check_responses = true;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_directory_people_pages_by_page_size_with_the_read_mask() {
    let api = api(5);
    let path = |token: &str| {
        format!(
            "/v1/people:listDirectoryPeople?sources=DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT&readMask=names,metadata&pageSize=2&pageToken={token}"
        )
    };
    let (mut names, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let (status, body) = api.get(ADMIN, DIRECTORY_READONLY, &path(&token)).await;
        assert_eq!(status, 200, "{body}");
        pages += 1;
        for p in body["people"].as_array().unwrap() {
            assert!(p.get("emailAddresses").is_none(), "only the read mask's fields: {p}");
            assert_eq!(p["metadata"]["sources"][0]["type"], "DOMAIN_CONTACT");
            names.push(p["names"][0]["familyName"].as_str().unwrap().to_owned());
        }
        match body["nextPageToken"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!((pages, names), (3, ["000", "001", "002", "003", "004"].map(String::from).to_vec()));
    // Above 1000 a page, without a source or a read mask, and without the scope: refused.
    let (status, _) = api
        .get(ADMIN, DIRECTORY_READONLY, "/v1/people:listDirectoryPeople?sources=DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT&readMask=names&pageSize=1001")
        .await;
    assert_eq!(status, 400);
    let (status, _) =
        api.get(ADMIN, DIRECTORY_READONLY, "/v1/people:listDirectoryPeople?readMask=names").await;
    assert_eq!(status, 400);
    let (status, _) = api
        .get(
            ADMIN,
            DIRECTORY_READONLY,
            "/v1/people:listDirectoryPeople?sources=DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT",
        )
        .await;
    assert_eq!(status, 400);
    let (status, _) = api
        .get(ADMIN, USERS_READONLY, "/v1/people:listDirectoryPeople?sources=DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT&readMask=names")
        .await;
    assert_eq!(status, 403);
    // The requests missing a required parameter were refused by the discovery
    // document (the page size by the handler); every answer matched its schema.
    let checks = api.emulator.as_ref().unwrap().checks();
    assert_eq!(
        (checks["invalid"].as_u64(), checks["invalidResponses"].as_u64()),
        (Some(2), Some(0)),
        "{checks}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_carry_custom_schemas_only_with_projection_custom_or_full() {
    let api = api(0);
    let user = "/admin/directory/v1/users/ann@example.com";
    let (_, basic) = api.get(ADMIN, USERS_READONLY, user).await;
    assert!(basic.get("customSchemas").is_none(), "{basic}");
    let (status, custom) = api
        .get(
            ADMIN,
            USERS_READONLY,
            &format!("{user}?projection=custom&customFieldMask=EmployeeInfo"),
        )
        .await;
    assert_eq!(status, 200, "{custom}");
    assert_eq!(custom["customSchemas"]["EmployeeInfo"]["EmployeeNumber"], "E-1001");
    assert!(custom["customSchemas"].get("Secret").is_none(), "{custom}");
    let (_, full) = api.get(ADMIN, USERS_READONLY, &format!("{user}?projection=full")).await;
    assert_eq!(full["customSchemas"]["Secret"]["Salary"], "1");
    let (_, list) = api
        .get(
            ADMIN,
            USERS_READONLY,
            "/admin/directory/v1/users?customer=my_customer&projection=custom&customFieldMask=EmployeeInfo",
        )
        .await;
    let with: Vec<&str> = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u.get("customSchemas").is_some())
        .map(|u| u["primaryEmail"].as_str().unwrap())
        .collect();
    assert_eq!(with, ["ann@example.com", "bob@example.com", "gina@example.com"]);
    let (status, _) = api
        .get(ADMIN, USERS_READONLY, &format!("{user}?projection=custom&customFieldMask=Nope"))
        .await;
    assert_eq!(status, 400);
    // The schemas, by their own scope.
    let schemas = "/admin/directory/v1/customer/my_customer/schemas";
    let (status, body) = api.get(ADMIN, USERSCHEMA_READONLY, schemas).await;
    assert_eq!(status, 200, "{body}");
    let info = body["schemas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["schemaName"] == "EmployeeInfo")
        .unwrap();
    let fields: Vec<(&str, bool)> = info["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["fieldName"].as_str().unwrap(), f["multiValued"].as_bool().unwrap()))
        .collect();
    assert_eq!(fields, [("Badges", true), ("EmployeeNumber", false)]);
    let (status, _) = api.get(ADMIN, USERS_READONLY, schemas).await;
    assert_eq!(status, 403);
    crate::harness::assert_google_traffic(api.emulator.as_ref().unwrap());
}
