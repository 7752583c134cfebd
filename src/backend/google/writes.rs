//! The google backend's writes that are checked rather than resent: creates whose
//! answer was lost are followed by a read by name (never a listing, which may
//! trail writes; see [`super::current`]) and only what is missing is sent again;
//! a group create answered 409 is ours when the group carries our markers, and is
//! waited for while the listing does not show it yet; a delete that finds nothing
//! is done; an update that meets a stale etag is checked against the contact as it
//! now is. See [`super::http::Resend`] for which requests the client sends again
//! by itself.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

use backon::Retryable;
use reqwest::Method;
use serde_json::{Value, json};

use super::current::{GROUP_FIELDS, target_group};
use super::http::{Body, Failure, Pieces, Resend};
use super::{GoogleBackend, contact_from, group_from, person_json};
use crate::backend::{Backend, Error, Result};
use crate::model::normalize::{normalize, same_content};
use crate::model::{
    ClientData, Contact, ContactGroup, ContactUpdate, MARKER_SOURCE, MARKER_SYNC, NewContact,
    PersonFields, client_data,
};

/// How long a group that a 409 says exists is looked for in the listing.
const LISTING_WAIT: Duration = Duration::from_secs(180);
/// The longest pause between two of those looks.
const LISTING_PAUSE: Duration = Duration::from_secs(10);

/// A group a 409 says exists that the listing does not show (yet).
struct NotListed;

/// The `(sync, source)` markers that identify a copy: two contacts with the same
/// pair are copies of one source contact by one sync.
fn copy_key(data: &[ClientData]) -> Option<(&str, &str)> {
    Some((client_data(data, MARKER_SYNC)?, client_data(data, MARKER_SOURCE)?))
}

/// Whether `have` carries every contact-sync marker of `want` with the same value
/// (other applications' entries aside).
fn same_markers(have: &[ClientData], want: &[ClientData]) -> bool {
    let ours = |d: &[ClientData]| -> Vec<ClientData> {
        let mut v: Vec<ClientData> =
            d.iter().filter(|e| e.key.starts_with("contact-sync/")).cloned().collect();
        v.sort();
        v
    };
    ours(have) == ours(want)
}

/// The listed group `g` named `name`: ours if it carries the markers
/// `client_data`, else in the way.
fn ours(
    g: ContactGroup,
    user: &str,
    name: &str,
    client_data: &[ClientData],
) -> Result<ContactGroup> {
    if !same_markers(&g.client_data, client_data) {
        return Err(Error::GroupExists { user: user.to_owned(), name: name.to_owned() });
    }
    tracing::info!(user, name, "the group exists already, with our markers: it is ours");
    Ok(g)
}

/// A write whose outcome is unknown and could not be checked: nothing was resent.
fn unknown_outcome(what: &str, e: Error) -> Error {
    Error::Unreachable {
        message: format!(
            "{what}: the answer was lost, and re-reading to see whether it landed failed ({e}); \
             nothing was sent again. The next run sees what landed and finishes the rest"
        ),
    }
}

impl GoogleBackend {
    /// Creates a contact group. When the answer is lost, the listing is looked at:
    /// a group of that name with exactly the markers we sent is ours. When the
    /// listing does not show one, the create is sent again. That is safe whether
    /// or not the first landed, since Google refuses a second group of the same
    /// name (409); after a 409 the group is looked for until the listing shows it
    /// ([`Self::existing_group`]). `guarded`: ask the write guard (not for the
    /// lease's own writes).
    pub(super) async fn create_group_checked(
        &self,
        user: &str,
        name: &str,
        client_data: Vec<ClientData>,
        guarded: bool,
    ) -> Result<ContactGroup> {
        let body = json!({
            "contactGroup": { "name": name, "clientData": client_data },
            "readGroupFields": GROUP_FIELDS,
        });
        let what = format!("creating group \"{name}\" of {user}");
        let mut round = 0;
        loop {
            round += 1;
            let failure = match self
                .people_create(user, "contactGroups", || Body::from(&body), guarded)
                .await
            {
                Ok(v) => {
                    let group = group_from(&v);
                    self.seen.created(user, &group.resource_name);
                    return Ok(group);
                }
                Err(f) => f,
            };
            if failure.status == 409 {
                return self.existing_group(user, name, &client_data, &what).await;
            }
            if !failure.maybe_applied {
                return Err(failure.into_error(&what));
            }
            let groups = self.contact_groups(user).await.map_err(|e| unknown_outcome(&what, e))?;
            if let Some(g) = groups.into_iter().find(|g| g.name == name) {
                return ours(g, user, name, &client_data);
            }
            if round >= self.client.retry.max_attempts {
                return Err(failure.into_error(&format!("{what}: the answer was lost every time")));
            }
            tracing::info!(user, name, "the answer to a group create was lost; sending it again");
        }
    }

