//! The emulator's HTTP surface, as any client of Google's APIs sees it: limits,
//! pagination, scopes, etags, conflicts and error bodies.

use serde_json::{Value, json};

use crate::harness::{EmulatorThread, service_account};
use contact_sync::backend::google::auth::{Authenticator, ServiceAccountKey};
use contact_sync::backend::google::{CONTACTS, MEMBERS_READONLY, USERS_READONLY};
use contact_sync::emulator::Config;

struct Api {
    emulator: EmulatorThread,
    auth: Authenticator,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("tenant.yaml");
        std::fs::copy(crate::root().join("examples/workspace.yaml"), &data).unwrap();
        let (key_file, public) = service_account();
        let mut config = Config::new(data);
        config.trusted_key = Some(public);
        let emulator = EmulatorThread::start(config).unwrap();
        let http = reqwest::Client::new();
        let key = ServiceAccountKey::load(&key_file).unwrap();
        let auth =
            Authenticator::new(key, Some(format!("http://{}/token", emulator.addr)), http.clone())
                .unwrap();
        Self { emulator, auth, http, _dir: dir }
    }

    async fn call(
        &self,
        user: &str,
        scope: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.auth.token(user, scope).await.unwrap();
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.emulator.addr))
            .bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn get(&self, user: &str, scope: &str, path: &str) -> (u16, Value) {
        self.call(user, scope, reqwest::Method::GET, path, None).await
    }

    async fn post(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(user, CONTACTS, reqwest::Method::POST, path, Some(body)).await
    }
}

