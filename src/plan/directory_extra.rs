//! What a directory sync copies besides its users' Directory fields: the custom
//! schema fields its `customFields` name, and the domain's shared contacts
//! (`sharedContacts: true`), keyed `shared/<contact id>`.

use crate::manifest::{ContactSync, CustomFieldInto};
use crate::model::contact_id;
use crate::model::directory_map::{CustomField, CustomInto};

/// The source key prefix of a domain shared contact.
pub const SHARED_SOURCE: &str = "shared";

/// A shared contact's source key: `shared/<contact id>` of its resource name
/// (`people/c123` → `shared/c123`), stable for the contact's life.
pub fn shared_key(resource_name: &str) -> String {
    format!("{SHARED_SOURCE}/{}", contact_id(resource_name))
}

/// The custom fields a directory sync copies, as the mapping takes them.
pub fn custom_fields(sync: &ContactSync) -> Vec<CustomField<'_>> {
    let Some(source) = &sync.spec.source.directory else { return Vec::new() };
    source
        .custom_fields
        .iter()
        .map(|c| CustomField {
            schema: &c.schema,
            field: &c.field,
            label: &c.label,
            into: match c.into {
                CustomFieldInto::UserDefined => CustomInto::UserDefined,
                CustomFieldInto::ExternalId => CustomInto::ExternalId,
            },
        })
        .collect()
}

/// The manifest positions plan errors about custom fields point at.
pub fn pointers(sync: &ContactSync) -> Vec<String> {
    let n = sync.spec.source.directory.as_ref().map_or(0, |d| d.custom_fields.len());
    (0..n)
        .flat_map(|i| {
            ["schema", "field"].map(|k| format!("/spec/source/directory/customFields/{i}/{k}"))
        })
        .collect()
}

/// How many of a directory sync's contacts are shared contacts.
pub fn shared_count<'a>(keys: impl IntoIterator<Item = &'a String>) -> usize {
    let prefix = format!("{SHARED_SOURCE}/");
    keys.into_iter().filter(|k| k.starts_with(&prefix)).count()
}
