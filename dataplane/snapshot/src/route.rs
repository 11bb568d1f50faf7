//! Route matches and route rules.

use crate::filter::Filter;
use serde::{Deserialize, Serialize};

/// One HTTPRoute match (path, method, headers, query) pointing at its rule.
///
/// An HTTPRoute rule with several matches yields several `RouteMatch`es that
/// share one [`Route`]; they are sorted separately because the Gateway API
/// orders precedence per match, not per rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
#[serde(rename_all = "camelCase")]
pub struct HeaderMatch {
    /// Header name, lowercase.
    pub name: String,
    /// Condition on the value (the first header line with this name).
    pub value: StringMatch,
}

/// A query parameter condition. Names are case-sensitive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
#[serde(rename_all = "camelCase")]
pub struct Route {
    /// Source name, `httproute/<ns>/<name>/rule/<i>` (or `grpcroute/...`).
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
    /// When a failed upstream attempt is tried again; `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Share of new traces sampled on this rule, per million, replacing the
    /// Gateway's (the HTTPRoute annotation `tollgate.dev/tracing-sampling-ratio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling_per_million: Option<u32>,
    /// Index into `Snapshot::auth`: the rule's effective authentication and
    /// authorization (policies merged, plus its `ExternalAuth` filter).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<usize>,
    /// Index into `Snapshot::rate_limits`: every limit that applies to the
    /// rule, from every level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<usize>,
    /// Whether the rule comes from a GRPCRoute: the data plane then answers
    /// its own errors the gRPC way (HTTP 200 with `grpc-status`), since a
    /// gRPC client reads no HTTP status. Absent in snapshots made before
    /// GRPCRoutes were served, hence the default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub grpc: bool,
}

/// A weighted reference from a rule to a backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
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
#[serde(rename_all = "camelCase")]
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

/// Most retries one rule may ask for per request: a retry policy is a
/// recovery from a blip, not a loop, and every retry is load on a backend
/// that is already failing.
pub const MAX_RETRY_ATTEMPTS: u32 = 10;

/// Retries when the HTTPRoute names no `attempts` (Envoy's default too).
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 1;

/// Wait before the first retry when the HTTPRoute names no `backoff`
/// (Envoy's base interval): long enough for a connection refused by a
/// restarting pod to become another endpoint's turn.
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 25;

/// An HTTPRoute rule's `retry`: which failed attempts are tried again and
/// how often.
///
/// Attempts that failed before any response (connection refused or reset,
/// per-attempt timeout) are retried whatever `codes` says, as the Gateway
/// API asks; a response is retried only when its status is in `codes`.
/// How many retries the data plane may make in total is bounded by the
/// Gateway's retry budget ([`crate::RetrySettings`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Response statuses retried: sorted, distinct, each within 400..=599.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<u16>,
    /// Most retries after the first attempt, 1..=[`MAX_RETRY_ATTEMPTS`].
    pub attempts: u32,
    /// Least wait before the first retry, in milliseconds; later retries
    /// wait longer (exponential, with jitter), never less.
    pub backoff_ms: u64,
}

impl Retry {
    /// Whether a response with `status` is retried.
    pub fn retries_status(&self, status: u16) -> bool {
        self.codes.binary_search(&status).is_ok()
    }

    /// What is wrong with this policy, if anything.
    pub fn problem(&self) -> Option<String> {
        if let Some(code) = self.codes.iter().find(|c| !(400..=599).contains(*c)) {
            return Some(format!("retry code {code} is outside 400-599"));
        }
        if !self.codes.windows(2).all(|w| w[0] < w[1]) {
            return Some("retry codes must be sorted and distinct".into());
        }
        if !(1..=MAX_RETRY_ATTEMPTS).contains(&self.attempts) {
            return Some(format!(
                "retry attempts {} is outside 1-{MAX_RETRY_ATTEMPTS}",
                self.attempts
            ));
        }
        None
    }
}
