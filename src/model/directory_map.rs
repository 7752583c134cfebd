//! How a directory user becomes a contact: the Admin SDK Directory API's user
//! fields, in Directory shapes (`UserPhone`, `UserOrganization`, `UserAddress`…),
//! mapped key by key and type by type to the People API's Person fields, as data.
//!
//! The two shapes look alike but are not the same: People has no `primary`,
//! `customType`, `description` or `fullTimeEquivalent`, spells its type words in
//! camelCase (`workFax`, not `work_fax`), and refuses a contact with a key it does
//! not know. So no Directory item is passed through: every People item is built
//! from the keys [`FIELDS`] names, and whatever it does not name is left out.
//!
//! [`FIELDS`] also says, type by type, what a directory sync copies by default:
//! what a company address book shows — work phones, the work address, the
//! organization, the manager and assistants, desk locations, work websites and
//! IMs — and not what is personal (home and mobile phones, home addresses, family,
//! personal websites) nor identifiers meant for systems (external ids). A type that
//! does not say it is about work stays out. The README's table of directory fields
//! is rendered from this data by a test, so the two cannot drift apart.

use serde_json::{Map, Value, json};

use super::{DirectoryUser, PersonFields};

/// A Directory key copied into a People key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The Directory key, e.g. `locality`.
    pub directory: &'static str,
    /// The People key it becomes, e.g. `city`.
    pub people: &'static str,
    /// Whether the value is an integer (`fullTimeEquivalent`); otherwise text.
    pub integer: bool,
}

const fn text(directory: &'static str, people: &'static str) -> Key {
    Key { directory, people, integer: false }
}

const fn integer(directory: &'static str, people: &'static str) -> Key {
    Key { directory, people, integer: true }
}

/// A Directory type word, the People type it becomes, and whether items of that
/// type are copied by default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TypeWord {
    /// The Directory word, e.g. `work_fax`.
    pub directory: &'static str,
    /// The People type, e.g. `workFax`: one of People's predefined words where it
    /// has one, else a label People shows as it is; `None`: no type.
    pub people: Option<&'static str>,
    /// Whether a directory sync copies items of this type by default.
    pub default: bool,
}

const fn yes(directory: &'static str, people: &'static str) -> TypeWord {
    TypeWord { directory, people: Some(people), default: true }
}

const fn no(directory: &'static str, people: &'static str) -> TypeWord {
    TypeWord { directory, people: Some(people), default: false }
}

/// A Directory word (an IM protocol) and the People word it becomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Word {
    /// The Directory word, e.g. `gtalk`.
    pub directory: &'static str,
    /// The People word, e.g. `googleTalk`.
    pub people: &'static str,
}

/// How one Directory list field (`phones`) becomes one Person field
/// (`phoneNumbers`).
#[derive(Clone, Copy, Debug)]
pub struct FieldMap {
    /// The Directory user field, e.g. `phones`.
    pub directory: &'static str,
    /// The Person field, e.g. `phoneNumbers`.
    pub people: &'static str,
    /// The keys copied; every other key is left out.
    pub keys: &'static [Key],
    /// Keys of the Directory shape left out besides [`TYPE`], [`CUSTOM_TYPE`] and
    /// [`PRIMARY`] (which say the type and the order), named for the README.
    pub dropped: &'static [&'static str],
    /// The Directory's type words.
    pub types: &'static [TypeWord],
    /// Whether an item without a type is copied by default.
    pub untyped: bool,
    /// Whether an item of type `custom` (its `customType` the People type) is
    /// copied by default.
    pub custom: bool,
    /// The Directory's protocol words, for IMs (`protocol`, with
    /// `custom_protocol` taking `customProtocol`); empty for every other field.
    pub protocols: &'static [Word],
    /// The field's items in a directory user.
    pub items: fn(&DirectoryUser) -> &[Value],
}

