//! Plan errors: one variant per thing that can hold a sync or a destination back,
//! carrying what a person needs to fix it (the address, the new address, the
//! `file:line:col` of the manifest value to change). Their JSON form — `kind`,
//! `message`, `email`, `renamedTo`, `location` — is the plan's contract; a plan read
//! back from a file holds them in that form ([`PlanError::Recorded`]), and two
//! errors are equal when their JSON forms are.

use serde::{Deserialize, Serialize};

use super::ErrorKind;

/// Why a sync, a destination or a run is held back.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(into = "Recorded", from = "Recorded")]
pub enum PlanError {
    /// No user has the source address.
    SourceNotFound {
        /// `source.user`.
        email: String,
        /// Where `source.user` is written.
        at: String,
    },
    /// A directory sync's source group does not exist.
    SourceGroupOfDirectoryNotFound {
        /// The group's address.
        group: String,
        /// Where it is written.
        at: String,
    },
    /// A directory sync's custom field names a schema, or a field of a schema,
    /// that the Directory does not have.
    CustomFieldNotFound {
        /// `customFields[].schema`.
        schema: String,
        /// `customFields[].field`, when the schema is there and the field is not.
        field: Option<String>,
        /// The closest name the Directory has, if one is close.
        suggestion: Option<String>,
        /// Where the unknown name is written.
        at: String,
    },
    /// The source address is now an alias of another primary address.
    SourceRenamed {
        /// `source.user`.
        email: String,
        /// The user's primary address now.
        renamed_to: String,
        /// Where `source.user` is written.
        at: String,
    },
    /// The source user is suspended or archived.
    SourceSuspended {
        /// `source.user`.
        email: String,
        /// Where `source.user` is written.
        at: String,
    },
    /// The source user has no contact group of that name.
    SourceGroupNotFound {
        /// `source.user`.
        email: String,
        /// `source.contactGroup`.
        group: String,
        /// The user's group whose name is closest, if one is close.
        suggestion: Option<String>,
        /// Where `source.contactGroup` is written.
        at: String,
    },
    /// The copies in a destination were made from another user than the one the
    /// source now is: the source account was replaced.
    SourceIdentityChanged {
        /// The sync.
        sync: String,
        /// The destination.
        user: String,
        /// Id of the user the copies were made from.
        copied_from: String,
        /// The source as shown (`sam@example.com / "Sales"`).
        source: String,
        /// Id of the source user now.
        source_id: String,
        /// The destination's target group.
        group: String,
    },
    /// An address in `destinations.users` is now an alias.
    DestinationRenamed {
        /// The address as written.
        email: String,
        /// The user's primary address now.
        renamed_to: String,
        /// Where it is written.
        at: String,
    },
    /// No user has an address in `destinations.users`.
    DestinationNotFound {
        /// The address as written.
        email: String,
        /// The directory's closest address, if one is close.
        suggestion: Option<String>,
        /// Where it is written.
        at: String,
    },
    /// An org unit, domain, group or address of a selector or an exclusion that
    /// resolves to no one: a typo, or a unit no user is in.
    SelectorNotFound {
        /// The manifest key (`destinations.orgUnits`, `destinations.exclude.users`,
        /// `source.directory.domains`).
        key: String,
        /// What the entry names: `org unit`, `domain`, `group` or `user`.
        what: String,
        /// The entry as written.
        name: String,
        /// The directory's closest name, if one is close.
        suggestion: Option<String>,
        /// Where it is written.
        at: String,
    },
    /// An address in `destinations.exclude.users` is now an alias: the user is
    /// still excluded, by the alias, until the manifest says the new address.
    ExcludedRenamed {
        /// The address as written.
        email: String,
        /// The user's primary address now.
        renamed_to: String,
        /// Where it is written.
        at: String,
    },
    /// A group in `destinations.groups` does not exist.
    DestinationGroupNotFound {
        /// The group's address.
        group: String,
        /// Where it is written.
        at: String,
    },
    /// The destination has a group of the target name that contact-sync did not
    /// create.
    TargetGroupConflict {
        /// The sync.
        sync: String,
        /// The destination.
        user: String,
        /// The group's name.
        group: String,
        /// Where the target group's name comes from.
        at: String,
        /// The run's paths, for the `adopt` command the message suggests.
        rerun: String,
    },
    /// Another sync gives the same destination a target group of the same name:
    /// neither is planned there until one of them names another group.
    TargetGroupShared {
        /// The destination.
        user: String,
        /// The group's name.
        group: String,
        /// The other sync.
        other: String,
        /// Where the other sync's target group name comes from.
        other_at: String,
        /// Where this sync's target group name comes from.
        at: String,
    },
    /// A sync would delete more than `maxDeletePercent` of its managed contacts.
    DeleteGuard {
        /// The sync.
        sync: String,
        /// Contacts it would delete.
        deletes: usize,
        /// Contacts it manages.
        managed: usize,
        /// `maxDeletePercent`.
        max_percent: usize,
        /// Deletions approved for this run (`trigger --allow-deletes N`), when
        /// another number was.
        approved: Option<usize>,
        /// Where the sync is.
        at: String,
    },
    /// Syncs whose manifest is gone would delete more than `maxDeletePercent` of
    /// every contact contact-sync manages.
    OrphanDeleteGuard {
        /// Contacts they would delete.
        deletes: usize,
        /// Contacts contact-sync manages.
        managed: usize,
        /// `maxDeletePercent`.
        max_percent: usize,
        /// Their names.
        syncs: Vec<String>,
    },
    /// What a sync needs could not be read.
    SyncUnreadable {
        /// Why (the backend's words).
        why: String,
        /// Where the sync is.
        at: String,
    },
    /// A user's contacts could not be read.
    UserUnreadable {
        /// The user.
        email: String,
        /// Why (the backend's words).
        why: String,
    },
    /// An error as a saved plan recorded it.
    Recorded(Recorded),
}

