//! The local workspace file: a YAML stand-in for a Google Workspace
//! tenant, read with line-numbered errors and written back atomically.
//!
//! Every struct keeps the keys it does not know in an `extra` map, so a rewrite by
//! `apply` loses nothing a person or a newer version put there (comments aside:
//! YAML comments are not part of the data model and do not survive a rewrite).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, SourceFile};
use crate::manifest::Document;
use crate::model::ClientData;

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantFile {
    /// The customer's domains.
    #[serde(default)]
    pub domains: Vec<String>,
    /// The users, with their contacts.
    #[serde(default)]
    pub users: Vec<TenantUser>,
    /// Google groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<TenantGroup>,
    /// The domain's shared (external) contacts, in the People API's Person shape,
    /// as `people.listDirectoryPeople` lists them; `resourceName` and `etag` are
    /// assigned when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_contacts: Vec<TenantContact>,
    /// Keys this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A user of the tenant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantUser {
    /// Primary address.
    pub primary_email: String,
    /// Immutable id; assigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Other addresses (old primaries after a rename).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// Org unit path.
    #[serde(default = "root_org_unit")]
    pub org_unit_path: String,
    /// Suspended.
    #[serde(default, skip_serializing_if = "is_false")]
    pub suspended: bool,
    /// Archived.
    #[serde(default, skip_serializing_if = "is_false")]
    pub archived: bool,
    /// In the Global Address List (the default); `false` hides the user, whom
    /// directory syncs then never copy.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub include_in_global_address_list: bool,
    /// Name (`givenName`, `familyName`).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub name: Map<String, Value>,
    /// Directory phone numbers, in the Directory API's shape (`UserPhone`:
    /// `value`, `type`, `customType`, `primary`), as are the lists below.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<Value>,
    /// Directory organizations (`UserOrganization`: `name`, `title`,
    /// `department`, `description`, `costCenter`, `fullTimeEquivalent`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub organizations: Vec<Value>,
    /// Directory addresses (`UserAddress`: `type`, `streetAddress`, `locality`,
    /// `postalCode`, `countryCode`, `formatted`…).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<Value>,
    /// Directory relations (`UserRelation`: `value`, `type` such as `manager`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<Value>,
    /// Directory locations (`UserLocation`: `area`, `buildingId`, `floorName`,
    /// `deskCode`, `type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<Value>,
    /// Directory external ids (`UserExternalId`: `value`, `type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub external_ids: Vec<Value>,
    /// Directory instant messengers (`UserIm`: `im`, `protocol`, `type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ims: Vec<Value>,
    /// Directory websites (`UserWebsite`: `value`, `type`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub websites: Vec<Value>,
    /// Custom schema fields: schema name → field name → value (a list of
    /// `{value, type}` for a multi-valued field), e.g.
    /// `{EmployeeInfo: {EmployeeNumber: "E-1001"}}`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub custom_schemas: Map<String, Value>,
    /// The user's directory photo: base64 of JPEG or PNG bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photo_data: Option<String>,
    /// The user's own contact groups (system groups are implicit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_groups: Vec<TenantContactGroup>,
    /// The user's contacts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<TenantContact>,
    /// Keys this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn root_org_unit() -> String {
    "/".into()
}

