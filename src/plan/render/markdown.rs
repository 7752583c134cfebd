//! The markdown form of a plan, for a pull-request comment. It leads with what
//! needs a person, unfolded:
//!
//! 1. a heading with the Workspace's name, and the summary line — the counts of
//!    what apply would do, and what is not planned;
//! 2. a table of the syncs: destinations, adds, changes, deletes, errors, and
//!    whether the sync is held back (its planned counts struck through);
//! 3. the errors and guard refusals, in a `text` block (a message quotes names and
//!    addresses from the tenant: inside a fence none of it can become markdown, a
//!    link or an @mention), then the warnings likewise;
//! 4. for each renamed address, the manifest change that fixes it as a ready
//!    `diff` block, taken from the manifest file where the error points;
//!
//! then the per-user detail, folded in `<details>`, fenced as `diff` so GitHub
//! colours it: `+` add, `-` delete, `!` change; an error there reads `error:`,
//! never a change marker. A plan too long for one comment is split into parts
//! below [`MARKDOWN_PART_LIMIT`] characters, separated by [`MARKDOWN_PART_BREAK`]
//! lines; the first part holds everything unfolded.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use super::{MARKDOWN_PART_BREAK, MARKDOWN_PART_LIMIT, Style, plural, summary_line, text};
use crate::plan::{Action, ErrorKind, Plan, PlanError, SyncPlan};
use crate::text::printable as p;

/// At most this many syncs in the table and errors in the list; the rest are
/// counted (every one of them is in the folded detail).
const LISTED: usize = 200;

/// The plan as markdown for a pull-request comment (see the module's text).
/// `workspace` is the Workspace document's name, for the heading. Renames are
/// shown with the fix taken from the manifest files they point at, as `read`
/// returns them (`None`: the file cannot be read, and no fix is shown for it).
pub fn markdown(
    plan: &Plan,
    style: Style,
    workspace: Option<&str>,
    read: &dyn Fn(&Path) -> Option<String>,
) -> String {
    let summary = summary_line(plan);
    let summary = md_text(summary.strip_prefix("Plan: ").unwrap_or(&summary));
    let mut top = String::new();
    sync_table(&mut top, plan);
    errors(&mut top, plan);
    warnings(&mut top, plan);
    rename_fixes(&mut top, plan, read);
    let detail: Vec<String> = text(plan, Style { color: false, ..style })
        .lines()
        .take_while(|l| !l.starts_with("Plan: ") && !l.starts_with("No changes."))
        .map(diff_line)
        .collect();
    parts(&title(workspace), &summary, &top, &detail)
}

/// `contact-sync plan`, or `contact-sync plan for example` with the Workspace.
fn title(workspace: Option<&str>) -> String {
    match workspace {
        Some(name) => format!("contact-sync plan for {}", md_text(name)),
        None => "contact-sync plan".to_owned(),
    }
}

