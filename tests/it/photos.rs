//! Photos (issue 20): a source contact's photo, and a directory user's, reach every
//! copy once; a no-change run sends and downloads nothing; a changed photo is one
//! write per copy, a removed one a `deleteContactPhoto` per copy; each apply is
//! followed by an empty plan. On both backends, and the emulator's photo endpoints
//! refuse what Google refuses.

use serde_json::{Value, json};

use crate::emulator::Api;
use crate::harness::{SYNC, Seed, count};
use contact_sync::backend::tenant::TenantFile;
use contact_sync::model::photo::{MARKER_PHOTO, encode_base64};
use contact_sync::model::{Contact, client_data};
use contact_sync::plan::{Plan, Status};

/// A PNG by its signature (the backends and the emulator check no more).
fn png(tag: &str) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend(tag.as_bytes());
    bytes
}

/// A JPEG by its signature.
fn jpeg(tag: &str) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend(tag.as_bytes());
    bytes
}

/// Sets (or with `None` removes) the photo of `user`'s contact whose given name is
/// `given`, in the workspace file.
fn set_contact_photo(t: &mut TenantFile, user: &str, given: &str, bytes: Option<&[u8]>) {
    let u = t.users.iter_mut().find(|u| u.primary_email == user).unwrap();
    let c = u
        .contacts
        .iter_mut()
        .find(|c| c.fields["names"][0]["givenName"] == given)
        .unwrap_or_else(|| panic!("{user} has no contact {given}"));
    match bytes {
        Some(b) => {
            c.fields.insert("photoData".into(), encode_base64(b).into());
        }
        None => {
            c.fields.shift_remove("photoData");
        }
    }
}

/// Photo requests the emulator answered so far: (photo writes, photo removals,
/// downloads of contact photo URLs, directory photo reads); zeros on the local
/// backend, which makes no request.
async fn photo_requests(seed: &Seed) -> [u64; 4] {
    if seed.emulator.is_none() {
        return [0; 4];
    }
    let stats = seed.stats().await;
    [
        count(&stats, "PATCH /v1/people/{id}", None),
        count(&stats, "DELETE /v1/people/{id}", None),
        count(&stats, "GET /_photos/{*path}", None),
        count(&stats, "GET /admin/directory/v1/users/{user_key}/photos/thumbnail", None),
    ]
}

fn delta(after: [u64; 4], before: [u64; 4]) -> [u64; 4] {
    [0, 1, 2, 3].map(|i| after[i] - before[i])
}

/// The photo changes of a plan: (destination, contact, field change as JSON).
fn photo_changes(plan: &Plan) -> Vec<(String, String, Value)> {
    plan.syncs
        .iter()
        .flat_map(|s| &s.destinations)
        .flat_map(|d| d.changes.iter().map(move |c| (d, c)))
        .filter(|(_, c)| c.fields.iter().any(|f| f.field == "photo"))
        .map(|(d, c)| (d.user.clone(), c.name.clone(), serde_json::to_value(&c.fields).unwrap()))
        .collect()
}

/// The copies named `name` of every destination that has one.
async fn copies(seed: &Seed, plan: &Plan, name: &str) -> Vec<Contact> {
    let mut out = Vec::new();
    for d in plan.syncs.iter().flat_map(|s| &s.destinations) {
        if d.status == Status::Skipped || d.status == Status::Error {
            continue;
        }
        let all = seed.contacts(&d.user).await;
        out.extend(all.into_iter().filter(|c| c.display_name().starts_with(name)));
    }
    out
}

/// The bytes of a copy's photo, read from the tenant.
fn photo_of(seed: &Seed, user: &str, c: &Contact) -> Option<Vec<u8>> {
    seed.backend().with_store(|s| s.contact_photo(user, &c.resource_name)).unwrap()
}

/// Which users hold the copies the first plan makes.
fn destinations(plan: &Plan) -> Vec<String> {
    plan.syncs
        .iter()
        .filter(|s| s.name == SYNC)
        .flat_map(|s| &s.destinations)
        .filter(|d| d.status == Status::Changes)
        .map(|d| d.user.clone())
        .collect()
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn local() {
                super::$name(crate::harness::Seed::new()).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn google() {
                // Google's per-user quotas, in a window of 5 seconds rather than a
                // minute: each photo write spends them, and this test writes a lot.
                let window = std::time::Duration::from_secs(5);
                super::$name(crate::harness::Seed::google_with(|c| c.limits.window = window)).await
            }
        }
    )*};
}

on_both_backends!(
    contact_photos_reach_every_copy_once_and_follow_the_source,
    directory_photos_reach_every_copy_once,
    a_selection_without_photo_leaves_photos_alone
);

