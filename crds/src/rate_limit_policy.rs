//! `RateLimitPolicy`: how many requests the routes of a Gateway take,
//! attached the Gateway API way (GEP-713) like `AuthPolicy`.
//!
//! Unlike auth sections, limits from every level apply together: a
//! Gateway-wide limit and a per-route limit are both enforced. Each limit
//! is a generic cell rate algorithm (GCRA): `requests` per `interval`, a
//! burst of `requests + burst` at once from rest, refilling continuously
//! (one unit every `interval / requests`); see docs/ratelimit.md.

use crate::auth_policy::{AuthPolicyStatus, PolicyTargetRef};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rate limits for a Gateway, a listener, an HTTPRoute or a route rule.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "RateLimitPolicy",
    plural = "ratelimitpolicies",
    shortname = "rlpol",
    namespaced,
    status = "AuthPolicyStatus",
    printcolumn = r#"{"name":"Accepted","type":"string","description":"Whether the policy is in effect (its first ancestor's Accepted condition).","jsonPath":".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"description":"Why, or why not.","jsonPath":".status.ancestors[0].conditions[?(@.type==\"Accepted\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "Rate limits (GCRA, local or shared in Redis) for a Gateway, a listener, an HTTPRoute or a route rule; limits from every level apply together."
)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitPolicySpec {
    /// What the policy attaches to: Gateways, listeners (`sectionName`),
    /// HTTPRoutes, or named rules (`sectionName`).
    #[schemars(length(min = 1, max = 16))]
    pub target_refs: Vec<PolicyTargetRef>,
    /// The limits; a request must pass every one of every level.
    #[schemars(length(min = 1, max = 16))]
    pub limits: Vec<LimitSpec>,
    /// Which responses carry `RateLimit-Policy` / `RateLimit`: `Limited`
    /// (429s only, the default), `All`, or `Off` (only `Retry-After`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<String>,
    /// When Redis cannot decide a `Global` limit: `FailOpen` (admit, the
    /// default) or `FailClosed` (503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
}

/// One limit.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LimitSpec {
    /// The limit's name (headers, metrics); unique in the policy.
    pub name: String,
    /// Requests (cost units) per interval.
    #[schemars(range(min = 1))]
    pub requests: u64,
    /// The interval, a Gateway API duration (`10s`, `1m`, `1h`).
    pub interval: String,
    /// Extra units allowed at once above `requests`. Default 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u64>,
    /// `Local` (counters in each replica: N per replica) or `Global`
    /// (counters in Redis: N in total). Default `Local`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// Parts whose values name the counter; none: one counter for all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub key: Option<Vec<KeyPartSpec>>,
    /// The limit counts only requests matching every condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub when: Option<Vec<ConditionSpec>>,
    /// What one request costs; default 1 unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostSpec>,
    /// Count and report, never refuse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<bool>,
}

/// One part of a key; set exactly one field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyPartSpec {
    /// The client address (trusted-proxy rule applied).
    #[serde(default, rename = "clientIP", skip_serializing_if = "Option::is_none")]
    pub client_ip: Option<Empty>,
    /// A request header's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<Named>,
    /// A query parameter's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_param: Option<Named>,
    /// A claim of the authenticated token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt_claim: Option<Named>,
    /// The authenticated consumer (else subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumer: Option<Empty>,
    /// The route rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Empty>,
    /// The normalized path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Empty>,
    /// The method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<Empty>,
}

/// An empty object: `clientIP: {}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// A name: `header: {name: x-tenant}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Named {
    /// The header, parameter or claim name.
    pub name: String,
}

/// A condition on the request; `invert` turns it into "does not match".
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConditionSpec {
    /// Methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path prefixes (element-wise, like `PathPrefix`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Header conditions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<HeaderConditionSpec>>,
    /// Client address ranges (CIDR).
    #[serde(
        default,
        rename = "clientCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_cidrs: Option<Vec<String>>,
    /// Match requests that do not satisfy the condition (exempt trusted
    /// clients with `clientCIDRs` and `invert: true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invert: Option<bool>,
}

/// A header condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderConditionSpec {
    /// Header name.
    pub name: String,
    /// The value; absent: the header is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `Exact` (default) or `RegularExpression`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub match_type: Option<String>,
}

/// What a request costs; set one field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostSpec {
    /// The same for every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub units: Option<u64>,
    /// Read from a request header (an integer), else `default`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header: Option<HeaderCostSpec>,
    /// Debited once the response is complete, from a response header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_header: Option<Named>,
}

/// A cost read from a request header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeaderCostSpec {
    /// Header name.
    pub name: String,
    /// Units when the header is absent or not an integer. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<u64>,
}
