//! Semantic checks: the rules of the manifest format that a JSON Schema cannot express.
//!
//! Each check reads typed manifests and reports at the JSON pointer of the value to
//! change, so the diagnostic lands on the right line. Checks that involve two
//! documents (duplicate names, a second Workspace, two syncs writing one group)
//! report at the second and name the first.

use std::collections::HashMap;
use std::path::Path;

use crate::diagnostic::{Diagnostic, Location};
use crate::manifest::{BackendKind, ContactSync, Located, Schedule, SyncType, Workspace};

/// Runs every semantic check over the valid syncs and workspaces.
pub fn check_all(
    syncs: &[Located<ContactSync>],
    workspaces: &[Located<Workspace>],
    out: &mut Vec<Diagnostic>,
) {
    for sync in syncs {
        check_sync(sync, out);
    }
    for ws in workspaces {
        check_workspace(ws, out);
    }
    check_unique_names(syncs, out);
    check_single_workspace(workspaces, out);
    check_target_groups(syncs, out);
    for sync in syncs {
        check_reserved_target(sync, out);
    }
}

/// Contact group names a target may not have, compared without case, spaces or
/// invisible characters: Google's system groups (their membership is Google's: a
/// sync writing it would never converge) and the groups contact-sync keeps its own
/// records in (the writer lease, the inventory and its continuations).
const RESERVED_TARGETS: [&str; 4] =
    ["mycontacts", "starred", "contact-sync lease", "contact-sync inventory"];

/// A target group name that is a system or reserved group's is refused.
fn check_reserved_target(sync: &Located<ContactSync>, out: &mut Vec<Diagnostic>) {
    let name = sync.value.target_group_name();
    let folded = crate::text::fold_group_name(name);
    let reserved = RESERVED_TARGETS.iter().any(|r| {
        folded == *r
            || (*r == "contact-sync inventory"
                && folded.strip_prefix(r).is_some_and(|n| n.trim().parse::<u32>().is_ok()))
    });
    if !reserved {
        return;
    }
    let pointer = if sync.value.spec.target.group_name.is_some() {
        "/spec/target/groupName"
    } else {
        "/spec/source/contactGroup"
    };
    out.push(sync.doc.error(
        pointer,
        format!(
            "\"{name}\" is a system or reserved contact group (Google's myContacts and starred, \
             contact-sync's own lease and inventory groups): it cannot be a sync's target; set \
             another `target.groupName`"
        ),
    ));
}

/// Checks of one sync on its own.
pub fn check_sync(sync: &Located<ContactSync>, out: &mut Vec<Diagnostic>) {
    let doc = &sync.doc;
    let spec = &sync.value.spec;
    match spec.sync_type {
        SyncType::Personal => check_personal_source(sync, out),
        SyncType::Directory => check_directory_source(sync, out),
    }
    check_addresses(sync, out);
    check_destinations(sync, out);
    if let Schedule::Cron(expr) = &spec.schedule
        && let Err(e) = check_cron(expr)
    {
        out.push(doc.error("/spec/schedule", e.to_string()));
    }
    super::fields::check(doc, "/spec/fields", spec.fields.as_ref(), out);
}

/// A personal sync's source: a user and a contact group, no `directory`.
fn check_personal_source(sync: &Located<ContactSync>, out: &mut Vec<Diagnostic>) {
    let doc = &sync.doc;
    let source = &sync.value.spec.source;
    if source.directory.is_some() {
        out.push(doc.error(
            "/spec/source/directory",
            "`source.directory` is the source of a directory sync, but this sync is \
             personal; set `spec.type: directory`, or replace it with `user` and \
             `contactGroup`",
        ));
        return;
    }
    if source.user.is_none() {
        out.push(doc.error(
            "/spec/source",
            "a personal sync needs `source.user`: the e-mail address of the user \
             whose contacts are copied",
        ));
    }
    if source.contact_group.is_none() {
        out.push(doc.error(
            "/spec/source",
            "a personal sync needs `source.contactGroup`: the name of the source \
             user's contact group to copy",
        ));
    }
}

