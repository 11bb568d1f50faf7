//! The routing snapshot: the one contract between the controller and a data plane.
//!
//! `compile` in the controller turns Kubernetes objects into one [`Snapshot`] per
//! Gateway; the data plane turns a snapshot into its runtime (routing index,
//! filter chains, upstream pools) and swaps it in whole. The snapshot is fully
//! resolved: every route knows its backends' endpoint addresses, every filter
//! is plain data, and nothing is looked up by name at request time.
//!
//! The crate is plain serde data with [`Snapshot::validate`]; it has no
//! Kubernetes, hyper or tokio dependency so the data plane never links the
//! Kubernetes client. Every element carries the name of the object it came
//! from (`httproute/<ns>/<name>/rule/<i>`), which logs and metrics use.

mod auth;
mod backend;
mod backend_tls;
mod client_auth;
mod filter;
mod hash;
mod listener;
mod rate_limit;
mod route;
mod schema;
mod settings;
mod tls;
mod tls_route;
mod validate;

pub use auth::{
    ApiKey, ApiKeys, AuthConfig, Authorization, AuthzAction, AuthzRule, BasicAuth, CallTarget,
    ClaimMatch, ClaimToHeader, CredentialSource, ExtAuth, ExtAuthProtocol, Introspection,
    JwksSource, Jwt, JwtPrincipal, JwtProvider, Oidc,
};
pub use backend::{Backend, BackendProtocol, Endpoint};
pub use backend_tls::{BackendTls, ClientCertificate, SubjectAltName};
pub use client_auth::{
    ClientCertField, ClientCertHeader, ClientValidation, ClientValidationMode,
    DEFAULT_CLIENT_CERT_HEADER,
};
pub use filter::{
    Cors, Filter, Header, HeaderModifier, Mirror, PathModifier, Redirect, UrlRewrite,
};
pub use listener::{HostMatch, Listener, Socket, VirtualHost};
pub use rate_limit::{
    Cost, KeyPart, LimitCondition, LimitHeader, RateLimit, RateLimitHeaders, RateLimitScope,
    RateLimits, RedisMode, RedisSettings,
};
pub use route::{
    BackendRef, DEFAULT_RETRY_ATTEMPTS, DEFAULT_RETRY_BACKOFF_MS, HeaderMatch, MAX_RETRY_ATTEMPTS,
    PathMatch, QueryMatch, Retry, Route, RouteMatch, StringMatch, Timeouts,
};
pub use schema::{
    SCHEMA_MAJOR, SCHEMA_MINOR, SchemaError, SchemaVersion, check_schema, schema_version,
};
pub use settings::{
    ClientAddress, DEFAULT_MAX_CONCURRENT_STREAMS, DEFAULT_TUNNEL_IDLE_TIMEOUT_MS, PER_MILLION,
    RetrySettings, Settings, TelemetrySettings,
};
pub use tls::{
    ALPN, CIPHER_SUITES, Certificate, KX_GROUPS, ListenerTls, Redacted, TlsOptions, TlsVersion,
    is_tls13_suite,
};
pub use tls_route::{SniBackend, SniRoute, TlsMode, TlsRoutes};
pub use validate::ValidationError;

use serde::{Deserialize, Serialize};

/// Longest user regular expression accepted, in bytes of pattern text.
///
/// The controller refuses longer patterns with a status condition and the
/// data plane refuses to build them; both use these limits so a pattern the
/// controller accepted never fails in the data plane.
pub const REGEX_MAX_PATTERN_LEN: usize = 1024;

/// Largest compiled size of one user regular expression (`RegexBuilder::size_limit`).
pub const REGEX_SIZE_LIMIT: usize = 256 * 1024;

/// Wraps a user pattern so it must match the whole input, as the Gateway API
/// asks for path, header and query regular expressions.
pub fn anchored_regex(pattern: &str) -> String {
    format!("^(?:{pattern})$")
}

