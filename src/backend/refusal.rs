//! Requests a backend refuses before sending anything: each says what was asked of
//! what (the field, the photo, the endpoint, the group in the way) so a caller can
//! match on it, and renders as the words the user reads after "invalid request:".

/// Why a backend refuses a request ([`crate::backend::Error::Invalid`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// An update names a field the People API does not let be updated.
    #[error("field `{field}` cannot be updated")]
    FieldNotUpdatable {
        /// The field.
        field: String,
    },
    /// A photo the People API would refuse (not a JPEG or PNG, too large).
    #[error("the photo for {resource_name}: {why}")]
    Photo {
        /// The contact it was for.
        resource_name: String,
        /// What is wrong with it.
        why: String,
    },
    /// A photo URL on a host contact-sync does not fetch from.
    #[error(
        "the photo URL {url} is on neither googleusercontent.com nor a configured endpoint's \
         host; it is not fetched"
    )]
    PhotoHost {
        /// The URL.
        url: String,
    },
    /// An endpoint setting that is no usable URL.
    #[error("{setting}: {why}")]
    Endpoint {
        /// Which setting (`spec.google.endpoints.people`, the key file's `token_uri`…).
        setting: String,
        /// What is wrong with it.
        why: String,
    },
    /// A contact group contact-sync keeps its own records in (the writer lease,
    /// the inventory) has a name taken by a group it did not create.
    #[error(
        "{user} has a contact group named \"{name}\" that contact-sync did not create, so the \
         {record} cannot be kept there; rename that group, or set spec.google.stateUser to \
         another user"
    )]
    GroupTaken {
        /// The user whose groups keep the record.
        user: String,
        /// The group name.
        name: String,
        /// What record: `writer lease`, `inventory`.
        record: &'static str,
    },
    /// The backend keeps no inventory.
    #[error("this backend keeps no inventory")]
    NoInventory,
    /// A plan puts contacts in a target group that it does not create.
    #[error("the plan puts contacts in a target group it does not create")]
    UncreatedTargetGroup,
    /// A plan gives a photo to a new contact that was not created.
    #[error("the plan gives a photo to {key}, not created")]
    UncreatedContact {
        /// The new contact's key in the plan.
        key: String,
    },
    /// A plan names a contact it does not know.
    #[error("the plan does not know contact {resource_name}")]
    UnknownContact {
        /// The contact.
        resource_name: String,
    },
}
