//! The IETF rate-limit headers (draft-ietf-httpapi-ratelimit-headers):
//! `RateLimit-Policy: "<name>";q=<quota>;w=<window s>` names each limit,
//! `RateLimit: "<name>";r=<remaining>;t=<seconds to full>` says where the
//! caller stands, and a refusal carries `Retry-After` in seconds.

use super::gcra::Decision;
use http::{HeaderMap, HeaderName, HeaderValue};

const POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
const STATE: HeaderName = HeaderName::from_static("ratelimit");

/// One limit's part of the headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Standing<'a> {
    pub(crate) name: &'a str,
    pub(crate) requests: u64,
    pub(crate) interval_ms: u64,
    pub(crate) decision: Decision,
}

/// Seconds, rounded up (a client told 0 would retry at once).
pub(crate) fn ceil_secs(micros: u64) -> u64 {
    micros.div_ceil(1_000_000)
}

/// Appends both headers for `standings` to `headers`.
pub(crate) fn write(headers: &mut HeaderMap, standings: &[Standing<'_>]) {
    if standings.is_empty() {
        return;
    }
    let quote = |name: &str| -> String {
        name.chars()
            .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
            .collect()
    };
    let policy: Vec<String> = standings
        .iter()
        .map(|s| {
            format!(
                "\"{}\";q={};w={}",
                quote(s.name),
                s.requests,
                s.interval_ms.div_ceil(1000).max(1)
            )
        })
        .collect();
    let state: Vec<String> = standings
        .iter()
        .map(|s| {
            format!(
                "\"{}\";r={};t={}",
                quote(s.name),
                s.decision.remaining,
                ceil_secs(s.decision.reset)
            )
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&policy.join(", ")) {
        headers.insert(POLICY, value);
    }
    if let Ok(value) = HeaderValue::from_str(&state.join(", ")) {
        headers.insert(STATE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_headers_name_every_limit() {
        let d = |remaining, reset| Decision {
            allowed: true,
            tat: 0,
            remaining,
            retry_after: 0,
            reset,
        };
        let mut headers = HeaderMap::new();
        write(
            &mut headers,
            &[
                Standing {
                    name: "per-client",
                    requests: 100,
                    interval_ms: 10_000,
                    decision: d(42, 5_800_001),
                },
                Standing {
                    name: "x\"y",
                    requests: 5,
                    interval_ms: 500,
                    decision: d(0, 1),
                },
            ],
        );
        assert_eq!(headers[POLICY], "\"per-client\";q=100;w=10, \"xy\";q=5;w=1");
        assert_eq!(headers[STATE], "\"per-client\";r=42;t=6, \"xy\";r=0;t=1");
    }
}
