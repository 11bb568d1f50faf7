//! What one snapshot says about telemetry, prepared by `Runtime::build`:
//! the Gateway's label, its sampler, whether and how often it logs, which
//! headers it records.

use super::bound::BoundCache;
use super::labels::shared;
use super::sampling::RatioSampler;
use http::HeaderName;
use opentelemetry::Value;
use std::sync::Arc;
use tollgate_snapshot::{PER_MILLION, TelemetrySettings};

/// Header values recorded as `REDACTED`: credentials never reach spans or
/// logs, even when an operator lists them.
const SENSITIVE: [&str; 5] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// One runtime's telemetry settings, ready for the request path.
#[derive(Debug)]
pub(crate) struct RuntimeTelemetry {
    /// `tollgate.gateway`.
    pub(crate) gateway: Value,
    /// Whether requests are traced.
    pub(crate) tracing: bool,
    /// The Gateway's sampler; `None`: the environment's.
    pub(crate) sampler: Option<RatioSampler>,
    /// Whether this Gateway's samplers (its own, its routes', the
    /// environment's ratio) follow a client's decision; `None`: as the
    /// environment's sampler does.
    pub(crate) parent_based: Option<bool>,
    /// Share of requests logged, per million; 0 when the log is off.
    pub(crate) access_log_per_million: u32,
    /// Also send access-log records over OTLP.
    pub(crate) access_log_otlp: bool,
    /// Request and response headers recorded.
    pub(crate) request_headers: Arc<[HeaderName]>,
    pub(crate) response_headers: Arc<[HeaderName]>,
    /// Record `url.query`.
    pub(crate) record_query: bool,
    /// Instruments bound to the series this runtime's requests record.
    pub(crate) bound: BoundCache,
}

impl RuntimeTelemetry {
    /// Prepares `settings` of Gateway `gateway`.
    pub(crate) fn build(gateway: &str, settings: &TelemetrySettings) -> RuntimeTelemetry {
        let names = |list: &[String]| -> Arc<[HeaderName]> {
            list.iter()
                .filter_map(|n| HeaderName::from_bytes(n.as_bytes()).ok())
                .collect()
        };
        RuntimeTelemetry {
            gateway: shared(gateway.to_string()),
            tracing: settings.tracing,
            sampler: settings.sampling_per_million.map(RatioSampler::per_million),
            parent_based: settings.sampling_parent_based,
            access_log_per_million: if settings.access_log {
                settings.access_log_per_million.min(PER_MILLION)
            } else {
                0
            },
            access_log_otlp: settings.access_log_otlp,
            request_headers: names(&settings.request_headers),
            response_headers: names(&settings.response_headers),
            record_query: settings.record_query,
            bound: BoundCache::default(),
        }
    }

    /// Whether this request is logged: the configured share, drawn at
    /// random.
    pub(crate) fn logs_this_request(&self) -> bool {
        match self.access_log_per_million {
            0 => false,
            PER_MILLION => true,
            share => fastrand::u32(0..PER_MILLION) < share,
        }
    }
}

/// The value to record for header `name`: `REDACTED` for credentials,
/// otherwise the values joined with `, ` (lossy for non-UTF-8 bytes).
pub(crate) fn recorded_value(name: &HeaderName, headers: &http::HeaderMap) -> Option<String> {
    let mut values = headers.get_all(name).iter().peekable();
    values.peek()?;
    if SENSITIVE.contains(&name.as_str()) {
        return Some("REDACTED".to_string());
    }
    let joined: Vec<String> = values
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect();
    Some(joined.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    /// Listed credentials are redacted; other headers recorded as sent;
    /// absent headers not at all.
    #[test]
    fn recorded_values() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "authorization",
            http::HeaderValue::from_static("Bearer secret"),
        );
        headers.append("x-id", http::HeaderValue::from_static("a"));
        headers.append("x-id", http::HeaderValue::from_static("b"));
        let value = |n: &'static str| recorded_value(&HeaderName::from_static(n), &headers);
        assert_eq!(value("authorization").as_deref(), Some("REDACTED"));
        assert_eq!(value("x-id").as_deref(), Some("a, b"));
        assert_eq!(value("x-missing"), None);
    }

    /// The log share is honoured at its ends exactly.
    #[test]
    fn log_share() {
        let mut settings = TelemetrySettings::default();
        assert!(!RuntimeTelemetry::build("ns/gw", &settings).logs_this_request());
        settings.access_log = true;
        assert!(RuntimeTelemetry::build("ns/gw", &settings).logs_this_request());
        settings.access_log_per_million = 0;
        assert!(!RuntimeTelemetry::build("ns/gw", &settings).logs_this_request());
    }
}
