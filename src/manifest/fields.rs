//! `spec.fields` of a ContactSync (and of the Workspace, as the default of every
//! sync that sets none): which Person fields reach the copies.
//!
//! The manifest keeps the entries as the admin wrote them; [`FieldsSpec::selection`]
//! turns them into the model's [`FieldSelection`]. The schema lists the allowed
//! names (Person fields, common `FIELD.TYPE` pairs, a pattern for other types) so
//! editors complete them; what the schema cannot say (include and exclude together,
//! excluding what always flows) is checked in `crate::validate`.

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::model::PERSON_FIELDS;
use crate::model::fields::{COMMON_TYPED, FieldSelection, PHOTO, TYPED_FIELDS};

/// The `title` of the schema of one entry; validation recognises its errors by it.
pub const ENTRY_TITLE: &str = "Field selection entry";

/// Which Person fields of each source contact are copied: `include` (only these)
/// or `exclude` (all but these), not both. `names` and the first e-mail address
/// are always copied: they identify the contact.
#[derive(Serialize, Deserialize, JsonSchema, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldsSpec {
    /// Copy only these: Person field names (`phoneNumbers`), `FIELD.TYPE` for the
    /// items of one type (`phoneNumbers.work`), or `photo`. `names` and the first
    /// e-mail address are copied too, listed or not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "entries_schema")]
    pub include: Option<Vec<String>>,
    /// Copy everything but these: Person field names (`birthdays`), `FIELD.TYPE`
    /// for the items of one type (`phoneNumbers.mobile`, `addresses.home`), or
    /// `photo`. `names` and the first e-mail address cannot be left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "entries_schema")]
    pub exclude: Option<Vec<String>>,
}

impl FieldsSpec {
    /// The selection the entries make (`include` wins if both are set, which
    /// validation refuses).
    pub fn selection(&self) -> FieldSelection {
        match (&self.include, &self.exclude) {
            (Some(list), _) => FieldSelection::include(list.iter().map(String::as_str)),
            (None, Some(list)) => FieldSelection::exclude(list.iter().map(String::as_str)),
            (None, None) => FieldSelection::All,
        }
    }
}

/// The effective selection of a sync: its own `spec.fields`, else the Workspace's.
pub fn effective(own: Option<&FieldsSpec>, workspace: Option<&FieldsSpec>) -> FieldSelection {
    own.or(workspace).map(FieldsSpec::selection).unwrap_or_default()
}

fn entries_schema(_: &mut SchemaGenerator) -> Schema {
    let mut whole: Vec<&str> = PERSON_FIELDS.to_vec();
    whole.push(PHOTO);
    let typed = format!(r"^({})\.[^.]+$", TYPED_FIELDS.join("|"));
    json_schema!({
        "type": ["array", "null"],
        "items": {
            "title": ENTRY_TITLE,
            "description": "A Person field name (`phoneNumbers`, `addresses`, `birthdays`, \
                            `biographies`…), `FIELD.TYPE` for the items of one type \
                            (`phoneNumbers.mobile`, `addresses.home`; the type matched \
                            case-insensitively), or `photo`.",
            "anyOf": [
                { "type": "string", "enum": whole },
                { "type": "string", "enum": COMMON_TYPED },
                { "type": "string", "pattern": typed }
            ],
            "examples": ["birthdays", "phoneNumbers.mobile", "addresses.home", "photo"]
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_without_fields_takes_the_workspace_default() {
        let ws = FieldsSpec { exclude: Some(vec!["birthdays".into()]), include: None };
        let own = FieldsSpec { include: Some(vec!["urls".into()]), exclude: None };
        assert_eq!(effective(None, None), FieldSelection::All);
        assert_eq!(effective(None, Some(&ws)), FieldSelection::exclude(["birthdays"]));
        assert_eq!(effective(Some(&own), Some(&ws)), FieldSelection::include(["urls"]));
        assert_eq!(effective(Some(&FieldsSpec::default()), Some(&ws)), FieldSelection::All);
    }
}
