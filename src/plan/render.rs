//! Rendering a plan for people: the text form (colour on a terminal only) and the
//! markdown form for pull-request comments ([`markdown`]). The JSON form is
//! [`Plan::to_json`].
//!
//! Output is sorted and stable: syncs by name, destinations by address, changes
//! groups first then by name — the planner sorts; rendering only walks.
//!
//! Destinations of a sync that the plan would show alike — the same changes, or
//! up to date — are shown once, as a group at the place of its first address
//! (a first sync to 4,000 users is one list of changes, not 4,000 copies of it):
//!
//! ```text
//!   4000 users (ann@example.com, bob@example.com, and 3998 more), each:
//!     + group "Sales Contacts"
//!     + contact "Ada Lovelace" <ada@acme.test>
//!   3 users (carol@example.com, dan@example.com, and erin@example.com): up to date
//! ```
//!
//! A destination unlike any other shows as it always has; [`Style::expand`] shows
//! every destination on its own.
//!
//! Every value that comes from a manifest or a tenant (names, addresses, field
//! values, error messages quoting them) passes through [`crate::text::printable`]:
//! a contact named `"x\n::error::y"` or holding an ESC sequence cannot forge a line
//! or drive the terminal of whoever reads the plan.

use std::collections::HashMap;
use std::fmt::Write;

use serde_json::Value;

use super::changes::{hash, same_display};
use super::{
    Action, Change, DestinationPlan, FieldChange, Plan, PlanError, Resource, Status, SyncPlan,
};
use crate::text::printable as p;

mod markdown;
pub use markdown::markdown;

/// What `--redact` puts in place of a value.
pub const REDACTED: &str = "(redacted)";

/// GitHub refuses comments over 65,536 characters; parts stay below this.
pub const MARKDOWN_PART_LIMIT: usize = 65_000;

/// Separates the parts of a long markdown plan, one comment each.
pub const MARKDOWN_PART_BREAK: &str = "<!-- contact-sync: next comment -->";

/// How to render text.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// ANSI colours.
    pub color: bool,
    /// Hide field values and contact addresses.
    pub redact: bool,
    /// Show every destination on its own, not destinations with the same changes
    /// as one group.
    pub expand: bool,
}

fn paint(style: Style, code: &str, text: &str) -> String {
    if style.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
}

/// The plan as text, ending with the summary line.
pub fn text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    for sync in &plan.syncs {
        render_sync(&mut out, sync, style);
        out.push('\n');
    }
    if !plan.orphans.is_empty() {
        out.push_str("orphans  (manifests deleted; kept because orphans: keep)\n");
        for o in &plan.orphans {
            let _ = writeln!(
                out,
                "  {}: {}: {}, {}",
                p(&o.sync),
                p(&o.user),
                plural(o.contacts, "contact"),
                plural(o.groups, "group")
            );
        }
        out.push('\n');
    }
    for e in &plan.errors {
        let _ = writeln!(out, "{}", paint(style, "1;31", &format!("! {}", p(&e.message()))));
    }
    for note in &plan.notes {
        let _ = writeln!(out, "Note: {}", p(note));
    }
    for warning in &plan.warnings {
        let _ = writeln!(out, "{}", paint(style, "33", &format!("Warning: {}", p(warning))));
    }
    if !plan.errors.is_empty() || !plan.notes.is_empty() || !plan.warnings.is_empty() {
        out.push('\n');
    }
    out.push_str(&summary_line(plan));
    out.push('\n');
    out
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

/// `Plan: 2 to add, 1 to change, 1 to delete.` — the counts of what apply would
/// do; with errors, then what is not planned and why: `1 error, not planned: sync
/// sales held back (30 deletions refused by the deletion guard).` Never "up to
/// date" when part of the tenant could not be planned.
pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let counts = format!("{} to add, {} to change, {} to delete.", s.create, s.update, s.delete);
    if s.errors == 0 {
        return match s.has_changes() {
            true => format!("Plan: {counts}"),
            false => "No changes. Every destination is up to date.".to_owned(),
        };
    }
    let refused = refused(plan);
    let shown = refused.iter().take(3).map(String::as_str).collect::<Vec<_>>();
    let what = match refused.len() {
        0 => "what it concerns".to_owned(),
        1..=3 => p(&list(&shown)).into_owned(),
        n => format!("{}, and {} more", p(&shown.join(", ")), n - 3),
    };
    format!("Plan: {counts} {}, not planned: {what}.", plural(s.errors, "error"))
}