fn is_false(b: &bool) -> bool {
    !b
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for TenantUser {
    fn default() -> Self {
        Self {
            primary_email: String::new(),
            id: None,
            aliases: Vec::new(),
            org_unit_path: String::new(),
            suspended: false,
            archived: false,
            include_in_global_address_list: true,
            name: Map::new(),
            phones: Vec::new(),
            organizations: Vec::new(),
            addresses: Vec::new(),
            relations: Vec::new(),
            locations: Vec::new(),
            external_ids: Vec::new(),
            ims: Vec::new(),
            websites: Vec::new(),
            custom_schemas: Map::new(),
            photo_data: None,
            contact_groups: Vec::new(),
            contacts: Vec::new(),
            extra: Map::new(),
        }
    }
}

/// A user's contact group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantContactGroup {
    /// Name.
    pub name: String,
    /// `contactGroups/…`; assigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Etag; recomputed from the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `clientData`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_data: Vec<ClientData>,
    /// Keys this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// A contact: People API Person fields plus memberships by group name.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantContact {
    /// `people/c…`; assigned when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// Etag; recomputed from the content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `clientData`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_data: Vec<ClientData>,
    /// Memberships by group name; `myContacts` and `starred` are the system groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact_groups: Vec<String>,
    /// Person fields (and anything else) by People API name; `photoData`, the
    /// contact's photo (base64 of JPEG or PNG bytes), is kept here too.
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// The key of a contact's photo among its [`TenantContact::fields`].
pub const PHOTO_DATA: &str = "photoData";

/// A Google group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantGroup {
    /// The group's address.
    pub email: String,
    /// Member addresses: users or other groups.
    #[serde(default)]
    pub members: Vec<String>,
    /// Keys this version does not know.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// System contact groups every user has, by the name used in the file.
pub const SYSTEM_GROUPS: &[(&str, &str)] = &[("myContacts", "My Contacts"), ("starred", "Starred")];

/// Parses a workspace file. Errors carry `file:line:col`.
pub fn parse(path: &Path, text: String) -> Result<TenantFile, Vec<Diagnostic>> {
    let file = Arc::new(SourceFile { path: path.to_path_buf(), text });
    let roots = crate::yaml::parse_documents(&file.text).map_err(|e| {
        let loc = crate::diagnostic::Location { file: file.clone(), mark: e.mark };
        vec![
            Diagnostic::at(loc, "", format!("invalid YAML: {}", e.message))
                .of_kind(crate::diagnostic::Kind::Yaml),
        ]
    })?;
    let Some(root) = roots.into_iter().next() else {
        return Ok(TenantFile::default());
    };
    let doc = Document { file, root };
    let tenant: TenantFile =
        serde_path_to_error::deserialize(doc.root.to_json()).map_err(|e| {
            let pointer: String = e
                .path()
                .iter()
                .map(|s| match s {
                    serde_path_to_error::Segment::Seq { index } => format!("/{index}"),
                    serde_path_to_error::Segment::Map { key } => {
                        format!("/{}", crate::yaml::escape_token(key))
                    }
                    _ => String::new(),
                })
                .collect();
            vec![doc.error(
                &pointer,
                format!("{}; see examples/workspace.yaml for the format", e.inner()),
            )]
        })?;
    let errors = check(&doc, &tenant);
    if errors.is_empty() { Ok(tenant) } else { Err(errors) }
}

/// Consistency rules: unique addresses, memberships naming existing groups.
fn check(doc: &Document, tenant: &TenantFile) -> Vec<Diagnostic> {
    let mut errors = Vec::new();
    let mut addresses = HashSet::new();
    for (u, user) in tenant.users.iter().enumerate() {
        for (a, address) in std::iter::once(&user.primary_email).chain(&user.aliases).enumerate() {
            if !addresses.insert(address.to_lowercase()) {
                let pointer = if a == 0 {
                    format!("/users/{u}/primaryEmail")
                } else {
                    format!("/users/{u}/aliases/{}", a - 1)
                };
                errors.push(doc.error(&pointer, format!("address {address} is used twice")));
            }
        }
        if let Some(data) = &user.photo_data {
            errors.extend(check_photo(doc, &format!("/users/{u}/photoData"), data));
        }
        let names: HashSet<&str> = user.contact_groups.iter().map(|g| g.name.as_str()).collect();
        for (c, contact) in user.contacts.iter().enumerate() {
            match contact.fields.get(PHOTO_DATA) {
                None => {}
                Some(Value::String(data)) => errors.extend(check_photo(
                    doc,
                    &format!("/users/{u}/contacts/{c}/photoData"),
                    data,
                )),
                Some(_) => errors.push(doc.error(
                    &format!("/users/{u}/contacts/{c}/photoData"),
                    "photoData must be a string: the base64 of a JPEG or PNG image",
                )),
            }
            for (g, group) in contact.contact_groups.iter().enumerate() {
                let system = SYSTEM_GROUPS.iter().any(|(id, _)| id == group);
                if !system && !names.contains(group.as_str()) {
                    errors.push(doc.error(
                        &format!("/users/{u}/contacts/{c}/contactGroups/{g}"),
                        format!(
                            "no contact group named \"{group}\" in {}'s contactGroups; add it \
                             there or use `myContacts`",
                            user.primary_email
                        ),
                    ));
                }
            }
        }
    }
    for (g, group) in tenant.groups.iter().enumerate() {
        if !addresses.insert(group.email.to_lowercase()) {
            errors.push(doc.error(
                &format!("/groups/{g}/email"),
                format!("address {} is used twice", group.email),
            ));
        }
    }
    errors
}

/// A photo of the file: base64 of a JPEG or PNG image.
fn check_photo(doc: &Document, pointer: &str, data: &str) -> Option<Diagnostic> {
    let Some(bytes) = crate::model::photo::decode_base64(data) else {
        return Some(doc.error(
            pointer,
            "photoData is not base64; write the photo's bytes in base64 (e.g. `base64 -w0 \
             photo.jpg`)",
        ));
    };
    crate::model::photo::image_type(&bytes)
        .is_none()
        .then(|| doc.error(pointer, "photoData is not a JPEG or PNG image; only those are photos"))
}

/// The file's text, which any YAML reader reads back as `tenant` (see
/// [`crate::yaml::emit`]): strings that could pass for another scalar are quoted,
/// and characters that are not printable, or that some reader takes for a line
/// break, are escaped. Multi-line strings stay double-quoted with `\n` escapes.
pub fn to_text(tenant: &TenantFile) -> std::io::Result<String> {
    let value = serde_json::to_value(tenant).map_err(std::io::Error::other)?;
    Ok(crate::yaml::emit::to_text(&value))
}

/// The first line of a workspace file contact-sync writes.
const HEADER: &str = "# contact-sync local workspace, rewritten by `contact-sync apply`; format: see examples/workspace.yaml.\n";

/// Writes `tenant` to `path` atomically (see [`crate::fsutil::write_atomic`]: a
/// symbolic link is written through; on any failure the old file is left as it
/// was). Returns the text written.
pub fn write_atomic(path: &Path, tenant: &TenantFile) -> std::io::Result<String> {
    let text = format!("{HEADER}{}", to_text(tenant)?);
    crate::fsutil::write_atomic(path, text.as_bytes())?;
    Ok(text)
}

/// [`write_atomic`] for a tenant whose users come one at a time from `users`
/// (`head` holds the rest; its own users are ignored): the same text, without the
/// tenant or the text held whole. Returns [`crate::model::short_hash`] of the text.
pub fn write_atomic_streamed(
    path: &Path,
    head: &TenantFile,
    users: impl Iterator<Item = std::io::Result<TenantUser>>,
) -> std::io::Result<String> {
    let mut hash = String::new();
    crate::fsutil::write_atomic_with(path, |out| {
        let mut out = Hashing { out, hasher: Sha256::new() };
        out.write_all(HEADER.as_bytes())?;
        let mut w = crate::yaml::emit::MappingWriter::new(&mut out);
        w.entry("domains", &json(&head.domains)?)?;
        w.sequence("users", users.map(|u| json(&u?)))?;
        if !head.groups.is_empty() {
            w.entry("groups", &json(&head.groups)?)?;
        }
        if !head.shared_contacts.is_empty() {
            w.entry("sharedContacts", &json(&head.shared_contacts)?)?;
        }
        for (key, value) in &head.extra {
            w.entry(key, value)?;
        }
        w.finish()?;
        out.hasher.update([0]);
        hash = hex::encode(&out.hasher.finalize()[..8]);
        Ok(())
    })?;
    Ok(hash)
}

fn json<T: serde::Serialize>(value: &T) -> std::io::Result<Value> {
    serde_json::to_value(value).map_err(std::io::Error::other)
}

/// A writer that hashes what goes through it as [`crate::model::short_hash`] does
/// a single part (SHA-256 of the bytes and a zero byte).
struct Hashing<'a> {
    out: &'a mut dyn Write,
    hasher: Sha256,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// A synthetic tenant, for benchmarks and tests: `source@example.com` (org unit
/// /Sales) keeps `contacts` contacts in its contact group "Shared"; the
/// `destinations` users `d000@example.com`… are in /Dest; `admin@example.com` in
/// /IT administers it.
pub fn synthetic(contacts: usize, destinations: usize) -> TenantFile {
    let mut source = TenantUser {
        primary_email: "source@example.com".into(),
        org_unit_path: "/Sales".into(),
        contact_groups: vec![TenantContactGroup { name: "Shared".into(), ..Default::default() }],
        ..Default::default()
    };
    for i in 0..contacts {
        let mut fields = Map::new();
        fields.insert(
            "names".into(),
            serde_json::json!([{ "givenName": "Contact", "familyName": format!("{i:05}") }]),
        );
        fields.insert(
            "emailAddresses".into(),
            serde_json::json!([{ "value": format!("c{i}@partners.test"), "type": "work" }]),
        );
        fields.insert(
            "phoneNumbers".into(),
            serde_json::json!([{ "value": format!("+1 555 {i:04}"), "type": "work" }]),
        );
        fields.insert(
            "organizations".into(),
            serde_json::json!([{ "name": "Partner Inc", "title": "Buyer" }]),
        );
        source.contacts.push(TenantContact {
            contact_groups: vec!["Shared".into()],
            fields,
            ..Default::default()
        });
    }
    let admin = TenantUser {
        primary_email: "admin@example.com".into(),
        org_unit_path: "/IT".into(),
        ..Default::default()
    };
    let mut users = vec![admin, source];
    users.extend((0..destinations).map(|i| TenantUser {
        primary_email: format!("d{i:03}@example.com"),
        org_unit_path: "/Dest".into(),
        ..Default::default()
    }));
    TenantFile { domains: vec!["example.com".into()], users, ..Default::default() }
}

/// The sync that copies [`synthetic`]'s "Shared" group to every user of /Dest.
pub const SYNTHETIC_SYNC: &str = "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata: {name: bulk}\nspec:\n  source: {user: source@example.com, contactGroup: Shared}\n  destinations: {orgUnits: [/Dest]}\n";

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Writes a tenant holding `value` as a contact field's value and as the name of
    /// another field, reads it back and returns (value, whether the key is there).
    fn round_trip(value: &str) -> Value {
        let mut contact = TenantContact::default();
        contact.fields.insert("nicknames".into(), serde_json::json!([{ "value": value }]));
        let known = ["resourceName", "etag", "clientData", "contactGroups", "nicknames"];
        if !known.contains(&value) {
            contact.fields.insert(value.into(), serde_json::json!({ value: [value] }));
        }
        let tenant = TenantFile {
            users: vec![TenantUser {
                primary_email: "a@example.com".into(),
                contacts: vec![contact],
                ..Default::default()
            }],
            ..Default::default()
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.yaml");
        write_atomic(&path, &tenant).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let unprintable = |c: char| {
            !matches!(c, '\t' | '\n' | '\r' | ' '..='~' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
        };
        assert!(!text.contains(unprintable), "{value:?} is written raw:\n{text}");
        let back = parse(&path, text).unwrap();
        assert_eq!(back, tenant, "{value:?}");
        back.users[0].contacts[0].fields["nicknames"][0]["value"].clone()
    }

    #[test]
    fn a_tenant_written_user_by_user_is_the_tenant_written_whole() {
        let mut tenant = synthetic(3, 2);
        tenant.groups.push(TenantGroup { email: "g@example.com".into(), ..Default::default() });
        tenant
            .shared_contacts
            .push(TenantContact { resource_name: Some("people/c1".into()), ..Default::default() });
        tenant.extra.insert("future".into(), serde_json::json!({ "x": [1] }));
        let dir = tempfile::tempdir().unwrap();
        let (whole, streamed) = (dir.path().join("whole.yaml"), dir.path().join("streamed.yaml"));
        let text = write_atomic(&whole, &tenant).unwrap();
        let users = tenant.users.clone().into_iter().map(Ok);
        let hash = write_atomic_streamed(&streamed, &tenant, users).unwrap();
        assert_eq!(std::fs::read_to_string(&streamed).unwrap(), text);
        assert_eq!(hash, crate::model::short_hash(&[&text]));
    }

    #[test]
    fn strings_that_look_like_other_scalars_survive_a_rewrite() {
        for s in [
            "00990",
            "0x1F",
            "0o17",
            "+12",
            "1e3",
            "1_000",
            "yes",
            "no",
            "on",
            "~",
            "null",
            ".inf",
            "-.5",
            "0",
            "true",
            "12:30",
            "2026-11-23",
            "+1 555 0100",
            "#tag",
            "- item",
            "a: b",
            "'q'",
            "\"dq\"",
            "",
        ] {
            assert_eq!(round_trip(s), Value::String(s.into()), "{s:?}");
        }
    }

    /// Characters YAML readers disagree about or refuse raw, and YAML's syntax.
    const AWKWARD: &str = "\0\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1f\x7f\u{80}\u{85}\u{9f}\u{a0}\u{2028}\u{2029}\u{feff}\u{fffe}\u{ffff}\u{fffd}\u{10ffff}\u{e000} -+.:_~#'\"\\xoeb0123456789[]{},&*!|>%@`?=<yYnN";

    fn awkward_string() -> impl Strategy<Value = String> {
        let chars: Vec<char> = AWKWARD.chars().collect();
        let one = prop_oneof![3 => proptest::sample::select(chars), 1 => any::<char>()];
        proptest::collection::vec(one, 0..24).prop_map(String::from_iter)
    }

    proptest! {
        #[test]
        fn any_string_survives_a_rewrite(s in awkward_string()) {
            prop_assert_eq!(round_trip(&s), Value::String(s.clone()));
        }
    }
}