/// `fields: {exclude: [photo]}`: no photo is planned, downloaded or sent; taking
/// the exclusion out again sends them.
async fn a_selection_without_photo_leaves_photos_alone(seed: Seed) {
    let google = seed.emulator.is_some();
    let manifest = seed.read(&format!("syncs/{SYNC}.yaml"));
    seed.write(
        &format!("syncs/{SYNC}.yaml"),
        &format!("{manifest}  fields: {{ exclude: [photo] }}\n"),
    );
    let ada = png("ada");
    seed.edit_file(|t| set_contact_photo(t, "salesuser@example.com", "Ada", Some(&ada)));
    let before = photo_requests(&seed).await;
    let plan = seed.plan().await;
    assert!(plan.summary.has_changes(), "the contacts are still copied");
    assert_eq!(photo_changes(&plan), Vec::new());
    seed.converge().await;
    assert_eq!(delta(photo_requests(&seed).await, before), [0; 4]);
    let users = destinations(&plan);
    for (user, copy) in users.iter().zip(&copies(&seed, &plan, "Ada").await) {
        assert_eq!(photo_of(&seed, user, copy), None, "{user}");
        assert_eq!(client_data(&copy.client_data, MARKER_PHOTO), None);
    }

    // The photo is selected again: every copy of Ada gets it, once.
    seed.write(&format!("syncs/{SYNC}.yaml"), &manifest);
    let plan = seed.plan().await;
    assert_eq!(photo_changes(&plan).len(), users.len(), "{:?}", photo_changes(&plan));
    seed.converge().await;
    if google {
        let n = users.len() as u64;
        assert_eq!(delta(photo_requests(&seed).await, before), [n, 0, 1, 0]);
    }
    for (user, copy) in users.iter().zip(&copies(&seed, &plan, "Ada").await) {
        assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(ada.as_slice()), "{user}");
    }
}