/// The Directory key of an item's type.
pub const TYPE: &str = "type";
/// The Directory key of a custom type's text, used when the type is [`CUSTOM`].
pub const CUSTOM_TYPE: &str = "customType";
/// The Directory type word that says the type is in [`CUSTOM_TYPE`].
pub const CUSTOM: &str = "custom";
/// The Directory key of an item's primary flag: a primary item goes first, which
/// is how People shows an item as the primary one.
pub const PRIMARY: &str = "primary";
/// The IM protocol key, in Directory and People alike.
pub const PROTOCOL: &str = "protocol";
/// The Directory key of a custom protocol's text.
pub const CUSTOM_PROTOCOL: &str = "customProtocol";
/// The Directory protocol word that says the protocol is in [`CUSTOM_PROTOCOL`].
pub const CUSTOM_PROTOCOL_WORD: &str = "custom_protocol";

/// The Directory `name` keys copied into the contact's `names` item; `fullName`
/// and `displayName` are not (People derives its display name itself).
pub const NAME: &[Key] = &[text("givenName", "givenName"), text("familyName", "familyName")];
/// The Directory `name` keys left out.
pub const NAME_DROPPED: &[&str] = &["fullName", "displayName"];
/// The type of the contact's only e-mail address, the user's `primaryEmail`.
pub const EMAIL_TYPE: &str = "work";

