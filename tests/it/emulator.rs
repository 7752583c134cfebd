//! The emulator's HTTP surface, as any client of Google's APIs sees it: limits,
//! pagination, scopes, etags, conflicts and error bodies.

use serde_json::{Value, json};

use crate::harness::{EmulatorThread, service_account};
use contact_sync::backend::google::auth::{Authenticator, ServiceAccountKey};
use contact_sync::backend::google::{CONTACTS, MEMBERS_READONLY, USERS_READONLY};
use contact_sync::backend::local::LocalBackend;
use contact_sync::emulator::Config;

/// An emulator serving the example tenant, and a client with tokens for it.
pub(crate) struct Api {
    pub(crate) emulator: Option<EmulatorThread>,
    pub(crate) addr: std::net::SocketAddr,
    auth: Authenticator,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Api {
    pub(crate) fn start() -> Self {
        Self::start_with(|_| {})
    }

    /// [`Api::start`] with the emulator's configuration adjusted.
    pub(crate) fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("tenant.yaml");
        std::fs::copy(crate::root().join("examples/workspace.yaml"), &data).unwrap();
        let (key_file, public) = service_account();
        let mut config = Config::new(data);
        config.trusted_key = Some(public);
        adjust(&mut config);
        let emulator = EmulatorThread::start(config).unwrap();
        let http = reqwest::Client::new();
        let key = ServiceAccountKey::load(&key_file).unwrap();
        let auth =
            Authenticator::new(key, Some(format!("http://{}/token", emulator.addr)), http.clone())
                .unwrap();
        Self { addr: emulator.addr, emulator: Some(emulator), auth, http, _dir: dir }
    }

    /// Sends a request as `user` with a token for `scope`: (status, JSON body).
    pub(crate) async fn call(
        &self,
        user: &str,
        scope: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let token = self.auth.token(user, scope).await.unwrap();
        let mut req =
            self.http.request(method, format!("http://{}{path}", self.addr)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) async fn get(&self, user: &str, scope: &str, path: &str) -> (u16, Value) {
        self.call(user, scope, reqwest::Method::GET, path, None).await
    }

    /// Stops the emulator and starts another on the same address and data, with
    /// new tokens for it (a restart forgets them, as at Google).
    pub(crate) fn restart(&mut self) {
        drop(self.emulator.take());
        let (key_file, public) = service_account();
        let mut config = Config::new(self.data());
        config.trusted_key = Some(public);
        config.check_responses = true;
        self.emulator = Some(EmulatorThread::start_on(config, self.addr).unwrap());
        let key = ServiceAccountKey::load(&key_file).unwrap();
        let token_uri = Some(format!("http://{}/token", self.addr));
        self.auth = Authenticator::new(key, token_uri, self.http.clone()).unwrap();
    }

    /// The data file the emulator serves.
    pub(crate) fn data(&self) -> std::path::PathBuf {
        self._dir.path().join("tenant.yaml")
    }

    pub(crate) async fn post(&self, user: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(user, CONTACTS, reqwest::Method::POST, path, Some(body)).await
    }
}

pub(crate) const ADMIN: &str = "admin@example.com";

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

    let stats = api.emulator.as_ref().unwrap().stats().await.unwrap();
    assert!(stats["total"].as_u64().unwrap() >= 8);
}

/// `count` new contacts for a batchCreateContacts body, named `{tag}-{i}`.
fn batch(tag: &str, count: usize) -> Value {
    let contacts: Vec<Value> = (0..count)
        .map(|i| json!({ "contactPerson": { "names": [{ "givenName": format!("{tag}-{i}") }] } }))
        .collect();
    json!({ "contacts": contacts, "readMask": "names" })
}

/// Every contact of `user` the API serves: (resourceName, etag, names).
async fn served(api: &Api, user: &str) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let path =
            format!("/v1/people/me/connections?personFields=names&pageSize=3&pageToken={token}");
        let (status, page) = api.get(user, CONTACTS, &path).await;
        assert_eq!(status, 200, "{page}");
        for p in page["connections"].as_array().unwrap() {
            let text = |k: &str| p[k].as_str().unwrap().to_owned();
            out.push((text("resourceName"), text("etag"), p["names"][0]["givenName"].clone()));
        }
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_owned(),
            None => return out,
        }
    }
}