/// A directory sync's source: `directory`, and no personal `user` or
/// `contactGroup`.
fn check_directory_source(sync: &Located<ContactSync>, out: &mut Vec<Diagnostic>) {
    let doc = &sync.doc;
    let source = &sync.value.spec.source;
    for (field, set) in
        [("user", source.user.is_some()), ("contactGroup", source.contact_group.is_some())]
    {
        if set {
            out.push(doc.error(
                &format!("/spec/source/{field}"),
                format!(
                    "a directory sync copies the directory, not a personal source; \
                     remove `source.{field}` and use `source.directory`, or set \
                     `spec.type: personal`"
                ),
            ));
        }
    }
    if source.directory.is_none() && source.user.is_none() && source.contact_group.is_none() {
        out.push(doc.error(
            "/spec/source",
            "a directory sync needs `source.directory` (`{}` copies every user of \
             the directory)",
        ));
    }
}

/// The addresses and domains the source and the destinations name are written
/// as such.
fn check_addresses(sync: &Located<ContactSync>, out: &mut Vec<Diagnostic>) {
    let spec = &sync.value.spec;
    if let Some(user) = &spec.source.user {
        check_email(&sync.doc, "/spec/source/user", user, out);
    }
    if let Some(dir) = &spec.source.directory {
        check_emails(sync, "/spec/source/directory/groups", &dir.groups, out);
        check_domains(sync, "/spec/source/directory/domains", &dir.domains, out);
    }
    let dest = &spec.destinations;
    check_emails(sync, "/spec/destinations/users", &dest.users, out);
    check_emails(sync, "/spec/destinations/groups", &dest.groups, out);
    check_domains(sync, "/spec/destinations/domains", &dest.domains, out);
    check_emails(sync, "/spec/destinations/exclude/users", &dest.exclude.users, out);
    check_emails(sync, "/spec/destinations/exclude/groups", &dest.exclude.groups, out);
}

/// Some destination is selected, and the exclusions leave one.
fn check_destinations(sync: &Located<ContactSync>, out: &mut Vec<Diagnostic>) {
    let doc = &sync.doc;
    if sync.value.spec.destinations.is_empty() {
        out.push(doc.error(
            "/spec/destinations",
            "no destination selected: list at least one of `users`, `groups`, `orgUnits` or \
             `domains`",
        ));
    } else if excludes_everything(sync) {
        out.push(doc.error(
            "/spec/destinations/exclude",
            "`exclude` removes every destination this sync selects, so it would never write \
             anything; remove the exclusions or the sync",
        ));
    }
}

/// Whether the exclusions provably cover every selector: every listed user is
/// excluded by address, every group by address, every org unit by itself or a
/// parent unit, and no domain is selected (domains cannot be excluded whole).
fn excludes_everything(sync: &Located<ContactSync>) -> bool {
    let d = &sync.value.spec.destinations;
    let ex = &d.exclude;
    let contains = |list: &[String], item: &str| list.iter().any(|x| x.eq_ignore_ascii_case(item));
    d.domains.is_empty()
        && d.users.iter().all(|u| contains(&ex.users, u))
        && d.groups.iter().all(|g| contains(&ex.groups, g))
        && d.org_units
            .iter()
            .all(|ou| ex.org_units.iter().any(|e| crate::model::in_org_unit(ou, e)))
}

fn check_emails(
    sync: &Located<ContactSync>,
    pointer: &str,
    list: &[String],
    out: &mut Vec<Diagnostic>,
) {
    for (i, address) in list.iter().enumerate() {
        check_email(&sync.doc, &format!("{pointer}/{i}"), address, out);
    }
}

fn check_domains(
    sync: &Located<ContactSync>,
    pointer: &str,
    list: &[String],
    out: &mut Vec<Diagnostic>,
) {
    for (i, domain) in list.iter().enumerate() {
        if !is_domain(domain) {
            out.push(sync.doc.error(
                &format!("{pointer}/{i}"),
                format!(
                    "`{domain}` is not a valid domain name; expected a domain such as example.com"
                ),
            ));
        }
    }
}

fn check_email(
    doc: &crate::manifest::Document,
    pointer: &str,
    address: &str,
    out: &mut Vec<Diagnostic>,
) {
    if !is_email(address) {
        out.push(doc.error(
            pointer,
            format!("`{address}` is not a valid e-mail address; expected name@domain, e.g. ann@example.com"),
        ));
    }
}

