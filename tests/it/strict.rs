//! The emulator is as strict as Google's front end, by Google's discovery
//! documents: one test per rule, over HTTP as any client sees it (status, the
//! canonical `status`, the offending path in Google's form, the
//! `google.rpc.BadRequest` detail, the count in `/_emulator/stats`); `--lenient`
//! serves what strict refuses; and every endpoint the emulator serves answers as
//! its response schema says, for direct calls and for a whole google-backend sync.

use serde_json::{Value, json};

use crate::emulator::{ADMIN, Api};
use crate::harness::{Seed, count};
use contact_sync::backend::google::{CONTACTS, MEMBERS_READONLY, USERS_READONLY};

const SAM: &str = "salesuser@example.com";

/// Asserts that an answer is Google's refusal: `code`, `status`, a message
/// containing `says`, and (for a 400) a field violation at `field`.
fn assert_refused(
    (code, body): &(u16, Value),
    want: u16,
    status: &str,
    says: &str,
    field: Option<&str>,
) {
    let error = &body["error"];
    assert_eq!((*code, error["status"].as_str()), (want, Some(status)), "{body}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message:?} does not say {says:?}");
    if want == 400 {
        let detail = &error["details"][0];
        assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.BadRequest", "{body}");
        assert_eq!(detail["fieldViolations"][0]["field"].as_str(), field, "{body}");
        assert_eq!(detail["fieldViolations"][0]["description"], message, "{body}");
    }
}

