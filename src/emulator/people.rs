//! People API: contact groups, connections and the batch contact methods, with
//! Google's limits, etag checks, field masks and output-only decorations.

use std::collections::HashSet;

use axum::Json;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use serde_json::{Map, Value, json};

use super::auth::{CONTACTS, CONTACTS_READONLY};
use super::call::{Call, paged};
use super::discovery;
use super::error::ApiError;
use super::quota::Bucket;
use super::{SharedState, next_page, page_size, page_start, param, sync};
use crate::model::{
    ClientData, Contact, ContactGroup, ContactUpdate, NewContact, PERSON_FIELDS, PersonFields,
    SINGLETON_FIELDS, contact_id,
};

/// Scopes that let a token read contacts: either.
const READ_SCOPES: &[&str] = &[CONTACTS, CONTACTS_READONLY];
/// Scopes that let a token write contacts: only the read-write one, as at Google.
const WRITE_SCOPES: &[&str] = &[CONTACTS];

/// Whether Google ignores the key `key` of an item of the Person field `field`
/// when a client sends it: its `metadata`, which Google sets itself, and what
/// the discovery document marks output only (a gender's `formattedValue`, where
/// an address's is written).
fn output_only(field: &str, key: &str) -> bool {
    key == "metadata" || discovery::person_item_output_only(field, key)
}

fn mask(spec: Option<&str>) -> HashSet<String> {
    spec.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
}

/// A name's `displayName` and `displayNameLastFirst` ("Dr Ada Lovelace",
/// "Lovelace, Ada"), and its `unstructuredName` when the client left it unset.
fn decorate_name(item: &mut Map<String, Value>) {
    let part = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let display = [
        part("honorificPrefix"),
        part("givenName"),
        part("middleName"),
        part("familyName"),
        part("honorificSuffix"),
    ]
    .into_iter()
    .filter(|p| !p.is_empty())
    .collect::<Vec<_>>()
    .join(" ");
    let last_first = format!("{}, {}", part("familyName"), part("givenName"))
        .trim_matches([',', ' '])
        .to_owned();
    item.insert("displayName".into(), display.clone().into());
    item.insert("displayNameLastFirst".into(), last_first.into());
    item.entry("unstructuredName").or_insert(display.into());
}

/// An address's lines as Google builds its `formattedValue` from them.
fn address_value(item: &Map<String, Value>) -> String {
    let part = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    [
        part("streetAddress"),
        format!("{} {} {}", part("city"), part("region"), part("postalCode")).trim().to_owned(),
        part("country"),
    ]
    .into_iter()
    .filter(|p| !p.trim().is_empty())
    .collect::<Vec<_>>()
    .join("\n")
}

/// Adds the output-only values Google computes to one field item (those its
/// schema has: a nickname's `type` is an enum with no `formattedType`).
fn decorate(field: &str, item: &mut Map<String, Value>, index: usize, id: &str) {
    if discovery::person_item_has(field, "metadata") {
        item.insert(
            "metadata".into(),
            json!({ "primary": index == 0, "source": { "type": "CONTACT", "id": id } }),
        );
    }
    if let Some(t) = item.get("type").and_then(Value::as_str)
        && discovery::person_item_has(field, "formattedType")
    {
        let formatted = capitalize(t);
        item.insert("formattedType".into(), formatted.into());
    }
    match field {
        "phoneNumbers" => {
            let digits: String = item
                .get("value")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            item.insert("canonicalForm".into(), format!("+{digits}").into());
        }
        "names" => decorate_name(item),
        "addresses" => {
            let value = address_value(item);
            item.entry("formattedValue").or_insert(value.into());
        }
        "biographies" => {
            item.entry("contentType").or_insert("TEXT_PLAIN".into());
        }
        "imClients" => {
            if let Some(p) = item.get("protocol").and_then(Value::as_str) {
                let formatted = capitalize(p);
                item.insert("formattedProtocol".into(), formatted.into());
            }
        }
        _ => {}
    }
}

/// A contact as a `Person`, limited to the requested fields.
/// Where a user's contact photos are served: `http://HOST/_photos/<user>`.
pub(super) fn photo_prefix(headers: &HeaderMap, user: &str) -> String {
    format!("{}/_photos/{}", super::photo_base(headers), urlencoding::encode(user))
}

