//! `GatewayConfig`: data-plane settings referenced from a GatewayClass.
//!
//! A GatewayClass names a GatewayConfig in `spec.parametersRef`
//! (`group: tollgate.dev`, `kind: GatewayConfig`, with a namespace); every
//! Gateway of that class gets these limits, timeouts and retry budget. Absent fields keep
//! Tollgate's defaults, which are safe for the open internet.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Data-plane settings shared by every Gateway of a GatewayClass.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "GatewayConfig",
    plural = "gatewayconfigs",
    shortname = "gwconfig",
    namespaced,
    doc = "Data-plane settings (connection limits and timeouts) for the Gateways of a GatewayClass that references it in parametersRef."
)]
#[serde(rename_all = "camelCase")]
pub struct GatewayConfigSpec {
    /// Seconds a client has to send a complete request head before the
    /// connection is closed (protection against slow clients). Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_header_timeout_seconds: Option<u32>,
    /// Seconds a keep-alive connection may stay idle between requests.
    /// Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<u32>,
    /// Largest request head (request line and headers) accepted, in bytes;
    /// larger requests get 431. Default 65536.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_header_bytes: Option<u32>,
    /// Most request header lines accepted; more get 431. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_request_headers: Option<u32>,
    /// Most concurrent client connections per listening socket; further
    /// connections wait to be accepted. 0 or absent means unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Seconds allowed to open a connection to a backend before the request
    /// fails with 503. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_connect_timeout_seconds: Option<u32>,
    /// Seconds in-flight requests may take to finish when the data plane
    /// shuts down. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_timeout_seconds: Option<u32>,
    /// Accept percent-encoded `/` and `\` (`%2F`, `%5C`) in request paths.
    /// Off by default: such paths get 400, because backends decode them
    /// differently and that difference is a classic authorization bypass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_encoded_slashes: Option<bool>,
    /// Seconds the gateway waits on a request body at a stretch; also the
    /// credit a slow body starts with (see requestBodyMinBytesPerSecond).
    /// A body that runs out gets 408 and the connection is closed, so a
    /// client trickling its upload cannot hold connections open. 0 means no
    /// limit. Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_timeout_seconds: Option<u32>,
    /// Slowest average rate, in bytes per second, a request body may
    /// arrive at: waiting uses up the credit, every byte received earns
    /// back 1/rate seconds (never more than requestBodyTimeoutSeconds). 0
    /// makes requestBodyTimeoutSeconds a plain gap between reads. Default
    /// 500.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body_min_bytes_per_second: Option<u32>,
    /// Most concurrent requests (streams) on one client HTTP/2 connection,
    /// announced to the client in SETTINGS. Each may hold a connection to a
    /// backend, so this bounds how many one client connection opens;
    /// clients queue further requests, and streams opened past the limit
    /// are refused with REFUSED_STREAM, which clients may safely retry.
    /// 0 or absent means 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrent_streams: Option<u32>,
    /// Seconds a relayed WebSocket may carry no byte in either direction
    /// before the gateway closes it, so dead tunnels do not hold
    /// connections forever. 0 means no limit. Default 3600 (one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tunnel_idle_timeout_seconds: Option<u32>,
    /// Traces, access log and recorded headers for this class's Gateways
    /// (a Gateway's own GatewayConfig overrides them field by field).
    /// Where the telemetry goes (the OTLP collector) is the data plane's
    /// OTEL_* environment; this says what is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telemetry: Option<TelemetryConfig>,
    /// How much HTTPRoute retries (`rules[].retry`) may add to the load on
    /// backends, and how much request body is kept to send again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryConfig>,
    /// TLS defaults for every HTTPS listener of this class's Gateways. A
    /// listener's own `tls.options` (keys `tollgate.dev/min-tls-version`,
    /// `tollgate.dev/max-tls-version`, `tollgate.dev/cipher-suites`,
    /// `tollgate.dev/curves`, `tollgate.dev/alpn`) replace them one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Which address is the client's, when proxies or load balancers sit
    /// in front of the Gateway. Default: the TCP peer (or the PROXY
    /// protocol source, on Gateways annotated
    /// `tollgate.dev/proxy-protocol: "true"`); `X-Forwarded-For` is then
    /// ignored, so a client cannot choose its own address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<ClientAddressConfig>,
    /// Where global rate limits (RateLimitPolicy `scope: Global`) keep
    /// their counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
    /// How the controller provisions each Gateway's data plane
    /// (Deployment, Service, PodDisruptionBudget, autoscaler). A Gateway's
    /// `spec.infrastructure.parametersRef` may name a GatewayConfig in its
    /// own namespace whose `kubernetes` fields override these one by one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kubernetes: Option<crate::KubernetesConfig>,
}