/// One row per sync: what apply would do for it, or what it would have done
/// struck through when the sync is held back.
fn sync_table(out: &mut String, plan: &Plan) {
    if plan.syncs.is_empty() {
        return;
    }
    out.push_str("| sync | destinations | add | change | delete | errors | status |\n");
    out.push_str("|---|--:|--:|--:|--:|--:|---|\n");
    for sync in plan.syncs.iter().take(LISTED) {
        let (create, update, delete) = counts(sync);
        let held = !sync.errors.is_empty();
        let cell = |n: usize| if held && n > 0 { format!("~~{n}~~") } else { n.to_string() };
        let held_destinations = sync.destinations.iter().filter(|d| d.error.is_some()).count();
        let status = match (held, sync.suspended, sync.orphaned) {
            (true, _, _) if sync.errors.iter().any(|e| e.kind() == ErrorKind::DeleteGuard) => {
                "**held back**: deletion guard".to_owned()
            }
            (true, _, _) => "**held back**".to_owned(),
            (_, true, _) => "suspended: planned, not applied".to_owned(),
            (_, _, true) => "manifest deleted".to_owned(),
            _ if held_destinations > 0 => {
                format!("{} held back", plural(held_destinations, "destination"))
            }
            _ if create + update + delete == 0 => "up to date".to_owned(),
            _ => "to apply".to_owned(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {status} |",
            code(&sync.name),
            sync.users,
            cell(create),
            cell(update),
            cell(delete),
            sync.errors.len() + held_destinations,
        );
    }
    if plan.syncs.len() > LISTED {
        let _ =
            writeln!(out, "\n…and {} more syncs (in the detail below).", plan.syncs.len() - LISTED);
    }
    out.push('\n');
}

/// Creations, updates and deletions a sync plans.
fn counts(sync: &SyncPlan) -> (usize, usize, usize) {
    let mut n = (0, 0, 0);
    for change in sync.destinations.iter().flat_map(|d| &d.changes) {
        match change.action {
            Action::Create => n.0 += 1,
            Action::Update => n.1 += 1,
            Action::Delete => n.2 += 1,
        }
    }
    n
}

/// Every error of the plan, where it is: the plan's own, a sync's (which hold
/// the sync back), a destination's.
fn all_errors(plan: &Plan) -> Vec<(String, &PlanError)> {
    let mut all: Vec<(String, &PlanError)> =
        plan.errors.iter().map(|e| (String::new(), e)).collect();
    for sync in &plan.syncs {
        for e in &sync.errors {
            all.push((format!("sync {} (held back)", sync.name), e));
        }
        for d in &sync.destinations {
            if let Some(e) = &d.error {
                all.push((format!("sync {}, {}", sync.name, d.user), e));
            }
        }
    }
    all
}

/// The errors and guard refusals, first and unfolded.
fn errors(out: &mut String, plan: &Plan) {
    let all = all_errors(plan);
    if all.is_empty() {
        return;
    }
    let lines: Vec<String> = all
        .iter()
        .take(LISTED)
        .map(|(at, e)| {
            let message = p(&e.message()).into_owned();
            if at.is_empty() { message } else { format!("{}: {message}", p(at)) }
        })
        .collect();
    let _ = writeln!(
        out,
        "**{}** — what {} concern{} is not planned; fix {} first:\n",
        plural(all.len(), "error"),
        if all.len() == 1 { "it" } else { "they" },
        if all.len() == 1 { "s" } else { "" },
        if all.len() == 1 { "it" } else { "them" },
    );
    fenced(out, "text", &lines);
    if all.len() > LISTED {
        let _ = writeln!(out, "…and {} more errors (in the detail below).\n", all.len() - LISTED);
    }
}

/// The warnings: planned, but likely not meant.
fn warnings(out: &mut String, plan: &Plan) {
    if plan.warnings.is_empty() {
        return;
    }
    let lines: Vec<String> = plan.warnings.iter().map(|w| p(w).into_owned()).collect();
    let _ = writeln!(out, "**{}** — planned, but check:\n", plural(lines.len(), "warning"));
    fenced(out, "text", &lines);
}

/// A renamed address, as the plan points at it.
struct Fix<'a> {
    line: usize,
    column: usize,
    from: &'a str,
    to: &'a str,
}

