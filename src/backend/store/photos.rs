//! Contact photos in the store: their bytes read, set or removed, each change a
//! new etag of the contact, as the People API's photo methods do.

use serde_json::Value;

use super::contacts::{contact_etag, contact_in, to_contact};
use super::groups::group_resources;
use super::{Store, db_err, required_user, schema};
use crate::backend::Result;
use crate::backend::tenant::PHOTO_DATA;
use crate::model::{Contact, photo};

impl Store {
    /// The bytes of a contact's photo, if it has one.
    pub fn contact_photo(&self, user: &str, resource_name: &str) -> Result<Option<Vec<u8>>> {
        self.read(|db| {
            let (id, u) = required_user(db, user)?;
            let (_, c) = contact_in(db, id, &u, resource_name)?;
            Ok(c.fields.get(PHOTO_DATA).and_then(Value::as_str).and_then(photo::decode_base64))
        })
    }

    /// `people.updateContactPhoto` (`Some`) or `people.deleteContactPhoto`
    /// (`None`): the contact's photo replaced or removed; returns the contact.
    pub fn set_contact_photo(
        &mut self,
        user: &str,
        resource_name: &str,
        bytes: Option<&[u8]>,
    ) -> Result<Contact> {
        self.write(|tx| {
            let (id, u) = required_user(tx, user)?;
            let (row, mut c) = contact_in(tx, id, &u, resource_name)?;
            match bytes {
                Some(bytes) => {
                    c.fields.insert(PHOTO_DATA.into(), photo::encode_base64(bytes).into());
                }
                None => {
                    c.fields.shift_remove(PHOTO_DATA);
                }
            }
            c.etag = Some(contact_etag(&c));
            let groups = c.contact_groups.clone();
            schema::update_contact(tx, id, row, &groups, &c).map_err(db_err)?;
            Ok(to_contact(&group_resources(tx, id)?, &c))
        })
    }
}