/// The JSON form of a [`PlanError`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    /// What kind of error.
    pub kind: ErrorKind,
    /// What happened and what to do.
    pub message: String,
    /// The address concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The new address, for renames.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renamed_to: Option<String>,
    /// `file:line:col` of the manifest value to change; in JSON
    /// `{"file", "line", "column"}`.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "position")]
    pub location: Option<String>,
}

/// A manifest position, `file:line:col` in the plan, `{"file", "line",
/// "column"}` in its JSON (the form `validate --format json` gives a diagnostic).
/// Read back from either form.
pub mod position {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct Position {
        file: String,
        line: usize,
        column: usize,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Structured(Position),
    }

    /// `file`, `line` and `column` of `file:line:col` (the file may hold `:`).
    fn split(at: &str) -> Option<Position> {
        let (rest, column) = at.rsplit_once(':')?;
        let (file, line) = rest.rsplit_once(':')?;
        Some(Position {
            file: file.to_owned(),
            line: line.parse().ok()?,
            column: column.parse().ok()?,
        })
    }

    /// Writes `file:line:col` as its parts (as it is, if it has none).
    pub fn serialize<S: Serializer>(at: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
        match at.as_deref().map(|at| (at, split(at))) {
            Some((_, Some(position))) => position.serialize(s),
            Some((at, None)) => s.serialize_str(at),
            None => s.serialize_none(),
        }
    }

    /// Reads a position in either form back as `file:line:col`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Ok(Option::<Either>::deserialize(d)?.map(|either| match either {
            Either::Text(at) => at,
            Either::Structured(p) => format!("{}:{}:{}", p.file, p.line, p.column),
        }))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn a_position_reads_back_in_either_form() {
            #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
            struct E {
                #[serde(default, with = "super")]
                location: Option<String>,
            }
            let e = E { location: Some("C:/syncs/a.yaml:14:9".into()) };
            let json = serde_json::to_value(&e).unwrap();
            assert_eq!(
                json,
                serde_json::json!({"location": {"file": "C:/syncs/a.yaml", "line": 14, "column": 9}})
            );
            assert_eq!(serde_json::from_value::<E>(json).unwrap(), e);
            let text = serde_json::json!({"location": "a.yaml:1:2"});
            assert_eq!(serde_json::from_value::<E>(text).unwrap().location.unwrap(), "a.yaml:1:2");
        }
    }
}

