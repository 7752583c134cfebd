//! Asking the directory who is who, for every sync of a plan input: the source
//! user by address or alias, group members, the users of org units and domains,
//! the listing a directory sync copies. It returns what it read
//! ([`Resolution`]) and decides nothing: a missing user, a renamed address or a
//! suspended source is the planner's to judge.

use crate::backend::{self, Backend, UserScope};
use crate::manifest::{ContactSync, SyncType};
use crate::model::resolution::{
    Exclusion, Resolution, Selection, SourceResolution, SyncResolution,
};
use crate::plan::PlanInput;

/// Resolves every sync of `input`. Only listing the directory is fatal; a sync
/// whose selectors cannot be read gets the error in its place.
pub async fn resolve(backend: &dyn Backend, input: &PlanInput) -> backend::Result<Resolution> {
    let mut users = backend.users(UserScope::All).await?;
    users.sort_by_key(|a| a.primary_email.to_lowercase());
    let mut syncs = Vec::with_capacity(input.syncs.len());
    for sync in &input.syncs {
        let resolved = resolve_sync(backend, &sync.manifest).await;
        syncs.push(resolved.map_err(|e| crate::text::error_chain(&e)));
    }
    Ok(Resolution { users, syncs })
}

/// What a sync's selectors resolve to now, and the etag of a personal source's
/// group, hashed: a few directory reads that tell whether the sync's source or
/// destinations may have moved since the hash was last taken — a new member of a
/// destination group or org unit, a renamed or suspended user, an edited source
/// group — without reading any destination's contacts.
pub async fn fingerprint(backend: &dyn Backend, sync: &ContactSync) -> backend::Result<String> {
    let resolved = resolve_sync(backend, sync).await?;
    let mut parts = vec![serde_json::to_string(&resolved).unwrap_or_default()];
    if let SourceResolution::Personal(Some(user)) = &resolved.source {
        let name = sync.spec.source.contact_group.as_deref().unwrap_or_default();
        let groups = backend.contact_groups(&user.primary_email).await?;
        parts.extend(groups.iter().filter(|g| g.name == name).map(|g| g.etag.clone()));
    }
    let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
    Ok(crate::model::short_hash(&refs))
}

async fn resolve_sync(
    backend: &dyn Backend,
    sync: &ContactSync,
) -> backend::Result<SyncResolution> {
    let spec = &sync.spec;
    let source = match spec.sync_type {
        SyncType::Personal => {
            let address = spec.source.user.as_deref().unwrap_or_default();
            SourceResolution::Personal(backend.user(address).await?)
        }
        SyncType::Directory => {
            let source = spec.source.directory.clone().unwrap_or_default();
            let everyone = source.domains.is_empty()
                && source.org_units.is_empty()
                && source.groups.is_empty();
            let mut scopes: Vec<UserScope> =
                source.domains.iter().cloned().map(UserScope::Domain).collect();
            scopes.extend(source.org_units.iter().cloned().map(UserScope::OrgUnit));
            if everyone {
                scopes.push(UserScope::All);
            }
            let mut listed = Vec::new();
            for scope in scopes {
                listed.extend(backend.users(scope).await?);
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
            SourceResolution::Directory { listed, groups }
        }
    };

    let dest = &spec.destinations;
    let mut destinations = Selection::default();
    for address in &dest.users {
        destinations.users.push(backend.user(address).await?);
    }
    for group in &dest.groups {
        destinations.groups.push(backend.group_members(group).await?);
    }
    let mut scopes: Vec<UserScope> =
        dest.org_units.iter().cloned().map(UserScope::OrgUnit).collect();
    scopes.extend(dest.domains.iter().cloned().map(UserScope::Domain));
    for scope in scopes {
        destinations.scoped.extend(backend.users(scope).await?);
    }

    let mut exclude = Exclusion::default();
    for address in &dest.exclude.users {
        exclude.users.push(backend.user(address).await?);
    }
    for group in &dest.exclude.groups {
        exclude.groups.push(backend.group_members(group).await?.unwrap_or_default());
    }
    Ok(SyncResolution { source, destinations, exclude })
}
