//! The `--format json` document, written as it is serialized: views that borrow
//! the plan and are made one destination at a time as the writer reaches it (no
//! copy of the plan, no intermediate JSON tree; a change list that destinations
//! share is written out for each of them), without the operations,
//! contact data hidden under `--redact`, and the characters JSON allows raw but
//! terminals act on (C1 controls, U+2028, U+2029) written as `\uXXXX` escapes.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::Value;

use super::render::REDACTED;
use super::{
    Action, Change, DestinationPlan, FieldChange, Orphan, Plan, PlanError, Reason, Resource,
    Status, Summary, SyncPlan,
};

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanView<'a> {
    format_version: &'a str,
    summary: &'a Summary,
    syncs: Vec<SyncView<'a>>,
    orphans: &'a [Orphan],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [PlanError],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    notes: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [String],
    fingerprint: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SyncView<'a> {
    name: &'a str,
    source: &'a super::PlanSource,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    suspended: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    orphaned: bool,
    errors: &'a [PlanError],
    users: usize,
    destinations: Each<'a, DestinationPlan>,
}

/// A list serialized item by item through its view, made as it is written.
struct Each<'a, T> {
    items: &'a [T],
    redact: bool,
}

impl<'a, T> Each<'a, T> {
    fn new(items: &'a [T], redact: bool) -> Self {
        Self { items, redact }
    }
}

impl Serialize for Each<'_, DestinationPlan> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(|d| DestinationView::new(d, self.redact)))
    }
}

impl Serialize for Each<'_, Change> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items.iter().map(|c| ChangeView::new(c, self.redact)))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DestinationView<'a> {
    user: &'a str,
    status: Status,
    error: &'a Option<PlanError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: &'a Option<String>,
    changes: Each<'a, Change>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ChangeView<'a> {
    action: Action,
    resource: Resource,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    reason: Reason,
    fields: Vec<FieldView<'a>>,
}

#[derive(Serialize)]
struct FieldView<'a> {
    field: &'a str,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
}

impl<'a> PlanView<'a> {
    fn new(plan: &'a Plan, redact: bool) -> Self {
        Self {
            format_version: &plan.format_version,
            summary: &plan.summary,
            syncs: plan.syncs.iter().map(|s| SyncView::new(s, redact)).collect(),
            orphans: &plan.orphans,
            errors: &plan.errors,
            notes: &plan.notes,
            warnings: &plan.warnings,
            fingerprint: &plan.fingerprint,
        }
    }
}

impl<'a> SyncView<'a> {
    fn new(s: &'a SyncPlan, redact: bool) -> Self {
        Self {
            name: &s.name,
            source: &s.source,
            suspended: s.suspended,
            orphaned: s.orphaned,
            errors: &s.errors,
            users: s.users,
            destinations: Each::new(&s.destinations, redact),
        }
    }
}

impl<'a> DestinationView<'a> {
    fn new(d: &'a DestinationPlan, redact: bool) -> Self {
        Self {
            user: &d.user,
            status: d.status,
            error: &d.error,
            skipped: &d.skipped,
            changes: Each::new(&d.changes, redact),
        }
    }
}

/// What `--redact` puts in place of a value, as JSON.
static REDACTED_VALUE: std::sync::LazyLock<Value> =
    std::sync::LazyLock::new(|| Value::String(REDACTED.to_owned()));

impl<'a> ChangeView<'a> {
    fn new(c: &'a Change, redact: bool) -> Self {
        let hide =
            |v: &'a Option<Value>| v.as_ref().map(|v| if redact { &*REDACTED_VALUE } else { v });
        Self {
            action: c.action,
            resource: c.resource,
            name: &c.name,
            email: c.email.as_deref().map(|e| if redact { REDACTED } else { e }),
            reason: c.reason,
            fields: c
                .fields
                .iter()
                .map(|f: &'a FieldChange| FieldView {
                    field: &f.field,
                    before: hide(&f.before),
                    after: hide(&f.after),
                })
                .collect(),
        }
    }
}

/// The plan's JSON document as a tree (for tests and small plans; the command
/// line streams it with [`write`]).
pub fn to_value(plan: &Plan, redact: bool) -> Value {
    serde_json::to_value(PlanView::new(plan, redact)).expect("plans serialize")
}

/// Writes the plan's JSON document (pretty, then a newline) to `out`.
pub fn write(plan: &Plan, redact: bool, out: impl Write) -> io::Result<()> {
    write_document(&PlanView::new(plan, redact), out)
}