/// For every renamed address, the manifest change that fixes it — what
/// `contact-sync fix` would write — as a `diff` block per manifest file. A rename
/// whose file cannot be read, or whose text at that place is not the address
/// (the file changed since), is left to the error's message.
fn rename_fixes(out: &mut String, plan: &Plan, read: &dyn Fn(&Path) -> Option<String>) {
    let mut by_file: BTreeMap<&str, Vec<Fix<'_>>> = BTreeMap::new();
    for (_, e) in all_errors(plan) {
        let (Some(to), Some(from), Some(at)) = (e.renamed_to(), e.email(), e.location()) else {
            continue;
        };
        let Some((file, line, column)) = split_location(at) else { continue };
        by_file.entry(file).or_default().push(Fix { line, column, from, to });
    }
    let mut diffs = Vec::new();
    for (file, mut fixes) in by_file {
        let Some(content) = read(Path::new(file)) else { continue };
        fixes.sort_by_key(|f| (f.line, f.column));
        fixes.dedup_by_key(|f| (f.line, f.column));
        let hunks: Vec<String> = fixes.iter().filter_map(|f| hunk(&content, f)).collect();
        if hunks.is_empty() {
            continue;
        }
        let (old, new) = match file.strip_prefix("./").unwrap_or(file) {
            absolute if Path::new(absolute).is_absolute() => {
                (absolute.to_owned(), absolute.to_owned())
            }
            relative => (format!("a/{relative}"), format!("b/{relative}")),
        };
        let mut lines = vec![format!("--- {}", p(&old)), format!("+++ {}", p(&new))];
        lines.extend(hunks.iter().flat_map(|h| h.lines().map(str::to_owned)));
        diffs.push(lines);
    }
    if diffs.is_empty() {
        return;
    }
    let n: usize = diffs.iter().map(|d| d.iter().filter(|l| l.starts_with("@@")).count()).sum();
    let _ = writeln!(
        out,
        "**{} renamed**: the manifest change that follows the rename{} (`contact-sync fix` \
         writes {}):\n",
        plural(n, "address"),
        if n == 1 { "" } else { "s" },
        if n == 1 { "it" } else { "them" },
    );
    for lines in diffs {
        fenced(out, "diff", &lines);
    }
}

/// `file:line:column` split from the right (a path may hold a colon).
fn split_location(at: &str) -> Option<(&str, usize, usize)> {
    let mut parts = at.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    Some((parts.next()?, line, column))
}

/// `@@ -L +L @@`, the line as it is and as `fix` writes it; `None` when the
/// address is not at the place the plan names (plain or quoted).
fn hunk(content: &str, fix: &Fix<'_>) -> Option<String> {
    let line = content.lines().nth(fix.line.checked_sub(1)?)?;
    let start = line.char_indices().nth(fix.column.checked_sub(1)?).map(|(i, _)| i)?;
    let rest = &line[start..];
    let quote = rest.chars().next().filter(|c| matches!(c, '"' | '\'')).map_or(0, char::len_utf8);
    let written = rest[quote..].get(..fix.from.len())?;
    if !written.eq_ignore_ascii_case(fix.from) {
        return None;
    }
    let at = start + quote;
    let fixed = format!("{}{}{}", &line[..at], fix.to, &line[at + fix.from.len()..]);
    Some(format!("@@ -{n} +{n} @@\n-{}\n+{}", p(line), p(&fixed), n = fix.line))
}

/// `lines` in a fence of `info` that no run of backticks in them can close.
fn fenced(out: &mut String, info: &str, lines: &[String]) {
    let fence = fence_for(lines);
    let _ = writeln!(out, "{fence}{info}");
    for l in lines {
        let _ = writeln!(out, "{l}");
    }
    let _ = writeln!(out, "{fence}\n");
}

