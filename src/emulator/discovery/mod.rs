//! Google's discovery documents of the People API and the Admin SDK Directory API
//! (vendored byte-identical in `discovery/` at the top of the repository), and a
//! validator that refuses what Google's front end refuses: an unknown path or
//! verb, a query parameter the method does not take or of the wrong type, a
//! missing required parameter, a bad field mask path, and a JSON body that does
//! not match the method's request schema at any depth. The same walker checks the
//! emulator's own answers against the response schemas.
//!
//! The core is pure (no HTTP server types): a request is a method, a path, its
//! query pairs and its JSON body; the answer is the discovery method it calls, or
//! a [`Refusal`] shaped as Google answers (400 `INVALID_ARGUMENT` with a
//! `google.rpc.BadRequest` detail, or 404). The documents are parsed once.
//!
//! Split by concern: [`route`] matches paths, [`params`] checks query parameters,
//! required fields and field masks, [`walk`] walks JSON against a schema.

mod params;
mod route;
mod walk;

use std::sync::OnceLock;

use serde_json::Value;

pub use walk::Mode;

/// The People API's discovery document, as Google ships it.
const PEOPLE_JSON: &str = include_str!("../../../discovery/people.v1.json");
/// The Admin SDK Directory API's discovery document, as Google ships it.
const DIRECTORY_JSON: &str = include_str!("../../../discovery/admin.directory_v1.json");

/// SHA-256 of `discovery/people.v1.json`, so that an accidental edit fails a test.
pub const PEOPLE_SHA256: &str = "bb15cc8b5cb288d3c78c7b55d3c4028a816e7bfa82990bc3c830a5c2fc22d67a";
/// SHA-256 of `discovery/admin.directory_v1.json`.
pub const DIRECTORY_SHA256: &str =
    "c1c0bdde7a36ed12dbde5e68017d885d44d18bc745ff51cccf0ebe4af7e5897c";

/// One parsed discovery document.
pub struct Doc {
    /// The document itself.
    root: Value,
    /// The proto package its messages live in, for type URLs in messages
    /// (`type.googleapis.com/google.people.v1.Person`).
    package: &'static str,
}

impl Doc {
    /// The schema called `name`.
    fn schema(&self, name: &str) -> Option<&Value> {
        self.root["schemas"].get(name)
    }

    /// The parameters every method of the API takes (`fields`, `alt`, `key`, …).
    fn standard_parameters(&self) -> &Value {
        &self.root["parameters"]
    }

    /// The type URL Google names a message by.
    fn type_url(&self, schema: &str) -> String {
        format!("type.googleapis.com/{}.{schema}", self.package)
    }
}

/// Parses a vendored document once.
fn parse(text: &str, package: &'static str) -> Doc {
    Doc {
        root: serde_json::from_str(text).expect("a vendored discovery document is JSON"),
        package,
    }
}

fn people() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(|| parse(PEOPLE_JSON, "google.people.v1"))
}

fn directory() -> &'static Doc {
    static DOC: OnceLock<Doc> = OnceLock::new();
    DOC.get_or_init(|| parse(DIRECTORY_JSON, "google.admin.directory.v1"))
}

/// The routes of every method of both documents, built once.
fn routes() -> &'static [route::Route] {
    static ROUTES: OnceLock<Vec<route::Route>> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let mut routes = route::routes(&people().root["resources"], Api::People);
        routes.extend(route::routes(&directory().root["resources"], Api::Directory));
        routes
    })
}

/// Which of the two APIs a method belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `people.googleapis.com`.
    People,
    /// `admin.googleapis.com/admin/directory/v1`.
    Directory,
}

impl Api {
    fn doc(self) -> &'static Doc {
        match self {
            Api::People => people(),
            Api::Directory => directory(),
        }
    }
}

/// A method of a discovery document (`people.people.batchCreateContacts`).
#[derive(Clone, Copy)]
pub struct Method {
    api: Api,
    def: &'static Value,
}

