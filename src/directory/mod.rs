//! Asking the directory who is who, for every sync of a plan input: the source
//! user by address or alias, group members, the users of org units and domains,
//! the listing a directory sync copies. It returns what it read
//! ([`Resolution`]) and decides nothing: a missing user, a renamed address or a
//! suspended source is the planner's to judge.

use std::collections::{BTreeMap, BTreeSet};

use futures::StreamExt;

use crate::backend::{self, Backend, UserScope};
use crate::manifest::{ContactSync, Destinations, DirectorySource, Exclude, SyncType};
use crate::model::DirectoryUser;
use crate::model::resolution::{
    DirectoryNames, Exclusion, Resolution, Selection, SourceResolution, SyncResolution, Unreadable,
    UserSchema,
};
use crate::plan::PlanInput;

/// Users looked up one by one at most; past this, one listing of every user (500
/// a page) is what the directory is asked instead.
const LOOKUPS: usize = 200;

/// Resolves every sync of `input`, and the users the run needs: every user when
/// `wanted` is `None` (a full scan); otherwise the users the syncs' selectors
/// name, the members of their groups, and the users with the ids in `wanted` —
/// looked up one by one, or, when that would take more than a few hundred
/// lookups, listed all at once. Only reading the directory's users is fatal; a
/// sync whose selectors cannot be read gets the error in its place.
pub async fn resolve(
    backend: &dyn Backend,
    input: &PlanInput,
    wanted: Option<&BTreeSet<String>>,
) -> backend::Result<Resolution> {
    let mut syncs = Vec::with_capacity(input.syncs.len());
    // Syncs that share a source user, a group or an org unit read it once.
    let memo = Memo::new(backend);
    for sync in &input.syncs {
        let resolved = resolve_sync(&memo, &sync.manifest).await;
        syncs.push(resolved.map_err(|e| Unreadable::Selectors {
            sync: sync.name().to_owned(),
            cause: std::sync::Arc::new(e),
        }));
    }
    let known = match wanted {
        Some(ids) => known_users(backend, &syncs, ids).await?,
        None => None,
    };
    let listed_all = known.is_none();
    let mut users = match known {
        Some(users) => users,
        None => backend.users(UserScope::All).await?,
    };
    users.sort_by_key(|a| a.primary_email.to_lowercase());
    // The directory's names, for a "did you mean", only when a selector reached
    // nobody: a listing of every user, unless this run read them all already.
    let names = if syncs.iter().flatten().any(reaches_nobody) {
        if listed_all {
            Some(DirectoryNames::of(&users))
        } else {
            Some(DirectoryNames::of(&backend.users(UserScope::All).await?))
        }
    } else {
        None
    };
    Ok(Resolution { users, syncs, names })
}

/// Whether a selector or an exclusion of `sync` resolved to no one.
fn reaches_nobody(sync: &SyncResolution) -> bool {
    let source = match &sync.source {
        SourceResolution::Personal(_) => false,
        SourceResolution::Directory { org_units, domains, .. } => {
            org_units.contains(&0) || domains.contains(&0)
        }
    };
    let dest = &sync.destinations;
    source
        || dest.users.iter().any(Option::is_none)
        || dest.org_units.contains(&0)
        || dest.domains.contains(&0)
        || sync.exclude.users.iter().any(Option::is_none)
        || sync.exclude.org_units.contains(&0)
}

