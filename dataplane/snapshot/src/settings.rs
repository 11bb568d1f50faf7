//! Data-plane settings: connection limits, timeouts and the retry budget.
//!
//! They come from the `GatewayConfig` referenced by the GatewayClass
//! `parametersRef`; every field has a safe default so a Gateway without a
//! GatewayConfig is still protected against slow or oversized clients.

use serde::{Deserialize, Serialize};

/// Limits and timeouts applied by every listener of the Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    /// Time a client has to send the complete request head (slowloris guard).
    pub request_header_timeout_ms: u64,
    /// A keep-alive connection with no request for this long is closed.
    pub idle_timeout_ms: u64,
    /// Largest accepted request head (request line plus headers), in bytes.
    pub max_request_header_bytes: u32,
    /// Most request header lines accepted.
    pub max_request_headers: u32,
    /// Most concurrent downstream connections per socket; 0 means unlimited.
    pub max_connections: u32,
    /// Time allowed to open an upstream connection before answering 503.
    pub upstream_connect_timeout_ms: u64,
    /// How long in-flight requests may finish after shutdown begins.
    pub drain_timeout_ms: u64,
    /// Accept `%2F` and `%5C` in request paths instead of answering 400.
    pub allow_encoded_slashes: bool,
    /// Longest the gateway waits on a request body at a stretch, and the
    /// credit a slow body starts with (see
    /// [`Settings::request_body_min_bytes_per_second`]); a body out of
    /// credit is answered 408. 0 means no limit.
    pub request_body_timeout_ms: u64,
    /// Slowest average rate a request body may arrive at: waiting on the
    /// body uses up credit, and every byte received earns back
    /// `1 / request_body_min_bytes_per_second` seconds, never more than
    /// `request_body_timeout_ms`. 0 makes the timeout a plain gap between
    /// reads.
    pub request_body_min_bytes_per_second: u32,
    /// Most concurrent streams (requests) on one downstream HTTP/2
    /// connection, announced in its SETTINGS. Each stream may hold one
    /// upstream connection, so this bounds how many one client connection
    /// can open; streams past it are refused (`REFUSED_STREAM`, safe to
    /// retry). 0 means the default.
    pub max_concurrent_streams: u32,
    /// A relayed upgrade (WebSocket tunnel) with no byte in either
    /// direction for this long is closed; `None` means
    /// [`DEFAULT_TUNNEL_IDLE_TIMEOUT_MS`], 0 no limit. Optional so that
    /// snapshots of Gateways that never set it stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tunnel_idle_timeout_ms: Option<u64>,
    /// What is recorded about each request.
    pub telemetry: TelemetrySettings,
    /// The retry budget and the body buffered for retries.
    pub retry: RetrySettings,
    /// The header that carries a verified client certificate's details
    /// upstream; removed from every request a client sends.
    #[serde(skip_serializing_if = "crate::ClientCertHeader::is_default")]
    pub client_cert_header: crate::ClientCertHeader,
    /// How the client address is decided (trusted proxies in front).
    #[serde(skip_serializing_if = "ClientAddress::is_default")]
    pub client_address: ClientAddress,
    /// Where global rate-limit counters live; `None`: global limits fail
    /// as their policy says, local limits still apply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis: Option<crate::RedisSettings>,
}

/// How the data plane decides a request's client address, which
/// authorization by CIDR, rate-limit keys, access logs and spans use.
///
/// With nothing trusted, the client is the TCP peer (or the PROXY protocol
/// source) and `X-Forwarded-For` is ignored: a client cannot pick its own
/// address. With `trusted_hops: n`, the n-th address from the right of
/// `X-Forwarded-For` is the client (the proxies in front each append one);
/// with `trusted_cidrs`, addresses are walked from the right past every
/// trusted proxy, starting at the peer, and the first untrusted one is the
/// client. Both may be set: the CIDRs then apply.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientAddress {
    /// Number of proxies in front that append to `X-Forwarded-For`.
    #[serde(skip_serializing_if = "is_zero")]
    pub trusted_hops: u32,
    /// Address ranges of trusted proxies (CIDR).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_cidrs: Vec<String>,
}