/// A contact as a `Person`, limited to the requested fields; `photos` is where
/// its user's photos are served ([`photo_prefix`]).
pub(super) fn person_json(c: &Contact, fields: &HashSet<String>, photos: &str) -> Value {
    let id = contact_id(&c.resource_name).to_owned();
    let mut person = Map::new();
    person.insert("resourceName".into(), c.resource_name.clone().into());
    person.insert("etag".into(), c.etag.clone().into());
    if fields.contains("metadata") {
        person.insert("metadata".into(), json!({ "sources": [{ "type": "CONTACT", "id": id, "etag": c.etag }], "objectType": "PERSON" }));
    }
    for (name, value) in &c.fields {
        if !fields.contains(name) {
            continue;
        }
        let items: Vec<Value> = value
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(mut map) => {
                    decorate(name, &mut map, i, &id);
                    Value::Object(map)
                }
                other => other,
            })
            .collect();
        person.insert(name.clone(), Value::Array(items));
    }
    if fields.contains("memberships") {
        let m: Vec<Value> = c
            .memberships
            .iter()
            .map(|rn| json!({
                "metadata": { "source": { "type": "CONTACT", "id": id } },
                "contactGroupMembership": { "contactGroupId": contact_id(rn), "contactGroupResourceName": rn }
            }))
            .collect();
        person.insert("memberships".into(), Value::Array(m));
    }
    if fields.contains("photos") {
        // The contact's own photo, or the default one Google makes (a letter).
        let source = json!({ "primary": true, "source": { "type": "CONTACT", "id": id } });
        let photo = match c.photo.as_deref().and_then(|p| p.rsplit_once('/')) {
            Some((_, version)) => {
                json!({ "metadata": source, "url": format!("{photos}/{id}/{version}") })
            }
            None => {
                json!({ "metadata": source, "url": format!("{photos}/{id}/default"), "default": true })
            }
        };
        person.insert("photos".into(), json!([photo]));
    }
    if fields.contains("clientData") && !c.client_data.is_empty() {
        let d: Vec<Value> = c
            .client_data
            .iter()
            .map(|d| json!({ "metadata": { "source": { "type": "CONTACT", "id": id } }, "key": d.key, "value": d.value }))
            .collect();
        person.insert("clientData".into(), Value::Array(d));
    }
    Value::Object(person)
}

/// A `Person` a client sent: fields, memberships, clientData, etag.
struct Incoming {
    fields: PersonFields,
    memberships: Vec<String>,
    client_data: Vec<ClientData>,
    etag: Option<String>,
}

fn parse_person(v: &Value) -> Result<Incoming, ApiError> {
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::invalid("Invalid JSON payload: person must be an object"))?;
    let mut incoming = Incoming {
        fields: PersonFields::new(),
        memberships: Vec::new(),
        client_data: Vec::new(),
        etag: None,
    };
    for (key, value) in obj {
        match key.as_str() {
            "resourceName" | "metadata" => {}
            "etag" => incoming.etag = value.as_str().map(str::to_owned),
            "memberships" => {
                for m in value.as_array().into_iter().flatten() {
                    let g = &m["contactGroupMembership"];
                    let rn = g["contactGroupResourceName"]
                        .as_str()
                        .map(str::to_owned)
                        .or_else(|| {
                            g["contactGroupId"].as_str().map(|id| format!("contactGroups/{id}"))
                        })
                        .ok_or_else(|| {
                            ApiError::invalid("membership without contactGroupResourceName")
                        })?;
                    incoming.memberships.push(rn);
                }
            }
            "clientData" => incoming.client_data = client_data_of(value)?,
            field if PERSON_FIELDS.contains(&field) => {
                let items = value.as_array().ok_or_else(|| {
                    ApiError::invalid(format!("Invalid value at 'person.{field}': expected a list"))
                })?;
                if SINGLETON_FIELDS.contains(&field) && items.len() > 1 {
                    return Err(ApiError::invalid(format!(
                        "Only one {field} item is allowed per person"
                    )));
                }
                let cleaned: Vec<Value> = items
                    .iter()
                    .map(|item| match item {
                        Value::Object(map) => Value::Object(
                            map.iter()
                                .filter(|(k, _)| !output_only(field, k))
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect(),
                        ),
                        other => other.clone(),
                    })
                    .collect();
                incoming.fields.insert(field.to_owned(), Value::Array(cleaned));
            }
            other => {
                return Err(ApiError::invalid(format!(
                    "Invalid JSON payload received. Unknown name \"{other}\" at 'person'"
                )));
            }
        }
    }
    Ok(incoming)
}

