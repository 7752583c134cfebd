//! The emulator's sync tokens, as Google documents them: `nextSyncToken` on the
//! last page, incremental listings with tombstones, expiry, refusals, sync lag,
//! restarts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::emulator::Api;
use contact_sync::backend::google::CONTACTS;
use contact_sync::emulator::Config;

const SAM: &str = "salesuser@example.com";
const CONNECTIONS: &str = "/v1/people/me/connections?personFields=names&pageSize=2";

/// Every page of `path` (which has a query): the items under `key`, and the last
/// page's `nextSyncToken`; asserts that no earlier page carries one.
async fn pages(api: &Api, path: &str, key: &str) -> (Vec<Value>, String) {
    let mut items = Vec::new();
    let mut token = String::new();
    loop {
        let (status, page) = api.get(SAM, CONTACTS, &format!("{path}&pageToken={token}")).await;
        assert_eq!(status, 200, "{page}");
        items.extend(page[key].as_array().cloned().unwrap_or_default());
        match page["nextPageToken"].as_str() {
            Some(t) => {
                assert!(page.get("nextSyncToken").is_none(), "a token before the last page");
                token = t.to_owned();
            }
            None => return (items, page["nextSyncToken"].as_str().expect("a sync token").into()),
        }
    }
}

fn since(token: &str) -> String {
    format!("{CONNECTIONS}&requestSyncToken=true&syncToken={token}")
}

fn names(items: &[Value]) -> Vec<String> {
    items.iter().map(|p| p["names"][0]["givenName"].as_str().unwrap_or("-").to_owned()).collect()
}

fn checked(adjust: impl FnOnce(&mut Config)) -> Api {
    Api::start_with(|c| {
        c.check_responses = true;
        adjust(c);
    })
}

fn assert_clean(api: &Api) {
    let checks = api.emulator.as_ref().unwrap().checks();
    assert_eq!(checks["invalidResponses"], 0, "{checks}");
    assert_eq!(checks["invalid"], 0, "{checks}");
}

async fn create(api: &Api, name: &str) -> Value {
    create_all(api, &[name]).await.remove(0)
}

async fn create_all(api: &Api, names: &[&str]) -> Vec<Value> {
    let contacts: Vec<Value> = names
        .iter()
        .map(|n| json!({ "contactPerson": { "names": [{ "givenName": n }] } }))
        .collect();
    let body = json!({ "contacts": contacts, "readMask": "names" });
    let (status, out) = api.post(SAM, "/v1/people:batchCreateContacts", body).await;
    assert_eq!(status, 200, "{out}");
    out["createdPeople"].as_array().unwrap().iter().map(|p| p["person"].clone()).collect()
}