/// Every Directory list field a directory sync maps, in the order of the README.
pub const FIELDS: &[FieldMap] = &[
    FieldMap {
        directory: "phones",
        people: "phoneNumbers",
        keys: &[text("value", "value")],
        dropped: &[],
        types: &[
            yes("work", "work"),
            yes("work_fax", "workFax"),
            yes("work_mobile", "workMobile"),
            yes("work_pager", "workPager"),
            yes("company_main", "main"),
            yes("assistant", "Assistant"),
            no("main", "main"),
            no("home", "home"),
            no("home_fax", "homeFax"),
            no("mobile", "mobile"),
            no("pager", "pager"),
            no("other", "other"),
            no("other_fax", "otherFax"),
            no("grand_central", "googleVoice"),
            no("car", "Car"),
            no("callback", "Callback"),
            no("isdn", "ISDN"),
            no("radio", "Radio"),
            no("telex", "Telex"),
            no("tty_tdd", "TTY/TDD"),
        ],
        untyped: false,
        custom: false,
        protocols: &[],
        items: |u| &u.phones,
    },
    FieldMap {
        directory: "organizations",
        people: "organizations",
        keys: &[
            text("name", "name"),
            text("title", "title"),
            text("department", "department"),
            text("description", "jobDescription"),
            text("costCenter", "costCenter"),
            integer("fullTimeEquivalent", "fullTimeEquivalentMillipercent"),
            text("location", "location"),
            text("symbol", "symbol"),
            text("domain", "domain"),
        ],
        dropped: &[],
        types: &[
            yes("work", "work"),
            TypeWord { directory: "domain_only", people: None, default: true },
            TypeWord { directory: "unknown", people: None, default: true },
            no("school", "school"),
        ],
        // The Admin console writes a user's organization without a type.
        untyped: true,
        custom: true,
        protocols: &[],
        items: |u| &u.organizations,
    },
    FieldMap {
        directory: "addresses",
        people: "addresses",
        keys: &[
            text("streetAddress", "streetAddress"),
            text("extendedAddress", "extendedAddress"),
            text("poBox", "poBox"),
            text("locality", "city"),
            text("region", "region"),
            text("postalCode", "postalCode"),
            text("country", "country"),
            text("countryCode", "countryCode"),
        ],
        // People builds its formatted address from the structured parts.
        dropped: &["formatted", "sourceIsStructured"],
        types: &[yes("work", "work"), no("home", "home"), no("other", "other")],
        untyped: false,
        custom: false,
        protocols: &[],
        items: |u| &u.addresses,
    },
    FieldMap {
        directory: "relations",
        people: "relations",
        keys: &[text("value", "person")],
        dropped: &[],
        types: &[
            yes("manager", "manager"),
            yes("dotted_line_manager", "Dotted-line manager"),
            yes("assistant", "assistant"),
            yes("admin_assistant", "Admin assistant"),
            yes("exec_assistant", "Executive assistant"),
            no("referred_by", "referredBy"),
            no("spouse", "spouse"),
            no("partner", "partner"),
            no("domestic_partner", "domesticPartner"),
            no("child", "child"),
            no("parent", "parent"),
            no("mother", "mother"),
            no("father", "father"),
            no("brother", "brother"),
            no("sister", "sister"),
            no("relative", "relative"),
            no("friend", "friend"),
        ],
        untyped: false,
        custom: false,
        protocols: &[],
        items: |u| &u.relations,
    },
    FieldMap {
        directory: "locations",
        people: "locations",
        keys: &[
            text("area", "value"),
            text("buildingId", "buildingId"),
            text("floorName", "floor"),
            text("floorSection", "floorSection"),
            text("deskCode", "deskCode"),
        ],
        dropped: &[],
        // A Directory location is a workplace, whatever its type.
        types: &[
            yes("desk", "desk"),
            TypeWord { directory: "default", people: None, default: true },
        ],
        untyped: true,
        custom: true,
        protocols: &[],
        items: |u| &u.locations,
    },
    FieldMap {
        directory: "externalIds",
        people: "externalIds",
        keys: &[text("value", "value")],
        dropped: &[],
        // Identifiers are for systems, not for reaching a colleague.
        types: &[
            no("organization", "organization"),
            no("account", "account"),
            no("customer", "customer"),
            no("login_id", "loginId"),
            no("network", "network"),
        ],
        untyped: false,
        custom: false,
        protocols: &[],
        items: |u| &u.external_ids,
    },
    FieldMap {
        directory: "ims",
        people: "imClients",
        keys: &[text("im", "username")],
        dropped: &[],
        types: &[yes("work", "work"), no("home", "home"), no("other", "other")],
        untyped: false,
        custom: false,
        protocols: &[
            Word { directory: "gtalk", people: "googleTalk" },
            Word { directory: "net_meeting", people: "netMeeting" },
            Word { directory: "aim", people: "aim" },
            Word { directory: "icq", people: "icq" },
            Word { directory: "jabber", people: "jabber" },
            Word { directory: "msn", people: "msn" },
            Word { directory: "qq", people: "qq" },
            Word { directory: "skype", people: "skype" },
            Word { directory: "yahoo", people: "yahoo" },
        ],
        items: |u| &u.ims,
    },
    FieldMap {
        directory: "websites",
        people: "urls",
        keys: &[text("value", "value")],
        dropped: &[],
        types: &[
            yes("work", "work"),
            no("home", "home"),
            no("home_page", "homePage"),
            no("profile", "profile"),
            no("blog", "blog"),
            no("resume", "Resume"),
            no("ftp", "ftp"),
            no("reservations", "reservations"),
            no("app_install_page", "appInstallPage"),
            no("other", "other"),
        ],
        untyped: false,
        custom: false,
        protocols: &[],
        items: |u| &u.websites,
    },
];