fn group_json(
    g: &ContactGroup,
    members: &[String],
    fields: &HashSet<String>,
    max_members: usize,
) -> Value {
    let mut out = json!({ "resourceName": g.resource_name, "etag": g.etag });
    let all = fields.is_empty();
    if all || fields.contains("metadata") {
        out["metadata"] = json!({ "updateTime": "2026-01-01T00:00:00Z" });
    }
    if all || fields.contains("groupType") {
        out["groupType"] =
            if g.system { "SYSTEM_CONTACT_GROUP" } else { "USER_CONTACT_GROUP" }.into();
    }
    if all || fields.contains("name") {
        out["name"] = g.name.clone().into();
        out["formattedName"] = g.name.clone().into();
    }
    if all || fields.contains("memberCount") {
        out["memberCount"] = members.len().into();
    }
    if fields.contains("clientData") && !g.client_data.is_empty() {
        out["clientData"] = json!(g.client_data);
    }
    if max_members > 0 {
        out["memberResourceNames"] = json!(members.iter().take(max_members).collect::<Vec<_>>());
    }
    out
}

/// Resource names of the contacts in one of `user`'s groups.
fn members_of(call: &Call, user: &str, group: &str) -> Result<Vec<String>, ApiError> {
    call.read(|s| s.group_contacts(user, group))
}

fn find_group(call: &Call, user: &str, rn: &str) -> Result<ContactGroup, ApiError> {
    call.read(|s| s.contact_group(user, rn))?
        .ok_or_else(|| ApiError::not_found(format!("Requested entity was not found: {rn}")))
}

/// A write to the group of the path, `contactGroups/{id}`: the call, its caller
/// admitted to one group write, the group's id, resource name and what it is now.
pub struct GroupWrite {
    call: Call,
    user: String,
    id: String,
    rn: String,
    group: ContactGroup,
}

impl FromRequestParts<SharedState> for GroupWrite {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, ApiError> {
        let Ok(call) = Call::from_request_parts(parts, state).await;
        let Path(id) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid(e.body_text()))?;
        let user = call.admit(WRITE_SCOPES, Bucket::DeleteAndGroupWrite, 1)?;
        let rn = format!("contactGroups/{id}");
        let group = find_group(&call, &user, &rn)?;
        Ok(Self { call, user, id, rn, group })
    }
}

/// The sorted, comma-joined paths of a mask.
fn mask_key(fields: &HashSet<String>) -> String {
    let mut v: Vec<&str> = fields.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.join(",")
}

/// A deleted person or group in an incremental listing: its name, last etag and
/// `metadata.deleted`.
fn tombstone(change: &sync::Change) -> Value {
    json!({ "resourceName": change.resource_name, "etag": change.etag, "metadata": { "deleted": true } })
}

/// The page of a listing that gives or takes a sync token: where it starts
/// (`after`) and where its token will stand (`upto`); `start` is the journal
/// position to take when the request has no `pageToken`.
fn sync_page(
    q: &[(String, String)],
    asked: &str,
    start: impl FnOnce() -> Result<sync::PageToken, ApiError>,
) -> Result<sync::PageToken, ApiError> {
    match param(q, "pageToken").filter(|t| !t.is_empty()) {
        Some(t) => sync::read_page_token(t, asked),
        None => start(),
    }
}