impl std::fmt::Debug for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl Method {
    /// The method's id, e.g. `people.contactGroups.members.modify`.
    pub fn id(&self) -> &'static str {
        self.def["id"].as_str().unwrap_or_default()
    }

    fn doc(&self) -> &'static Doc {
        self.api.doc()
    }

    /// The name of the schema its body must match, if it takes a body.
    fn request_schema(&self) -> Option<&'static str> {
        self.def["request"]["$ref"].as_str()
    }

    /// The name of the schema its answer matches, if it answers a body.
    fn response_schema(&self) -> Option<&'static str> {
        self.def["response"]["$ref"].as_str()
    }
}

/// One reason a request is refused, as a `google.rpc.BadRequest` field violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Where, in Google's form (`contacts[0].contact_person.phone_numbers[0]`);
    /// `None` when the problem is at the top of the request.
    pub field: Option<String>,
    /// What Google says about it.
    pub description: String,
}

impl Violation {
    fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        let field = field.into();
        Self { field: (!field.is_empty()).then_some(field), description: description.into() }
    }

    fn top(description: impl Into<String>) -> Self {
        Self { field: None, description: description.into() }
    }
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No method of either API has this path and verb: 404.
    NotFound {
        /// The path asked for.
        path: String,
    },
    /// The request does not fit its method: 400 `INVALID_ARGUMENT`, one
    /// violation per problem (Google lists every JSON problem it finds at once).
    Invalid(Vec<Violation>),
}

impl Refusal {
    /// The error message Google answers with: the violations, one a line.
    pub fn message(&self) -> String {
        match self {
            Refusal::NotFound { path } => {
                format!("The requested URL {path} was not found on this server.")
            }
            Refusal::Invalid(v) => {
                v.iter().map(|v| v.description.as_str()).collect::<Vec<_>>().join("\n")
            }
        }
    }
}

/// A request as the validator sees it.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// HTTP method, upper case.
    pub method: &'a str,
    /// The path, still percent-encoded, without the query.
    pub path: &'a str,
    /// Decoded query pairs, repeated keys kept.
    pub query: &'a [(String, String)],
    /// The JSON body, if one was sent (`None`: no body or an empty one).
    pub body: Option<&'a Value>,
}

/// The discovery method a path and HTTP method call, or a 404.
pub fn find(http_method: &str, path: &str) -> Result<Method, Refusal> {
    route::find(routes(), http_method, path)
        .ok_or_else(|| Refusal::NotFound { path: path.to_owned() })
}

/// Checks a request against its discovery method: the method it calls, or why
/// Google would refuse it.
pub fn check_request(request: &Request<'_>) -> Result<Method, Refusal> {
    let method = find(request.method, request.path)?;
    let mut violations = params::check_query(method, request.query);
    if let (Some(schema), Some(body)) = (method.request_schema(), request.body) {
        violations.extend(walk::check(method.doc(), schema, body, Mode::Request));
    }
    if violations.is_empty()
        && let Some(v) = params::check_semantics(method, request.query, request.body)
    {
        violations.push(v);
    }
    if violations.is_empty() { Ok(method) } else { Err(Refusal::Invalid(violations)) }
}

/// Checks an answer of `method` against its response schema, as Google writes
/// JSON (int32 as numbers, int64 as strings, enums by name): the problems found.
pub fn check_response(method: Method, body: &Value) -> Vec<Violation> {
    match method.response_schema() {
        Some(schema) => walk::check(method.doc(), schema, body, Mode::Response),
        None => Vec::new(),
    }
}

/// Whether the items of the Person field `field` (`phoneNumbers`) have the
/// property `property` (`formattedType`): the emulator decorates only those.
pub fn person_item_has(field: &str, property: &str) -> bool {
    let doc = Api::People.doc();
    doc.schema("Person")
        .and_then(|p| p["properties"][field]["items"]["$ref"].as_str())
        .and_then(|item| doc.schema(item))
        .is_some_and(|item| item["properties"].get(property).is_some())
}

/// Whether the discovery document marks the property `property` of the items of
/// the Person field `field` output only (Google ignores it on writes).
pub fn person_item_output_only(field: &str, property: &str) -> bool {
    let doc = Api::People.doc();
    doc.schema("Person")
        .and_then(|p| p["properties"][field]["items"]["$ref"].as_str())
        .and_then(|item| doc.schema(item))
        .and_then(|item| item["properties"][property]["description"].as_str())
        .is_some_and(|d| d.starts_with("Output only"))
}