/// The users the resolved syncs name or list, with the members of their groups
/// and the users of `ids` looked up; `None` when that takes more than
/// [`LOOKUPS`] lookups.
async fn known_users(
    backend: &dyn Backend,
    syncs: &[Result<SyncResolution, Unreadable>],
    ids: &BTreeSet<String>,
) -> backend::Result<Option<Vec<DirectoryUser>>> {
    let mut users: BTreeMap<String, DirectoryUser> = BTreeMap::new();
    let mut members: BTreeSet<String> = BTreeSet::new();
    for sync in syncs.iter().flatten() {
        let mut named: Vec<&DirectoryUser> = Vec::new();
        match &sync.source {
            SourceResolution::Personal(user) => named.extend(user.as_deref()),
            SourceResolution::Directory { listed, groups, .. } => {
                named.extend(listed);
                members.extend(groups.iter().flatten().flatten().cloned());
            }
        }
        let dest = &sync.destinations;
        named.extend(dest.users.iter().flatten());
        named.extend(&dest.scoped);
        named.extend(sync.exclude.users.iter().flatten());
        members.extend(dest.groups.iter().flatten().flatten().cloned());
        members.extend(sync.exclude.groups.iter().flatten().flatten().cloned());
        for u in named {
            users.insert(u.id.clone(), u.clone());
        }
    }
    let addresses: BTreeSet<String> = users
        .values()
        .flat_map(|u| std::iter::once(&u.primary_email).chain(&u.aliases))
        .map(|a| a.to_lowercase())
        .collect();
    let keys: Vec<String> = members
        .into_iter()
        .filter(|m| !addresses.contains(&m.to_lowercase()))
        .chain(ids.iter().filter(|id| !users.contains_key(*id)).cloned())
        .collect();
    if keys.len() > LOOKUPS {
        return Ok(None);
    }
    let found: Vec<backend::Result<Option<DirectoryUser>>> = futures::stream::iter(&keys)
        .map(|key| backend.user(key))
        .buffered(backend.concurrency())
        .collect()
        .await;
    for user in found {
        if let Some(u) = user? {
            users.insert(u.id.clone(), u);
        }
    }
    Ok(Some(users.into_values().collect()))
}

/// What a sync's selectors resolve to now, and the etag of a personal source's
/// group, hashed: a few directory reads that tell whether the sync's source or
/// destinations may have moved since the hash was last taken — a new member of a
/// destination group or org unit, a renamed or suspended user, an edited source
/// group — without reading any destination's contacts.
pub async fn fingerprint(backend: &dyn Backend, sync: &ContactSync) -> backend::Result<String> {
    let resolved = resolve_sync(&Memo::new(backend), sync).await?;
    let mut parts = vec![serde_json::to_string(&resolved).unwrap_or_default()];
    if let SourceResolution::Personal(Some(user)) = &resolved.source {
        let name = sync.spec.source.contact_group.as_deref().unwrap_or_default();
        let groups = backend.contact_groups(&user.primary_email).await?;
        parts.extend(groups.iter().filter(|g| g.name == name).map(|g| g.etag.clone()));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(crate::model::short_hash(&refs))
}

async fn resolve_sync(backend: &Memo<'_>, sync: &ContactSync) -> backend::Result<SyncResolution> {
    let spec = &sync.spec;
    let source = match spec.sync_type {
        SyncType::Personal => {
            let address = spec.source.user.as_deref().unwrap_or_default();
            SourceResolution::Personal(backend.user(address).await?.map(Box::new))
        }
        SyncType::Directory => {
            let source = spec.source.directory.clone().unwrap_or_default();
            directory_source(backend, &source).await?
        }
    };
    let destinations = destinations(backend, &spec.destinations).await?;
    let exclude = exclusions(backend, &spec.destinations.exclude).await?;
    Ok(SyncResolution { source, destinations, exclude })
}

/// A directory sync's source: the users its scopes list (every user when it
/// names none), its groups' members, the schemas of its custom fields and the
/// shared contacts, if it copies them.
async fn directory_source(
    backend: &Memo<'_>,
    source: &DirectorySource,
) -> backend::Result<SourceResolution> {
    let everyone =
        source.domains.is_empty() && source.org_units.is_empty() && source.groups.is_empty();
    let schemas = custom_schemas(backend.backend, source).await?;
    let shared =
        if source.shared_contacts { Some(backend.backend.shared_contacts().await?) } else { None };
    let mut listed = Vec::new();
    let mut domains = Vec::with_capacity(source.domains.len());
    for domain in &source.domains {
        let users = backend.users(UserScope::Domain(domain.clone())).await?;
        domains.push(users.len());
        listed.extend(users);
    }
    let mut org_units = Vec::with_capacity(source.org_units.len());
    for unit in &source.org_units {
        let users = backend.users(UserScope::OrgUnit(unit.clone())).await?;
        org_units.push(users.len());
        listed.extend(users);
    }
    if everyone {
        listed.extend(backend.users(UserScope::All).await?);
    }
    let mut groups = Vec::with_capacity(source.groups.len());
    for group in &source.groups {
        let members = backend.group_members(group).await?;
        let found = members.is_some();
        groups.push(members);
        // The first missing group holds the sync back: the rest need no read.
        if !found {
            break;
        }
    }
    Ok(SourceResolution::Directory { listed, groups, org_units, domains, schemas, shared })
}

/// The Directory's schemas, when the source copies custom fields: read first, so
/// that users are read with the known ones (an unknown schema is the planner's to
/// report).
async fn custom_schemas(
    backend: &dyn Backend,
    source: &DirectorySource,
) -> backend::Result<Option<Vec<UserSchema>>> {
    if source.custom_fields.is_empty() {
        return Ok(None);
    }
    let schemas = backend.user_schemas().await?;
    let known: Vec<String> = schemas
        .iter()
        .filter(|s| source.custom_fields.iter().any(|c| c.schema == s.name))
        .map(|s| s.name.clone())
        .collect();
    backend.want_custom_schemas(&known);
    Ok(Some(schemas))
}

/// Whom the destination selectors name or list.
async fn destinations(backend: &Memo<'_>, dest: &Destinations) -> backend::Result<Selection> {
    let mut selection = Selection::default();
    for address in &dest.users {
        selection.users.push(backend.user(address).await?);
    }
    for group in &dest.groups {
        selection.groups.push(backend.group_members(group).await?);
    }
    for unit in &dest.org_units {
        let users = backend.users(UserScope::OrgUnit(unit.clone())).await?;
        selection.org_units.push(users.len());
        selection.scoped.extend(users);
    }
    for domain in &dest.domains {
        let users = backend.users(UserScope::Domain(domain.clone())).await?;
        selection.domains.push(users.len());
        selection.scoped.extend(users);
    }
    Ok(selection)
}

/// Whom the exclusions name.
async fn exclusions(backend: &Memo<'_>, exclude: &Exclude) -> backend::Result<Exclusion> {
    let mut exclusion = Exclusion::default();
    for address in &exclude.users {
        exclusion.users.push(backend.user(address).await?);
    }
    for group in &exclude.groups {
        exclusion.groups.push(backend.group_members(group).await?);
    }
    for unit in &exclude.org_units {
        exclusion.org_units.push(backend.users(UserScope::OrgUnit(unit.clone())).await?.len());
    }
    Ok(exclusion)
}

/// The directory reads of one run's selectors, each asked of the backend once:
/// twenty syncs of one source user, or of one org unit, cost one read of it.
/// Failures are not kept (the next sync asks again).
struct Memo<'b> {
    backend: &'b dyn Backend,
    users: std::sync::Mutex<BTreeMap<String, Option<DirectoryUser>>>,
    scopes: std::sync::Mutex<BTreeMap<String, Vec<DirectoryUser>>>,
    groups: std::sync::Mutex<BTreeMap<String, Option<Vec<String>>>>,
}