impl PlanError {
    /// The kind (the `kind` of the plan JSON).
    pub fn kind(&self) -> ErrorKind {
        use PlanError::*;
        match self {
            SourceNotFound { .. }
            | SourceGroupOfDirectoryNotFound { .. }
            | CustomFieldNotFound { .. } => ErrorKind::SourceNotFound,
            SourceRenamed { .. } => ErrorKind::SourceRenamed,
            SourceSuspended { .. } => ErrorKind::SourceSuspended,
            SourceGroupNotFound { .. } => ErrorKind::SourceGroupNotFound,
            SourceIdentityChanged { .. } => ErrorKind::SourceIdentityChanged,
            DestinationRenamed { .. } | ExcludedRenamed { .. } => ErrorKind::DestinationRenamed,
            DestinationNotFound { .. } | DestinationGroupNotFound { .. } => {
                ErrorKind::DestinationNotFound
            }
            SelectorNotFound { key, .. } if key.starts_with("source.") => ErrorKind::SourceNotFound,
            SelectorNotFound { .. } => ErrorKind::DestinationNotFound,
            TargetGroupConflict { .. } | TargetGroupShared { .. } => ErrorKind::TargetGroupConflict,
            DeleteGuard { .. } | OrphanDeleteGuard { .. } => ErrorKind::DeleteGuard,
            SyncUnreadable { .. } | UserUnreadable { .. } => ErrorKind::Api,
            Recorded(r) => r.kind,
        }
    }

    /// What happened and what to do.
    pub fn message(&self) -> String {
        use PlanError::*;
        // One arm per variant, so that no variant goes without its words; the
        // long messages are written by the helpers below.
        match self {
            SourceNotFound { email, at } => {
                format!("source user {email} not found in the directory; fix source.user in {at}")
            }
            SourceGroupOfDirectoryNotFound { group, at } => {
                format!("group {group} not found; fix source.directory.groups in {at}")
            }
            CustomFieldNotFound { schema, field, suggestion, at } => {
                custom_field_not_found(schema, field.as_deref(), suggestion, at)
            }
            SourceRenamed { email, renamed_to, at } => format!(
                "source user {email} was renamed to {renamed_to}; update source.user in {at} \
                 (`contact-sync fix` rewrites it)"
            ),
            SourceSuspended { email, .. } => format!(
                "source user {email} is suspended or archived; nothing is synced until it is \
                 active again"
            ),
            SourceGroupNotFound { email, group, suggestion, at } => format!(
                "{email} has no contact group \"{group}\"{}; fix source.contactGroup in {at}",
                did_you_mean(suggestion)
            ),
            SourceIdentityChanged { sync, user, copied_from, source, source_id, group } => {
                identity_changed(sync, user, copied_from, source, source_id, group)
            }
            DestinationRenamed { renamed_to, at, .. } => format!(
                "renamed to {renamed_to}; update destinations.users in {at} (`contact-sync fix` \
                 rewrites it)"
            ),
            DestinationNotFound { suggestion, at, .. } => format!(
                "not found in the directory{}; fix destinations.users in {at}",
                did_you_mean(suggestion)
            ),
            SelectorNotFound { key, what, name, suggestion, at } => {
                selector_not_found(key, what, name, suggestion, at)
            }
            ExcludedRenamed { email, renamed_to, at } => format!(
                "excluded user {email} was renamed to {renamed_to}; it stays excluded, update \
                 destinations.exclude.users in {at} (`contact-sync fix` rewrites it)"
            ),
            DestinationGroupNotFound { at, .. } => {
                format!("group not found; fix destinations.groups in {at}")
            }
            TargetGroupShared { group, other, other_at, at, .. } => {
                target_group_shared(group, other, other_at, at)
            }
            TargetGroupConflict { sync, user, group, at, rerun } => {
                target_group_conflict(sync, user, group, at, rerun)
            }
            DeleteGuard { sync, deletes, managed, max_percent, approved, .. } => {
                delete_guard(sync, *deletes, *managed, *max_percent, *approved)
            }
            OrphanDeleteGuard { deletes, managed, max_percent, syncs } => {
                orphan_delete_guard(*deletes, *managed, *max_percent, syncs)
            }
            SyncUnreadable { why, .. } => format!(
                "cannot read what the sync needs: {why}; nothing is changed for this sync in this run"
            ),
            UserUnreadable { email, why } => format!(
                "cannot read the contacts of {email}: {why}; nothing is changed for this user in \
                 this run"
            ),
            Recorded(r) => r.message.clone(),
        }
    }