/// Everything one Gateway's data plane needs to serve traffic.
///
/// Indices (`RouteMatch::route`, `BackendRef::backend`, `Mirror::backend`)
/// point into [`Snapshot::routes`] and [`Snapshot::backends`]; sharing them
/// keeps a route that is reachable from several hostnames stored once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    /// The schema this snapshot is written in, `MAJOR.MINOR` (see
    /// [`check_schema`]); stamped by the publisher, empty before. Not part
    /// of [`Snapshot::content_hash`]: it describes the wire form, not the
    /// configuration.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub schema_version: String,
    /// Monotonic version assigned by the publisher; 0 before publication.
    /// It is not part of [`Snapshot::content_hash`].
    #[serde(default)]
    pub version: u64,
    /// The W3C `traceparent` of the controller's compile that produced
    /// this snapshot, when that compile was traced: a data plane's apply
    /// span joins its trace, so one configuration change is one trace
    /// across the controller and every data plane. Not part of
    /// [`Snapshot::content_hash`]: it says when, not what.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    /// The Gateway this snapshot belongs to, as `namespace/name`.
    pub gateway: String,
    /// Data-plane settings (limits and timeouts) from the GatewayConfig.
    #[serde(default)]
    pub settings: Settings,
    /// Listening sockets: one per distinct bind address and port.
    #[serde(default)]
    pub sockets: Vec<Socket>,
    /// Route rules, referenced by index from virtual hosts.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// Resolved backends (a Service port with its ready endpoints).
    #[serde(default)]
    pub backends: Vec<Backend>,
    /// The client certificate presented to TLS backends (the Gateway's
    /// `spec.tls.backend.clientCertificateRef`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend_client_certificate: Option<ClientCertificate>,
    /// Effective authentication configurations, shared by the rules whose
    /// `Route::auth` points at them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub auth: Vec<AuthConfig>,
    /// Effective rate limits, shared by the rules whose
    /// `Route::rate_limit` points at them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimits>,
}

/// Element counts, served by the admin `/snapshot` endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Number of listening sockets.
    pub sockets: usize,
    /// Number of Gateway listeners across all sockets.
    pub listeners: usize,
    /// Number of virtual hosts across all listeners.
    pub virtual_hosts: usize,
    /// Number of route matches across all virtual hosts.
    pub matches: usize,
    /// Number of route rules.
    pub routes: usize,
    /// Number of backends.
    pub backends: usize,
    /// Number of endpoints across all backends.
    pub endpoints: usize,
}

impl Snapshot {
    /// An empty snapshot for `gateway` (`namespace/name`): no sockets, no routes.
    pub fn empty(gateway: impl Into<String>) -> Self {
        Snapshot {
            gateway: gateway.into(),
            ..Snapshot::default()
        }
    }

    /// A stable hex SHA-256 of the content, ignoring `version`, so the
    /// publisher can tell whether a recompile changed anything.
    pub fn content_hash(&self) -> String {
        hash::content_hash(self).0
    }

    /// [`content_hash`](Self::content_hash), and the size in bytes of the
    /// JSON it hashed (what the snapshot costs on the wire, give or take
    /// its version number).
    pub fn content_hash_and_size(&self) -> (String, u64) {
        hash::content_hash(self)
    }

    /// A copy safe to show: every private key replaced by a placeholder
    /// naming its size. The admin endpoints serve this, and anything that
    /// prints a whole snapshot should print this.
    pub fn redacted(&self) -> Snapshot {
        let mut copy = self.clone();
        let listeners = copy.sockets.iter_mut().flat_map(|s| &mut s.listeners);
        for tls in listeners.filter_map(|l| l.tls.as_mut()) {
            for certificate in &mut tls.certificates {
                certificate.key_pem = certificate.key_pem.placeholder();
            }
        }
        if let Some(client) = &mut copy.backend_client_certificate {
            client.private_key = client.private_key.placeholder();
        }
        for auth in &mut copy.auth {
            auth.redact();
        }
        if let Some(redis) = copy.settings.redis.as_mut() {
            if let Some(password) = redis.password.as_mut() {
                *password = password.placeholder();
            }
            if let RedisMode::Sentinel {
                sentinel_password: Some(password),
                ..
            } = &mut redis.mode
            {
                *password = password.placeholder();
            }
        }
        copy
    }

    /// Counts of each element kind.
    pub fn counts(&self) -> Counts {
        let listeners = self.sockets.iter().flat_map(|s| &s.listeners);
        let vhosts = listeners.clone().flat_map(|l| &l.virtual_hosts);
        Counts {
            sockets: self.sockets.len(),
            listeners: listeners.count(),
            virtual_hosts: vhosts.clone().count(),
            matches: vhosts.map(|v| v.matches.len()).sum(),
            routes: self.routes.len(),
            backends: self.backends.len(),
            endpoints: self.backends.iter().map(|b| b.endpoints.len()).sum(),
        }
    }
}