/// What an item's type is, as the mapping sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind<'a> {
    /// One of the field's [`TypeWord`]s.
    Word(&'a TypeWord),
    /// `type: custom` (or only a `customType`): the text, possibly empty.
    Custom(&'a str),
    /// No type.
    Untyped,
    /// A word the mapping does not know (a Directory newer than this table).
    Unknown(&'a str),
}

/// A non-empty trimmed string at `key`.
fn text_at<'a>(item: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    item.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

impl FieldMap {
    /// The Directory field named `directory`.
    pub fn named(directory: &str) -> Option<&'static FieldMap> {
        FIELDS.iter().find(|f| f.directory == directory)
    }

    /// What type `item` has.
    pub fn kind<'a>(&'a self, item: &'a Map<String, Value>) -> Kind<'a> {
        let custom = || Kind::Custom(text_at(item, CUSTOM_TYPE).unwrap_or_default());
        match text_at(item, TYPE) {
            Some(word) if word.eq_ignore_ascii_case(CUSTOM) => custom(),
            Some(word) => self
                .types
                .iter()
                .find(|t| t.directory.eq_ignore_ascii_case(word))
                .map_or(Kind::Unknown(word), Kind::Word),
            None if text_at(item, CUSTOM_TYPE).is_some() => custom(),
            None => Kind::Untyped,
        }
    }

    /// Whether a directory sync copies items of `kind` by default.
    pub fn by_default(&self, kind: &Kind<'_>) -> bool {
        match kind {
            Kind::Word(word) => word.default,
            Kind::Custom(_) => self.custom,
            Kind::Untyped => self.untyped,
            Kind::Unknown(_) => false,
        }
    }

    /// The People items of `items` that `keep` keeps, primary items first (People
    /// takes no primary flag: the first item is the one it shows as primary).
    /// Items that are not objects, and items left with no value (a type alone),
    /// are dropped.
    pub fn people_items(&self, items: &[Value], keep: impl Fn(&Kind<'_>) -> bool) -> Vec<Value> {
        let mut mapped: Vec<(bool, Value)> = items
            .iter()
            .filter_map(|item| {
                let item = item.as_object()?;
                let kind = self.kind(item);
                if !keep(&kind) {
                    return None;
                }
                let primary = item.get(PRIMARY).and_then(Value::as_bool).unwrap_or(false);
                Some((primary, self.people_item(item, &kind)?))
            })
            .collect();
        // Stable: primaries first, each group in the Directory's order.
        mapped.sort_by_key(|(primary, _)| !primary);
        mapped.into_iter().map(|(_, item)| item).collect()
    }

    /// One People item, built key by key; `None` when no value is left.
    fn people_item(&self, item: &Map<String, Value>, kind: &Kind<'_>) -> Option<Value> {
        let mut out = copy_keys(item, self.keys);
        if out.is_empty() {
            return None;
        }
        let people_type = match kind {
            Kind::Word(word) => word.people,
            Kind::Custom(text) | Kind::Unknown(text) => Some(*text).filter(|t| !t.is_empty()),
            Kind::Untyped => None,
        };
        if let Some(t) = people_type {
            out.insert(TYPE.into(), t.into());
        }
        if !self.protocols.is_empty()
            && let Some(protocol) = self.protocol(item)
        {
            out.insert(PROTOCOL.into(), protocol.into());
        }
        Some(Value::Object(out))
    }

    /// The People protocol of an IM: the People word, the custom protocol's text,
    /// or an unknown word as it is.
    fn protocol<'a>(&'a self, item: &'a Map<String, Value>) -> Option<&'a str> {
        let word = text_at(item, PROTOCOL);
        match word {
            Some(w) if w.eq_ignore_ascii_case(CUSTOM_PROTOCOL_WORD) => {
                text_at(item, CUSTOM_PROTOCOL)
            }
            Some(w) => Some(
                self.protocols
                    .iter()
                    .find(|p| p.directory.eq_ignore_ascii_case(w))
                    .map_or(w, |p| p.people),
            ),
            None => text_at(item, CUSTOM_PROTOCOL),
        }
    }
}

/// The keys of `item` that `keys` names, under their People names: text as text
/// (empty left out), integers as integers (an integer in text too); anything else
/// — objects, lists, flags — is never copied.
fn copy_keys(item: &Map<String, Value>, keys: &[Key]) -> Map<String, Value> {
    let mut out = Map::new();
    for key in keys {
        let value = match item.get(key.directory) {
            Some(Value::String(s)) if key.integer => s.trim().parse::<i64>().ok().map(Value::from),
            Some(Value::String(s)) if !s.trim().is_empty() => Some(Value::from(s.clone())),
            Some(Value::Number(n)) if key.integer => {
                n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)).map(Value::from)
            }
            Some(Value::Number(n)) => Some(Value::from(n.to_string())),
            _ => None,
        };
        if let Some(value) = value {
            out.insert(key.people.into(), value);
        }
    }
    out
}