    /// The address concerned, if any.
    pub fn email(&self) -> Option<&str> {
        use PlanError::*;
        match self {
            SourceNotFound { email, .. }
            | SourceRenamed { email, .. }
            | SourceSuspended { email, .. }
            | SourceGroupNotFound { email, .. }
            | DestinationRenamed { email, .. }
            | DestinationNotFound { email, .. }
            | ExcludedRenamed { email, .. }
            | UserUnreadable { email, .. } => Some(email),
            SelectorNotFound { name, .. } => Some(name),
            DestinationGroupNotFound { group, .. } => Some(group),
            SourceIdentityChanged { user, .. }
            | TargetGroupConflict { user, .. }
            | TargetGroupShared { user, .. } => Some(user),
            SourceGroupOfDirectoryNotFound { .. }
            | CustomFieldNotFound { .. }
            | DeleteGuard { .. }
            | OrphanDeleteGuard { .. }
            | SyncUnreadable { .. } => None,
            Recorded(r) => r.email.as_deref(),
        }
    }

    /// The new address, for renames.
    pub fn renamed_to(&self) -> Option<&str> {
        match self {
            PlanError::SourceRenamed { renamed_to, .. }
            | PlanError::DestinationRenamed { renamed_to, .. }
            | PlanError::ExcludedRenamed { renamed_to, .. } => Some(renamed_to),
            PlanError::Recorded(r) => r.renamed_to.as_deref(),
            _ => None,
        }
    }

    /// `file:line:col` of the manifest value to change, if there is one.
    pub fn location(&self) -> Option<&str> {
        use PlanError::*;
        match self {
            SourceNotFound { at, .. }
            | SourceGroupOfDirectoryNotFound { at, .. }
            | CustomFieldNotFound { at, .. }
            | SourceRenamed { at, .. }
            | SourceSuspended { at, .. }
            | SourceGroupNotFound { at, .. }
            | DestinationRenamed { at, .. }
            | DestinationNotFound { at, .. }
            | SelectorNotFound { at, .. }
            | ExcludedRenamed { at, .. }
            | DestinationGroupNotFound { at, .. }
            | TargetGroupConflict { at, .. }
            | TargetGroupShared { at, .. }
            | DeleteGuard { at, .. }
            | SyncUnreadable { at, .. } => Some(at),
            SourceIdentityChanged { .. } | OrphanDeleteGuard { .. } | UserUnreadable { .. } => None,
            Recorded(r) => r.location.as_deref(),
        }
    }
}

/// ` (did you mean "x"?)`, or nothing.
/// [`PlanError::SourceIdentityChanged`]'s message: the source user `source` was
/// user id `copied_from` when `sync` copied into `user`, and is `source_id` now.
fn identity_changed(
    sync: &str,
    user: &str,
    copied_from: &str,
    source: &str,
    source_id: &str,
    group: &str,
) -> String {
    format!(
        "the contacts of sync {sync} in {user} were copied from source user id \
         {copied_from}, but {source} is now user id {source_id}: the source account \
         was replaced. Nothing is changed for this user; delete the group \"{group}\" \
         there to start afresh, or point the sync at the right user"
    )
}

/// [`PlanError::TargetGroupShared`]'s message.
fn target_group_shared(group: &str, other: &str, other_at: &str, at: &str) -> String {
    format!(
        "sync {other} also puts its contacts in a contact group \"{group}\" here \
         ({other_at}); two syncs cannot share a target group, so neither is planned for \
         this user: give one of them another target.groupName ({at} or {other_at})"
    )
}

