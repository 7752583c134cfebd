//! Admin SDK Directory API: `users.get`, `users.list` (custom schema fields with
//! `projection=custom` and `customFieldMask`, or `full`), `members.list` and
//! `schemas.list` (the custom schemas the tenant's users have values of).

use axum::Json;
use axum::extract::Path;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::auth::{MEMBERS_READONLY, USERS_READONLY, USERSCHEMA_READONLY};
use super::call::{Call, paged};
use super::error::ApiError;
use super::quota::Bucket;
use super::{page, page_size, param};
use crate::backend::UserScope;
use crate::model::DirectoryUser;

const USER_SCOPES: &[&str] =
    &[USERS_READONLY, "https://www.googleapis.com/auth/admin.directory.user"];
const MEMBER_SCOPES: &[&str] =
    &[MEMBERS_READONLY, "https://www.googleapis.com/auth/admin.directory.group.member"];
const SCHEMA_SCOPES: &[&str] =
    &[USERSCHEMA_READONLY, "https://www.googleapis.com/auth/admin.directory.userschema"];

/// Which custom schemas a `users.get` or `users.list` answer carries, by its
/// `projection` and `customFieldMask`.
enum Projection {
    /// `basic` (the default): none.
    Basic,
    /// `custom`: the schemas `customFieldMask` names.
    Custom(Vec<String>),
    /// `full`: every one.
    Full,
}

impl Projection {
    fn of(q: &[(String, String)], schemas: impl FnOnce() -> Vec<String>) -> Result<Self, ApiError> {
        let mask: Vec<String> = param(q, "customFieldMask")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        match param(q, "projection") {
            Some("custom") => {
                // A mask naming a schema the customer does not have is refused.
                let known = schemas();
                if mask.is_empty() || mask.iter().any(|m| !known.contains(m)) {
                    return Err(ApiError::invalid("Invalid Input: customFieldMask"));
                }
                Ok(Projection::Custom(mask))
            }
            Some("full") => Ok(Projection::Full),
            _ => Ok(Projection::Basic),
        }
    }