async fn contact_photos_reach_every_copy_once_and_follow_the_source(seed: Seed) {
    let google = seed.emulator.is_some();
    let ada = png("ada");
    seed.edit_file(|t| {
        set_contact_photo(t, "salesuser@example.com", "Ada", Some(&ada));
        set_contact_photo(t, "salesuser@example.com", "Grace", Some(&jpeg("grace")));
    });
    let before = photo_requests(&seed).await;
    let plan = seed.plan().await;
    let users = destinations(&plan);
    let n = users.len() as u64;
    assert!(n >= 2, "the seed has several destinations: {users:?}");
    // Planning downloads nothing: the listings' photo URLs say what changed.
    assert_eq!(delta(photo_requests(&seed).await, before), [0; 4]);
    let changes = photo_changes(&plan);
    assert_eq!(changes.len() as u64, 2 * n, "{changes:?}");
    assert!(changes.iter().all(|(_, _, f)| f[0]["before"].is_null() && f[0]["after"].is_string()));
    let text = seed.text(&plan);
    assert!(text.contains("        photo: (none) -> \""), "{text}");
    let json = plan.to_json(false);
    let jsoned = json.to_string();
    assert!(jsoned.contains(r#""field":"photo""#), "{jsoned}");

    seed.converge().await;
    let sent = delta(photo_requests(&seed).await, before);
    if google {
        // One write per copy with a photo, one download per source photo.
        assert_eq!(sent, [2 * n, 0, 2, 0]);
    }
    let ada_copies = copies(&seed, &plan, "Ada").await;
    assert_eq!(ada_copies.len() as u64, n);
    for (user, copy) in users.iter().zip(&ada_copies) {
        assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(ada.as_slice()), "{user}");
        let marker = client_data(&copy.client_data, MARKER_PHOTO).unwrap();
        assert!(marker.contains(' '), "version and hash: {marker}");
    }

    // A run with nothing to do makes no photo request at all.
    let before = photo_requests(&seed).await;
    let again = seed.plan().await;
    assert!(!again.summary.has_changes());
    let report = seed.apply(&again).await;
    assert!(!report.failed(), "{report:?}");
    assert_eq!(delta(photo_requests(&seed).await, before), [0; 4]);

    // Someone takes the photo off one copy: it is sent again, to that copy alone.
    let (user, copy) = (&users[0], &ada_copies[0]);
    seed.edit(|s| drop(s.set_contact_photo(user, &copy.resource_name, None).unwrap())).await;
    let plan = seed.plan().await;
    let changes = photo_changes(&plan);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let json = plan.to_json(false).to_string();
    assert!(json.contains(r#""reason":"editedOutside""#), "{json}");
    seed.converge().await;
    assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(ada.as_slice()));

    // Ada's photo changes: one write per copy, one download.
    let newer = png("ada, older");
    seed.edit_file(|t| set_contact_photo(t, "salesuser@example.com", "Ada", Some(&newer)));
    let before = photo_requests(&seed).await;
    let plan = seed.plan().await;
    let changes = photo_changes(&plan);
    assert_eq!(changes.len() as u64, n, "{changes:?}");
    assert!(changes.iter().all(|(_, name, f)| name.contains("Ada") && f[0]["before"].is_string()));
    seed.converge().await;
    if google {
        assert_eq!(delta(photo_requests(&seed).await, before), [n, 0, 1, 0]);
    }
    for (user, copy) in users.iter().zip(&copies(&seed, &plan, "Ada").await) {
        assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(newer.as_slice()));
    }

    // Ada loses her photo: it is taken off every copy, and nothing is downloaded.
    seed.edit_file(|t| set_contact_photo(t, "salesuser@example.com", "Ada", None));
    let before = photo_requests(&seed).await;
    let plan = seed.plan().await;
    let changes = photo_changes(&plan);
    assert_eq!(changes.len() as u64, n, "{changes:?}");
    assert!(changes.iter().all(|(_, _, f)| f[0]["after"].is_null()));
    seed.converge().await;
    if google {
        assert_eq!(delta(photo_requests(&seed).await, before), [0, n, 0, 0]);
    }
    for (user, copy) in users.iter().zip(&copies(&seed, &plan, "Ada").await) {
        assert_eq!(photo_of(&seed, user, copy), None, "{user}");
        assert_eq!(client_data(&copy.client_data, MARKER_PHOTO), None);
    }
}

async fn directory_photos_reach_every_copy_once(seed: Seed) {
    let google = seed.emulator.is_some();
    seed.write(
        "syncs/directory.yaml",
        "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: accounting-directory}\nspec:\n  type: directory\n  source: { directory: { orgUnits: [/Accounting] } }\n  destinations: { users: [frank@example.com, gina@example.com] }\n",
    );
    let (ann, bob) = (jpeg("ann"), png("bob"));
    seed.edit_file(|t| {
        for u in &mut t.users {
            match u.primary_email.as_str() {
                "ann@example.com" => u.photo_data = Some(encode_base64(&ann)),
                "bob@example.com" => u.photo_data = Some(encode_base64(&bob)),
                _ => {}
            }
        }
    });
    let before = photo_requests(&seed).await;
    let plan = seed.plan().await;
    let directory: Vec<_> = photo_changes(&plan)
        .into_iter()
        .filter(|(user, _, _)| user == "frank@example.com" || user == "gina@example.com")
        .collect();
    let on = |user: &str| directory.iter().filter(|(u, _, _)| u == user).count();
    assert_eq!((on("frank@example.com"), on("gina@example.com")), (2, 2), "{directory:?}");
    seed.converge().await;
    if google {
        // The sales sync copies no photo here; each directory photo is read once.
        assert_eq!(delta(photo_requests(&seed).await, before), [4, 0, 0, 2]);
    }
    for user in ["frank@example.com", "gina@example.com"] {
        let all = seed.contacts(user).await;
        let copy = all.iter().find(|c| c.display_name() == "Ann Archer").unwrap();
        assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(ann.as_slice()), "{user}");
        let copy = all.iter().find(|c| c.display_name() == "Bob Baker").unwrap();
        assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(bob.as_slice()), "{user}");
    }
    let before = photo_requests(&seed).await;
    let again = seed.plan().await;
    assert!(!again.summary.has_changes());
    seed.apply(&again).await;
    assert_eq!(delta(photo_requests(&seed).await, before), [0; 4]);
}

/// A plan with photo changes, saved and applied from the file, makes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_plan_carries_its_photo_changes() {
    let seed = Seed::new();
    seed.edit_file(|t| set_contact_photo(t, "salesuser@example.com", "Ada", Some(&png("ada"))));
    let out = seed.path("plan.json");
    crate::contact_sync()
        .arg("plan")
        .arg(seed.dir.path())
        .arg("--out")
        .arg(&out)
        .assert()
        .success();
    let saved = std::fs::read_to_string(&out).unwrap();
    assert!(saved.contains("contactPhoto"), "{saved}");
    crate::contact_sync().arg("apply").arg(&out).arg("--auto-approve").assert().success();
    let plan = seed.plan().await;
    assert!(!plan.summary.has_changes(), "{}", seed.text(&plan));
    let users = ["ann@example.com"];
    for user in users {
        let all = seed.contacts(user).await;
        let ada = all.iter().find(|c| c.display_name().contains("Ada")).unwrap();
        assert_eq!(photo_of(&seed, user, ada), Some(png("ada")));
    }
}