/// `GET v1/contactGroups`: every answer's last page carries `nextSyncToken`;
/// with `syncToken`, only the groups that changed since (deleted ones as
/// tombstones).
pub async fn list_groups(call: Call) -> Result<Json<Value>, ApiError> {
    let user = call.admit(READ_SCOPES, Bucket::GroupRead, 1)?;
    let q = &call.query;
    let size = page_size(q, "pageSize", 30, 1000)?;
    let mut fields = mask(param(q, "groupFields"));
    if fields.is_empty() {
        fields = mask(Some("metadata,groupType,memberCount,name"));
    }
    let state = &call.state;
    let id = call.read(|s| super::Emulator::user_id(s, &user))?;
    let params = mask_key(&fields);
    let since = param(q, "syncToken").filter(|t| !t.is_empty());
    let asked = format!("groups|{}|{params}", since.unwrap_or_default());
    let kind = sync::Kind::Groups;
    let observe = || call.read(|s| state.observe(s, &user, kind));
    if let Some(since) = since {
        let token = state.sync.check(since, &id, kind, &params)?;
        let page = sync_page(q, &asked, || {
            observe()?;
            let upto = state.sync.visible(&id, kind, token.position);
            Ok(sync::PageToken { after: token.position, upto })
        })?;
        let (changes, more, total) =
            state.sync.changes(&id, kind, (token.position, page.after, page.upto), size);
        let current = call.read(|s| super::lag::groups_with_members(&user, s))?;
        let items: Vec<Value> = changes
            .iter()
            .map(|c| match current.iter().find(|(g, _)| g.resource_name == c.resource_name) {
                Some((g, members)) if !c.deleted => group_json(g, members, &fields, 0),
                _ => tombstone(c),
            })
            .collect();
        let next = changes.last().filter(|_| more).map(|last| {
            sync::page_token(&sync::PageToken { after: last.seq, upto: page.upto }, &asked)
        });
        let mut body = json!({ "contactGroups": items, "totalItems": total });
        if next.is_none() {
            body["nextSyncToken"] =
                state.sync.issue(&id, kind, page.upto, &params, Some(token.chain_start)).into();
        }
        return Ok(paged(body, next));
    }
    // While the listing trails the user's writes, it shows the groups as they were,
    // and its token stands where they were.
    let trailing = state.lag.listing(&user);
    let page = sync_page(q, &asked, || {
        let upto = match trailing.as_ref().and_then(|l| l.position) {
            Some(p) => p,
            None => observe()?,
        };
        Ok(sync::PageToken { after: 0, upto })
    })?;
    let groups = match trailing {
        Some(listing) => listing.groups,
        None => call.read(|s| super::lag::groups_with_members(&user, s))?,
    };
    let total = groups.len();
    let start = usize::try_from(page.after).unwrap_or(usize::MAX);
    let end = start.saturating_add(size).min(total);
    let items: Vec<Value> = groups
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(|(g, members)| group_json(g, members, &fields, 0))
        .collect();
    let next = next_page(start, size, total)
        .map(|_| sync::page_token(&sync::PageToken { after: end as u64, upto: page.upto }, &asked));
    let mut body = json!({ "contactGroups": items, "totalItems": total });
    if next.is_none() {
        body["nextSyncToken"] = state.sync.issue(&id, kind, page.upto, &params, None).into();
    }
    Ok(paged(body, next))
}

/// `GET v1/contactGroups/{id}?maxMembers=N`.
pub async fn get_group(call: Call, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let user = call.admit(READ_SCOPES, Bucket::GroupRead, 1)?;
    let q = &call.query;
    let rn = format!("contactGroups/{id}");
    let group = find_group(&call, &user, &rn)?;
    let max = param(q, "maxMembers").and_then(|m| m.parse().ok()).unwrap_or(0);
    let fields = mask(param(q, "groupFields").or(Some("metadata,groupType,memberCount,name")));
    Ok(Json(group_json(&group, &members_of(&call, &user, &rn)?, &fields, max)))
}

/// The fields a group write answers with: `key` of the body, by default (unset
/// or empty) `metadata`, `groupType` and `name`, as Google's reference says.
fn read_fields(body: &Value, key: &str) -> HashSet<String> {
    let fields = mask(body[key].as_str());
    if fields.is_empty() { mask(Some("metadata,groupType,name")) } else { fields }
}

/// `clientData` of a person or group; every entry needs a key and a value.
fn client_data_of(v: &Value) -> Result<Vec<ClientData>, ApiError> {
    v.as_array()
        .into_iter()
        .flatten()
        .map(|d| match (d["key"].as_str(), d["value"].as_str()) {
            (Some(k), Some(v)) => Ok(ClientData { key: k.into(), value: v.into() }),
            _ => Err(ApiError::invalid("clientData entries need key and value")),
        })
        .collect()
}

/// A batch method's size limit: between 1 and `max` items.
fn check_batch(len: usize, max: usize, what: &str) -> Result<(), ApiError> {
    if (1..=max).contains(&len) {
        Ok(())
    } else {
        Err(ApiError::invalid(format!("{what} must name between 1 and {max} entries, got {len}")))
    }
}

/// `POST v1/contactGroups`.
pub async fn create_group(call: Call, Json(body): Json<Value>) -> Result<Json<Value>, ApiError> {
    let user = call.admit(WRITE_SCOPES, Bucket::DeleteAndGroupWrite, 1)?;
    let name = body["contactGroup"]["name"]
        .as_str()
        .filter(|n| !n.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("contactGroup.name is required"))?;
    let data = client_data_of(&body["contactGroup"]["clientData"])?;
    let group = call.write(&user, |s| s.create_group(&user, name, data))?;
    Ok(Json(group_json(&group, &[], &read_fields(&body, "readGroupFields"), 0)))
}