impl ClientAddress {
    /// Whether nothing is trusted (the peer is the client).
    pub fn is_default(&self) -> bool {
        *self == ClientAddress::default()
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// How much retrying the Gateway's data plane may do, whatever the rules ask.
///
/// A retry budget in the manner of linkerd and Finagle: over the last
/// `budget_interval_ms`, each rule may retry at most `budget_percent` of the
/// requests it received, plus `min_retries_per_second` for every second of
/// the interval so that rare requests can still be retried. The budget is
/// per rule and per data-plane replica: one failing backend cannot use up
/// another route's retries, and a backend in trouble sees at most
/// `1 + budget_percent/100` times its normal load from retries, instead of
/// `1 + attempts` times, however long the outage lasts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RetrySettings {
    /// Retries allowed as a percentage of recent requests, 0..=100.
    pub budget_percent: u32,
    /// Window over which requests and retries are counted, in milliseconds
    /// (at least 1000).
    pub budget_interval_ms: u64,
    /// Retries allowed per second of the window on top of the percentage.
    pub min_retries_per_second: u32,
    /// Largest request body kept in memory so it can be sent again; a
    /// request whose body is larger, or whose length is not known in
    /// advance, is sent once and never retried.
    pub max_buffered_body_bytes: u32,
}

impl Default for RetrySettings {
    /// The Gateway API's `BackendTrafficPolicy` retry-constraint defaults
    /// (20% over 10 s, at least 10 per second: linkerd's too) and 64 KiB of
    /// body, which covers typical JSON API calls without letting retries
    /// hold much memory per request.
    fn default() -> Self {
        RetrySettings {
            budget_percent: 20,
            budget_interval_ms: 10_000,
            min_retries_per_second: 10,
            max_buffered_body_bytes: 64 * 1024,
        }
    }
}

/// One in a million: ratios travel as parts per million so settings stay
/// comparable and hashable.
pub const PER_MILLION: u32 = 1_000_000;

/// Traces, access log and recorded headers of a Gateway.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TelemetrySettings {
    /// Whether requests are traced (spans go out only where the data plane
    /// has OTLP configured).
    pub tracing: bool,
    /// Share of new traces sampled, per million; `None`: the data plane's
    /// `OTEL_TRACES_SAMPLER_ARG`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_per_million: Option<u32>,
    /// Whether a client's trace decision is followed (`true`:
    /// parent-based); `None`: the kind `OTEL_TRACES_SAMPLER` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sampling_parent_based: Option<bool>,
    /// Whether requests are written to the access log.
    pub access_log: bool,
    /// Share of requests logged, per million.
    pub access_log_per_million: u32,
    /// Also send access-log lines as OTLP log records.
    pub access_log_otlp: bool,
    /// Request headers recorded (lowercase).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_headers: Vec<String>,
    /// Response headers recorded (lowercase).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub response_headers: Vec<String>,
    /// Record the query string on spans and in the access log.
    pub record_query: bool,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        TelemetrySettings {
            tracing: true,
            sampling_per_million: None,
            sampling_parent_based: None,
            access_log: false,
            access_log_per_million: PER_MILLION,
            access_log_otlp: false,
            request_headers: Vec::new(),
            response_headers: Vec::new(),
            record_query: false,
        }
    }
}

/// The [`Settings::max_concurrent_streams`] used when it is 0: Envoy's
/// recommended value for edge proxies, below nginx's 128 and hyper's 200.
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 100;

/// The tunnel idle timeout when a Gateway sets none: one hour, as a
/// WebSocket that exchanges nothing (not even pings) for that long is dead.
pub const DEFAULT_TUNNEL_IDLE_TIMEOUT_MS: u64 = 3_600_000;

impl Settings {
    /// How long a relayed upgrade may go without a byte either way before
    /// it is closed; `None` when it may idle forever.
    pub fn tunnel_idle_timeout(&self) -> Option<std::time::Duration> {
        match self
            .tunnel_idle_timeout_ms
            .unwrap_or(DEFAULT_TUNNEL_IDLE_TIMEOUT_MS)
        {
            0 => None,
            ms => Some(std::time::Duration::from_millis(ms)),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            request_header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_request_header_bytes: 64 * 1024,
            max_request_headers: 100,
            max_connections: 0,
            upstream_connect_timeout_ms: 5_000,
            drain_timeout_ms: 5_000,
            allow_encoded_slashes: false,
            request_body_timeout_ms: 30_000,
            request_body_min_bytes_per_second: 500,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            tunnel_idle_timeout_ms: None,
            telemetry: TelemetrySettings::default(),
            retry: RetrySettings::default(),
            client_cert_header: crate::ClientCertHeader::default(),
            client_address: ClientAddress::default(),
            redis: None,
        }
    }
}