/// A Workspace address: valid per RFC 5322's addr-spec, and the domain a real DNS
/// name (Google has no dotless or IP-literal domains).
pub fn is_email(address: &str) -> bool {
    match address.parse::<email_address::EmailAddress>() {
        Ok(parsed) => parsed.email() == address && is_domain(parsed.domain()),
        Err(_) => false,
    }
}

/// A DNS name of at least two labels of letters, digits and inner hyphens.
pub fn is_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    domain.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
}

/// What is wrong with a schedule's cron expression. The parser's words sit in
/// the middle of the message, before the hint, so they are shown there rather
/// than as a `#[source]`.
#[derive(Debug, thiserror::Error)]
pub enum CronError {
    /// Not five fields.
    #[error(
        "`{expr}` has {fields} fields; expected `nightly`, `manual` or a 5-field cron \
         expression: minute hour day-of-month month day-of-week, e.g. `30 6 * * 1-5`"
    )]
    FieldCount {
        /// The expression.
        expr: String,
        /// How many fields it has.
        fields: usize,
    },
    /// Five fields the cron parser refuses.
    #[error(
        "`{expr}` is not a valid cron expression ({cause}); expected minute (0-59) hour \
         (0-23) day-of-month (1-31) month (1-12) day-of-week (0-7), e.g. `30 6 * * 1-5`"
    )]
    Invalid {
        /// The expression.
        expr: String,
        /// What the parser said.
        cause: croner::errors::CronError,
    },
}

/// Validates a 5-field cron expression; the error says what is wrong with it.
pub fn check_cron(expr: &str) -> Result<croner::Cron, CronError> {
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(CronError::FieldCount { expr: expr.to_owned(), fields });
    }
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Disallowed)
        .year(croner::parser::Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|cause| CronError::Invalid { expr: expr.to_owned(), cause })
}

/// Checks of the Workspace document on its own.
pub fn check_workspace(ws: &Located<Workspace>, out: &mut Vec<Diagnostic>) {
    let doc = &ws.doc;
    let spec = &ws.value.spec;
    match spec.backend {
        BackendKind::Local => match &spec.local {
            None => out.push(doc.error(
                "/spec/backend",
                "backend `local` needs `spec.local.path`: the local workspace file that stands \
                 in for the tenant, e.g. `local: { path: workspace.yaml }`",
            )),
            Some(local) => {
                let dir = doc.file.path.parent().unwrap_or(Path::new("."));
                let path = dir.join(&local.path);
                if !path.is_file() {
                    out.push(doc.error(
                        "/spec/local/path",
                        format!(
                            "local workspace file not found at {}; the path is relative to \
                             this manifest's folder",
                            path.display()
                        ),
                    ));
                }
            }
        },
        BackendKind::Google => {
            if spec.google.is_none() {
                out.push(doc.error(
                    "/spec/backend",
                    "backend `google` needs `spec.google` with at least `adminUser`, the admin \
                     impersonated for directory reads",
                ));
            }
        }
    }
    for (i, n) in spec.notifications.iter().enumerate() {
        if let Err(why) = crate::google_api::check_endpoint(&n.url) {
            out.push(doc.error(&format!("/spec/notifications/{i}/url"), why));
        }
    }
    if let Some(google) = &spec.google {
        let endpoints = &google.endpoints;
        for (field, url) in [
            ("people", &endpoints.people),
            ("directory", &endpoints.directory),
            ("token", &endpoints.token),
        ] {
            if let Some(why) =
                url.as_deref().and_then(|u| crate::google_api::check_endpoint(u).err())
            {
                out.push(doc.error(&format!("/spec/google/endpoints/{field}"), why));
            }
        }
    }
    if let Some(google) = &spec.google {
        check_email(doc, "/spec/google/adminUser", &google.admin_user, out);
    }
    if spec.time_zone.parse::<chrono_tz::Tz>().is_err() {
        let mut message = format!(
            "unknown time zone `{}`; expected an IANA name such as `UTC` or `Europe/Berlin`",
            spec.time_zone
        );
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        if let Some(best) = super::did_you_mean(&spec.time_zone, names) {
            message.push_str(&format!(" (did you mean `{best}`?)"));
        }
        out.push(doc.error("/spec/timeZone", message));
    }
    super::fields::check(doc, "/spec/fields", spec.fields.as_ref(), out);
}

