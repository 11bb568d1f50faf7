//! Which requests a limit counts, under which key, at what cost.
//!
//! Keys are built from the request after authentication (so `consumer`
//! and `jwtClaim` parts see the principal) and hashed with SHA-256: a key
//! never holds a client's header in clear in Redis, every replica derives
//! the same name, and its length is fixed whatever a client sends.

use crate::auth::under;
use crate::context::RequestContext;
use crate::ip_text::ip_string;
use crate::proxy::parse_net;
use crate::router::ValueMatcher;
use ipnet::IpNet;
use sha2::{Digest, Sha256};
use tollgate_snapshot::{Cost, KeyPart, LimitCondition, RateLimit};

/// A limit's built conditions, key parts and cost.
#[derive(Debug)]
pub(crate) struct Selector {
    conditions: Vec<Condition>,
    parts: Vec<KeyPart>,
    cost: Cost,
    /// `<source>/<name>`, hashed into every key of the limit.
    id: String,
    /// The key of a limit without parts (one counter for all requests),
    /// hashed once at build time.
    fixed: Option<String>,
}

#[derive(Debug)]
struct Condition {
    methods: Vec<String>,
    prefixes: Vec<String>,
    /// Name, and the value's condition: `None` for presence only,
    /// `Some(None)` for a pattern that did not build (never holds).
    headers: Vec<(String, Option<Option<ValueMatcher>>)>,
    cidrs: Vec<IpNet>,
    invert: bool,
}

impl Selector {
    /// Builds the selector of `limit`. A regular expression or CIDR that
    /// does not build makes its condition never match (validated in
    /// `compile` already).
    pub(crate) fn build(limit: &RateLimit) -> Selector {
        let id = format!("{}/{}", limit.source, limit.name);
        let fixed = limit
            .key
            .is_empty()
            .then(|| hex(&Sha256::digest(id.as_bytes())));
        Selector {
            conditions: limit.when.iter().map(Condition::build).collect(),
            parts: limit.key.clone(),
            cost: limit.cost.clone(),
            id,
            fixed,
        }
    }

    /// Whether the limit counts this request.
    pub(crate) fn applies(&self, ctx: &RequestContext<'_>) -> bool {
        self.conditions.iter().all(|c| c.holds(ctx))
    }

    /// The request's counter: `SHA-256(id, part values)` in hex.
    pub(crate) fn key(&self, ctx: &RequestContext<'_>, route: &str) -> String {
        if let Some(fixed) = &self.fixed {
            return fixed.clone();
        }
        let mut hash = Sha256::new();
        hash.update(self.id.as_bytes());
        for part in &self.parts {
            hash.update([0u8]);
            match part {
                KeyPart::ClientIp => hash.update(ip_string(ctx.client)),
                KeyPart::Header { name } => {
                    hash.update(
                        ctx.headers
                            .get(name.as_str())
                            .map_or(&[][..], |v| v.as_bytes()),
                    );
                }
                KeyPart::QueryParam { name } => {
                    hash.update(query_value(ctx.query.as_deref(), name).unwrap_or_default());
                }
                KeyPart::JwtClaim { name } => {
                    let claim = ctx.principal.as_ref().and_then(|p| p.claim(name));
                    hash.update(claim.map(|v| v.to_string()).unwrap_or_default());
                }
                KeyPart::Consumer => {
                    hash.update(ctx.principal.as_ref().and_then(|p| p.name()).unwrap_or(""));
                }
                KeyPart::Route => hash.update(route),
                KeyPart::Path => hash.update(&ctx.path),
                KeyPart::Method => hash.update(ctx.method.as_str()),
            }
        }
        hex(&hash.finalize())
    }

    /// What the request costs up front; 0 for a cost the response names
    /// (the request is admitted while the key has room, and debited at
    /// the response).
    pub(crate) fn request_cost(&self, ctx: &RequestContext<'_>) -> u64 {
        match &self.cost {
            Cost::Constant { units } => *units,
            Cost::RequestHeader { name, default } => ctx
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok()?.trim().parse().ok())
                .unwrap_or(*default),
            Cost::ResponseHeader { .. } => 0,
        }
    }

    /// The response header naming the cost, for limits debited late.
    pub(crate) fn response_cost_header(&self) -> Option<&str> {
        match &self.cost {
            Cost::ResponseHeader { name } => Some(name),
            _ => None,
        }
    }
}

/// Lower-case hex of `bytes`, without a formatter call per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

impl Condition {
    fn build(c: &LimitCondition) -> Condition {
        let cidrs: Vec<Option<IpNet>> = c.client_cidrs.iter().map(|s| parse_net(s)).collect();
        let headers = c
            .headers
            .iter()
            .map(|h| {
                let value = h
                    .value
                    .as_ref()
                    .map(|m| ValueMatcher::compile(&h.name, m).ok());
                (h.name.clone(), value)
            })
            .collect();
        let broken = cidrs.iter().any(Option::is_none);
        Condition {
            methods: c.methods.clone(),
            prefixes: c.path_prefixes.clone(),
            headers,
            // A range that does not parse matches nothing: never exempt by
            // accident.
            cidrs: if broken {
                Vec::new()
            } else {
                cidrs.into_iter().flatten().collect()
            },
            invert: c.invert,
        }
    }

    fn holds(&self, ctx: &RequestContext<'_>) -> bool {
        let matched = (self.methods.is_empty()
            || self.methods.iter().any(|m| m == ctx.method.as_str()))
            && (self.prefixes.is_empty() || self.prefixes.iter().any(|p| under(&ctx.path, p)))
            && self.headers.iter().all(|(name, value)| {
                let got = ctx.headers.get(name.as_str()).and_then(|v| v.to_str().ok());
                match (got, value) {
                    (None, _) => false,
                    (Some(_), None) => true,
                    (Some(got), Some(Some(matcher))) => matcher.matches(got),
                    (Some(_), Some(None)) => false,
                }
            })
            && (self.cidrs.is_empty() || self.cidrs.iter().any(|n| n.contains(&ctx.client)));
        matched != self.invert
    }
}

fn query_value(query: Option<&str>, name: &str) -> Option<String> {
    query?.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| value.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_snapshot::RateLimitScope;

    /// The table-driven hex is the formatter's, and a limit without parts
    /// gets the same key every replica derived before it was precomputed:
    /// `SHA-256(id)`.
    #[test]
    fn hex_and_the_fixed_key() {
        let bytes = [0x00, 0x0f, 0xa5, 0xff];
        let formatted: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&bytes), formatted);
        let limit = RateLimit {
            name: "n".into(),
            source: "ratelimitpolicy/ns/p".into(),
            requests: 1,
            interval_ms: 1000,
            burst: 0,
            scope: RateLimitScope::Global,
            key: vec![],
            when: vec![],
            cost: Cost::default(),
            shadow: false,
            fail_open: true,
        };
        let want: String = Sha256::digest(b"ratelimitpolicy/ns/p/n")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            Selector::build(&limit).fixed.as_deref(),
            Some(want.as_str())
        );
        let keyed = RateLimit {
            key: vec![KeyPart::Method],
            ..limit
        };
        assert!(Selector::build(&keyed).fixed.is_none());
    }
}