/// [`PlanError::TargetGroupConflict`]'s message.
fn target_group_conflict(sync: &str, user: &str, group: &str, at: &str, rerun: &str) -> String {
    let paths = if rerun.is_empty() { String::new() } else { format!(" {rerun}") };
    format!(
        "already has a contact group \"{group}\" that contact-sync did not create; rename \
         or delete that group, set another target.groupName in {at}, or take the group \
         over with `contact-sync adopt --sync {sync} --user {user}{paths}`"
    )
}

/// [`PlanError::DeleteGuard`]'s message.
fn delete_guard(
    sync: &str,
    deletes: usize,
    managed: usize,
    max_percent: usize,
    approved: Option<usize>,
) -> String {
    let approval = match approved {
        Some(n) => format!(" (the approval was for {n} deletions, not {deletes})"),
        None => String::new(),
    };
    format!(
        "would delete {deletes} of {managed} managed contacts ({}%), more than \
         maxDeletePercent {max_percent}%{approval}; nothing is applied for this sync. Check \
         the source group and the destination selectors; if the deletions are intended, run \
         again with --allow-deletes, or approve them in a running reconcile with \
         `contact-sync trigger {sync} --allow-deletes {deletes}`",
        deletes * 100 / managed.max(1)
    )
}

/// [`PlanError::OrphanDeleteGuard`]'s message.
fn orphan_delete_guard(
    deletes: usize,
    managed: usize,
    max_percent: usize,
    syncs: &[String],
) -> String {
    format!(
        "would delete {deletes} contacts of syncs whose manifest is gone ({}): {}% of the \
         {managed} contacts contact-sync manages, more than maxDeletePercent \
         {max_percent}%. Nothing of them is deleted. If those manifests were removed on \
         purpose, run again with --allow-deletes; if not, check that the paths given hold \
         every manifest",
        syncs.join(", "),
        deletes * 100 / managed.max(1)
    )
}

/// [`PlanError::CustomFieldNotFound`]'s message: a schema, or a field of one.
fn custom_field_not_found(
    schema: &str,
    field: Option<&str>,
    suggestion: &Option<String>,
    at: &str,
) -> String {
    let hint = did_you_mean(suggestion);
    match field {
        None => format!(
            "the Directory has no custom schema \"{schema}\"{hint}; fix \
             source.directory.customFields in {at} (the schema's name, as the Directory API \
             names it)"
        ),
        Some(field) => format!(
            "custom schema \"{schema}\" has no field \"{field}\"{hint}; fix \
             source.directory.customFields in {at}"
        ),
    }
}

/// [`PlanError::SelectorNotFound`]'s message: what `name` is not, and what that
/// does to the selector or exclusion `key`.
fn selector_not_found(
    key: &str,
    what: &str,
    name: &str,
    suggestion: &Option<String>,
    at: &str,
) -> String {
    let hint = did_you_mean(suggestion);
    let why = match what {
        "org unit" => format!(
            "no user is in org unit {name} nor below it: no such org unit, or an empty one{hint}"
        ),
        "domain" => format!("no user has an address in domain {name}{hint}"),
        "user" => format!("{name} is no user of the directory{hint}"),
        _ => format!("{what} {name} not found{hint}"),
    };
    let effect = if key.contains(".exclude.") {
        "the exclusion names nobody"
    } else {
        "the selector reaches nobody"
    };
    format!("{why}; {effect}: fix {key} in {at}")
}

fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion.as_ref().map(|s| format!(" (did you mean \"{s}\"?)")).unwrap_or_default()
}

impl From<PlanError> for Recorded {
    fn from(e: PlanError) -> Self {
        if let PlanError::Recorded(r) = e {
            return r;
        }
        Self {
            kind: e.kind(),
            message: e.message(),
            email: e.email().map(str::to_owned),
            renamed_to: e.renamed_to().map(str::to_owned),
            location: e.location().map(str::to_owned),
        }
    }
}

impl From<Recorded> for PlanError {
    fn from(r: Recorded) -> Self {
        PlanError::Recorded(r)
    }
}

/// Two errors are the same when a person (or a script) reading the plan would see
/// the same: their JSON forms are equal.
impl PartialEq for PlanError {
    fn eq(&self, other: &Self) -> bool {
        Recorded::from(self.clone()) == Recorded::from(other.clone())
    }
}

impl std::fmt::Display for PlanError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}
