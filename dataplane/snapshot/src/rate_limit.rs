//! Rate limits: the effective `RateLimitPolicy` limits of a route rule,
//! merged by `compile` from every level that targets it. Unlike auth
//! sections, limits from every level apply together: a Gateway-wide limit
//! and a per-route limit are both enforced.
//!
//! Every limit is a generic cell rate algorithm (GCRA): `requests` per
//! `interval_ms` with room for a burst of `requests + burst` at once from
//! idle, refilling continuously (one request every `interval_ms /
//! requests`). One timestamp per key, so a decision is one atomic
//! read-modify-write, in memory (`Local`) or in a Redis script (`Global`).

use crate::{Redacted, StringMatch};
use serde::{Deserialize, Serialize};

/// The limits of one or more rules (shared by index, `Route::rate_limit`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimits {
    /// Every limit that applies; a request must pass all of them.
    pub limits: Vec<RateLimit>,
    /// Which responses carry `RateLimit-Policy` / `RateLimit` headers.
    #[serde(default)]
    pub headers: RateLimitHeaders,
}

/// Which responses carry the IETF rate-limit headers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateLimitHeaders {
    /// Only refusals (429, always with `Retry-After`).
    #[default]
    Limited,
    /// Every response of a limited rule.
    All,
    /// None at all, not even on a 429 (only `Retry-After`).
    Off,
}

/// One limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// The limit's name (`RateLimit-Policy`, metrics, logs).
    pub name: String,
    /// The policy it came from, e.g. `ratelimitpolicy/default/api`.
    pub source: String,
    /// Requests (cost units) per interval.
    pub requests: u64,
    /// The interval, in milliseconds.
    pub interval_ms: u64,
    /// Extra units allowed at once above `requests`.
    #[serde(default)]
    pub burst: u64,
    /// Where the counters live.
    pub scope: RateLimitScope,
    /// The parts whose values, joined, name the counter.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<KeyPart>,
    /// The limit applies only to requests matching every condition.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub when: Vec<LimitCondition>,
    /// What one request costs.
    #[serde(default)]
    pub cost: Cost,
    /// Count and report, never refuse.
    #[serde(default)]
    pub shadow: bool,
    /// When Redis cannot decide: admit (`true`, the default) or refuse
    /// with 503.
    #[serde(default = "yes")]
    pub fail_open: bool,
}

fn yes() -> bool {
    true
}

/// Where a limit's counters live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RateLimitScope {
    /// In this replica's memory: N per replica.
    Local,
    /// In Redis, shared by every replica of the Gateway.
    Global,
}

/// One part of a limit's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum KeyPart {
    /// The client address (trusted-proxy rule applied).
    ClientIp,
    /// A request header's value (empty when absent).
    Header {
        /// Header name, lowercase.
        name: String,
    },
    /// A query parameter's value.
    QueryParam {
        /// Parameter name.
        name: String,
    },
    /// A claim of the authenticated token (dots reach into objects).
    JwtClaim {
        /// Claim name.
        name: String,
    },
    /// The authenticated consumer (else subject).
    Consumer,
    /// The route rule's name.
    Route,
    /// The normalized path.
    Path,
    /// The method.
    Method,
}

/// A condition on the request; all its fields present must hold, and
/// `invert` turns the whole into "does not match".
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitCondition {
    /// Methods, uppercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Path prefixes, element-wise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_prefixes: Vec<String>,
    /// Header conditions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<LimitHeader>,
    /// Client address ranges (CIDR).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_cidrs: Vec<String>,
    /// Match requests that do NOT satisfy the condition (exempt trusted
    /// clients with `clientCIDRs` + `invert`).
    #[serde(default)]
    pub invert: bool,
}

/// A header condition of a limit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LimitHeader {
    /// Header name, lowercase.
    pub name: String,
    /// The value's condition; `None`: the header is present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<StringMatch>,
}

/// What a request costs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Cost {
    /// The same for every request.
    Constant {
        /// Units.
        units: u64,
    },
    /// Read from a request header (a non-negative integer), else `default`.
    RequestHeader {
        /// Header name, lowercase.
        name: String,
        /// Units when the header is absent or invalid.
        default: u64,
    },
    /// Debited when the response completes, from a response header (e.g.
    /// tokens an LLM backend used); the request itself is admitted while
    /// the key still has room.
    ResponseHeader {
        /// Header name, lowercase.
        name: String,
    },
}

impl Default for Cost {
    fn default() -> Self {
        Cost::Constant { units: 1 }
    }
}

/// How the data plane reaches Redis (`GatewayConfig.spec.rateLimit.redis`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedisSettings {
    /// `redis://host:port[/db]` or `rediss://` for TLS; several for a
    /// cluster's seed nodes or Sentinels.
    pub urls: Vec<String>,
    /// Standalone, Sentinel or Cluster.
    #[serde(default)]
    pub mode: RedisMode,
    /// ACL user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (from a Secret).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Redacted>,
    /// PEM CA bundle for `rediss://`, in place of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Connections kept open.
    pub pool_size: u32,
    /// Timeout of one call, in milliseconds; a slower Redis counts as down.
    pub timeout_ms: u64,
    /// Prefix of every key.
    pub key_prefix: String,
}

/// Redis deployment kind. (The Sentinel variant's fields are camelCase like
/// the rest of the snapshot; no controller wrote that variant before 1.1.)
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "type"
)]
pub enum RedisMode {
    /// One server (or a managed endpoint).
    #[default]
    Standalone,
    /// Sentinels in `urls` name the master of `master_name`; the
    /// settings' username, password and CA are the master's (and the CA
    /// also the sentinels', which share the scheme of `urls`).
    Sentinel {
        /// The monitored master's name.
        master_name: String,
        /// ACL user name for the sentinels, when they require one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sentinel_username: Option<String>,
        /// The sentinels' own password, when they require one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sentinel_password: Option<Redacted>,
    },
    /// A Redis Cluster; `urls` are seed nodes.
    Cluster,
}

#[cfg(test)]
mod tests {
    use crate::*;

    /// The redacted copy hides the master's and the sentinels' passwords
    /// and keeps the rest of Sentinel mode.
    #[test]
    fn redacted_hides_both_redis_passwords() {
        let mut s = Snapshot::default();
        s.settings.redis = Some(RedisSettings {
            urls: vec!["redis://sentinel:26379".into()],
            mode: RedisMode::Sentinel {
                master_name: "counters".into(),
                sentinel_username: None,
                sentinel_password: Some(Redacted::new("watch-s3cret")),
            },
            username: None,
            password: Some(Redacted::new("s3cret")),
            ca_pem: None,
            pool_size: 4,
            timeout_ms: 50,
            key_prefix: "tollgate:rl:".into(),
        });
        let json = serde_json::to_string(&s.redacted()).unwrap();
        assert!(!json.contains("s3cret"), "{json}");
        assert!(json.contains(r#""masterName":"counters""#), "{json}");
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