    /// The group named `name` that a 409 says exists: ours when it carries the
    /// markers `client_data`, someone else's ([`Error::GroupExists`]) when not.
    /// Only a listing finds a group by name, and a listing may not show a group
    /// made moments ago: it is read again, with growing pauses, for up to
    /// [`LISTING_WAIT`].
    async fn existing_group(
        &self,
        user: &str,
        name: &str,
        client_data: &[ClientData],
        what: &str,
    ) -> Result<ContactGroup> {
        let start = Instant::now();
        let look = || async {
            let groups = self.contact_groups(user).await.map_err(|e| unknown_outcome(what, e));
            match groups.map(|gs| gs.into_iter().find(|g| g.name == name)) {
                Ok(Some(g)) => Ok(ours(g, user, name, client_data)),
                Ok(None) => Err(NotListed),
                Err(e) => Ok(Err(e)),
            }
        };
        let looked = look
            .retry(self.client.retry.waits().capped_unbounded(LISTING_PAUSE))
            .when(|_| start.elapsed() < LISTING_WAIT)
            .notify(|_, _| {
                tracing::info!(user, name, "a group of that name exists but is not listed yet");
            })
            .await;
        looked.unwrap_or_else(|NotListed| {
            Err(Error::Api {
                status: 409,
                message: format!(
                    "{what}: Google answers that a group of that name exists, but after {}s \
                     its listing still does not show it (listings can trail writes); \
                     nothing more was sent. The next run finds it",
                    LISTING_WAIT.as_secs()
                ),
            })
        })
    }

    /// Renames `group` and replaces its markers, with the etag it was read with.
    pub(super) async fn update_group_checked(
        &self,
        user: &str,
        group: &ContactGroup,
        name: &str,
        client_data: Vec<ClientData>,
        guarded: bool,
    ) -> Result<ContactGroup> {
        let body = json!({
            "contactGroup": {
                "resourceName": group.resource_name,
                "etag": group.etag,
                "name": name,
                "clientData": client_data,
            },
            "updateGroupFields": "name,clientData",
            "readGroupFields": GROUP_FIELDS,
        });
        let what = format!("updating group \"{name}\" of {user}");
        let path = &group.resource_name;
        let sent = self
            .people_call(user, Method::PUT, path, &[], || Some(&body), Resend::Safe, guarded)
            .await;
        match sent {
            Ok(v) => Ok(group_from(&v)),
            Err(f) if f.status == 409 => {
                Err(Error::GroupExists { user: user.to_owned(), name: name.to_owned() })
            }
            // Stale: our own earlier attempt whose answer was lost may have landed,
            // or the plan was made from a listing that trailed an earlier run's
            // write. When the group, read by name (which never trails), already holds
            // what we write, it is done; a change by anyone else is refused as stale.
            Err(f) if f.is_stale() => match self.group_now(user, &group.resource_name).await? {
                Some((g, _)) if g.name == name && same_markers(&g.client_data, &client_data) => {
                    Ok(g)
                }
                _ => Err(f.into_error(&what)),
            },
            Err(f) => Err(f.into_error(&what)),
        }
    }