/// What the errors of a plan keep from being applied, once each: `sync x held
/// back (…)`, `bob@example.com in sync x`, `the orphan syncs`.
fn refused(plan: &Plan) -> Vec<String> {
    let mut out: Vec<String> = plan
        .errors
        .iter()
        .map(|e| e.email().map_or_else(|| "the run".to_owned(), str::to_owned))
        .collect();
    for sync in &plan.syncs {
        if !sync.errors.is_empty() {
            let why = match sync.errors.iter().find(|e| e.kind() == super::ErrorKind::DeleteGuard) {
                Some(_) => {
                    let deletes = sync
                        .destinations
                        .iter()
                        .flat_map(|d| &d.changes)
                        .filter(|c| c.action == Action::Delete)
                        .count();
                    format!(" ({} refused by the deletion guard)", plural(deletes, "deletion"))
                }
                None if sync.errors.len() == 1 => String::new(),
                None => format!(" ({})", plural(sync.errors.len(), "error")),
            };
            out.push(format!("sync {} held back{why}", sync.name));
        }
        for d in sync.destinations.iter().filter(|d| d.error.is_some()) {
            out.push(format!("{} in sync {}", d.user, sync.name));
        }
    }
    out.dedup();
    out
}

/// `a`, `a and b`, `a, b, and c`.
fn list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [a] => (*a).to_owned(),
        [a, b] => format!("{a} and {b}"),
        [rest @ .., last] => format!("{}, and {last}", rest.join(", ")),
    }
}

fn render_sync(out: &mut String, sync: &SyncPlan, style: Style) {
    let users = plural(sync.users, "user");
    let _ = write!(out, "{}  ", paint(style, "1", &format!("sync {}", p(&sync.name))));
    if sync.orphaned {
        let _ = write!(out, "(manifest deleted; orphans: delete)");
    } else {
        let _ = write!(out, "({} -> {users})", p(&sync.source.to_string()));
    }
    if sync.suspended {
        let _ = write!(out, "  [suspended: planned, not applied]");
    } else if !sync.errors.is_empty() {
        let _ = write!(out, "  [held back: planned, not applied]");
    }
    out.push('\n');
    for e in &sync.errors {
        let _ = writeln!(out, "  {}", paint(style, "1;31", &format!("! {}", p(&e.message()))));
    }
    if style.expand {
        for d in &sync.destinations {
            render_destination(out, d, style);
        }
        return;
    }
    for members in grouped(&sync.destinations) {
        match members.as_slice() {
            [d] => render_destination(out, d, style),
            _ => render_group(out, &members, style),
        }
    }
}

/// The destinations in order, those the plan shows alike (the same changes, or
/// up to date) gathered at the place of the first of them. Errors and skipped
/// destinations stay on their own: each says something of its own.
fn grouped(destinations: &[DestinationPlan]) -> Vec<Vec<&DestinationPlan>> {
    let mut entries: Vec<Vec<&DestinationPlan>> = Vec::new();
    // Entries by the address of a list (the planner shares equal lists, so this
    // finds nearly all), then by a hash of what is shown, confirmed.
    let mut by_addr: HashMap<usize, usize> = HashMap::new();
    let mut by_hash: HashMap<u64, Vec<usize>> = HashMap::new();
    for d in destinations {
        if !matches!(d.status, Status::Changes | Status::UpToDate) {
            entries.push(vec![d]);
            continue;
        }
        let alike = |e: &Vec<&DestinationPlan>| {
            e[0].status == d.status && same_display(&e[0].changes, &d.changes)
        };
        let known = by_addr.get(&d.changes.addr()).copied().filter(|&i| alike(&entries[i]));
        let i = match known {
            Some(i) => i,
            None => {
                let candidates = by_hash.entry(hash(&d.changes, false)).or_default();
                let i = match candidates.iter().copied().find(|&i| alike(&entries[i])) {
                    Some(i) => i,
                    None => {
                        entries.push(Vec::new());
                        candidates.push(entries.len() - 1);
                        entries.len() - 1
                    }
                };
                by_addr.insert(d.changes.addr(), i);
                i
            }
        };
        entries[i].push(d);
    }
    entries
}