/// The contact a directory user becomes, with the items [`FIELDS`] copies by
/// default.
pub fn person(user: &DirectoryUser) -> PersonFields {
    person_with(user, |field, kind| field.by_default(kind))
}

/// The contact a directory user becomes, with the items `keep` keeps (by field
/// and type).
pub fn person_with(
    user: &DirectoryUser,
    keep: impl Fn(&FieldMap, &Kind<'_>) -> bool,
) -> PersonFields {
    let mut fields = PersonFields::new();
    let name = json!({ "givenName": user.given_name, "familyName": user.family_name });
    let name = copy_keys(name.as_object().expect("an object"), NAME);
    if !name.is_empty() {
        fields.insert("names".into(), json!([name]));
    }
    fields.insert(
        "emailAddresses".into(),
        json!([{ "value": user.primary_email, "type": EMAIL_TYPE }]),
    );
    for field in FIELDS {
        let items = field.people_items((field.items)(user), |kind| keep(field, kind));
        if !items.is_empty() {
            fields.insert(field.people.into(), Value::Array(items));
        }
    }
    fields
}

/// Everything of `user` the mapping reads, as JSON text: what a fingerprint of a
/// directory sync's source covers, so that a change to any of it is noticed.
pub fn mapped_source(user: &DirectoryUser) -> String {
    let mut source = Map::new();
    source.insert("primaryEmail".into(), user.primary_email.clone().into());
    source.insert(
        "name".into(),
        json!({ "givenName": user.given_name, "familyName": user.family_name }),
    );
    for field in FIELDS {
        source.insert(field.directory.into(), Value::from((field.items)(user).to_vec()));
    }
    if !user.custom_schemas.is_empty() {
        source.insert("customSchemas".into(), json!(user.custom_schemas));
    }
    Value::Object(source).to_string()
}

/// The People key of a `userDefined` entry's label.
pub const USER_DEFINED_KEY: &str = "key";

/// One custom schema field a directory sync copies (its `customFields` entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CustomField<'a> {
    /// The schema's name.
    pub schema: &'a str,
    /// The field's name in it.
    pub field: &'a str,
    /// The `userDefined` key, or the `externalIds` type.
    pub label: &'a str,
    /// Where the values go.
    pub into: CustomInto,
}

/// The People field a custom schema field's values become.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CustomInto {
    /// `userDefined`: `{key: <label>, value}`.
    UserDefined,
    /// `externalIds`: `{value, type: <label>}`.
    ExternalId,
}

/// The values of custom field `field` of schema `schema` in `user`, as text: a
/// single-valued field's value, or each `value` of a multi-valued field's list
/// (`[{value, type, customType}]`), in the Directory's order; empty values left
/// out.
pub fn custom_values(user: &DirectoryUser, schema: &str, field: &str) -> Vec<String> {
    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let Some(value) = user.custom_schemas.get(schema).and_then(|s| s.get(field)) else {
        return Vec::new();
    };
    match value {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| match item {
                Value::Object(map) => map.get("value").and_then(text),
                other => text(other),
            })
            .collect(),
        other => text(other).into_iter().collect(),
    }
}

