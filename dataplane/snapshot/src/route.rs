//! Route matches and route rules.

use crate::filter::Filter;
use serde::{Deserialize, Serialize};

/// One HTTPRoute match (path, method, headers, query) pointing at its rule.
///
/// An HTTPRoute rule with several matches yields several `RouteMatch`es that
/// share one [`Route`]; they are sorted separately because the Gateway API
/// orders precedence per match, not per rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RouteMatch {
    /// Index into `Snapshot::routes`.
    pub route: usize,
    /// Path condition; every request has a path, so this is always present
    /// (`Prefix /` when the manifest names none).
    pub path: PathMatch,
    /// HTTP method, uppercase, when the match names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Header conditions; all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderMatch>,
    /// Query parameter conditions; all must hold.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub query: Vec<QueryMatch>,
}

/// A path condition, tested against the normalized request path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum PathMatch {
    /// The whole path equals the value.
    Exact(String),
    /// The path starts with the value, element by element: `/foo` matches
    /// `/foo` and `/foo/bar` but not `/foobar`. A trailing `/` is ignored.
    Prefix(String),
    /// The whole path matches the regular expression (RE2 syntax).
    RegularExpression(String),
}

/// A header condition. Names are lowercase.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HeaderMatch {
    /// Header name, lowercase.
    pub name: String,
    /// Condition on the value (the first header line with this name).
    pub value: StringMatch,
}

/// A query parameter condition. Names are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct QueryMatch {
    /// Parameter name, exactly as written.
    pub name: String,
    /// Condition on the value (the first occurrence of the parameter).
    pub value: StringMatch,
}

/// An exact or regular-expression condition on a string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum StringMatch {
    /// Equal to the value.
    Exact(String),
    /// The whole string matches the regular expression.
    RegularExpression(String),
}

/// One HTTPRoute rule: what to do with a matched request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Route {
    /// Source name, `httproute/<ns>/<name>/rule/<i>`.
    pub name: String,
    /// The rule's `name`, when the manifest gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_name: Option<String>,
    /// Filters in manifest order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
    /// Weighted backends. Empty with no redirect filter means the rule has
    /// nothing to send to: the data plane answers 500.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backends: Vec<BackendRef>,
    /// Request and per-try timeouts.
    #[serde(default, skip_serializing_if = "Timeouts::is_empty")]
    pub timeouts: Timeouts,
    /// Share of new traces sampled on this rule, per million, replacing the
    /// Gateway's (the HTTPRoute annotation `tollgate.dev/tracing-sampling-ratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_per_million: Option<u32>,
}

/// A weighted reference from a rule to a backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRef {
    /// Index into `Snapshot::backends`; `None` when the manifest's reference
    /// is invalid (missing Service, refused cross-namespace reference, bad
    /// kind), in which case requests chosen for it get 500.
    pub backend: Option<usize>,
    /// Relative weight; 0 means never chosen.
    pub weight: u32,
    /// Filters that apply only when this backend is chosen.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Filter>,
}

/// HTTPRoute rule timeouts, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Timeouts {
    /// From receiving the request to the end of the response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_ms: Option<u64>,
    /// One upstream attempt, from sending the request to the response headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_request_ms: Option<u64>,
}

impl Timeouts {
    /// Whether no timeout is set.
    pub fn is_empty(&self) -> bool {
        self.request_ms.is_none() && self.backend_request_ms.is_none()
    }
}