/// Destinations the plan shows alike: how many, a few addresses, then what each
/// gets (or that they are up to date).
fn render_group(out: &mut String, members: &[&DestinationPlan], style: Style) {
    let who = format!("{} users ({})", members.len(), some_addresses(members));
    if members[0].status == Status::UpToDate {
        let _ = writeln!(out, "  {who}: up to date");
        return;
    }
    let _ = writeln!(out, "  {who}, each:");
    for c in &members[0].changes {
        render_change(out, c, style);
    }
}

/// `a and b`, `a, b, and c`, `a, b, and 3998 more`.
fn some_addresses(members: &[&DestinationPlan]) -> String {
    let user = |i: usize| p(&members[i].user).into_owned();
    match members.len() {
        0 | 1 => members.first().map(|d| p(&d.user).into_owned()).unwrap_or_default(),
        2 => format!("{} and {}", user(0), user(1)),
        3 => format!("{}, {}, and {}", user(0), user(1), user(2)),
        n => format!("{}, {}, and {} more", user(0), user(1), n - 2),
    }
}

fn render_destination(out: &mut String, d: &DestinationPlan, style: Style) {
    let user = p(&d.user);
    match d.status {
        Status::UpToDate => {
            let _ = writeln!(out, "  {user}: up to date");
        }
        Status::Skipped => {
            let _ = writeln!(
                out,
                "  {user}: skipped ({})",
                p(d.skipped.as_deref().unwrap_or("inactive"))
            );
        }
        Status::Error => {
            let message = d.error.as_ref().map_or_else(|| "error".to_owned(), PlanError::message);
            let _ =
                writeln!(out, "  {}", paint(style, "1;31", &format!("! {user}: {}", p(&message))));
        }
        Status::Changes => {
            let _ = writeln!(out, "  {user}");
            for c in &d.changes {
                render_change(out, c, style);
            }
        }
    }
}

fn render_change(out: &mut String, c: &Change, style: Style) {
    let (mark, color) = match c.action {
        Action::Create => ("+", "32"),
        Action::Update => ("~", "33"),
        Action::Delete => ("-", "31"),
    };
    let what = match c.resource {
        Resource::Group => "group",
        Resource::Contact => "contact",
    };
    let mut line = format!("{mark} {what} \"{}\"", p(&c.name));
    if let (Some(email), false) = (&c.email, style.redact) {
        let _ = write!(line, " <{}>", p(email));
    }
    let reason = match (c.resource, c.reason) {
        (Resource::Group, super::Reason::SourceChanged) => "renamed in the manifest",
        (_, reason) => reason.describe(),
    };
    if !reason.is_empty() {
        let _ = write!(line, "   ({reason})");
    }
    let _ = writeln!(out, "    {}", paint(style, color, &line));
    for f in &c.fields {
        render_field(out, f, style);
    }
}

fn show(v: &Option<Value>, style: Style) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(_) if style.redact => REDACTED.to_owned(),
        Some(v) => p(&v.to_string()).into_owned(),
    }
}

fn render_field(out: &mut String, f: &FieldChange, style: Style) {
    let multiline =
        |v: &Option<Value>| v.as_ref().and_then(Value::as_str).is_some_and(|s| s.contains('\n'));
    if !style.redact && (multiline(&f.before) || multiline(&f.after)) {
        let text =
            |v: &Option<Value>| v.as_ref().and_then(Value::as_str).unwrap_or_default().to_owned();
        let (before, after) = (text(&f.before), text(&f.after));
        let _ = writeln!(out, "        {}:", p(&f.field));
        let diff = similar::TextDiff::from_lines(&before, &after);
        for change in diff.iter_all_changes() {
            let sign = match change.tag() {
                similar::ChangeTag::Delete => "-",
                similar::ChangeTag::Insert => "+",
                similar::ChangeTag::Equal => " ",
            };
            let _ = writeln!(out, "          {sign} {}", p(change.value().trim_end_matches('\n')));
        }
        return;
    }
    let _ = writeln!(
        out,
        "        {}: {} -> {}",
        p(&f.field),
        show(&f.before, style),
        show(&f.after, style)
    );
}

