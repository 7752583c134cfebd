//! People API `people.listDirectoryPeople`: the domain directory as the admin
//! sees it — the domain's shared contacts (`DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT`,
//! the workspace file's `sharedContacts:`) and the users' domain profiles
//! (`DIRECTORY_SOURCE_TYPE_DOMAIN_PROFILE`: names and primary address), paged
//! up to 1000 a page, each person with the fields `readMask` names.

use axum::Json;
use serde_json::{Value, json};

use super::auth::DIRECTORY_READONLY;
use super::call::{Call, paged};
use super::error::ApiError;
use super::people::{person_fields, person_json, photo_prefix};
use super::quota::Bucket;
use super::{page, page_size, param};
use crate::backend::UserScope;
use crate::model::Contact;

const SCOPES: &[&str] = &[DIRECTORY_READONLY];

/// The shared contacts' source.
pub const DOMAIN_CONTACT: &str = "DIRECTORY_SOURCE_TYPE_DOMAIN_CONTACT";
/// The users' domain profiles' source.
pub const DOMAIN_PROFILE: &str = "DIRECTORY_SOURCE_TYPE_DOMAIN_PROFILE";

/// `GET v1/people:listDirectoryPeople?sources=…&readMask=…&pageSize=…&pageToken=…`.
pub async fn list_directory_people(call: Call) -> Result<Json<Value>, ApiError> {
    call.admit(SCOPES, Bucket::CriticalRead, 1)?;
    let q = &call.query;
    let fields = person_fields(q, "readMask")?;
    let sources: Vec<&str> =
        q.iter().filter(|(k, _)| k == "sources").map(|(_, v)| v.as_str()).collect();
    if !sources.iter().any(|s| *s == DOMAIN_CONTACT || *s == DOMAIN_PROFILE) {
        return Err(ApiError::invalid(
            "Request must specify at least one directory source in sources.",
        ));
    }
    // `pageSize` 0 means the default, as Google's reference says.
    let size = match param(q, "pageSize") {
        Some("0") => 100,
        _ => page_size(q, "pageSize", 100, 1000)?,
    };
    let mut people: Vec<(Contact, &str)> = Vec::new();
    if sources.contains(&DOMAIN_PROFILE) {
        let users = call.read(|s| s.users(&UserScope::All))?;
        for u in users.iter().filter(|u| !u.inactive() && u.include_in_global_address_list) {
            let mut profile = Contact {
                resource_name: format!("people/{}", u.id),
                etag: format!("%D{}", crate::model::short_hash(&[&u.id, &u.primary_email])),
                ..Contact::default()
            };
            profile.fields.insert(
                "names".into(),
                json!([{ "givenName": u.given_name, "familyName": u.family_name }]),
            );
            profile.fields.insert("emailAddresses".into(), json!([{ "value": u.primary_email }]));
            people.push((profile, "DOMAIN_PROFILE"));
        }
    }
    if sources.contains(&DOMAIN_CONTACT) {
        let shared = call.read(|s| s.shared_contacts())?;
        people.extend(shared.into_iter().map(|c| (c, "DOMAIN_CONTACT")));
    }
    let (items, next) = page(&people, q, size)?;
    // The emulator keeps no photos of shared contacts or profiles: a `photos` read
    // gets the default photo's address, which serves nothing.
    let photos = photo_prefix(&call.headers, "shared");
    let items: Vec<Value> = items
        .iter()
        .map(|(c, source)| {
            let mut person = person_json(c, &fields, &photos);
            retype_sources(&mut person, source);
            person
        })
        .collect();
    Ok(paged(json!({ "people": items }), next))
}

/// Names the directory source in every `metadata` a person's items carry (the
/// contacts' answers say `CONTACT`).
fn retype_sources(value: &mut Value, source: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if (key == "source" || key == "sources") && !child.is_null() {
                    for s in std::iter::once(&mut *child)
                        .flat_map(|c| match c {
                            Value::Array(items) => items.iter_mut().collect::<Vec<_>>(),
                            other => vec![other],
                        })
                        .filter_map(Value::as_object_mut)
                    {
                        if s.get("type").and_then(Value::as_str) == Some("CONTACT") {
                            s.insert("type".into(), source.into());
                        }
                    }
                } else {
                    retype_sources(child, source);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| retype_sources(v, source)),
        _ => {}
    }
}