/// Writes any JSON document the command line prints (the plan, the apply report,
/// `resolve`, `validate`) as the plan's is written: pretty, then a newline, with
/// what terminals act on escaped.
pub fn write_document<T: Serialize + ?Sized>(document: &T, out: impl Write) -> io::Result<()> {
    let mut out = io::BufWriter::new(out);
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, Escaping::default());
    document
        .serialize(&mut serializer)
        // An I/O error comes back as it was (a closed stdout stays recognisable).
        .map_err(io::Error::from)?;
    out.write_all(b"\n")?;
    out.flush()
}

/// serde_json's pretty formatter, escaping in strings what terminals act on.
#[derive(Default)]
struct Escaping {
    pretty: serde_json::ser::PrettyFormatter<'static>,
}

impl serde_json::ser::Formatter for Escaping {
    fn write_string_fragment<W: ?Sized + Write>(&mut self, w: &mut W, s: &str) -> io::Result<()> {
        let risky = |c: char| matches!(c, '\u{80}'..='\u{9f}' | '\u{2028}' | '\u{2029}');
        let mut start = 0;
        for (i, c) in s.char_indices().filter(|(_, c)| risky(*c)) {
            w.write_all(&s.as_bytes()[start..i])?;
            write!(w, "\\u{:04x}", c as u32)?;
            start = i + c.len_utf8();
        }
        w.write_all(&s.as_bytes()[start..])
    }

    fn begin_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_array(w)
    }

    fn end_array<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array(w)
    }

    fn begin_array_value<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.pretty.begin_array_value(w, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_array_value(w)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object(w)
    }

    fn end_object<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object(w)
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, w: &mut W, first: bool) -> io::Result<()> {
        self.pretty.begin_object_key(w, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.begin_object_value(w)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, w: &mut W) -> io::Result<()> {
        self.pretty.end_object_value(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{FieldChange, Op, PlanSource};

    fn sample() -> Plan {
        let update = Change {
            action: Action::Update,
            resource: Resource::Contact,
            name: "Ada\u{2028}Lovelace".into(),
            email: Some("ada@acme.test".into()),
            reason: Reason::EditedOutside,
            fields: vec![FieldChange {
                field: "phoneNumbers[0].value".into(),
                before: Some("+1 555 0101\u{85}".into()),
                after: Some("+1 555 0199".into()),
            }],
            op: Op::DeleteContact { resource_name: "people/c1".into() },
        };
        let mut plan = Plan {
            format_version: "1".into(),
            syncs: vec![SyncPlan {
                name: "s".into(),
                source: PlanSource::Contacts {
                    user: "sam@example.com".into(),
                    contact_group: "Sales".into(),
                },
                users: 2,
                destinations: vec![
                    DestinationPlan::with_changes("ann@example.com", vec![update]),
                    DestinationPlan::skipped("erin@example.com", "suspended"),
                ],
                ..SyncPlan::default()
            }],
            notes: vec!["a note".into()],
            fingerprint: "f".into(),
            ..Plan::default()
        };
        plan.summarize();
        plan
    }

    #[test]
    fn the_written_document_is_the_plan_without_its_operations() {
        let plan = sample();
        let mut out = Vec::new();
        write(&plan, false, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // Escaped as written, the same when read.
        assert!(!text.contains('\u{2028}') && !text.contains('\u{85}'), "{text}");
        assert!(text.contains("Ada\\u2028Lovelace"), "{text}");
        let written: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(written, to_value(&plan, false));
        let change = &written["syncs"][0]["destinations"][0]["changes"][0];
        assert_eq!(change["name"], "Ada\u{2028}Lovelace");
        assert!(change.get("op").is_none(), "{change}");
        assert_eq!(change["fields"][0]["before"], "+1 555 0101\u{85}");
        let skipped = &written["syncs"][0]["destinations"][1];
        assert_eq!(
            (&skipped["status"], &skipped["skipped"]),
            (&"skipped".into(), &"suspended".into())
        );
        assert!(skipped["error"].is_null());
        assert_eq!(written["notes"][0], "a note");
        assert!(written.get("errors").is_none(), "empty lists stay out");

        let redacted = to_value(&plan, true);
        let change = &redacted["syncs"][0]["destinations"][0]["changes"][0];
        assert_eq!(
            (&change["email"], &change["fields"][0]["after"]),
            (&REDACTED.into(), &REDACTED.into())
        );
        assert_eq!(change["name"], "Ada\u{2028}Lovelace", "names stay");
    }
}