async fn error(api: &Api, path: &str) -> (u16, Value) {
    let (status, body) = api.get(SAM, CONTACTS, path).await;
    (status, body["error"].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_tokens_list_what_changed_and_tombstones() {
    let api = checked(|_| {});
    let full = format!("{CONNECTIONS}&requestSyncToken=true");
    let (all, token) = pages(&api, &full, "connections").await;
    assert!(all.len() > 2);
    // Nothing changed: an empty listing, with a new token.
    let (changed, token) = pages(&api, &since(&token), "connections").await;
    assert!(changed.is_empty(), "{changed:?}");

    let made = create(&api, "Newton").await;
    let rn = made["resourceName"].as_str().unwrap().to_owned();
    let (changed, token) = pages(&api, &since(&token), "connections").await;
    assert_eq!(names(&changed), ["Newton"]);

    let update = json!({
        "contacts": { &rn: { "etag": made["etag"], "names": [{ "givenName": "Isaac" }] } },
        "updateMask": "names", "readMask": "names",
    });
    let (status, body) = api.post(SAM, "/v1/people:batchUpdateContacts", update).await;
    assert_eq!(status, 200, "{body}");
    let (changed, token) = pages(&api, &since(&token), "connections").await;
    assert_eq!(names(&changed), ["Isaac"]);

    let (status, body) =
        api.post(SAM, "/v1/people:batchDeleteContacts", json!({ "resourceNames": [&rn] })).await;
    assert_eq!(status, 200, "{body}");
    let (changed, token) = pages(&api, &since(&token), "connections").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["resourceName"], rn.as_str());
    assert_eq!(changed[0]["metadata"]["deleted"], true);
    assert!(changed[0]["etag"].is_string());

    // An edit made beside the API (as in the Contacts app) is listed too.
    api.emulator.as_ref().unwrap().with_store(|s| {
        let c = s.contacts(SAM).unwrap().remove(0);
        s.delete_contacts(SAM, &[c.resource_name]).unwrap();
    });
    let (changed, token) = pages(&api, &since(&token), "connections").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(changed[0]["metadata"]["deleted"], true);

    // Incremental listings are paginated like full ones.
    create_all(&api, &["P0", "P1", "P2", "P3", "P4"]).await;
    let (changed, _) = pages(&api, &since(&token), "connections").await;
    assert_eq!(names(&changed), ["P0", "P1", "P2", "P3", "P4"]);

    // Refusals: other fields, garbage, another user's, the other listing's.
    let (status, e) = error(
        &api,
        &format!("/v1/people/me/connections?personFields=names,emailAddresses&syncToken={token}"),
    )
    .await;
    assert_eq!((status, e["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{e}");
    let (status, e) =
        error(&api, &format!("{CONNECTIONS}&sortOrder=FIRST_NAME_ASCENDING&syncToken={token}"))
            .await;
    assert_eq!((status, e["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{e}");
    // sortOrder equal to the original's (the default) is allowed.
    let (status, _) =
        error(&api, &format!("{CONNECTIONS}&sortOrder=LAST_MODIFIED_ASCENDING&syncToken={token}"))
            .await;
    assert_eq!(status, 200);
    let (status, e) = error(&api, &since("garbage")).await;
    assert_eq!((status, e["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{e}");
    let (status, page) = api.get("ann@example.com", CONTACTS, &since(&token)).await;
    assert_eq!((status, page["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    let (_, groups) = api.get(SAM, CONTACTS, "/v1/contactGroups").await;
    let groups_token = groups["nextSyncToken"].as_str().unwrap();
    let (status, e) = error(&api, &since(groups_token)).await;
    assert_eq!((status, e["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{e}");
    // A page token goes with the sync token that gave it.
    let (_, first) = api.get(SAM, CONTACTS, &format!("{CONNECTIONS}&requestSyncToken=true")).await;
    let page = first["nextPageToken"].as_str().unwrap();
    let (status, e) = error(&api, &format!("{}&pageToken={page}", since(&token))).await;
    assert_eq!((status, e["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{e}");
    assert_clean(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_listings_always_carry_a_token_and_list_changed_groups() {
    let api = checked(|_| {});
    let list = "/v1/contactGroups?pageSize=2";
    let (groups, token) = pages(&api, list, "contactGroups").await;
    assert!(groups.len() > 2);
    let since = |t: &str| format!("{list}&syncToken={t}");
    let (changed, token) = pages(&api, &since(&token), "contactGroups").await;
    assert!(changed.is_empty(), "{changed:?}");

    let (status, group) =
        api.post(SAM, "/v1/contactGroups", json!({ "contactGroup": { "name": "Chess" } })).await;
    assert_eq!(status, 200, "{group}");
    let rn = group["resourceName"].as_str().unwrap().to_owned();
    let (changed, token) = pages(&api, &since(&token), "contactGroups").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["name"], "Chess");

    let rename = json!({ "contactGroup": { "name": "Go", "etag": group["etag"] } });
    let (status, body) =
        api.call(SAM, CONTACTS, reqwest::Method::PUT, &format!("/v1/{rn}"), Some(rename)).await;
    assert_eq!(status, 200, "{body}");
    let (changed, token) = pages(&api, &since(&token), "contactGroups").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0]["name"], "Go");

    // A membership change changes the memberCount: the group is listed.
    let person = create(&api, "Member").await;
    let (_, token) = pages(&api, &since(&token), "contactGroups").await;
    let add = json!({ "resourceNamesToAdd": [person["resourceName"]] });
    let (status, body) = api.post(SAM, &format!("/v1/{rn}/members:modify"), add).await;
    assert_eq!(status, 200, "{body}");
    let (changed, token) = pages(&api, &since(&token), "contactGroups").await;
    assert_eq!(changed.len(), 1, "{changed:?}");
    assert_eq!(
        (changed[0]["name"].as_str(), changed[0]["memberCount"].as_u64()),
        (Some("Go"), Some(1))
    );

    let (status, body) =
        api.call(SAM, CONTACTS, reqwest::Method::DELETE, &format!("/v1/{rn}"), None).await;
    assert_eq!(status, 200, "{body}");
    let (changed, _) = pages(&api, &since(&token), "contactGroups").await;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        (changed[0]["resourceName"].as_str(), &changed[0]["metadata"]["deleted"]),
        (Some(rn.as_str()), &json!(true))
    );
    assert_clean(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_is_refused_as_google_refuses_it() {
    let api = checked(|c| c.sync_token_ttl = Duration::from_millis(300));
    let (_, token) =
        pages(&api, &format!("{CONNECTIONS}&requestSyncToken=true"), "connections").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, e) = error(&api, &since(&token)).await;
    assert_eq!(status, 400);
    assert_eq!(e["status"], "FAILED_PRECONDITION");
    assert_eq!(
        e["message"],
        "Sync token is expired. Clear local cache and retry call without the sync token."
    );
    let detail = &e["details"][0];
    assert_eq!(detail["@type"], "type.googleapis.com/google.rpc.ErrorInfo");
    assert_eq!(detail["reason"], "EXPIRED_SYNC_TOKEN");
    assert_eq!(detail["domain"], "googleapis.com");
    assert_clean(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_lag_hides_a_write_from_incremental_listings_only_for_a_while() {
    let api = checked(|c| c.sync_lag = Duration::from_millis(800));
    let full = format!("{CONNECTIONS}&requestSyncToken=true");
    let (before, token) = pages(&api, &full, "connections").await;
    create(&api, "Late").await;
    let (changed, later) = pages(&api, &since(&token), "connections").await;
    assert!(changed.is_empty(), "{changed:?}");
    let (all, _) = pages(&api, &full, "connections").await;
    assert_eq!(all.len(), before.len() + 1, "the full listing is current");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (changed, _) = pages(&api, &since(&later), "connections").await;
    assert_eq!(names(&changed), ["Late"]);
    assert_clean(&api);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_emulator_expires_its_tokens_and_another_refuses_them() {
    let mut api = checked(|_| {});
    let (_, token) =
        pages(&api, &format!("{CONNECTIONS}&requestSyncToken=true"), "connections").await;
    // Another emulator, of other data, refuses the token as invalid.
    let other = checked(|_| {});
    let (status, page) = other.get(SAM, CONTACTS, &since(&token)).await;
    assert_eq!((status, page["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    // The same data served again: the journal is gone, the token expired.
    api.restart();
    let (status, e) = error(&api, &since(&token)).await;
    assert_eq!((status, e["status"].as_str()), (400, Some("FAILED_PRECONDITION")), "{e}");
    assert_eq!(e["details"][0]["reason"], "EXPIRED_SYNC_TOKEN");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_count_request_and_response_bytes() {
    let api = checked(|_| {});
    create(&api, "Bytes").await;
    let stats = api.emulator.as_ref().unwrap().stats().await.unwrap();
    assert!(stats["requestBytes"].as_u64().unwrap() > 0, "{stats}");
    assert!(stats["responseBytes"].as_u64().unwrap() > 0, "{stats}");
    let create = stats["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"] == "POST /v1/people:batchCreateContacts")
        .unwrap();
    assert!(create["requestBytes"].as_u64().unwrap() > 20, "{create}");
    assert!(create["responseBytes"].as_u64().unwrap() > 20, "{create}");
    assert_eq!(create["count"], 1);
}