/// The writes an emulator answered are there after a restart, and `--export`
/// writes the tenant exactly as the API serves it, while the emulator runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_survive_a_restart_and_the_export_is_what_the_api_serves() {
    let sam = "salesuser@example.com";
    let mut api = Api::start();
    let (status, body) = api.post(sam, "/v1/people:batchCreateContacts", batch("new", 5)).await;
    assert_eq!(status, 200, "{body}");
    let before = served(&api, sam).await;
    assert_eq!(before.len(), 13);

    let data = api._dir.path().join("tenant.yaml");
    let out = api._dir.path().join("export.yaml");
    crate::contact_sync()
        .args(["emulator", "--data"])
        .arg(&data)
        .arg("--export")
        .arg(&out)
        .assert()
        .success();
    let exported = LocalBackend::open(&out).unwrap();
    let contacts = exported.with_store(|s| s.contacts(sam).unwrap());
    let listed: Vec<_> = contacts
        .iter()
        .map(|c| {
            (c.resource_name.clone(), c.etag.clone(), c.fields["names"][0]["givenName"].clone())
        })
        .collect();
    assert_eq!(listed, before, "the export is what the API serves");

    // A restart, on the same address and data: the writes and their etags are there.
    drop(api.emulator.take());
    let (_, public) = service_account();
    let mut config = Config::new(data.clone());
    config.trusted_key = Some(public);
    api.emulator = Some(EmulatorThread::start_on(config, api.addr).unwrap());
    // Tokens are forgotten by a restart, as at Google.
    let key = ServiceAccountKey::load(&service_account().0).unwrap();
    let token_uri = Some(format!("http://{}/token", api.addr));
    api.auth = Authenticator::new(key, token_uri, api.http.clone()).unwrap();
    assert_eq!(served(&api, sam).await, before);
    // And the data file, written back when the emulator stopped, holds them too.
    let file = LocalBackend::open(&data).unwrap();
    assert_eq!(file.with_store(|s| s.contacts(sam).unwrap()), contacts);
}

/// An emulator killed (SIGKILL) while it writes loses none of the writes it
/// answered and applies no batch half; its data file is left as it was, and the
/// next emulator serves those writes and writes them back when it stops.
#[test]
fn a_killed_emulator_keeps_every_write_it_answered() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("tenant.yaml");
    std::fs::copy(crate::root().join("examples/workspace.yaml"), &data).unwrap();
    let original = std::fs::read_to_string(&data).unwrap();
    let (key_file, public) = service_account();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("contact-sync"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--trust-key"])
        .arg(&key_file)
        .arg("--data")
        .arg(&data)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("the emulator announces its address").unwrap();
        if let Some(addr) = line.split(" on http://").nth(1) {
            break addr.to_owned();
        }
    };
    let sam = "salesuser@example.com";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let answered = rt.block_on(async {
        let http = reqwest::Client::new();
        let key = ServiceAccountKey::load(&key_file).unwrap();
        let auth =
            Authenticator::new(key, Some(format!("http://{addr}/token")), http.clone()).unwrap();
        let token = auth.token(sam, CONTACTS).await.unwrap();
        let send = move |round: usize| {
            http.post(format!("http://{addr}/v1/people:batchCreateContacts"))
                .bearer_auth(&token)
                .json(&batch(&format!("r{round}"), 200))
                .send()
        };
        let mut answered = 0;
        for round in 0..3 {
            assert_eq!(send(round).await.unwrap().status(), 200);
            answered += 200;
        }
        // One more on its way when the process is killed.
        let last = tokio::spawn(send(3));
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
        child.kill().unwrap();
        child.wait().unwrap();
        if last.await.unwrap().is_ok_and(|r| r.status() == 200) {
            answered += 200;
        }
        answered
    });
    assert_eq!(std::fs::read_to_string(&data).unwrap(), original, "the file is as it was");

    let mut config = Config::new(data.clone());
    config.trusted_key = Some(public);
    let emulator = EmulatorThread::start(config).unwrap();
    let count = emulator.with_store(|s| s.contacts(sam).unwrap().len());
    assert!(
        count == 8 + answered || count == 8 + answered + 200,
        "{count} contacts after {answered} answered: a batch was lost or applied in part"
    );
    drop(emulator);
    let file = LocalBackend::open(&data).unwrap();
    assert_eq!(file.with_store(|s| s.contacts(sam).unwrap().len()), count, "written back");
}