/// `contact-sync resolve`: per sync, every user its selectors reach and why, and
/// what does not resolve.
pub fn reach_text(reaches: &[super::planner::SyncReach]) -> String {
    use super::reach::Outcome;
    let mut out = String::new();
    for sync in reaches {
        let _ = writeln!(out, "sync {}  ({})", p(&sync.name), p(&sync.source.to_string()));
        if let Some(note) = &sync.source_note {
            let _ = writeln!(out, "  source: {note}");
        }
        for e in &sync.source_errors {
            let _ = writeln!(out, "  ! {}", p(&e.message()));
        }
        let reach = match &sync.reach {
            Ok(reach) => reach,
            Err(why) => {
                let why = crate::text::error_chain(why.cause());
                let _ = writeln!(out, "  ! the selectors could not be read: {}", p(&why));
                continue;
            }
        };
        let (mut destinations, mut skipped, mut excluded) = (0, 0, 0);
        for r in &reach.users {
            let via: Vec<String> = r.via.iter().map(ToString::to_string).collect();
            let what = match &r.outcome {
                Outcome::Destination => {
                    destinations += 1;
                    "destination".to_owned()
                }
                Outcome::Skipped(why) => {
                    skipped += 1;
                    format!("skipped ({why}: its synced contacts are kept)")
                }
                Outcome::Excluded(rule) => {
                    excluded += 1;
                    format!("excluded by {rule}")
                }
            };
            let _ = writeln!(out, "  {}: {what}, {}", p(&r.user.primary_email), p(&via.join(", ")));
        }
        for u in &reach.unresolved {
            let _ = writeln!(out, "  ! {}: {}", p(&u.address), p(&u.error.message()));
        }
        let errors = sync.source_errors.len() + reach.unresolved.len();
        let _ = writeln!(
            out,
            "  {}, {skipped} skipped, {excluded} excluded, {}.",
            plural(destinations, "destination"),
            plural(errors, "error")
        );
    }
    if reaches.is_empty() {
        out.push_str("No syncs.\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{
        Action, Change, DestinationPlan, PlanSource, Reason, Resource, Summary, SyncPlan,
    };

    fn plan_with(destinations: usize, fields: Vec<FieldChange>) -> Plan {
        let change = Change {
            action: Action::Update,
            resource: Resource::Contact,
            name: "Ada Lovelace".into(),
            email: Some("ada@acme.test".into()),
            reason: Reason::EditedOutside,
            fields,
            op: crate::plan::Op::UpdateContact {
                update: None,
                resource_name: "people/c1".into(),
                add_to: Vec::new(),
                remove_from: Vec::new(),
            },
        };
        let sync = SyncPlan {
            name: "s".into(),
            source: PlanSource::Contacts {
                user: "sam@example.com".into(),
                contact_group: "Sales".into(),
            },
            users: destinations,
            destinations: (0..destinations)
                .map(|i| {
                    DestinationPlan::with_changes(
                        &format!("user{i:05}@example.com"),
                        vec![change.clone()],
                    )
                })
                .collect(),
            ..SyncPlan::default()
        };
        let mut plan = Plan {
            format_version: "1".into(),
            syncs: vec![sync],
            summary: Summary::default(),
            ..Plan::default()
        };
        plan.summarize();
        plan
    }

    #[test]
    fn long_text_fields_show_a_line_diff() {
        let f = FieldChange {
            field: "biographies[0].value".into(),
            before: Some("Met in 2025.\nPrefers e-mail.".into()),
            after: Some("Met in 2025.\nPrefers phone.".into()),
        };
        let text = text(&plan_with(1, vec![f]), Style::default());
        assert!(text.contains("        biographies[0].value:\n            Met in 2025.\n          - Prefers e-mail.\n          + Prefers phone.\n"), "{text}");
    }

    #[test]
    fn markdown_is_split_below_the_comment_limit() {
        let md = markdown(
            &plan_with(3000, vec![]),
            Style { expand: true, ..Style::default() },
            None,
            &|_| None,
        );
        let parts: Vec<&str> = md.split(MARKDOWN_PART_BREAK).collect();
        assert!(parts.len() > 1, "a 3000-destination plan needs several comments");
        for (i, part) in parts.iter().enumerate() {
            assert!(part.len() < MARKDOWN_PART_LIMIT, "part {i} is {} bytes", part.len());
            assert!(
                part.contains(&format!("({} of {}", i + 1, parts.len())),
                "part {i} has no continuation marker"
            );
            assert!(part.contains("```diff\n") && part.trim_end().ends_with("</details>"));
        }
        // Nothing is lost between the parts.
        assert_eq!(md.matches("user0").count(), 3000);
    }

    #[test]
    fn destinations_with_the_same_changes_are_shown_once() {
        let f = FieldChange {
            field: "phoneNumbers[0].value".into(),
            before: Some("+1 555 0101".into()),
            after: Some("+1 555 0199".into()),
        };
        let mut plan = plan_with(50, vec![f]);
        let sync = &mut plan.syncs[0];
        sync.destinations.push(DestinationPlan::skipped("erin@example.com", "suspended"));
        sync.destinations.push(DestinationPlan::with_changes("zed@example.com", vec![]));
        sync.destinations.push(DestinationPlan::with_changes("zoe@example.com", vec![]));
        plan.summarize();
        let grouped = text(&plan, Style::default());
        assert_eq!(
            grouped,
            "sync s  (sam@example.com / \"Sales\" -> 50 users)\n\
             \x20 50 users (user00000@example.com, user00001@example.com, and 48 more), each:\n\
             \x20   ~ contact \"Ada Lovelace\" <ada@acme.test>   (edited outside contact-sync)\n\
             \x20       phoneNumbers[0].value: \"+1 555 0101\" -> \"+1 555 0199\"\n\
             \x20 erin@example.com: skipped (suspended)\n\
             \x20 2 users (zed@example.com and zoe@example.com): up to date\n\
             \n\
             Plan: 0 to add, 50 to change, 0 to delete.\n"
        );
        let expanded = text(&plan, Style { expand: true, ..Style::default() });
        assert_eq!(expanded.matches("~ contact \"Ada Lovelace\"").count(), 50, "{expanded}");
        assert!(expanded.contains("\n  user00049@example.com\n    ~ contact"), "{expanded}");
        assert!(expanded.contains("\n  zoe@example.com: up to date\n"), "{expanded}");
        assert!(expanded.ends_with("Plan: 0 to add, 50 to change, 0 to delete.\n"));
    }

    #[test]
    fn a_destination_unlike_the_others_is_shown_as_before() {
        let mut plan = plan_with(3, vec![]);
        let mut other = plan.syncs[0].destinations[1].changes[0].clone();
        other.name = "Grace Hopper".into();
        plan.syncs[0].destinations[1] =
            DestinationPlan::with_changes("user00001@example.com", vec![other]);
        let text = text(&plan, Style::default());
        assert!(
            text.contains(
                "  2 users (user00000@example.com and user00002@example.com), each:\n    ~ contact \"Ada Lovelace\""
            ),
            "{text}"
        );
        assert!(
            text.contains("\n  user00001@example.com\n    ~ contact \"Grace Hopper\""),
            "{text}"
        );
        let one = super::text(&plan_with(1, vec![]), Style::default());
        assert!(one.contains("\n  user00000@example.com\n    ~ contact \"Ada"), "{one}");
    }

    #[test]
    fn redacted_text_hides_values_and_addresses() {
        let f = FieldChange {
            field: "phoneNumbers[0].value".into(),
            before: Some("+1 555 0101".into()),
            after: Some("+1 555 0199".into()),
        };
        let text = text(&plan_with(1, vec![f]), Style { redact: true, ..Style::default() });
        assert!(!text.contains("555") && !text.contains("ada@acme.test"), "{text}");
        assert!(text.contains("phoneNumbers[0].value: (redacted) -> (redacted)"), "{text}");
    }
}