/// `PUT v1/contactGroups/{id}`.
pub async fn update_group(
    GroupWrite { call, user, rn, group: current, .. }: GroupWrite,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    if current.system {
        return Err(ApiError::invalid("System contact groups cannot be updated"));
    }
    let sent = &body["contactGroup"];
    let etag =
        sent["etag"].as_str().ok_or_else(|| ApiError::invalid("contactGroup.etag is required"))?;
    let update = mask(body["updateGroupFields"].as_str().or(Some("name")));
    let mut group = current.clone();
    group.etag = etag.to_owned();
    if update.contains("name") {
        group.name = sent["name"]
            .as_str()
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| ApiError::invalid("contactGroup.name is required"))?
            .to_owned();
    }
    if update.contains("clientData") {
        group.client_data = client_data_of(&sent["clientData"])?;
    }
    let updated = call.write(&user, |s| s.update_group(&user, group))?;
    Ok(Json(group_json(
        &updated,
        &members_of(&call, &user, &rn)?,
        &read_fields(&body, "readGroupFields"),
        0,
    )))
}

/// `DELETE v1/contactGroups/{id}?deleteContacts=bool`.
pub async fn delete_group(
    GroupWrite { call, user, rn, group, .. }: GroupWrite,
) -> Result<Json<Value>, ApiError> {
    if group.system {
        return Err(ApiError::invalid("System contact groups cannot be deleted"));
    }
    let delete_contacts = call.param("deleteContacts") == Some("true");
    let members = members_of(&call, &user, &rn)?;
    call.write(&user, |s| {
        s.delete_group(&user, &rn)?;
        if delete_contacts { s.delete_contacts(&user, &members) } else { Ok(()) }
    })?;
    Ok(Json(json!({})))
}