/// `phoneNumbers` → `phone_numbers`: the proto name Google reports paths in.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `phone_numbers` → `phoneNumbers`: Google's JSON parser takes both names.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sha256(text: &str) -> String {
        use sha2::{Digest, Sha256};
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn the_vendored_documents_are_the_ones_shipped() {
        assert_eq!(sha256(PEOPLE_JSON), PEOPLE_SHA256, "discovery/people.v1.json was edited");
        assert_eq!(
            sha256(DIRECTORY_JSON),
            DIRECTORY_SHA256,
            "discovery/admin.directory_v1.json was edited"
        );
    }

    fn refusal(method: &str, path: &str, query: &[(&str, &str)], body: Option<Value>) -> String {
        let query: Vec<(String, String)> =
            query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let request = Request { method, path, query: &query, body: body.as_ref() };
        match check_request(&request) {
            Ok(m) => format!("ok {}", m.id()),
            Err(r) => r.message(),
        }
    }

    #[test]
    fn every_endpoint_the_backend_calls_is_found() {
        for (method, path, id) in [
            ("GET", "/v1/people/me/connections", "people.people.connections.list"),
            ("GET", "/v1/people:batchGet", "people.people.getBatchGet"),
            ("POST", "/v1/people:batchCreateContacts", "people.people.batchCreateContacts"),
            ("POST", "/v1/people:batchUpdateContacts", "people.people.batchUpdateContacts"),
            ("POST", "/v1/people:batchDeleteContacts", "people.people.batchDeleteContacts"),
            ("GET", "/v1/contactGroups", "people.contactGroups.list"),
            ("POST", "/v1/contactGroups", "people.contactGroups.create"),
            ("GET", "/v1/contactGroups/abc", "people.contactGroups.get"),
            ("PUT", "/v1/contactGroups/abc", "people.contactGroups.update"),
            ("DELETE", "/v1/contactGroups/abc", "people.contactGroups.delete"),
            (
                "POST",
                "/v1/contactGroups/myContacts/members:modify",
                "people.contactGroups.members.modify",
            ),
            ("GET", "/admin/directory/v1/users", "directory.users.list"),
            ("GET", "/admin/directory/v1/users/ann%40example.com", "directory.users.get"),
            ("GET", "/admin/directory/v1/groups/g%40example.com/members", "directory.members.list"),
        ] {
            assert_eq!(find(method, path).map(|m| m.id()), Ok(id), "{method} {path}");
        }
    }

    #[test]
    fn unknown_paths_verbs_and_http_methods_are_not_found() {
        for (method, path) in [
            ("GET", "/v1/people:batchFrobnicate"),
            ("POST", "/v1/contactGroups/abc/members:frobnicate"),
            ("PATCH", "/v1/contactGroups/abc"),
            ("GET", "/v2/contactGroups"),
            ("GET", "/v1/people/me/connections/extra"),
        ] {
            assert!(matches!(find(method, path), Err(Refusal::NotFound { .. })), "{method} {path}");
        }
    }

    #[test]
    fn a_nested_unknown_name_is_refused_with_its_path_in_google_form() {
        let body = json!({
            "contacts": [{ "contactPerson": {
                "phoneNumbers": [{ "value": "1", "type": "work", "primary": true }]
            }}],
            "readMask": "names",
        });
        assert_eq!(
            refusal("POST", "/v1/people:batchCreateContacts", &[], Some(body)),
            "Invalid JSON payload received. Unknown name \"primary\" at \
             'contacts[0].contact_person.phone_numbers[0]': Cannot find field."
        );
    }

    #[test]
    fn output_only_fields_of_the_schema_are_accepted() {
        let body = json!({
            "contacts": { "people/c1": {
                "etag": "e", "resourceName": "people/c1",
                "metadata": { "sources": [{ "type": "CONTACT", "id": "1" }] },
                "phoneNumbers": [{ "value": "1", "formattedType": "Work", "canonicalForm": "+1",
                                   "metadata": { "primary": true, "source": { "type": "CONTACT", "id": "1" } } }],
            }},
            "updateMask": "phoneNumbers",
            "readMask": "names,phoneNumbers",
        });
        assert_eq!(
            refusal("POST", "/v1/people:batchUpdateContacts", &[], Some(body)),
            "ok people.people.batchUpdateContacts"
        );
    }

    #[test]
    fn a_map_value_is_walked_as_google_names_map_entries() {
        let body = json!({
            "contacts": { "people/c1": { "etag": "e", "nickname": [] } },
            "updateMask": "nicknames",
            "readMask": "names",
        });
        assert_eq!(
            refusal("POST", "/v1/people:batchUpdateContacts", &[], Some(body)),
            "Invalid JSON payload received. Unknown name \"nickname\" at 'contacts[0].value': \
             Cannot find field."
        );
    }

    #[test]
    fn unknown_query_parameters_are_refused_and_standard_ones_taken() {
        assert_eq!(
            refusal("GET", "/v1/contactGroups", &[("parent", "x")], None),
            "Invalid JSON payload received. Unknown name \"parent\": Cannot bind query \
             parameter. Field 'parent' could not be found in request message."
        );
        assert_eq!(
            refusal(
                "GET",
                "/v1/contactGroups",
                &[("prettyPrint", "false"), ("fields", "contactGroups"), ("$.xgafv", "2")],
                None
            ),
            "ok people.contactGroups.list"
        );
    }

    #[test]
    fn query_types_enums_and_repetition_are_checked() {
        let list = |q: &[(&str, &str)]| refusal("GET", "/v1/people/me/connections", q, None);
        let names = ("personFields", "names");
        assert_eq!(
            list(&[names, ("pageSize", "ten")]),
            "Invalid value at 'page_size' (TYPE_INT32), \"ten\""
        );
        assert_eq!(
            list(&[names, ("requestSyncToken", "yes")]),
            "Invalid value at 'request_sync_token' (TYPE_BOOL), \"yes\""
        );
        assert_eq!(
            list(&[names, ("sortOrder", "BY_MOOD")]),
            "Invalid value at 'sort_order' (TYPE_ENUM), \"BY_MOOD\""
        );
        assert!(list(&[names, ("pageSize", "1"), ("pageSize", "2")]).contains("not repeating"));
        assert_eq!(
            list(&[
                names,
                ("sources", "READ_SOURCE_TYPE_CONTACT"),
                ("sources", "READ_SOURCE_TYPE_PROFILE")
            ]),
            "ok people.people.connections.list"
        );
    }

    #[test]
    fn required_parameters_and_masks_are_enforced_as_google_does() {
        assert_eq!(
            refusal("GET", "/v1/people/me/connections", &[], None),
            "personFields mask is required. Please specify one or more valid paths. Valid \
             paths are documented at https://developers.google.com/people/api/rest/v1/people/get."
        );
        // The deprecated requestMask stands in for personFields.
        assert_eq!(
            refusal(
                "GET",
                "/v1/people/me/connections",
                &[("requestMask.includeField", "person.names")],
                None
            ),
            "ok people.people.connections.list"
        );
        assert_eq!(
            refusal("GET", "/v1/people/me/connections", &[("personFields", "names,notes")], None),
            "Invalid personFields mask path: \"notes\". Valid paths are documented at \
             https://developers.google.com/people/api/rest/v1/people/get."
        );
        let update = json!({ "contacts": { "people/c1": { "etag": "e" } }, "readMask": "names" });
        assert!(
            refusal("POST", "/v1/people:batchUpdateContacts", &[], Some(update))
                .starts_with("updateMask is required.")
        );
        let group =
            json!({ "contactGroup": { "name": "x" }, "readGroupFields": "name,memberCount" });
        assert!(
            refusal("POST", "/v1/contactGroups", &[], Some(group))
                .starts_with("Invalid readGroupFields mask path: \"memberCount\""),
            "memberCount is not a valid read field of a create"
        );
    }

    #[test]
    fn wrong_types_lists_and_objects_are_refused_where_google_refuses_them() {
        let create = |person: Value| {
            refusal(
                "POST",
                "/v1/people:batchCreateContacts",
                &[],
                Some(json!({ "contacts": [{ "contactPerson": person }], "readMask": "names" })),
            )
        };
        assert_eq!(
            create(json!({ "names": [{ "givenName": 5 }] })),
            "Invalid value at 'contacts[0].contact_person.names[0].given_name' (TYPE_STRING), 5"
        );
        assert_eq!(
            create(json!({ "names": [{ "metadata": [] }] })),
            "Invalid JSON payload received. Unknown name \"metadata\" at \
             'contacts[0].contact_person.names[0]': Proto field is not repeating, cannot start list."
        );
        assert!(create(json!({ "names": { "givenName": "A" } })).contains("names"));
        assert_eq!(
            create(json!({ "birthdays": [{ "date": { "year": "1815", "month": 12.5 } }] })),
            "Invalid value at 'contacts[0].contact_person.birthdays[0].date.month' (TYPE_INT32), 12.5"
        );
        assert_eq!(
            create(json!({ "biographies": [{ "value": "x", "contentType": "TEXT_RICH" }] })),
            "Invalid value at 'contacts[0].contact_person.biographies[0].content_type' \
             (TYPE_ENUM), \"TEXT_RICH\""
        );
        assert_eq!(
            create(json!({ "names": [{ "givenName": { "text": "A" } }] })),
            "Invalid value at 'contacts[0].contact_person.names[0]' (given_name), Starting an \
             object on a scalar field"
        );
    }

    #[test]
    fn responses_are_held_to_googles_json_forms() {
        let method = find("GET", "/v1/contactGroups").unwrap();
        let good = json!({ "contactGroups": [{ "resourceName": "contactGroups/a", "memberCount": 2,
                           "groupType": "USER_CONTACT_GROUP" }], "totalItems": 1 });
        assert_eq!(check_response(method, &good), Vec::new());
        let bad =
            json!({ "contactGroups": [{ "memberCount": "2", "kind": "x" }], "totalItems": 1 });
        let problems: Vec<String> =
            check_response(method, &bad).into_iter().map(|v| v.description).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn only_person_items_with_a_formatted_type_get_one() {
        assert!(person_item_has("phoneNumbers", "formattedType"));
        assert!(!person_item_has("nicknames", "formattedType"));
        assert!(!person_item_has("locations", "formattedType"));
        assert!(person_item_has("imClients", "formattedProtocol"));
    }

    /// The properties of the items of every Person field contact-sync writes, as
    /// (field, property, output only).
    fn person_item_properties() -> Vec<(&'static str, String, bool)> {
        let doc = Api::People.doc();
        let mut out = Vec::new();
        for field in crate::model::PERSON_FIELDS {
            let item =
                doc.schema("Person").and_then(|p| p["properties"][field]["items"]["$ref"].as_str());
            let Some(properties) =
                item.and_then(|i| doc.schema(i)).and_then(|i| i["properties"].as_object())
            else {
                continue;
            };
            for property in properties.keys() {
                out.push((*field, property.clone(), person_item_output_only(field, property)));
            }
        }
        out
    }

    #[test]
    fn what_google_fills_in_is_never_compared_and_what_a_client_writes_is_kept() {
        use crate::model::normalize::OUTPUT_ONLY;
        let properties = person_item_properties();
        assert!(properties.len() > 50, "{properties:?}");
        for (field, property, _) in properties.iter().filter(|p| p.2) {
            assert!(
                OUTPUT_ONLY.contains(&property.as_str()),
                "{field}.{property} is output only and compared as content"
            );
        }
        assert!(person_item_output_only("genders", "formattedValue"));
        assert!(person_item_output_only("names", "displayName"));
        assert!(person_item_output_only("phoneNumbers", "canonicalForm"));
        // Written by clients (and filled in by Google when left unset).
        assert!(!person_item_output_only("addresses", "formattedValue"));
        assert!(!person_item_output_only("names", "unstructuredName"));
        assert!(!person_item_output_only("emailAddresses", "displayName"));
    }

    #[test]
    fn names_convert_between_json_and_proto_forms() {
        assert_eq!(snake("phoneNumbers"), "phone_numbers");
        assert_eq!(snake("requestMask.includeField"), "request_mask.include_field");
        assert_eq!(camel("phone_numbers"), "phoneNumbers");
    }
}
