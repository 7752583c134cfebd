//! Checks of `spec.fields` (a sync's or the Workspace's): every entry a Person
//! field, `FIELD.TYPE` or `photo`, with "did you mean"; `include` and `exclude` not
//! both; and nothing excluded that always flows (`names`, the first e-mail
//! address). The schema's own error for a bad entry says the same as
//! [`entry_message`], so an entry gets one message whichever layer finds it.

use crate::diagnostic::Diagnostic;
use crate::manifest::{Document, FieldsSpec};
use crate::model::PERSON_FIELDS;
use crate::model::fields::{Entry, EntryError, PHOTO, TYPED_FIELDS};

/// Checks the `fields` at `pointer` (`/spec/fields`) of `doc`.
pub fn check(
    doc: &Document,
    pointer: &str,
    fields: Option<&FieldsSpec>,
    out: &mut Vec<Diagnostic>,
) {
    let Some(fields) = fields else { return };
    if fields.include.is_some() && fields.exclude.is_some() {
        out.push(doc.error(
            &format!("{pointer}/exclude"),
            "`include` and `exclude` are both set; keep one: `include` lists the only fields \
             copied, `exclude` the fields left out of everything",
        ));
    }
    for (list, entries, excluding) in
        [("include", &fields.include, false), ("exclude", &fields.exclude, true)]
    {
        for (i, text) in entries.iter().flatten().enumerate() {
            let at = format!("{pointer}/{list}/{i}");
            match Entry::parse(text) {
                Err(_) => out.extend(entry_message(text).map(|m| doc.error(&at, m))),
                Ok(Entry::Field("names")) if excluding => out.push(doc.error(
                    &at,
                    "`names` cannot be excluded: names and the first e-mail address are always \
                     copied, they identify the contact in every destination; remove it from \
                     `exclude`",
                )),
                Ok(Entry::Field("emailAddresses")) if excluding => out.push(doc.error(
                    &at,
                    "`emailAddresses` cannot be excluded: the first e-mail address is always \
                     copied, it identifies the contact in every destination; to leave out the \
                     other addresses of a type, exclude `emailAddresses.TYPE` (such as \
                     `emailAddresses.home`), which never drops the first one",
                )),
                Ok(_) => {}
            }
        }
    }
}

/// What is wrong with the entry `text`, with a suggestion; `None` when it is one.
pub fn entry_message(text: &str) -> Option<String> {
    let error = Entry::parse(text).err()?;
    Some(match error {
        EntryError::UnknownField(field) => {
            let suggestion = match text.split_once('.') {
                Some((_, ty)) => {
                    crate::validate::did_you_mean(&field, TYPED_FIELDS.iter().copied())
                        .map(|f| format!("{f}.{ty}"))
                }
                None => {
                    let names = PERSON_FIELDS.iter().copied().chain([PHOTO]);
                    crate::validate::did_you_mean(&field, names).map(str::to_owned)
                }
            };
            let mut message = format!("`{text}` names no Person field");
            if let Some(s) = suggestion {
                message.push_str(&format!(" (did you mean `{s}`?)"));
            }
            message.push_str(&format!(
                "; expected a field ({}), FIELD.TYPE such as `phoneNumbers.mobile`, or `{PHOTO}`",
                PERSON_FIELDS.join(", ")
            ));
            message
        }
        EntryError::Untyped(field) => format!(
            "`{text}`: the items of `{field}` have no type, so there is nothing to match; write \
             `{field}` for the whole field (FIELD.TYPE works for {})",
            TYPED_FIELDS.join(", ")
        ),
        EntryError::BadType(field) => format!(
            "`{text}` needs one type after the dot (no dot in it); write a type such as \
             `{field}.home`, or `{field}` for the whole field"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_suggest_the_closest_name() {
        assert_eq!(entry_message("birthdays"), None);
        assert_eq!(entry_message("phoneNumbers.Mobile"), None);
        let m = entry_message("birthday").unwrap();
        assert!(
            m.starts_with("`birthday` names no Person field (did you mean `birthdays`?)"),
            "{m}"
        );
        let m = entry_message("phoneNumber.mobile").unwrap();
        assert!(m.contains("(did you mean `phoneNumbers.mobile`?)"), "{m}");
        let m = entry_message("photos").unwrap();
        assert!(m.contains("(did you mean `photo`?)"), "{m}");
        let m = entry_message("birthdays.home").unwrap();
        assert!(m.contains("write `birthdays` for the whole field"), "{m}");
        let m = entry_message("addresses.").unwrap();
        assert!(m.contains("needs one type after the dot"), "{m}");
    }
}