/// The emulator takes JPEG and PNG photos up to its limit, and refuses a GIF or a
/// larger photo with Google's 400 `INVALID_ARGUMENT`; `users.photos.get` answers
/// 404 for a user without a photo.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_refuses_what_google_refuses_as_a_photo() {
    let api = Api::start();
    let user = "salesuser@example.com";
    let scope = contact_sync::backend::google::CONTACTS;
    let (status, people) =
        api.get(user, scope, "/v1/people/me/connections?personFields=names,photos").await;
    assert_eq!(status, 200, "{people}");
    let person = &people["connections"][0];
    let rn = person["resourceName"].as_str().unwrap().to_owned();
    assert_eq!(person["photos"][0]["default"], true, "no photo yet: Google's default one");
    let send = |bytes: Vec<u8>| {
        let api = &api;
        let path = format!("/v1/{rn}:updateContactPhoto");
        async move {
            let body = json!({ "photoBytes": encode_base64(&bytes), "personFields": "photos" });
            api.call(user, scope, reqwest::Method::PATCH, &path, Some(body)).await
        }
    };
    let (status, body) = send(b"GIF89a\x01\x00\x01\x00".to_vec()).await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    let mut big = png("big");
    big.resize(contact_sync::model::photo::MAX_PHOTO_BYTES + 1, 0);
    let (status, body) = send(big).await;
    assert_eq!((status, body["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")));
    let (status, body) = send(png("ok")).await;
    assert_eq!(status, 200, "{body}");
    let url = body["person"]["photos"][0]["url"].as_str().unwrap().to_owned();
    assert_eq!(body["person"]["photos"][0].get("default"), None);
    // The photo URL is served without a token, as googleusercontent.com serves it.
    let got = reqwest::get(&url).await.unwrap();
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.unwrap().to_vec(), png("ok"));
    let (status, _) = api
        .call(user, scope, reqwest::Method::DELETE, &format!("/v1/{rn}:deleteContactPhoto"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 404, "the old URL is gone");

    let users = contact_sync::backend::google::USERS_READONLY;
    let (status, body) = api
        .get(
            "admin@example.com",
            users,
            "/admin/directory/v1/users/ann@example.com/photos/thumbnail",
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_u64()), (404, Some(404)), "{body}");
    let checks = api.emulator.as_ref().unwrap().checks();
    assert_eq!(checks["invalid"], 0, "the strict front end let every request through: {checks}");
}

/// A photo write is one unit of the user's critical write quota, as Google counts
/// it: past the quota the next one is answered 429 `RESOURCE_EXHAUSTED`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photo_writes_spend_the_users_write_quota() {
    let api = Api::start_with(|c| c.limits.critical_write = 2);
    let user = "salesuser@example.com";
    let scope = contact_sync::backend::google::CONTACTS;
    let (_, people) = api.get(user, scope, "/v1/people/me/connections?personFields=names").await;
    let rn = people["connections"][0]["resourceName"].as_str().unwrap().to_owned();
    let path = format!("/v1/{rn}:updateContactPhoto");
    let body = json!({ "photoBytes": encode_base64(&png("q")) });
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let (status, answer) =
            api.call(user, scope, reqwest::Method::PATCH, &path, Some(body.clone())).await;
        statuses.push((status, answer["error"]["status"].as_str().map(str::to_owned)));
    }
    assert_eq!(
        statuses,
        [(200, None), (200, None), (429, Some("RESOURCE_EXHAUSTED".to_owned()))],
        "two photo writes fit a quota of 2"
    );
}

/// The reconcile loop copies photos as apply does: one `reconcile --once` through
/// the emulator gives every copy of Ada her photo, and the plan after it is empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_once_copies_photos() {
    let seed = Seed::google_with(|c| c.limits.window = std::time::Duration::from_secs(5));
    let ada = png("ada");
    seed.edit_file(|t| set_contact_photo(t, "salesuser@example.com", "Ada", Some(&ada)));
    let plan = seed.plan().await;
    let users = destinations(&plan);
    let before = photo_requests(&seed).await;
    crate::contact_sync().args(["reconcile", "--once"]).arg(seed.dir.path()).assert().success();
    let n = users.len() as u64;
    assert_eq!(delta(photo_requests(&seed).await, before), [n, 0, 1, 0]);
    for (user, copy) in users.iter().zip(&copies(&seed, &plan, "Ada").await) {
        assert_eq!(photo_of(&seed, user, copy).as_deref(), Some(ada.as_slice()), "{user}");
    }
    assert!(!seed.plan().await.summary.has_changes());
}