/// A fence longer than any run of backticks in `lines` (at least three).
fn fence_for(lines: &[String]) -> String {
    let longest = lines.iter().map(|l| longest_run(l, '`')).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// The longest run of `c` in `s`.
fn longest_run(s: &str, c: char) -> usize {
    s.split(|x| x != c).map(str::len).max().unwrap_or(0)
}

/// Text from a plan or a manifest for markdown outside a fence: printable, and
/// with every character that markdown or HTML would read escaped.
fn md_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in p(s).chars() {
        if "\\`*_[]<>|~@&".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// `s` as inline code, with a delimiter no backtick run inside can close.
fn code(s: &str) -> String {
    let s = p(s).replace('|', "\\|");
    let ticks = "`".repeat(longest_run(&s, '`') + 1);
    match s.contains('`') {
        true => format!("{ticks} {s} {ticks}"),
        false => format!("{ticks}{s}{ticks}"),
    }
}

/// A line of the text plan for the `diff` fence: a change marker (`+`, `-`, `~`)
/// moved to column 0, `~` as `!`, which GitHub's diff highlighting shows as a
/// change; an error (`!` in the text) becomes `error:` and takes no marker.
fn diff_line(line: &str) -> String {
    let trimmed = line.trim_start();
    let indent = line.len() - trimmed.len();
    match trimmed.chars().next() {
        Some('!') => format!("{}error:{}", " ".repeat(indent.max(1)), &trimmed[1..]),
        Some(c @ ('+' | '-' | '~')) if indent > 0 => {
            let mark = if c == '~' { '!' } else { c };
            format!("{mark}{}{}", " ".repeat(indent), &trimmed[1..])
        }
        _ => line.to_owned(),
    }
}

/// The comment(s): the heading, `top` and the folded detail in the first; the
/// detail continued in further parts when it does not fit, each with the heading.
fn parts(title: &str, summary: &str, top: &str, detail: &[String]) -> String {
    let fence = fence_for(detail);
    let open = format!("<details><summary>Per-user detail</summary>\n\n{fence}diff\n");
    let tail = format!("{fence}\n\n</details>\n");
    let head = |part: usize, parts: usize| match (part, parts) {
        (_, 1) => format!("**{title}:** {summary}\n\n"),
        (1, _) => format!("**{title} ({part} of {parts}):** {summary}\n\n"),
        _ => format!("**{title} ({part} of {parts}, continued):** {summary}\n\n"),
    };
    // Lines are cut to fit a part with the longest head.
    let budget = MARKDOWN_PART_LIMIT - head(999, 999).len() - open.len() - tail.len() - 64;
    let first_budget = budget.saturating_sub(top.len()).max(budget / 4);
    let mut chunks: Vec<String> = vec![String::new()];
    for line in detail {
        let line: String = line.chars().take(budget - 1).collect();
        let limit = if chunks.len() == 1 { first_budget } else { budget };
        let current = chunks.last_mut().expect("never empty");
        if !current.is_empty() && current.len() + line.len() + 1 > limit {
            chunks.push(String::new());
        }
        let current = chunks.last_mut().expect("never empty");
        current.push_str(&line);
        current.push('\n');
    }
    let n = chunks.len();
    let mut out = String::new();
    for (i, chunk) in chunks.iter().enumerate() {
        if i > 0 {
            let _ = write!(out, "\n{MARKDOWN_PART_BREAK}\n\n");
        }
        out.push_str(&head(i + 1, n));
        if i == 0 {
            out.push_str(top);
        }
        let _ = write!(out, "{open}{chunk}{tail}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_splits_from_the_right() {
        assert_eq!(split_location("c:/m/s.yaml:12:9"), Some(("c:/m/s.yaml", 12, 9)));
        assert_eq!(split_location("s.yaml"), None);
    }

    #[test]
    fn a_rename_hunk_keeps_the_quotes_and_the_comment() {
        let content = "a: 1\n    - \"frank@example.com\"  # Frank\n";
        let fix = Fix { line: 2, column: 7, from: "frank@example.com", to: "franz@example.com" };
        assert_eq!(
            hunk(content, &fix).unwrap(),
            "@@ -2 +2 @@\n-    - \"frank@example.com\"  # Frank\n+    - \"franz@example.com\"  # Frank"
        );
        // The file changed since the plan: no diff rather than a wrong one.
        let moved = Fix { line: 1, ..fix };
        assert_eq!(hunk(content, &moved), None);
    }

    #[test]
    fn text_outside_a_fence_cannot_become_markup() {
        assert_eq!(md_text("a*b <img> @team"), "a\\*b \\<img\\> \\@team");
        assert_eq!(code("a`b"), "`` a`b ``");
    }

    #[test]
    fn an_error_line_is_no_change_marker() {
        assert_eq!(diff_line("  ! bob@example.com: renamed"), "  error: bob@example.com: renamed");
        assert_eq!(diff_line("    ~ contact \"Ada\""), "!     contact \"Ada\"");
        assert_eq!(diff_line("    + group \"S\""), "+     group \"S\"");
    }
}