/// The People items `custom` makes of `user`'s custom schema fields, one per
/// value: `userDefined` entries `{key: <as>, value}` and `externalIds` entries
/// `{value, type: <as>}`, in the order of `custom`.
pub fn custom_items(user: &DirectoryUser, custom: &[CustomField<'_>]) -> (Vec<Value>, Vec<Value>) {
    let (mut user_defined, mut external_ids) = (Vec::new(), Vec::new());
    for c in custom {
        for value in custom_values(user, c.schema, c.field) {
            match c.into {
                CustomInto::UserDefined => {
                    user_defined.push(json!({ USER_DEFINED_KEY: c.label, "value": value }));
                }
                CustomInto::ExternalId => {
                    external_ids.push(json!({ "value": value, TYPE: c.label }));
                }
            }
        }
    }
    (user_defined, external_ids)
}

/// The contact a directory user becomes ([`person`]), with the custom schema
/// fields `custom` names appended to its `userDefined` and `externalIds`.
pub fn person_with_custom(user: &DirectoryUser, custom: &[CustomField<'_>]) -> PersonFields {
    let mut fields = person(user);
    add_custom(&mut fields, user, custom);
    fields
}

/// Appends the items [`custom_items`] makes to `fields`.
pub fn add_custom(fields: &mut PersonFields, user: &DirectoryUser, custom: &[CustomField<'_>]) {
    let (user_defined, external_ids) = custom_items(user, custom);
    for (name, items) in [("userDefined", user_defined), ("externalIds", external_ids)] {
        if items.is_empty() {
            continue;
        }
        let entry = fields.entry(name.into()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(list) = entry {
            list.extend(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(lists: Value) -> DirectoryUser {
        let mut u = serde_json::json!({
            "id": "1", "primaryEmail": "ann@example.com",
            "givenName": "Ann", "familyName": "Archer",
        });
        u.as_object_mut().unwrap().extend(lists.as_object().unwrap().clone());
        serde_json::from_value(u).unwrap()
    }

    fn field(user: &DirectoryUser, name: &str) -> Value {
        person(user).get(name).cloned().unwrap_or(Value::Null)
    }

    #[test]
    fn names_and_the_primary_address_make_the_contact() {
        let p = person(&user(json!({})));
        assert_eq!(p["names"], json!([{ "givenName": "Ann", "familyName": "Archer" }]));
        assert_eq!(p["emailAddresses"], json!([{ "value": "ann@example.com", "type": "work" }]));
        assert_eq!(p.len(), 2);
        let nameless = DirectoryUser {
            given_name: String::new(),
            family_name: String::new(),
            ..user(json!({}))
        };
        assert!(!person(&nameless).contains_key("names"));
    }

    #[test]
    fn work_phones_flow_with_people_type_words_primary_first() {
        let u = user(json!({ "phones": [
            { "value": "+1 555 0101", "type": "work_fax" },
            { "value": "+1 555 0100", "type": "work", "primary": true },
            { "value": "+1 555 0102", "type": "mobile" },
            { "value": "+1 555 0103", "type": "home" },
            { "value": "+1 555 0104", "type": "work_mobile" },
            { "value": "+1 555 0105", "type": "company_main" },
            { "value": "+1 555 0106", "type": "custom", "customType": "Desk" },
            { "value": "+1 555 0107" },
            { "value": "+1 555 0108", "type": "WORK_PAGER" },
        ]}));
        assert_eq!(
            field(&u, "phoneNumbers"),
            json!([
                { "value": "+1 555 0100", "type": "work" },
                { "value": "+1 555 0101", "type": "workFax" },
                { "value": "+1 555 0104", "type": "workMobile" },
                { "value": "+1 555 0105", "type": "main" },
                { "value": "+1 555 0108", "type": "workPager" },
            ])
        );
    }

    #[test]
    fn organizations_are_built_key_by_key() {
        let u = user(json!({ "organizations": [
            { "name": "School of Life", "type": "school", "primary": false },
            { "name": "Acme", "title": "Buyer", "department": "Purchasing",
              "description": "Buys engines", "costCenter": "CC-7",
              "fullTimeEquivalent": 50000, "location": "London", "symbol": "ACME",
              "domain": "acme.test", "primary": true, "customType": "",
              "etag": "\"x\"", "extra": { "nested": true } },
        ]}));
        assert_eq!(
            field(&u, "organizations"),
            json!([{
                "name": "Acme", "title": "Buyer", "department": "Purchasing",
                "jobDescription": "Buys engines", "costCenter": "CC-7",
                "fullTimeEquivalentMillipercent": 50000, "location": "London",
                "symbol": "ACME", "domain": "acme.test",
            }])
        );
        let custom = user(json!({ "organizations": [
            { "name": "Acme Labs", "type": "custom", "customType": "Subsidiary",
              "fullTimeEquivalent": "100000" },
        ]}));
        assert_eq!(
            field(&custom, "organizations"),
            json!([{ "name": "Acme Labs", "type": "Subsidiary",
                     "fullTimeEquivalentMillipercent": 100000 }])
        );
    }

    #[test]
    fn addresses_take_people_keys_and_leave_formatted_out() {
        let u = user(json!({ "addresses": [
            { "type": "home", "locality": "Slough", "primary": true },
            { "type": "work", "formatted": "1 Main St\nLondon", "streetAddress": "1 Main St",
              "locality": "London", "postalCode": "N1 1AA", "countryCode": "GB",
              "sourceIsStructured": true, "extendedAddress": "Floor 2", "poBox": "PO 9",
              "region": "Greater London", "country": "United Kingdom" },
            { "type": "work", "formatted": "2 Side St, London" },
        ]}));
        assert_eq!(
            field(&u, "addresses"),
            json!([{
                "streetAddress": "1 Main St", "extendedAddress": "Floor 2", "poBox": "PO 9",
                "city": "London", "region": "Greater London", "postalCode": "N1 1AA",
                "country": "United Kingdom", "countryCode": "GB", "type": "work",
            }])
        );
    }

    #[test]
    fn the_manager_and_assistants_flow_and_family_does_not() {
        let u = user(json!({ "relations": [
            { "value": "spouse@home.test", "type": "spouse" },
            { "value": "boss@example.com", "type": "manager" },
            { "value": "pa@example.com", "type": "exec_assistant" },
            { "value": "kid", "type": "domestic_partner" },
            { "value": "buddy", "type": "custom", "customType": "Mentor" },
        ]}));
        assert_eq!(
            field(&u, "relations"),
            json!([
                { "person": "boss@example.com", "type": "manager" },
                { "person": "pa@example.com", "type": "Executive assistant" },
            ])
        );
    }

    #[test]
    fn locations_ims_websites_and_external_ids() {
        let u = user(json!({
            "locations": [
                { "type": "desk", "area": "London", "buildingId": "LON-1", "floorName": "2",
                  "floorSection": "B", "deskCode": "2B-17" },
                { "type": "default", "area": "Remote" },
            ],
            "ims": [
                { "im": "ann.archer", "protocol": "gtalk", "type": "work" },
                { "im": "annie", "protocol": "custom_protocol", "customProtocol": "Matrix",
                  "type": "work", "primary": true },
                { "im": "ann_home", "protocol": "skype", "type": "home" },
                { "protocol": "jabber", "type": "work" },
            ],
            "websites": [
                { "value": "https://example.com/ann", "type": "work" },
                { "value": "https://ann.test", "type": "home_page" },
            ],
            "externalIds": [{ "value": "E-2001", "type": "organization" }],
        }));
        assert_eq!(
            field(&u, "locations"),
            json!([
                { "value": "London", "buildingId": "LON-1", "floor": "2", "floorSection": "B",
                  "deskCode": "2B-17", "type": "desk" },
                { "value": "Remote" },
            ])
        );
        assert_eq!(
            field(&u, "imClients"),
            json!([
                { "username": "annie", "type": "work", "protocol": "Matrix" },
                { "username": "ann.archer", "type": "work", "protocol": "googleTalk" },
            ])
        );
        assert_eq!(
            field(&u, "urls"),
            json!([{ "value": "https://example.com/ann", "type": "work" }])
        );
        assert_eq!(field(&u, "externalIds"), Value::Null);
    }

    #[test]
    fn a_selection_other_than_the_default_maps_the_same_way() {
        let u = user(json!({
            "phones": [{ "value": "+1 555 0102", "type": "mobile", "primary": true }],
            "externalIds": [{ "value": "jdoe", "type": "login_id" },
                            { "value": "x", "type": "custom", "customType": "Badge" },
                            { "value": "y", "type": "future_word" }],
            "websites": [{ "value": "https://ann.test", "type": "home_page" }],
        }));
        let all = person_with(&u, |_, _| true);
        assert_eq!(all["phoneNumbers"], json!([{ "value": "+1 555 0102", "type": "mobile" }]));
        assert_eq!(
            all["externalIds"],
            json!([{ "value": "jdoe", "type": "loginId" }, { "value": "x", "type": "Badge" },
                   { "value": "y", "type": "future_word" }])
        );
        assert_eq!(all["urls"], json!([{ "value": "https://ann.test", "type": "homePage" }]));
        let none = person_with(&u, |_, _| false);
        assert_eq!(none.keys().collect::<Vec<_>>(), ["emailAddresses", "names"]);
    }

    #[test]
    fn kinds_follow_type_and_custom_type() {
        let phones = FieldMap::named("phones").unwrap();
        let item = |v: Value| v.as_object().unwrap().clone();
        let custom = item(json!({ "type": "custom", "customType": "Desk" }));
        assert_eq!(phones.kind(&custom), Kind::Custom("Desk"));
        let only_custom = item(json!({ "customType": "Desk" }));
        assert_eq!(phones.kind(&only_custom), Kind::Custom("Desk"));
        let blank = item(json!({ "customType": "" }));
        assert_eq!(phones.kind(&blank), Kind::Untyped);
        let unknown = item(json!({ "type": "hologram" }));
        assert_eq!(phones.kind(&unknown), Kind::Unknown("hologram"));
        assert!(!phones.by_default(&phones.kind(&unknown)));
    }

    #[test]
    fn every_field_and_word_is_listed_once() {
        let mut fields = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(fields.insert(f.directory), "{} twice", f.directory);
            let mut words = std::collections::HashSet::new();
            for t in f.types {
                assert!(words.insert(t.directory), "{}: {} twice", f.directory, t.directory);
                assert_ne!(t.directory, CUSTOM);
            }
            assert!(f.keys.iter().all(|k| k.directory != TYPE && k.directory != PRIMARY));
        }
    }

    #[test]
    fn custom_fields_become_user_defined_entries_and_external_ids() {
        let mut u = user(json!({}));
        u.custom_schemas.insert(
            "EmployeeInfo".into(),
            json!({ "EmployeeNumber": "E-1001", "Badges": [
                { "value": "B-1", "type": "work" }, { "value": "" }, { "value": "B-2" }],
                "Level": 8 }),
        );
        let custom = |schema, field, label, into| CustomField { schema, field, label, into };
        let p = person_with_custom(
            &u,
            &[
                custom(
                    "EmployeeInfo",
                    "EmployeeNumber",
                    "Employee number",
                    CustomInto::UserDefined,
                ),
                custom("EmployeeInfo", "Badges", "Badge", CustomInto::ExternalId),
                custom("EmployeeInfo", "Level", "Level", CustomInto::UserDefined),
                custom("EmployeeInfo", "Missing", "Missing", CustomInto::UserDefined),
                custom("Other", "EmployeeNumber", "Other", CustomInto::UserDefined),
            ],
        );
        assert_eq!(
            p["userDefined"],
            json!([{ "key": "Employee number", "value": "E-1001" }, { "key": "Level", "value": "8" }])
        );
        assert_eq!(
            p["externalIds"],
            json!([{ "value": "B-1", "type": "Badge" }, { "value": "B-2", "type": "Badge" }])
        );
        let before = mapped_source(&user(json!({})));
        assert_ne!(mapped_source(&u), before, "a custom schema is part of the source");
    }

    #[test]
    fn the_mapped_source_changes_with_every_mapped_field() {
        let base = user(json!({}));
        let before = mapped_source(&base);
        for f in FIELDS {
            let mut changed = serde_json::to_value(&base).unwrap();
            changed[f.directory] = json!([{ "value": "x" }]);
            let changed: DirectoryUser = serde_json::from_value(changed).unwrap();
            assert_eq!((f.items)(&changed).len(), 1, "{}", f.directory);
            assert_ne!(mapped_source(&changed), before, "{}", f.directory);
        }
        let renamed = DirectoryUser { primary_email: "annie@example.com".into(), ..base.clone() };
        assert_ne!(mapped_source(&renamed), before);
    }
}
