//! The inventory of a Google tenant (which users hold which sync's state) in
//! contact groups of the state user (`spec.google.stateUser`, default
//! `adminUser`): "contact-sync inventory", "contact-sync inventory 2", …, their
//! `clientData` as [`crate::model::inventory`] lays it out.
//!
//! Reading it is a listing of the state user's contact groups (which also hold the
//! writer lease) and a read by name of each inventory group. Writing it updates only the groups whose content changed, each
//! compared by etag, so a change made since it was read is refused, not lost.

use super::GoogleBackend;
use crate::backend::{Backend, Error, Result};
use crate::model::client_data;
use crate::model::inventory::{Inventory, MARKER_INVENTORY, StoredInventory, group_name};

/// The inventory as the state user's groups hold it.
pub async fn read(backend: &GoogleBackend) -> Result<StoredInventory> {
    let user = &backend.config.state_user;
    let mut groups = backend.contact_groups(user).await?;
    // The listing finds the inventory's groups; each is then read by name, since a
    // listing may trail the last run's writes and its etags be stale.
    for g in groups.iter_mut().filter(|g| client_data(&g.client_data, MARKER_INVENTORY).is_some()) {
        if let Some((now, _)) = backend.group_now(user, &g.resource_name).await? {
            *g = now;
        }
    }
    Ok(match Inventory::decode(&groups) {
        Ok(None) => StoredInventory::default(),
        Ok(Some((inventory, groups))) => {
            StoredInventory { inventory: Some(inventory), damaged: None, groups }
        }
        Err(why) => StoredInventory {
            inventory: None,
            damaged: Some(why),
            groups: groups
                .into_iter()
                .filter(|g| client_data(&g.client_data, MARKER_INVENTORY).is_some())
                .collect(),
        },
    })
}

/// Writes `new` over `old`: the groups it needs are updated where their content
/// changed, created where missing; groups it no longer needs are deleted.
pub async fn write(
    backend: &GoogleBackend,
    old: &StoredInventory,
    new: &Inventory,
) -> Result<StoredInventory> {
    let user = &backend.config.state_user;
    let at_least = if old.inventory.is_some() { old.groups.len() } else { 1 };
    let mut left = old.groups.clone();
    let mut groups = Vec::new();
    for (b, data) in new.encode(at_least).into_iter().enumerate() {
        let name = group_name(b);
        let group = match left.iter().position(|g| g.name == name) {
            Some(i) => {
                let group = left.remove(i);
                if group.client_data == data {
                    group
                } else {
                    backend.update_group_checked(user, &group, &name, data, true).await?
                }
            }
            None => match backend.create_group_checked(user, &name, data, true).await {
                Err(Error::GroupExists { .. }) => {
                    return Err(Error::Invalid(crate::backend::Refusal::GroupTaken {
                        user: user.to_owned(),
                        name: name.clone(),
                        record: "inventory",
                    }));
                }
                created => created?,
            },
        };
        groups.push(group);
    }
    for group in left {
        backend.delete_group(user, &group.resource_name).await?;
    }
    Ok(StoredInventory { inventory: Some(new.clone()), damaged: None, groups })
}