const ADMIN: &str = "admin@example.com";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn directory_lookups_pagination_and_scopes() {
    let api = Api::start();
    // An old address finds the renamed user, with the new primary address.
    let (status, user) =
        api.get(ADMIN, USERS_READONLY, "/admin/directory/v1/users/carol@example.com").await;
    assert_eq!((status, user["primaryEmail"].as_str()), (200, Some("caroline@example.com")));
    // And by immutable id.
    let (status, by_id) = api.get(ADMIN, USERS_READONLY, "/admin/directory/v1/users/2003").await;
    assert_eq!((status, by_id["primaryEmail"].as_str()), (200, Some("caroline@example.com")));
    let (status, body) =
        api.get(ADMIN, USERS_READONLY, "/admin/directory/v1/users/nobody@example.com").await;
    assert_eq!((status, body["error"]["code"].as_u64()), (404, Some(404)));
    // A token without the directory scope is refused.
    let (status, body) =
        api.get(ADMIN, CONTACTS, "/admin/directory/v1/users/carol@example.com").await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
    // Pages of two follow nextPageToken to every user; more than 500 is refused.
    let mut emails = Vec::new();
    let mut token = String::new();
    loop {
        let path = format!(
            "/admin/directory/v1/users?customer=my_customer&maxResults=2&pageToken={token}"
        );
        let (status, page) = api.get(ADMIN, USERS_READONLY, &path).await;
        assert_eq!(status, 200);
        emails.extend(
            page["users"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["primaryEmail"].as_str().unwrap().to_owned()),
        );
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!(emails.len(), 9);
    let (status, _) = api
        .get(ADMIN, USERS_READONLY, "/admin/directory/v1/users?customer=my_customer&maxResults=501")
        .await;
    assert_eq!(status, 400);
    // orgUnitPath queries include sub-units.
    let (_, page) = api.get(ADMIN, USERS_READONLY, "/admin/directory/v1/users?customer=my_customer&query=orgUnitPath%3D%27%2FAccounting%27").await;
    assert_eq!(page["users"].as_array().unwrap().len(), 5);
    // Nested groups: derived membership expands them, direct membership lists them.
    let (_, derived) = api.get(ADMIN, MEMBERS_READONLY, "/admin/directory/v1/groups/accounting@example.com/members?includeDerivedMembership=true").await;
    let derived: Vec<&str> = derived["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap())
        .collect();
    assert!(
        derived.contains(&"gina@example.com") && !derived.contains(&"finance-leads@example.com"),
        "{derived:?}"
    );
    let (_, direct) = api
        .get(ADMIN, MEMBERS_READONLY, "/admin/directory/v1/groups/accounting@example.com/members")
        .await;
    assert!(direct["members"].as_array().unwrap().iter().any(|m| m["type"] == "GROUP"));
    let (status, _) = api
        .get(
            ADMIN,
            MEMBERS_READONLY,
            "/admin/directory/v1/groups/accounting@example.com/members?maxResults=201",
        )
        .await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_limits_etags_and_conflicts() {
    let api = Api::start();
    let sam = "salesuser@example.com";
    let (status, body) = api.get(sam, CONTACTS, "/v1/people/me/connections").await;
    assert_eq!(status, 400, "personFields is required: {body}");
    let (status, _) =
        api.get(sam, CONTACTS, "/v1/people/me/connections?personFields=names&pageSize=1001").await;
    assert_eq!(status, 400);
    let (status, page) = api
        .get(
            sam,
            CONTACTS,
            "/v1/people/me/connections?personFields=names,phoneNumbers,memberships&pageSize=5",
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["connections"].as_array().unwrap().len(), 5);
    assert_eq!(page["totalPeople"], 8);
    assert!(page["nextPageToken"].is_string());
    // Output-only fields come back, as from Google.
    let ada = &page["connections"][0];
    assert_eq!(ada["names"][0]["displayName"], "Dr. Ada Lovelace");
    assert_eq!(ada["phoneNumbers"][0]["canonicalForm"], "+15550100");
    assert_eq!(ada["names"][0]["metadata"]["primary"], true);

    // batchGet: up to 200 names.
    let rn0 = page["connections"][0]["resourceName"].as_str().unwrap().to_owned();
    let rn1 = page["connections"][1]["resourceName"].as_str().unwrap().to_owned();
    let (status, got) = api
        .get(
            sam,
            CONTACTS,
            &format!(
                "/v1/people:batchGet?personFields=names&resourceNames={rn0}&resourceNames={rn1}"
            ),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(got["responses"].as_array().unwrap().len(), 2);
    let too_many: String = (0..201).map(|i| format!("&resourceNames=people/c{i}")).collect();
    let (status, _) =
        api.get(sam, CONTACTS, &format!("/v1/people:batchGet?personFields=names{too_many}")).await;
    assert_eq!(status, 400);

    // A group name in use is a 409.
    let (status, body) =
        api.post(sam, "/v1/contactGroups", json!({ "contactGroup": { "name": "Family" } })).await;
    assert_eq!((status, body["error"]["status"].as_str()), (409, Some("ALREADY_EXISTS")));

    // Batch limits.
    let many: Vec<Value> = (0..201)
        .map(|i| json!({ "contactPerson": { "names": [{ "givenName": format!("N{i}") }] } }))
        .collect();
    let (status, _) = api
        .post(
            sam,
            "/v1/people:batchCreateContacts",
            json!({ "contacts": many, "readMask": "names" }),
        )
        .await;
    assert_eq!(status, 400);
    let names: Vec<String> = (0..501).map(|i| format!("people/c{i}")).collect();
    let (status, _) =
        api.post(sam, "/v1/people:batchDeleteContacts", json!({ "resourceNames": names })).await;
    assert_eq!(status, 400);

    // Updates need the current etag: a stale one is FAILED_PRECONDITION.
    let rn = ada["resourceName"].as_str().unwrap();
    let etag = ada["etag"].as_str().unwrap();
    let update = |etag: &str| {
        json!({
            "contacts": { rn: { "etag": etag, "nicknames": [{ "value": "Lady Ada" }] } },
            "updateMask": "nicknames",
            "readMask": "nicknames",
        })
    };
    let (status, body) = api.post(sam, "/v1/people:batchUpdateContacts", update(etag)).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = api.post(sam, "/v1/people:batchUpdateContacts", update(etag)).await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("FAILED_PRECONDITION")));

    let stats = api.emulator.stats().await.unwrap();
    assert!(stats["total"].as_u64().unwrap() >= 8);
}