    /// Adds the custom schemas this projection carries to a user resource.
    fn apply(&self, json: &mut Value, u: &DirectoryUser) {
        let custom: serde_json::Map<String, Value> = u
            .custom_schemas
            .iter()
            .filter(|(name, _)| match self {
                Projection::Basic => false,
                Projection::Custom(mask) => mask.contains(name),
                Projection::Full => true,
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if !custom.is_empty() {
            json["customSchemas"] = Value::Object(custom);
        }
    }
}

/// The names of the tenant's custom schemas.
fn schema_names(call: &Call) -> Vec<String> {
    call.read(|s| s.user_schemas())
        .map(|schemas| schemas.into_iter().map(|s| s.name).collect())
        .unwrap_or_default()
}

/// A user resource as the Directory API returns it.
fn user_json(u: &DirectoryUser, headers: &HeaderMap) -> Value {
    let full = format!("{} {}", u.given_name, u.family_name).trim().to_owned();
    let mut user = json!({
        "kind": "admin#directory#user",
        "id": u.id,
        "etag": format!("\"{}\"", crate::model::short_hash(&[&u.id, &u.primary_email])),
        "primaryEmail": u.primary_email,
        "name": { "givenName": u.given_name, "familyName": u.family_name, "fullName": full },
        "isAdmin": false,
        "suspended": u.suspended,
        "archived": u.archived,
        "orgUnitPath": if u.org_unit_path.is_empty() { "/" } else { u.org_unit_path.as_str() },
        "isMailboxSetup": true,
        "includeInGlobalAddressList": u.include_in_global_address_list,
        "customerId": "C0emulator",
    });
    if !u.aliases.is_empty() {
        user["aliases"] = json!(u.aliases);
    }
    if let Some(etag) = &u.thumbnail_photo_etag {
        user["thumbnailPhotoEtag"] = json!(etag);
        user["thumbnailPhotoUrl"] =
            json!(format!("{}/_photos/users/{}/{etag}", super::photo_base(headers), u.id));
    }
    // The Directory's lists, as it stores them (an absent list is left out).
    for (key, items) in [
        ("phones", &u.phones),
        ("organizations", &u.organizations),
        ("addresses", &u.addresses),
        ("relations", &u.relations),
        ("locations", &u.locations),
        ("externalIds", &u.external_ids),
        ("ims", &u.ims),
        ("websites", &u.websites),
    ] {
        if !items.is_empty() {
            user[key] = json!(items);
        }
    }
    user
}

/// `GET admin/directory/v1/users/{userKey}/photos/thumbnail`: the user's photo,
/// 404 when the user has none (as Google answers).
pub async fn get_photo(call: Call, Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    call.admit(USER_SCOPES, Bucket::Directory, 1)?;
    let user = call
        .read(|s| s.user(&key))?
        .ok_or_else(|| ApiError::not_found("Resource Not Found: userKey"))?;
    let bytes = call
        .read(|s| s.user_photo(&user.id))?
        .ok_or_else(|| ApiError::not_found("Resource Not Found: photo"))?;
    let mime = crate::model::photo::image_type(&bytes).unwrap_or("image/jpeg");
    Ok(Json(json!({
        "kind": "admin#directory#user#photo",
        "id": user.id,
        "etag": format!("\"{}\"", user.thumbnail_photo_etag.unwrap_or_default()),
        "primaryEmail": user.primary_email,
        "mimeType": mime.trim_start_matches("image/").to_uppercase(),
        "width": 96,
        "height": 96,
        "photoData": crate::model::photo::encode_base64_url(&bytes),
    })))
}

/// `GET admin/directory/v1/users/{userKey}`: by primary address, alias or id.
pub async fn get_user(call: Call, Path(key): Path<String>) -> Result<Json<Value>, ApiError> {
    call.admit(USER_SCOPES, Bucket::Directory, 1)?;
    let q = &call.query;
    let projection = Projection::of(q, || schema_names(&call))?;
    let user = call
        .read(|s| s.user(&key))?
        .ok_or_else(|| ApiError::not_found("Resource Not Found: userKey"))?;
    let mut json = user_json(&user, &call.headers);
    projection.apply(&mut json, &user);
    Ok(Json(json))
}

/// `orgUnitPath='/Sales'` (quotes optional) from a `users.list` query.
fn org_unit_query(query: &str) -> Result<String, ApiError> {
    let value = query.trim().strip_prefix("orgUnitPath=").ok_or_else(|| {
        ApiError::invalid(format!(
            "Invalid query: {query} (the emulator supports orgUnitPath='/Unit')"
        ))
    })?;
    Ok(value.trim_matches(|c| c == '\'' || c == '"').to_owned())
}

/// `GET admin/directory/v1/users?customer=…|domain=…&query=…`.
pub async fn list_users(call: Call) -> Result<Json<Value>, ApiError> {
    call.admit(USER_SCOPES, Bucket::Directory, 1)?;
    let q = &call.query;
    let size = page_size(q, "maxResults", 100, 500)?;
    let projection = Projection::of(q, || schema_names(&call))?;
    let scope = match (param(q, "customer"), param(q, "domain")) {
        (Some(_), None) => UserScope::All,
        (_, Some(domain)) => UserScope::Domain(domain.to_owned()),
        (None, None) => {
            return Err(ApiError::invalid("Bad Request: one of customer or domain is required"));
        }
    };
    let mut users = call.read(|s| s.users(&scope))?;
    if let Some(query) = param(q, "query") {
        let unit = org_unit_query(query)?;
        users.retain(|u| crate::model::in_org_unit(&u.org_unit_path, &unit));
    }
    users.sort_by_key(|u| u.primary_email.to_lowercase());
    let (items, next) = page(&users, q, size)?;
    let users: Vec<Value> = items
        .iter()
        .map(|u| {
            let mut json = user_json(u, &call.headers);
            projection.apply(&mut json, u);
            json
        })
        .collect();
    Ok(paged(json!({ "kind": "admin#directory#users", "users": users }), next))
}

/// `GET admin/directory/v1/groups/{groupKey}/members`.
pub async fn list_members(call: Call, Path(group): Path<String>) -> Result<Json<Value>, ApiError> {
    call.admit(MEMBER_SCOPES, Bucket::Directory, 1)?;
    let q = &call.query;
    let size = page_size(q, "maxResults", 200, 200)?;
    let derived = param(q, "includeDerivedMembership") == Some("true");
    let members = call.read(|s| {
        if derived {
            s.group_members(&group).map(|members| {
                members.map(|emails| emails.into_iter().map(|e| (e, false)).collect::<Vec<_>>())
            })
        } else {
            s.direct_members(&group)
        }
    })?;
    let members = members.ok_or_else(|| ApiError::not_found("Resource Not Found: groupKey"))?;
    let (items, next) = page(&members, q, size)?;
    let mut out = Vec::with_capacity(items.len());
    for (email, is_group) in &items {
        let user = call.read(|s| s.user(email))?;
        let id = user.map_or_else(|| crate::model::short_hash(&[email]), |u| u.id);
        out.push(json!({
            "kind": "admin#directory#member",
            "email": email,
            "id": id,
            "role": "MEMBER",
            "type": if *is_group { "GROUP" } else { "USER" },
            "status": "ACTIVE",
        }));
    }
    let items = out;
    Ok(paged(json!({ "kind": "admin#directory#members", "members": items }), next))
}

/// `GET admin/directory/v1/customer/{customerId}/schemas`: every custom schema
/// some user of the tenant has a value of, its fields those any user has (text
/// fields; multi-valued when a user holds a list).
pub async fn list_schemas(
    call: Call,
    Path(_customer): Path<String>,
) -> Result<Json<Value>, ApiError> {
    call.admit(SCHEMA_SCOPES, Bucket::Directory, 1)?;
    let users = call.read(|s| s.users(&UserScope::All))?;
    let schemas = call.read(|s| s.user_schemas())?;
    let items: Vec<Value> = schemas
        .iter()
        .map(|schema| {
            let id = crate::model::short_hash(&["schema", &schema.name]);
            let fields: Vec<Value> = schema
                .fields
                .iter()
                .map(|field| {
                    let multi = users.iter().any(|u| {
                        u.custom_schemas
                            .get(&schema.name)
                            .and_then(|s| s.get(field))
                            .is_some_and(Value::is_array)
                    });
                    json!({
                        "kind": "admin#directory#schema#fieldspec",
                        "fieldId": crate::model::short_hash(&[&id, field]),
                        "fieldName": field,
                        "displayName": field,
                        "fieldType": "STRING",
                        "multiValued": multi,
                        "readAccessType": "ALL_DOMAIN_USERS",
                        "etag": format!("\"{}\"", crate::model::short_hash(&[&id, field, "etag"])),
                    })
                })
                .collect();
            json!({
                "kind": "admin#directory#schema",
                "schemaId": id,
                "schemaName": schema.name,
                "displayName": schema.name,
                "fields": fields,
                "etag": format!("\"{}\"", crate::model::short_hash(&[&id, "etag"])),
            })
        })
        .collect();
    Ok(Json(json!({ "kind": "admin#directory#schemas", "schemas": items })))
}
