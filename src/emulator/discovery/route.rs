//! Matching a request path to a discovery method, as Google's HTTP transcoding
//! does: the method's `flatPath` is split into segments (`{var}` matches any one
//! segment) and an optional custom verb after the last `:`
//! (`v1/people:batchCreateContacts`, `v1/contactGroups/{id}/members:modify`). The
//! verb is split off the request's last segment the same way, so
//! `contactGroups/abc:frobnicate` matches no method rather than
//! `contactGroups/{id}`.

use serde_json::Value;

use super::{Api, Method};

/// One segment of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    /// Must be exactly this.
    Literal(String),
    /// Any one non-empty segment.
    Var,
}

/// A method's path template and HTTP method.
pub(super) struct Route {
    http_method: String,
    segments: Vec<Segment>,
    verb: Option<String>,
    method: Method,
}

impl Route {
    fn matches(&self, http_method: &str, segments: &[&str], verb: Option<&str>) -> bool {
        self.http_method == http_method
            && self.verb.as_deref() == verb
            && self.segments.len() == segments.len()
            && self.segments.iter().zip(segments).all(|(t, s)| match t {
                Segment::Literal(l) => l == s,
                Segment::Var => !s.is_empty(),
            })
    }

    /// Literal segments: where two templates match, the more literal one wins.
    fn literals(&self) -> usize {
        self.segments.iter().filter(|s| matches!(s, Segment::Literal(_))).count()
    }
}

/// Splits `a/b/c:verb` into its segments and verb.
fn split(path: &str) -> (Vec<&str>, Option<&str>) {
    let path = path.trim_start_matches('/');
    let (path, verb) = match path.rsplit_once('/') {
        Some((head, last)) => match last.split_once(':') {
            Some((last, verb)) => (&path[..head.len() + 1 + last.len()], Some(verb)),
            None => (path, None),
        },
        None => match path.split_once(':') {
            Some((only, verb)) => (only, Some(verb)),
            None => (path, None),
        },
    };
    (path.split('/').collect(), verb)
}

/// The routes of every method under `resources`, recursively.
pub(super) fn routes(resources: &'static Value, api: Api) -> Vec<Route> {
    let mut out = Vec::new();
    for resource in resources.as_object().into_iter().flat_map(|r| r.values()) {
        for def in resource["methods"].as_object().into_iter().flat_map(|m| m.values()) {
            let template = def["flatPath"].as_str().or_else(|| def["path"].as_str());
            if let (Some(template), Some(http)) = (template, def["httpMethod"].as_str()) {
                let (segments, verb) = split(template);
                out.push(Route {
                    http_method: http.to_owned(),
                    segments: segments
                        .into_iter()
                        .map(|s| {
                            if s.starts_with('{') {
                                Segment::Var
                            } else {
                                Segment::Literal(s.to_owned())
                            }
                        })
                        .collect(),
                    verb: verb.map(str::to_owned),
                    method: Method { api, def },
                });
            }
        }
        out.extend(routes(&resource["resources"], api));
    }
    out
}

/// The method `http_method path` calls, if any.
pub(super) fn find(routes: &[Route], http_method: &str, path: &str) -> Option<Method> {
    let (segments, verb) = split(path);
    routes
        .iter()
        .filter(|r| r.matches(http_method, &segments, verb))
        .max_by_key(|r| r.literals())
        .map(|r| r.method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_segments_and_a_custom_verb() {
        assert_eq!(split("/v1/people:batchGet"), (vec!["v1", "people"], Some("batchGet")));
        assert_eq!(
            split("v1/contactGroups/{contactGroupsId}/members:modify"),
            (vec!["v1", "contactGroups", "{contactGroupsId}", "members"], Some("modify"))
        );
        assert_eq!(
            split("/v1/people/me/connections"),
            (vec!["v1", "people", "me", "connections"], None)
        );
        assert_eq!(split("v1:x"), (vec!["v1"], Some("x")));
    }
}