/// What the emulator counted as refused, and the messages it lists.
async fn refused(api: &Api) -> (u64, Vec<String>) {
    let stats = api.emulator.as_ref().unwrap().stats().await.unwrap();
    let messages = stats["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["message"].as_str().unwrap().to_owned())
        .collect();
    (stats["invalid"].as_u64().unwrap(), messages)
}

fn create(person: Value) -> Value {
    json!({ "contacts": [{ "contactPerson": person }], "readMask": "names" })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_unknown_name_is_refused_at_its_path() {
    let api = Api::start();
    let person =
        json!({ "phoneNumbers": [{ "value": "+1 555 0100", "type": "work", "primary": true }] });
    let answer = api.post(SAM, "/v1/people:batchCreateContacts", create(person)).await;
    let at = "contacts[0].contact_person.phone_numbers[0]";
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        &format!("Unknown name \"primary\" at '{at}': Cannot find field."),
        Some(at),
    );
    let (invalid, messages) = refused(&api).await;
    assert_eq!(invalid, 1);
    assert!(messages[0].contains(at), "{messages:?}");
    // Nothing was created.
    let (_, page) = api.get(SAM, CONTACTS, "/v1/people/me/connections?personFields=names").await;
    assert_eq!(page["totalItems"], 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_query_parameter_is_refused() {
    let api = Api::start();
    let answer = api.get(SAM, CONTACTS, "/v1/contactGroups?pageSize=10&parent=people/me").await;
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        "Unknown name \"parent\": Cannot bind query parameter. Field 'parent' could not be found \
         in request message.",
        None,
    );
    // The API's standard parameters are taken by every method.
    let (code, _) = api
        .get(ADMIN, USERS_READONLY, "/admin/directory/v1/users/2003?prettyPrint=false&fields=id")
        .await;
    assert_eq!(code, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_mask_path_is_refused() {
    let api = Api::start();
    let answer = api.get(SAM, CONTACTS, "/v1/people/me/connections?personFields=names,notes").await;
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        "Invalid personFields mask path: \"notes\".",
        Some("person_fields"),
    );
    // In a body too: an update may not name an output-only field.
    let update = json!({
        "contacts": { "people/c1": { "etag": "e" } },
        "updateMask": "names,photos",
        "readMask": "names",
    });
    let answer = api.post(SAM, "/v1/people:batchUpdateContacts", update).await;
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        "Invalid updateMask path: \"photos\".",
        Some("update_mask"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_value_of_the_wrong_type_is_refused() {
    let api = Api::start();
    let person = json!({ "names": [{ "givenName": 5 }] });
    let answer = api.post(SAM, "/v1/people:batchCreateContacts", create(person)).await;
    let at = "contacts[0].contact_person.names[0].given_name";
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        &format!("Invalid value at '{at}' (TYPE_STRING), 5"),
        Some(at),
    );
    let answer = api.get(SAM, CONTACTS, "/v1/contactGroups?pageSize=many").await;
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        "Invalid value at 'page_size' (TYPE_INT32), \"many\"",
        Some("page_size"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_where_an_object_belongs_and_an_object_where_a_list_belongs_are_refused() {
    let api = Api::start();
    let person = json!({ "birthdays": [{ "date": [{ "year": 1815 }] }] });
    let answer = api.post(SAM, "/v1/people:batchCreateContacts", create(person)).await;
    let at = "contacts[0].contact_person.birthdays[0]";
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        &format!(
            "Unknown name \"date\" at '{at}': Proto field is not repeating, cannot start list."
        ),
        Some(at),
    );
    let person = json!({ "emailAddresses": { "value": "ada@acme.test" } });
    let answer = api.post(SAM, "/v1/people:batchCreateContacts", create(person)).await;
    let at = "contacts[0].contact_person.email_addresses";
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        &format!("Invalid value at '{at}' (type.googleapis.com/google.people.v1.EmailAddress)"),
        Some(at),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_parameter_is_refused() {
    let api = Api::start();
    let answer = api.get(SAM, CONTACTS, "/v1/people:batchGet?resourceNames=people/c1").await;
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        "personFields mask is required. Please specify one or more valid paths.",
        Some("person_fields"),
    );
    let body = json!({ "contacts": [{ "contactPerson": { "names": [{ "givenName": "A" }] } }] });
    let answer = api.post(SAM, "/v1/people:batchCreateContacts", body).await;
    assert_refused(&answer, 400, "INVALID_ARGUMENT", "readMask is required.", Some("read_mask"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_enum_value_is_refused() {
    let api = Api::start();
    let person = json!({ "biographies": [{ "value": "Hi", "contentType": "TEXT_MARKDOWN" }] });
    let answer = api.post(SAM, "/v1/people:batchCreateContacts", create(person)).await;
    let at = "contacts[0].contact_person.biographies[0].content_type";
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        &format!("Invalid value at '{at}' (TYPE_ENUM), \"TEXT_MARKDOWN\""),
        Some(at),
    );
    let answer =
        api.get(ADMIN, USERS_READONLY, "/admin/directory/v1/users/2003?viewType=everything").await;
    assert_refused(
        &answer,
        400,
        "INVALID_ARGUMENT",
        "(TYPE_ENUM), \"everything\"",
        Some("view_type"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_or_verb_is_not_found() {
    let api = Api::start();
    let answer = api.get(SAM, CONTACTS, "/v1/people/me/friends").await;
    assert_refused(&answer, 404, "NOT_FOUND", "/v1/people/me/friends", None);
    let answer = api.post(SAM, "/v1/people:batchMergeContacts", json!({})).await;
    assert_refused(&answer, 404, "NOT_FOUND", "/v1/people:batchMergeContacts", None);
    let (code, _) = api
        .call(
            SAM,
            CONTACTS,
            reqwest::Method::PATCH,
            "/v1/contactGroups/myContacts",
            Some(json!({})),
        )
        .await;
    assert_eq!(code, 404, "contactGroups are updated with PUT");
    // A method of Google's that the emulator does not serve says so.
    let answer = api.post(SAM, "/v1/people:createContact?personFields=names", json!({})).await;
    assert_refused(&answer, 501, "UNIMPLEMENTED", "people.people.createContact", None);
    assert_eq!(refused(&api).await.0, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lenient_serves_what_strict_refuses() {
    let api = Api::start_with(|c| c.lenient = true);
    let person = json!({ "names": [{ "givenName": "Ada", "nickname": "Countess" }] });
    let (code, body) = api.post(SAM, "/v1/people:batchCreateContacts", create(person)).await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = api.get(SAM, CONTACTS, "/v1/contactGroups?parent=people/me").await;
    assert_eq!(code, 200);
    assert_eq!(refused(&api).await.0, 0);
}

/// The group of `SAM` called `name`: (resourceName, etag).
async fn group(api: &Api, name: &str) -> (String, String) {
    let (_, groups) = api.get(SAM, CONTACTS, "/v1/contactGroups?groupFields=name").await;
    let g = groups["contactGroups"].as_array().unwrap().iter().find(|g| g["name"] == name).unwrap();
    (g["resourceName"].as_str().unwrap().to_owned(), g["etag"].as_str().unwrap().to_owned())
}

/// Sends `(method, path, body)` as `SAM` and asserts a 2xx answer.
async fn ok(api: &Api, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let (code, answer) = api.call(SAM, CONTACTS, method, path, body).await;
    assert!((200..300).contains(&code), "{path}: {code} {answer}");
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_answers_as_its_response_schema_says() {
    use reqwest::Method as M;
    let emulated = Api::start_with(|c| c.check_responses = true);
    let api = &emulated;
    let get = |user: &'static str, scope: &'static str, path: &'static str| async move {
        let (code, body) = api.get(user, scope, path).await;
        assert_eq!(code, 200, "{path}: {body}");
    };
    get(ADMIN, USERS_READONLY, "/admin/directory/v1/users/carol@example.com").await;
    get(
        ADMIN,
        USERS_READONLY,
        "/admin/directory/v1/users?customer=my_customer&viewType=admin_view",
    )
    .await;
    get(ADMIN, MEMBERS_READONLY, "/admin/directory/v1/groups/accounting@example.com/members").await;
    let all = "names,nicknames,emailAddresses,phoneNumbers,addresses,organizations,biographies,\
               urls,birthdays,occupations,events,imClients,userDefined,relations,memberships,\
               clientData,metadata";
    let page =
        ok(api, M::GET, &format!("/v1/people/me/connections?personFields={all}"), None).await;
    let people = page["connections"].as_array().unwrap();
    let (rn, etag) =
        (people[0]["resourceName"].as_str().unwrap(), people[0]["etag"].as_str().unwrap());
    ok(
        api,
        M::GET,
        &format!(
            "/v1/people:batchGet?personFields={all}&resourceNames={rn}&resourceNames=people/c404"
        ),
        None,
    )
    .await;
    let created = ok(
        api,
        M::POST,
        "/v1/people:batchCreateContacts",
        // Read back in full: a nickname's and a location's `type` has no
        // `formattedType` beside it, unlike a phone number's.
        Some(json!({ "contacts": [{ "contactPerson": {
            "names": [{ "givenName": "Emmy", "familyName": "Noether" }],
            "nicknames": [{ "value": "Emmy", "type": "ALTERNATE_NAME" }],
            "locations": [{ "value": "Erlangen", "type": "desk" }],
            "phoneNumbers": [{ "value": "+49 9131 0", "type": "work" }],
            "clientData": [{ "key": "k", "value": "v" }],
        }}], "readMask": format!("{all},locations") })),
    )
    .await;
    let new = created["createdPeople"][0]["person"]["resourceName"].as_str().unwrap().to_owned();
    ok(
        api,
        M::POST,
        "/v1/people:batchUpdateContacts",
        Some(json!({
            "contacts": { rn: { "etag": etag, "nicknames": [{ "value": "Lady Ada" }] } },
            "updateMask": "nicknames",
            "readMask": all,
        })),
    )
    .await;
    let made = ok(
        api,
        M::POST,
        "/v1/contactGroups",
        Some(json!({
            "contactGroup": { "name": "Strict", "clientData": [{ "key": "k", "value": "v" }] },
            "readGroupFields": "clientData,groupType,metadata,name",
        })),
    )
    .await;
    let made_rn = made["resourceName"].as_str().unwrap().to_owned();
    let modify = format!("/v1/{made_rn}/members:modify");
    ok(api, M::POST, &modify, Some(json!({ "resourceNamesToAdd": [new, "people/c404"] }))).await;
    ok(
        api,
        M::GET,
        &format!(
            "/v1/{made_rn}?maxMembers=10&groupFields=clientData,groupType,memberCount,metadata,name"
        ),
        None,
    )
    .await;
    let (family, family_etag) = group(api, "Family").await;
    ok(
        api,
        M::PUT,
        &format!("/v1/{family}"),
        Some(json!({
            "contactGroup": { "resourceName": family, "etag": family_etag, "name": "Kin" },
            "updateGroupFields": "name",
            "readGroupFields": "groupType,memberCount,metadata,name",
        })),
    )
    .await;
    ok(api, M::GET, "/v1/contactGroups?pageSize=1000&groupFields=clientData,groupType,memberCount,metadata,name", None).await;
    ok(api, M::POST, "/v1/people:batchDeleteContacts", Some(json!({ "resourceNames": [new] })))
        .await;
    ok(api, M::DELETE, &format!("/v1/{made_rn}?deleteContacts=false"), None).await;

    let stats = api.emulator.as_ref().unwrap().stats().await.unwrap();
    assert_eq!(stats["invalid"], 0, "{stats:#}");
    assert_eq!(stats["invalidResponses"], 0, "{stats:#}");
    assert_eq!(stats["checkedResponses"], answered(&stats), "every answer was checked: {stats:#}");
    assert_eq!(answered(&stats), 15);
}

/// API requests answered with a 2xx, by the emulator's own count.
fn answered(stats: &Value) -> u64 {
    stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["endpoint"] != "POST /token")
        .filter(|r| (200..300).contains(&r["status"].as_u64().unwrap()))
        .map(|r| r["count"].as_u64().unwrap())
        .sum()
}

/// A whole sync on the google backend (plan, apply, plan again): every request
/// it sent was one Google takes, and every answer was checked against its
/// schema (the harness's own check, on drop, would fail the test otherwise).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_google_sync_sends_only_what_google_takes_and_gets_googles_answers() {
    let seed = Seed::google();
    seed.converge().await;
    let stats = seed.stats().await;
    assert!(count(&stats, "POST /v1/people:batchCreateContacts", Some(200)) > 0, "{stats}");
    assert_eq!(stats["invalid"], 0, "{stats:#}");
    assert_eq!(stats["invalidResponses"], 0, "{stats:#}");
    assert_eq!(stats["checkedResponses"], answered(&stats), "every answer was checked: {stats:#}");
}