fn check_unique_names(syncs: &[Located<ContactSync>], out: &mut Vec<Diagnostic>) {
    let mut first: HashMap<&str, Location> = HashMap::new();
    for sync in syncs {
        let name = sync.value.metadata.name.as_str();
        let here = sync.location("/metadata/name");
        match first.get(name) {
            Some(there) => out.push(Diagnostic::at(
                here,
                "/metadata/name",
                format!(
                    "duplicate sync name `{name}`, first defined at {there}; sync names must be \
                     unique across all manifests, rename one of them"
                ),
            )),
            None => {
                first.insert(name, here);
            }
        }
    }
}

fn check_single_workspace(workspaces: &[Located<Workspace>], out: &mut Vec<Diagnostic>) {
    if let Some((first, rest)) = workspaces.split_first() {
        let there = first.location("/kind");
        for ws in rest {
            out.push(ws.doc.error(
                "/kind",
                format!(
                    "a second Workspace document; the first is at {there}. Keep exactly one \
                     Workspace per set of manifests"
                ),
            ));
        }
    }
}

/// Two syncs may not write the same target group name for a destination that both
/// name explicitly: each would delete the other's contacts on every run.
fn check_target_groups(syncs: &[Located<ContactSync>], out: &mut Vec<Diagnostic>) {
    let mut claimed: HashMap<(String, &str, String), (&str, Location)> = HashMap::new();
    for sync in syncs {
        let group = sync.value.target_group_name().to_owned();
        let dest = &sync.value.spec.destinations;
        let selectors = [
            ("users", "user", &dest.users),
            ("groups", "group", &dest.groups),
            ("orgUnits", "org unit", &dest.org_units),
            ("domains", "domain", &dest.domains),
        ];
        for (field, label, list) in selectors {
            for (i, value) in list.iter().enumerate() {
                let pointer = format!("/spec/destinations/{field}/{i}");
                let key = (group.clone(), label, normalise_selector(value));
                let name = sync.value.metadata.name.as_str();
                match claimed.get(&key) {
                    Some((other, there)) if *other != name => out.push(sync.doc.error(
                        &pointer,
                        format!(
                            "sync `{name}` and sync `{other}` ({there}) both write the contact \
                             group \"{group}\" for {label} {value}; give one of them a different \
                             `target.groupName`"
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        claimed.insert(key, (name, sync.location(&pointer)));
                    }
                }
            }
        }
    }
}

fn normalise_selector(value: &str) -> String {
    let v = value.to_lowercase();
    match v.trim_end_matches('/') {
        "" => "/".to_owned(),
        trimmed => trimmed.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::validate_paths;

    const WORKSPACE: &str = "apiVersion: contact-sync/v1\nkind: Workspace\nmetadata: {name: w}\n";

    fn sync(name: &str, spec: &str) -> String {
        format!(
            "apiVersion: contact-sync/v1\nkind: ContactSync\nmetadata:\n  name: {name}\nspec:\n{}",
            spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
        )
    }

    const BASE: &str = "source:\n  user: sam@example.com\n  contactGroup: Sales\n\
                        destinations:\n  users: [ann@example.com]\n";

    /// Validates one file with `text` and returns `line:col: pointer: message` lines.
    fn errors(text: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.yaml");
        std::fs::write(&path, text).unwrap();
        validate_paths(&[path])
            .diagnostics
            .iter()
            .map(|d| {
                let loc = d.location.as_ref().unwrap();
                format!(
                    "{}:{}: {}: {}",
                    loc.mark.line,
                    loc.mark.column,
                    d.pointer.clone().unwrap_or_default(),
                    d.message
                )
            })
            .collect()
    }

    fn one_error(text: &str) -> String {
        let errs = errors(text);
        assert_eq!(errs.len(), 1, "expected one error, got {errs:#?}");
        errs.into_iter().next().unwrap()
    }

    #[test]
    fn a_valid_sync_has_no_errors() {
        assert_eq!(errors(&sync("s", BASE)), Vec::<String>::new());
    }

    #[test]
    fn duplicate_names_name_both_places() {
        let text = format!("{}---\n{}", sync("s", BASE), sync("s", BASE));
        let e = one_error(&text);
        assert!(
            e.starts_with("15:9: /metadata/name: duplicate sync name `s`, first defined at"),
            "{e}"
        );
        assert!(e.contains("m.yaml:4:9"), "{e}");
    }

    #[test]
    fn malformed_emails() {
        let e = one_error(&sync("s", &BASE.replace("ann@example.com", "ann@")));
        assert!(
            e.starts_with("10:13: /spec/destinations/users/0: `ann@` is not a valid e-mail"),
            "{e}"
        );
        let e = one_error(&sync("s", &BASE.replace("sam@example.com", "sam example.com")));
        assert!(e.starts_with("7:11: /spec/source/user:"), "{e}");
        let e = one_error(&sync("s", &format!("{BASE}  exclude: {{ groups: [x@localhost] }}\n")));
        assert!(e.contains("/spec/destinations/exclude/groups/0:"), "{e}");
    }

    #[test]
    fn malformed_cron() {
        let e = one_error(&sync("s", &format!("{BASE}schedule: 61 * * * *\n")));
        assert!(e.starts_with("11:13: /spec/schedule: `61 * * * *` is not a valid cron"), "{e}");
        let e = one_error(&sync("s", &format!("{BASE}schedule: '* * * * * *'\n")));
        assert!(e.contains("has 6 fields"), "{e}");
        assert!(errors(&sync("s", &format!("{BASE}schedule: 30 6 * * 1-5\n"))).is_empty());
    }

    #[test]
    fn unknown_api_version_and_kind() {
        let e = one_error(&sync("s", BASE).replace("contact-sync/v1", "contact-sync/v2"));
        assert!(e.starts_with("1:13: /apiVersion: unknown apiVersion `contact-sync/v2`"), "{e}");
        let e = one_error(&sync("s", BASE).replace("kind: ContactSync", "kind: ContactSinc"));
        assert!(e.starts_with("2:7: /kind: unknown kind `ContactSinc`"), "{e}");
        assert!(e.contains("did you mean `ContactSync`?"), "{e}");
    }

    #[test]
    fn personal_sync_needs_user_and_group() {
        let text = sync(
            "s",
            "source:\n  contactGroup: Sales\ndestinations:\n  users: [ann@example.com]\n",
        );
        let e = one_error(&text);
        assert!(e.starts_with("6:3: /spec/source: a personal sync needs `source.user`"), "{e}");
        let text = sync(
            "s",
            "source:\n  user: sam@example.com\ndestinations:\n  users: [ann@example.com]\n",
        );
        assert!(one_error(&text).contains("needs `source.contactGroup`"));
        let text =
            sync("s", "source:\n  directory: {}\ndestinations:\n  users: [ann@example.com]\n");
        assert!(one_error(&text).starts_with(
            "7:5: /spec/source/directory: `source.directory` is the source of a directory sync"
        ));
    }

    #[test]
    fn directory_sync_with_a_personal_source() {
        let text = sync("s", &format!("type: directory\n{BASE}"));
        let errs = errors(&text);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(
            errs[0].starts_with("8:11: /spec/source/user: a directory sync copies the directory"),
            "{errs:#?}"
        );
        assert!(errs[1].starts_with("9:19: /spec/source/contactGroup:"), "{errs:#?}");
        let ok = sync(
            "s",
            "type: directory\nsource: { directory: { domains: [example.com] } }\ndestinations: { domains: [example.com] }\n",
        );
        assert!(errors(&ok).is_empty(), "{:#?}", errors(&ok));
    }

    #[test]
    fn no_destination_selector() {
        let text = sync(
            "s",
            "source:\n  user: sam@example.com\n  contactGroup: Sales\ndestinations: {}\n",
        );
        let e = one_error(&text);
        assert!(e.starts_with("9:3: /spec/destinations: no destination selected"), "{e}");
    }

    #[test]
    fn exclusions_that_exclude_everything() {
        let spec = "source:\n  user: sam@example.com\n  contactGroup: Sales\ndestinations:\n  users: [ann@example.com]\n  orgUnits: [/Accounting/Payroll]\n  exclude:\n    users: [ANN@example.com]\n    orgUnits: [/Accounting]\n";
        let e = one_error(&sync("s", spec));
        assert!(
            e.starts_with("12:5: /spec/destinations/exclude: `exclude` removes every destination"),
            "{e}"
        );
        // One selector left standing is enough.
        let partial = spec.replace("orgUnits: [/Accounting]", "orgUnits: [/Sales]");
        assert!(errors(&sync("s", &partial)).is_empty());
    }

    #[test]
    fn system_and_reserved_target_names_are_refused() {
        for name in ["myContacts", "STARRED", "contact-sync  Lease", "contact-sync inventory 2"] {
            let spec = format!("{BASE}target: {{ groupName: \"{name}\" }}\n");
            let e = one_error(&sync("s", &spec));
            assert!(e.starts_with("11:24: /spec/target/groupName: "), "{e}");
            assert!(e.contains("is a system or reserved contact group"), "{e}");
        }
        // The source group's name is the target's when none is set.
        let e = one_error(&sync("s", &BASE.replace("Sales", "my\u{200B}contacts")));
        assert!(e.contains("/spec/source/contactGroup: "), "{e}");
        // A name that only contains one is fine.
        let spec = format!("{BASE}target: {{ groupName: Starred clients }}\n");
        assert!(errors(&sync("s", &spec)).is_empty());
    }

    #[test]
    fn more_than_one_workspace() {
        let ws = format!(
            "{WORKSPACE}spec: {{ backend: google, google: {{ adminUser: admin@example.com }} }}\n"
        );
        let e = one_error(&format!("{ws}---\n{ws}"));
        assert!(e.starts_with("7:7: /kind: a second Workspace document; the first is at"), "{e}");
    }

    #[test]
    fn two_syncs_writing_one_group_for_one_destination() {
        let other = BASE.replace("sam@example.com", "sue@example.com");
        let e = one_error(&format!("{}---\n{}", sync("a", BASE), sync("b", &other)));
        assert!(e.starts_with("21:13: /spec/destinations/users/0: sync `b` and sync `a`"), "{e}");
        assert!(e.contains("\"Sales\" for user ann@example.com"), "{e}");
        // A different target group name resolves it.
        let renamed = format!("{other}target: {{ groupName: Sue's contacts }}\n");
        assert!(errors(&format!("{}---\n{}", sync("a", BASE), sync("b", &renamed))).is_empty());
    }

    #[test]
    fn workspace_rules() {
        let e = one_error(&format!("{WORKSPACE}spec: {{ backend: local }}\n"));
        assert!(e.contains("/spec/backend: backend `local` needs `spec.local.path`"), "{e}");
        let e = one_error(&format!(
            "{WORKSPACE}spec: {{ backend: local, local: {{ path: nowhere.yaml }} }}\n"
        ));
        assert!(e.contains("/spec/local/path: local workspace file not found"), "{e}");
        let e = one_error(&format!("{WORKSPACE}spec: {{ backend: google }}\n"));
        assert!(e.contains("backend `google` needs `spec.google`"), "{e}");
        let e = one_error(&format!(
            "{WORKSPACE}spec: {{ backend: google, google: {{ adminUser: admin@example.com }}, timeZone: Europe/Berln }}\n"
        ));
        assert!(
            e.contains("unknown time zone `Europe/Berln`") && e.contains("`Europe/Berlin`"),
            "{e}"
        );
    }

    #[test]
    fn schema_errors_point_at_the_field() {
        let e = one_error(&sync("s", &format!("{BASE}target:\n  groupNme: X\n")));
        assert!(
            e.starts_with(
                "12:5: /spec/target/groupNme: unknown field `groupNme` (did you mean `groupName`?)"
            ),
            "{e}"
        );
        let e = one_error(&sync("s", &format!("{BASE}schedule: weekly\n")));
        assert!(
            e.starts_with("11:13: /spec/schedule:") && e.contains("expected: `nightly`, `manual`"),
            "{e}"
        );
        let e = one_error(&sync("s", &format!("type: persona\n{BASE}")));
        assert!(e.starts_with("6:9: /spec/type: `persona` is not one of `personal`, `directory` (did you mean `personal`?)"), "{e}");
        let e = one_error(&sync("Bad_Name", BASE));
        assert!(e.starts_with("4:9: /metadata/name:"), "{e}");
    }

    #[test]
    fn emails_and_domains() {
        assert!(is_email("ann@example.com"));
        assert!(is_email("ann.lee+sales@sub.example.co.uk"));
        assert!(!is_email("ann@"));
        assert!(!is_email("ann@localhost"));
        assert!(!is_email("Ann Lee <ann@example.com>"));
        assert!(is_domain("example.com"));
        assert!(!is_domain("-bad.com"));
        assert!(!is_domain("example"));
    }
}