impl<'b> Memo<'b> {
    fn new(backend: &'b dyn Backend) -> Self {
        Self {
            backend,
            users: Default::default(),
            scopes: Default::default(),
            groups: Default::default(),
        }
    }

    async fn user(&self, key: &str) -> backend::Result<Option<DirectoryUser>> {
        let k = key.to_lowercase();
        if let Some(hit) = self.users.lock().expect("memo lock").get(&k) {
            return Ok(hit.clone());
        }
        let user = self.backend.user(key).await?;
        self.users.lock().expect("memo lock").insert(k, user.clone());
        Ok(user)
    }

    async fn users(&self, scope: UserScope) -> backend::Result<Vec<DirectoryUser>> {
        let k = match &scope {
            UserScope::All => "all".to_owned(),
            UserScope::Domain(d) => format!("domain:{}", d.to_lowercase()),
            // Org unit paths are case-sensitive.
            UserScope::OrgUnit(o) => format!("orgUnit:{o}"),
        };
        if let Some(hit) = self.scopes.lock().expect("memo lock").get(&k) {
            return Ok(hit.clone());
        }
        let users = self.backend.users(scope).await?;
        self.scopes.lock().expect("memo lock").insert(k, users.clone());
        Ok(users)
    }

    async fn group_members(&self, group: &str) -> backend::Result<Option<Vec<String>>> {
        let k = group.to_lowercase();
        if let Some(hit) = self.groups.lock().expect("memo lock").get(&k) {
            return Ok(hit.clone());
        }
        let members = self.backend.group_members(group).await?;
        self.groups.lock().expect("memo lock").insert(k, members.clone());
        Ok(members)
    }
}