/// `POST v1/contactGroups/{id}/members:modify`.
pub async fn modify_members(
    GroupWrite { call, user, id, rn, group }: GroupWrite,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let list = |k: &str| -> Vec<String> {
        body[k]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let (add, remove) = (list("resourceNamesToAdd"), list("resourceNamesToRemove"));
    if add.len() + remove.len() > 1000 {
        return Err(ApiError::invalid(
            "resourceNamesToAdd and resourceNamesToRemove together may name at most 1000 contacts",
        ));
    }
    if !add.is_empty() && group.system && !matches!(id.as_str(), "myContacts" | "starred") {
        return Err(ApiError::invalid(format!("Cannot add contacts to system group {rn}")));
    }
    let named: Vec<&str> = add.iter().chain(&remove).map(String::as_str).collect();
    let existing: HashSet<String> = call
        .read(|s| s.contacts_named(&user, &named))?
        .into_iter()
        .flatten()
        .map(|c| c.resource_name)
        .collect();
    let not_found: Vec<&String> =
        add.iter().chain(&remove).filter(|r| !existing.contains(*r)).collect();
    let keep = |v: &[String]| -> Vec<String> {
        v.iter().filter(|r| existing.contains(*r)).cloned().collect()
    };
    call.write(&user, |s| s.modify_members(&user, &rn, &keep(&add), &keep(&remove)))?;
    let mut out = json!({});
    if !not_found.is_empty() {
        out["notFoundResourceNames"] = json!(not_found);
    }
    Ok(Json(out))
}

pub(super) fn person_fields(
    q: &[(String, String)],
    key: &str,
) -> Result<HashSet<String>, ApiError> {
    let fields = mask(param(q, key));
    if fields.is_empty() {
        return Err(ApiError::invalid(format!(
            "{key} mask is required. Please specify one or more valid paths."
        )));
    }
    Ok(fields)
}

/// What a connections listing with a sync token must repeat of the one that
/// gave it: `personFields`, `sortOrder`, `sources` (Google's defaults spelt out).
fn connection_params(q: &[(String, String)], fields: &HashSet<String>) -> String {
    let sort = param(q, "sortOrder").filter(|s| !s.is_empty()).unwrap_or("LAST_MODIFIED_ASCENDING");
    let mut sources: Vec<&str> =
        q.iter().filter(|(k, _)| k == "sources").map(|(_, v)| v.as_str()).collect();
    if sources.is_empty() {
        sources = vec!["READ_SOURCE_TYPE_CONTACT", "READ_SOURCE_TYPE_PROFILE"];
    }
    sources.sort_unstable();
    sources.dedup();
    format!("{}|{sort}|{}", mask_key(fields), sources.join(","))
}

/// `GET v1/people/me/connections`: with `requestSyncToken=true` the last page
/// carries `nextSyncToken`; with `syncToken`, only the contacts that changed
/// since (deleted ones as tombstones), the last page with the next token.
pub async fn connections(call: Call) -> Result<Json<Value>, ApiError> {
    let user = call.admit(READ_SCOPES, Bucket::CriticalRead, 1)?;
    let photos = photo_prefix(&call.headers, &user);
    let q = &call.query;
    let fields = person_fields(q, "personFields")?;
    let size = page_size(q, "pageSize", 100, 1000)?;
    let since = param(q, "syncToken").filter(|t| !t.is_empty());
    if let Some(since) = since {
        return changed_connections(&call, &user, since, &fields, size, &photos);
    }
    let synced = param(q, "requestSyncToken") == Some("true");
    // While the listing trails the user's writes, it shows the contacts as they
    // were, and its token stands where they were.
    let trailing = call.state.lag.listing(&user);
    let kind = sync::Kind::Contacts;
    let mut sync_page_token = None;
    let start = if synced {
        let state = &call.state;
        let id = call.read(|s| super::Emulator::user_id(s, &user))?;
        let params = connection_params(q, &fields);
        let asked = format!("connections||{params}");
        let page = sync_page(q, &asked, || {
            let upto = match trailing.as_ref().and_then(|l| l.position) {
                Some(p) => p,
                None => call.read(|s| state.observe(s, &user, kind))?,
            };
            Ok(sync::PageToken { after: 0, upto })
        })?;
        let start = usize::try_from(page.after).unwrap_or(usize::MAX);
        sync_page_token = Some((id, params, asked, page.upto));
        start
    } else {
        page_start(q)?
    };
    let (items, total) = match trailing {
        Some(listing) => {
            let total = listing.contacts.len();
            let end = start.saturating_add(size).min(total);
            (listing.contacts.get(start..end).unwrap_or_default().to_vec(), total)
        }
        None => call.read(|s| s.contacts_page(&user, start, size))?,
    };
    let mut next = next_page(start, size, total);
    let mut sync_token = None;
    if let Some((id, params, asked, upto)) = sync_page_token {
        next = next.map(|end| {
            let after = end.parse().unwrap_or_default();
            sync::page_token(&sync::PageToken { after, upto }, &asked)
        });
        if next.is_none() {
            sync_token = Some(call.state.sync.issue(&id, kind, upto, &params, None));
        }
    }
    let mut body = json!({
        "connections": items.iter().map(|c| person_json(c, &fields, &photos)).collect::<Vec<_>>(),
        "totalPeople": total,
        "totalItems": total,
    });
    if let Some(t) = sync_token {
        body["nextSyncToken"] = t.into();
    }
    Ok(paged(body, next))
}

/// `GET v1/people/me/connections?syncToken=…`: the contacts changed since the
/// token, in the order they changed.
fn changed_connections(
    call: &Call,
    user: &str,
    since: &str,
    fields: &HashSet<String>,
    size: usize,
    photos: &str,
) -> Result<Json<Value>, ApiError> {
    let q = &call.query;
    let state = &call.state;
    let kind = sync::Kind::Contacts;
    let id = call.read(|s| super::Emulator::user_id(s, user))?;
    let params = connection_params(q, fields);
    let token = state.sync.check(since, &id, kind, &params)?;
    let asked = format!("connections|{since}|{params}");
    let page = sync_page(q, &asked, || {
        call.read(|s| state.observe(s, user, kind))?;
        let upto = state.sync.visible(&id, kind, token.position);
        Ok(sync::PageToken { after: token.position, upto })
    })?;
    let (changes, more, total) =
        state.sync.changes(&id, kind, (token.position, page.after, page.upto), size);
    let live: Vec<&str> =
        changes.iter().filter(|c| !c.deleted).map(|c| c.resource_name.as_str()).collect();
    let found = call.read(|s| s.contacts_named(user, &live))?;
    let current: std::collections::HashMap<&str, Contact> =
        live.iter().zip(found).filter_map(|(rn, c)| c.map(|c| (*rn, c))).collect();
    let people: Vec<Value> = changes
        .iter()
        .map(|c| match current.get(c.resource_name.as_str()) {
            Some(contact) if !c.deleted => person_json(contact, fields, photos),
            _ => tombstone(c),
        })
        .collect();
    let next = changes.last().filter(|_| more).map(|last| {
        sync::page_token(&sync::PageToken { after: last.seq, upto: page.upto }, &asked)
    });
    let mut body = json!({ "connections": people, "totalPeople": total, "totalItems": total });
    if next.is_none() {
        body["nextSyncToken"] =
            state.sync.issue(&id, kind, page.upto, &params, Some(token.chain_start)).into();
    }
    Ok(paged(body, next))
}

/// `GET v1/people:batchGet`.
pub async fn batch_get(call: Call) -> Result<Json<Value>, ApiError> {
    let user = call.admit(READ_SCOPES, Bucket::CriticalRead, 1)?;
    let photos = photo_prefix(&call.headers, &user);
    let q = &call.query;
    let fields = person_fields(q, "personFields")?;
    let names: Vec<&str> =
        q.iter().filter(|(k, _)| k == "resourceNames").map(|(_, v)| v.as_str()).collect();
    check_batch(names.len(), 200, "resourceNames")?;
    let contacts = call.read(|s| s.contacts_named(&user, &names))?;
    let responses: Vec<Value> = names
        .iter()
        .zip(&contacts)
        .map(|(rn, contact)| match contact {
            Some(c) => json!({ "requestedResourceName": rn, "httpStatusCode": 200, "person": person_json(c, &fields, &photos), "status": {} }),
            None => json!({ "requestedResourceName": rn, "httpStatusCode": 404, "status": { "code": 5, "message": "Requested entity was not found." } }),
        })
        .collect();
    Ok(Json(json!({ "responses": responses })))
}

/// `POST v1/people:batchCreateContacts`.
pub async fn batch_create(call: Call, Json(body): Json<Value>) -> Result<Json<Value>, ApiError> {
    let user = call.admit(WRITE_SCOPES, Bucket::CriticalWrite, 6)?;
    let photos = photo_prefix(&call.headers, &user);
    let read = mask(body["readMask"].as_str());
    if read.is_empty() {
        return Err(ApiError::invalid("readMask is required"));
    }
    let contacts = body["contacts"].as_array().cloned().unwrap_or_default();
    check_batch(contacts.len(), 200, "contacts")?;
    let mut new = Vec::new();
    for c in &contacts {
        let p = parse_person(&c["contactPerson"])?;
        let memberships = if p.memberships.is_empty() {
            vec![crate::model::MY_CONTACTS.to_owned()]
        } else {
            p.memberships
        };
        new.push(NewContact {
            fields: std::borrow::Cow::Owned(p.fields),
            memberships,
            client_data: p.client_data,
        });
    }
    let created = call.write(&user, |s| s.create_contacts(&user, new))?;
    let people: Vec<Value> = created
        .iter()
        .map(|c| json!({ "httpStatusCode": 200, "person": person_json(c, &read, &photos), "status": {} }))
        .collect();
    Ok(Json(json!({ "createdPeople": people })))
}

/// `POST v1/people:batchUpdateContacts`.
pub async fn batch_update(call: Call, Json(body): Json<Value>) -> Result<Json<Value>, ApiError> {
    let user = call.admit(WRITE_SCOPES, Bucket::CriticalWrite, 6)?;
    let photos = photo_prefix(&call.headers, &user);
    let update_mask: Vec<String> = mask(body["updateMask"].as_str()).into_iter().collect();
    if update_mask.is_empty() {
        return Err(ApiError::invalid("updateMask is required"));
    }
    if let Some(bad) =
        update_mask.iter().find(|f| !PERSON_FIELDS.contains(&f.as_str()) && *f != "clientData")
    {
        return Err(ApiError::invalid(format!("Invalid updateMask path: {bad}")));
    }
    let read = mask(body["readMask"].as_str());
    let contacts = body["contacts"].as_object().cloned().unwrap_or_default();
    check_batch(contacts.len(), 200, "contacts")?;
    let mut updates = Vec::new();
    for (rn, person) in &contacts {
        let p = parse_person(person)?;
        let etag =
            p.etag.ok_or_else(|| ApiError::invalid(format!("person.etag is required for {rn}")))?;
        updates.push(ContactUpdate {
            resource_name: rn.clone(),
            etag,
            fields: p.fields,
            update_mask: update_mask.clone(),
            client_data: p.client_data,
        });
    }
    let updated = call.write(&user, |s| s.update_contacts(&user, updates))?;
    let result: Map<String, Value> = updated
        .iter()
        .map(|c| (c.resource_name.clone(), json!({ "httpStatusCode": 200, "person": person_json(c, &read, &photos), "requestedResourceName": c.resource_name })))
        .collect();
    Ok(Json(json!({ "updateResult": result })))
}

/// `POST v1/people:batchDeleteContacts`.
pub async fn batch_delete(call: Call, Json(body): Json<Value>) -> Result<Json<Value>, ApiError> {
    let user = call.admit(WRITE_SCOPES, Bucket::DeleteAndGroupWrite, 10)?;
    let names: Vec<String> = body["resourceNames"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    check_batch(names.len(), 500, "resourceNames")?;
    call.write(&user, |s| s.delete_contacts(&user, &names))?;
    Ok(Json(json!({})))
}

/// The contact photo path of a request: `people/c…:updateContactPhoto` (or
/// `:deleteContactPhoto`) → `people/c…`; any other method there is not served.
fn photo_target(id: &str, verb: &str) -> Result<String, ApiError> {
    id.strip_suffix(verb)
        .map(|id| format!("people/{id}"))
        .ok_or_else(|| ApiError::unimplemented(format!("The emulator does not serve people/{id}.")))
}

/// `PATCH v1/people/{id}:updateContactPhoto`: JPEG or PNG only, up to
/// [`crate::model::photo::MAX_PHOTO_BYTES`]; anything else is refused with 400
/// `INVALID_ARGUMENT`, as Google refuses it. One single write of the user's
/// critical write quota.
pub async fn update_photo(
    call: Call,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, ApiError> {
    let rn = photo_target(&id, ":updateContactPhoto")?;
    let user = call.admit(WRITE_SCOPES, Bucket::CriticalWrite, 1)?;
    let bytes = body["photoBytes"]
        .as_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| ApiError::invalid("photoBytes is required"))?;
    let bytes = crate::model::photo::decode_base64(bytes)
        .ok_or_else(|| ApiError::invalid("Invalid value at 'photo_bytes': not base64"))?;
    if let Some(why) = crate::model::photo::refusal(&bytes) {
        return Err(ApiError::invalid(why));
    }
    let contact = call.write(&user, |s| s.set_contact_photo(&user, &rn, Some(&bytes)))?;
    let fields = mask(body["personFields"].as_str());
    if fields.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(
        json!({ "person": person_json(&contact, &fields, &photo_prefix(&call.headers, &user)) }),
    ))
}

/// `DELETE v1/people/{id}:deleteContactPhoto`: removing a photo the contact does
/// not have leaves it as it is. One single write of the critical write quota.
pub async fn delete_photo(call: Call, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let rn = photo_target(&id, ":deleteContactPhoto")?;
    let user = call.admit(WRITE_SCOPES, Bucket::CriticalWrite, 1)?;
    let contact = call.write(&user, |s| s.set_contact_photo(&user, &rn, None))?;
    let fields = mask(call.param("personFields"));
    if fields.is_empty() {
        return Ok(Json(json!({})));
    }
    Ok(Json(
        json!({ "person": person_json(&contact, &fields, &photo_prefix(&call.headers, &user)) }),
    ))
}

/// `GET /_photos/<user>/<contact id>/<version>` (a contact's photo, as
/// `Photo.url` names it) and `/_photos/users/<user id>/<etag>` (a directory
/// photo, as `thumbnailPhotoUrl` does): the image, 404 when it is gone or has
/// changed since. Outside the APIs, and without a token, as Google serves them
/// from googleusercontent.com.
pub async fn photo_file(
    State(state): State<SharedState>,
    Path(path): Path<String>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let parts: Vec<&str> = path.split('/').collect();
    let found = match parts.as_slice() {
        ["users", id, etag] => state
            .backend
            .with_store(|s| -> crate::backend::Result<_> {
                let user = s.user(id)?;
                if user.and_then(|u| u.thumbnail_photo_etag).as_deref() != Some(*etag) {
                    return Ok(None);
                }
                s.user_photo(id)
            })
            .ok()
            .flatten(),
        [user, id, version] => {
            let user = urlencoding::decode(user).map(|u| u.into_owned()).unwrap_or_default();
            let rn = format!("people/{id}");
            state
                .backend
                .with_store(|s| -> crate::backend::Result<_> {
                    let current = s.contacts_named(&user, &[rn.as_str()])?;
                    let want = format!("{rn}/{version}");
                    match current.into_iter().flatten().next() {
                        Some(c) if c.photo.as_deref() == Some(want.as_str()) => {
                            s.contact_photo(&user, &rn)
                        }
                        _ => Ok(None),
                    }
                })
                .ok()
                .flatten()
        }
        _ => None,
    };
    match found {
        Some(bytes) => {
            let mime =
                crate::model::photo::image_type(&bytes).unwrap_or("application/octet-stream");
            ([(axum::http::header::CONTENT_TYPE, mime)], bytes).into_response()
        }
        None => (axum::http::StatusCode::NOT_FOUND, "Not Found").into_response(),
    }
}