/// Rate-limit settings of this class's Gateways.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitConfig {
    /// The Redis every data-plane replica shares counters in. Without it,
    /// global limits follow their failureMode (local limits still apply).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis: Option<RedisConfig>,
}

/// How data planes reach Redis: a standalone server (or a managed endpoint
/// that looks like one), a master found through Redis Sentinel, or a Redis
/// Cluster, over `redis://` or TLS (`rediss://`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RedisConfig {
    /// `redis://host:port[/db]`, or `rediss://` for TLS; for a cluster,
    /// one seed node; for Sentinel, one sentinel (`redis://host:26379`).
    pub url: String,
    /// More cluster seed nodes, or more sentinels (asked in order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
    /// `Standalone` (default), `Sentinel` (the sentinels in url and urls
    /// name the master of masterName) or `Cluster`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// Sentinel mode (required there): the name the sentinels monitor the
    /// master under (`sentinel monitor <name> ...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master_name: Option<String>,
    /// Sentinel mode: the ACL user name for the sentinels, when they
    /// require one (username and passwordSecretRef are for the master).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_username: Option<String>,
    /// Sentinel mode: the sentinels' own password (`requirepass` in
    /// their configuration), key `password` of this Secret. Default:
    /// none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sentinel_password_secret_ref: Option<crate::LocalObjectRef>,
    /// For `rediss://`: the CA bundle (key `ca.crt` of a ConfigMap, or of a
    /// Secret with `kind: Secret`) trusted instead of the system roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate_ref: Option<crate::LocalObjectRef>,
    /// ACL user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The password: key `password` of this Secret, in the GatewayConfig's
    /// namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_ref: Option<crate::LocalObjectRef>,
    /// Connections each data-plane replica keeps open. Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 64))]
    pub pool_size: Option<u32>,
    /// Timeout of one Redis call (a Gateway API duration); a slower Redis
    /// counts as down. Default 50ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Prefix of every key. Default `tollgate:rl:`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_prefix: Option<String>,
}

/// The trusted proxies in front of a Gateway. Authorization by client
/// CIDR, rate-limit keys and access logs use the address decided here.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientAddressConfig {
    /// Number of proxies in front that each append to `X-Forwarded-For`:
    /// the address that many places from the right is the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 16))]
    pub trusted_hops: Option<u32>,
    /// Address ranges (CIDR) of trusted proxies: `X-Forwarded-For` is
    /// walked from the right past every trusted address, starting at the
    /// peer, and the first untrusted one is the client. Wins over
    /// trustedHops when both are set.
    #[serde(
        default,
        rename = "trustedCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 64))]
    pub trusted_cidrs: Option<Vec<String>>,
}

/// The retry budget of this class's Gateways (a Gateway's own
/// GatewayConfig overrides it field by field), and the body kept for
/// retries.
///
/// Each route rule of each data-plane replica may retry at most
/// budgetPercent of the requests it received over the last
/// budgetIntervalSeconds, plus minRetriesPerSecond for each second of that
/// interval. So during an outage retries add at most budgetPercent to the
/// backend's load instead of multiplying it by the rule's attempts; a
/// retry the budget refuses returns the failed attempt's answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfig {
    /// Retries allowed as a percentage of recent requests, 0 to 100.
    /// Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100))]
    pub budget_percent: Option<u32>,
    /// Seconds over which requests and retries are counted, 1 to 3600.
    /// Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub budget_interval_seconds: Option<u32>,
    /// Retries allowed per second on top of the percentage, so that rare
    /// requests can still be retried. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_retries_per_second: Option<u32>,
    /// Largest request body, in bytes, kept in memory so that the request
    /// can be retried. A larger body, or one whose length is not announced
    /// (chunked), is sent once and never retried. Default 65536.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_buffered_body_bytes: Option<u32>,
}