    /// Before creating `contacts`: the copies among them that exist already — made
    /// by an earlier run whose writes the listings the plan was made from did not
    /// show yet — found by name in their target groups ([`Self::unseen_members`]),
    /// and the contacts still to create.
    pub(super) async fn not_made_yet<'a>(
        &self,
        user: &str,
        contacts: Vec<NewContact<'a>>,
    ) -> Result<(Vec<Contact>, Vec<NewContact<'a>>)> {
        let groups: BTreeSet<&str> =
            contacts.iter().filter_map(|c| target_group(&c.memberships)).collect();
        let mut there: HashMap<(String, String), Contact> = HashMap::new();
        for group in groups {
            for c in self.unseen_members(user, group).await?.unwrap_or_default() {
                if let Some((sync, source)) = copy_key(&c.client_data) {
                    there.insert((sync.to_owned(), source.to_owned()), c);
                }
            }
        }
        if there.is_empty() {
            return Ok((Vec::new(), contacts));
        }
        let (mut found, mut missing) = (Vec::new(), Vec::new());
        for c in contacts {
            let key = copy_key(&c.client_data).map(|(a, b)| (a.to_owned(), b.to_owned()));
            match key.and_then(|k| there.remove(&k)) {
                Some(copy) => found.push(copy),
                None => missing.push(c),
            }
        }
        if !found.is_empty() {
            tracing::warn!(
                user,
                copies = found.len(),
                "copies the plan did not see exist already (the listings trailed an earlier \
                 write); they are not made again"
            );
        }
        Ok((found, missing))
    }

    /// One `batchCreateContacts`, sent again only for what did not land.
    ///
    /// When the answer is lost, the contacts of their target group are read by
    /// name (never stale, unlike a listing): a contact whose `(sync, source)`
    /// markers are now there was created, the rest are sent again.
    pub(super) async fn create_batch(
        &self,
        user: &str,
        chunk: &[NewContact<'_>],
    ) -> Result<Vec<Contact>> {
        let what = format!("creating contacts of {user}");
        let mut pending: Vec<&NewContact<'_>> = chunk.iter().collect();
        let mut created = Vec::with_capacity(chunk.len());
        let mut round = 0;
        loop {
            round += 1;
            let body = CreateBody { contacts: &pending };
            let sent = self
                .people_create(user, "people:batchCreateContacts", || Body::Pieces(&body), true)
                .await;
            let failure = match sent {
                Ok(response) => {
                    created.extend(
                        response["createdPeople"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|p| contact_from(&p["person"])),
                    );
                    return Ok(created);
                }
                Err(f) if f.maybe_applied => f,
                Err(f) => return Err(f.into_error(&what)),
            };
            if pending.iter().any(|c| {
                copy_key(&c.client_data).is_none() || target_group(&c.memberships).is_none()
            }) {
                return Err(failure.error_with(format!(
                    "{what}: {}; the contacts carry no contact-sync markers, so whether they \
                     were created cannot be checked, and they were not sent again",
                    failure.message
                )));
            }
            tracing::warn!(
                user,
                contacts = pending.len(),
                "the answer to a batch create was lost ({}); re-reading before sending what is missing",
                failure.message
            );
            self.take_landed(user, &what, &mut pending, &mut created).await?;
            if pending.is_empty() {
                return Ok(created);
            }
            if round >= self.client.retry.max_attempts {
                return Err(failure.into_error(&format!("{what}: the answer was lost every time")));
            }
        }
    }

    /// Moves the contacts of `pending` that landed after all — a copy with their
    /// `(sync, source)` markers is now in their target group, read by name — to
    /// `created`.
    async fn take_landed(
        &self,
        user: &str,
        what: &str,
        pending: &mut Vec<&NewContact<'_>>,
        created: &mut Vec<Contact>,
    ) -> Result<()> {
        let mut now = Vec::new();
        let groups: BTreeSet<&str> =
            pending.iter().filter_map(|c| target_group(&c.memberships)).collect();
        for group in groups {
            let members =
                self.members_now(user, group).await.map_err(|e| unknown_outcome(what, e))?;
            now.extend(members);
        }
        let mut landed: HashMap<(&str, &str), &Contact> =
            now.iter().filter_map(|c| Some((copy_key(&c.client_data)?, c))).collect();
        let before = pending.len();
        pending.retain(|c| {
            let key =
                copy_key(&c.client_data).expect("the caller checked every contact has markers");
            match landed.remove(&key) {
                Some(found) => {
                    created.push(found.clone());
                    false
                }
                None => true,
            }
        });
        tracing::info!(user, landed = before - pending.len(), missing = pending.len(), "re-read");
        Ok(())
    }

    /// One `batchDeleteContacts`. A 404 means some are gone already (an earlier
    /// attempt landed, or the user deleted them): the rest are deleted.
    pub(super) async fn delete_batch(&self, user: &str, chunk: &[String]) -> Result<()> {
        let what = format!("deleting contacts of {user}");
        let body = json!({ "resourceNames": chunk });
        match self.people(user, Method::POST, "people:batchDeleteContacts", &[], Some(&body)).await
        {
            Ok(_) => Ok(()),
            Err(f) if f.status == 404 => {
                // Read by name: a listing might still show what is gone.
                let present: HashSet<String> = self
                    .contacts_now(user, chunk)
                    .await?
                    .into_iter()
                    .map(|c| c.resource_name)
                    .collect();
                let left: Vec<&String> = chunk.iter().filter(|rn| present.contains(*rn)).collect();
                if left.is_empty() {
                    return Ok(());
                }
                let body = json!({ "resourceNames": left });
                self.people(user, Method::POST, "people:batchDeleteContacts", &[], Some(&body))
                    .await
                    .map(|_| ())
                    .map_err(|f| f.into_error(&what))
            }
            Err(f) => Err(f.into_error(&what)),
        }
    }

    /// One `batchUpdateContacts`. A stale etag means the contact changed since it
    /// was read — by its user, or by an earlier attempt of this very update whose
    /// answer was lost. Each contact is re-read: one that already holds what the
    /// update writes is done; the others are sent again with their current etag
    /// (the update wins over the user's edit of the same fields; fields outside the
    /// mask keep the edit, which the next plan reports).
    pub(super) async fn update_batch(
        &self,
        user: &str,
        mask: &str,
        chunk: Vec<ContactUpdate>,
    ) -> Result<Vec<Contact>> {
        let what = format!("updating contacts of {user}");
        let mut pending = chunk;
        let mut done = Vec::new();
        let mut round = 0;
        loop {
            round += 1;
            let failure = match self.send_updates(user, mask, &pending).await {
                Ok(v) => {
                    done.extend(updated_people(&v));
                    return Ok(done);
                }
                Err(f) => f,
            };
            // A resend after a lost answer meets a stale etag too, so the check
            // runs after every stale answer, not only the first.
            if !failure.is_stale() || round >= self.client.retry.max_attempts {
                return Err(failure.into_error(&what));
            }
            tracing::info!(user, "stale etags; re-reading the contacts by name");
            let names: Vec<String> = pending.iter().map(|u| u.resource_name.clone()).collect();
            let mut current: HashMap<String, Contact> = self
                .contacts_now(user, &names)
                .await?
                .into_iter()
                .map(|c| (c.resource_name.clone(), c))
                .collect();
            let mut retry = Vec::new();
            for mut u in pending {
                let now = current.remove(&u.resource_name).ok_or_else(|| Error::NotFound {
                    what: format!("contact {}", u.resource_name),
                })?;
                if holds(&now, &u) {
                    done.push(now);
                } else {
                    u.etag = now.etag;
                    retry.push(u);
                }
            }
            if retry.is_empty() {
                return Ok(done);
            }
            pending = retry;
        }
    }

    async fn send_updates(
        &self,
        user: &str,
        mask: &str,
        chunk: &[ContactUpdate],
    ) -> Result<Value, Failure> {
        let masked: std::collections::HashSet<&str> = mask.split(',').collect();
        let contacts: serde_json::Map<String, Value> = chunk
            .iter()
            .map(|u| {
                let fields: PersonFields = u
                    .fields
                    .iter()
                    .filter(|(k, _)| masked.contains(k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let mut person = person_json(&fields, &u.client_data);
                person.insert("etag".into(), u.etag.clone().into());
                (u.resource_name.clone(), Value::Object(person))
            })
            .collect();
        let body = json!({ "contacts": contacts, "updateMask": mask, "readMask": ECHO_MASK });
        self.people(user, Method::POST, "people:batchUpdateContacts", &[], Some(&body)).await
    }
}

/// What batch creates and updates ask back of each contact they write, besides the
/// resource name and etag every answer carries: the markers, which is all a later
/// step of the same apply (a photo write) needs. Asking for the whole person
/// would download every contact written.
const ECHO_MASK: &str = "clientData";

fn updated_people(response: &Value) -> Vec<Contact> {
    response["updateResult"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
        .map(|r| contact_from(&r["person"]))
        .collect()
}

/// Whether `contact` already holds every field (and the markers) `update` writes.
fn holds(contact: &Contact, update: &ContactUpdate) -> bool {
    update.update_mask.iter().all(|field| {
        if field == "clientData" {
            return same_markers(&contact.client_data, &update.client_data);
        }
        let pick = |fields: &PersonFields| -> PersonFields {
            fields.get(field).map(|v| (field.clone(), v.clone())).into_iter().collect()
        };
        same_content(&normalize(&pick(&contact.fields)), &normalize(&pick(&update.fields)))
    })
}

/// The body of one `batchCreateContacts`, made a few contacts at a time while it
/// is sent ([`Body::Pieces`]): however many requests are in flight, none holds
/// its whole batch serialized.
struct CreateBody<'p, 'a> {
    contacts: &'p [&'p NewContact<'a>],
}

/// New contacts serialized into one piece of a [`CreateBody`] (about 15 KB).
const CONTACTS_PER_PIECE: usize = 10;

impl Pieces for CreateBody<'_, '_> {
    fn pieces(&self) -> Box<dyn Iterator<Item = Vec<u8>> + Send + '_> {
        let head = std::iter::once(b"{\"contacts\":[".to_vec());
        let items = self.contacts.chunks(CONTACTS_PER_PIECE).enumerate().map(|(i, chunk)| {
            let mut piece = Vec::new();
            for (j, c) in chunk.iter().enumerate() {
                if i + j > 0 {
                    piece.push(b',');
                }
                serde_json::to_writer(&mut piece, &create_item(c)).expect("a JSON value");
            }
            piece
        });
        // The answer only has to identify each copy: its resource name and etag
        // (always there) and its markers.
        let tail = format!("],\"readMask\":{}}}", Value::from(ECHO_MASK));
        Box::new(head.chain(items).chain(std::iter::once(tail.into_bytes())))
    }
}

/// A `batchCreateContacts` item.
fn create_item(c: &NewContact<'_>) -> Value {
    let mut person = person_json(&c.fields, &c.client_data);
    let memberships: Vec<Value> = c
        .memberships
        .iter()
        .map(|rn| json!({ "contactGroupMembership": { "contactGroupResourceName": rn } }))
        .collect();
    person.insert("memberships".into(), Value::Array(memberships));
    json!({ "contactPerson": person })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn new_contact(i: usize) -> NewContact<'static> {
        let mut fields = PersonFields::new();
        fields.insert("names".into(), json!([{ "givenName": format!("Contact {i}") }]));
        NewContact {
            fields: Cow::Owned(fields),
            memberships: vec!["contactGroups/g1".into()],
            client_data: vec![ClientData { key: "k".into(), value: format!("v{i}") }],
        }
    }

    #[test]
    fn a_create_body_made_piece_by_piece_is_the_whole_request() {
        for n in [0, 1, CONTACTS_PER_PIECE, CONTACTS_PER_PIECE + 1, 200] {
            let contacts: Vec<NewContact<'_>> = (0..n).map(new_contact).collect();
            let refs: Vec<&NewContact<'_>> = contacts.iter().collect();
            let body = CreateBody { contacts: &refs };
            let pieces: Vec<Vec<u8>> = body.pieces().collect();
            assert_eq!(pieces.len(), n.div_ceil(CONTACTS_PER_PIECE) + 2, "{n} contacts");
            let sent: Value = serde_json::from_slice(&pieces.concat()).expect("valid JSON");
            let whole = json!({
                "contacts": contacts.iter().map(create_item).collect::<Vec<_>>(),
                "readMask": ECHO_MASK,
            });
            assert_eq!(sent, whole, "{n} contacts");
        }
    }
}