/// TLS defaults of the HTTPS listeners of a class's Gateways.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsConfig {
    /// Oldest TLS version accepted: "1.2" (default) or "1.3".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// Newest TLS version accepted: "1.2" or "1.3" (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_version: Option<String>,
    /// Cipher suites in preference order, by IANA-style name:
    /// TLS13_AES_128_GCM_SHA256, TLS13_AES_256_GCM_SHA384,
    /// TLS13_CHACHA20_POLY1305_SHA256, and the TLS 1.2 suites
    /// TLS_ECDHE_{ECDSA,RSA}_WITH_{AES_128_GCM_SHA256,AES_256_GCM_SHA384,CHACHA20_POLY1305_SHA256}.
    /// Name at least one suite for each version allowed. Default: all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cipher_suites: Option<Vec<String>>,
    /// Key-exchange groups in preference order: X25519MLKEM768, X25519,
    /// secp256r1 (P-256), secp384r1 (P-384). Default: X25519, P-256,
    /// P-384, X25519MLKEM768.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub curves: Option<Vec<String>>,
    /// ALPN protocols offered, in preference order: "h2", "http/1.1".
    /// Default: both, HTTP/2 first. A client that offers no ALPN is served
    /// HTTP/1.1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<Vec<String>>,
    /// Whether returning clients may resume a session (TLS 1.3 tickets,
    /// TLS 1.2 tickets and session IDs) instead of a full handshake.
    /// Default: true. Turning it off saves the tickets' cost on every full
    /// handshake, for clients that never resume; listeners with client
    /// certificate validation never resume either way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_resumption: Option<bool>,
    /// The header that tells backends about a client certificate the
    /// Gateway verified (mutual TLS, `spec.tls.frontend` of the Gateway).
    /// Any copy a client sends is removed from every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate_header: Option<ClientCertificateHeaderConfig>,
}

/// The verified-client-certificate header, in the manner of Envoy's
/// `x-forwarded-client-cert`: `Hash=<sha256 hex>;Subject="<DN>";URI=<san>;DNS=<san>`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificateHeaderConfig {
    /// Header name; default `x-forwarded-client-cert`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    pub name: Option<String>,
    /// Fields written, in order: `Hash`, `Subject`, `URI`, `DNS`. Default:
    /// all four.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4))]
    pub fields: Option<Vec<String>>,
}

/// What the Gateways of a class record about each request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TelemetryConfig {
    /// Spans of this Gateway's requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingConfig>,
    /// The access log: one JSON line per request on the data plane's
    /// standard output, and optionally an OTLP log record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_log: Option<AccessLogConfig>,
    /// Request headers recorded as span attributes
    /// (`http.request.header.<name>`) and access-log fields. Values of
    /// Authorization, Proxy-Authorization and Cookie are replaced by
    /// `REDACTED`. At most 32 names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub request_headers: Option<Vec<String>>,
    /// Response headers recorded likewise (`Set-Cookie` is redacted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    pub response_headers: Option<Vec<String>>,
    /// Record the query string (`url.query`) on spans and in the access
    /// log. Off by default: query strings often carry tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_query: Option<bool>,
}

/// Tracing of a Gateway's requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TracingConfig {
    /// Whether requests are traced at all. Default true (spans are exported
    /// only where the data plane has an OTLP endpoint configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Share of new traces sampled, 0 to 1, replacing OTEL_TRACES_SAMPLER_ARG
    /// for this Gateway; a request whose client sent a sampled trace
    /// context follows the client's decision. An HTTPRoute may set its own
    /// with the annotation `tollgate.dev/tracing-sampling-ratio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sampling_ratio: Option<f64>,
    /// Whether a client's trace decision is followed, replacing the kind
    /// OTEL_TRACES_SAMPLER names for this Gateway (and its routes'
    /// ratios): `ParentBasedTraceIdRatio` follows a client that sent a
    /// trace context, sampled or not, and samples new traces at the
    /// ratio; `TraceIdRatio` samples every trace by its id at the ratio,
    /// whatever the client decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampler: Option<TracingSampler>,
}

/// How a Gateway's traces are sampled (OpenTelemetry's sampler names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum TracingSampler {
    /// `parentbased_traceidratio`: follow the client's decision.
    ParentBasedTraceIdRatio,
    /// `traceidratio`: decide by the trace id alone.
    TraceIdRatio,
}

/// The access log of a Gateway.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessLogConfig {
    /// Whether requests are logged. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Share of requests logged, 0 to 1. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub sample_ratio: Option<f64>,
    /// Also send each line as an OTLP log record (body: the JSON line;
    /// attributes under semantic-convention names), where OTLP logs are
    /// configured. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otlp: Option<bool>,
}
