//! The runtime: a snapshot turned into what the request path needs.
//!
//! `Runtime::build` runs off the request path when a snapshot arrives: it
//! validates the snapshot, indexes each socket's routes, builds every rule's
//! and backend reference's filter chain, parses endpoint addresses and sets
//! up the balancers. The result is immutable apart from balancer cursors and
//! is swapped in whole; a snapshot that fails to build is rejected and the
//! previous runtime keeps serving.

use crate::auth::{AuthStage, BuildContext};
use crate::chain::Chain;
use crate::proxy::ClientAddressRule;
use crate::ratelimit::RateLimitStage;
use crate::relay::SocketRelay;
use crate::router::{RouterError, SocketRouter};
use crate::stage::{Stage, Stages};
use crate::telemetry::{RouteLabels, RuntimeTelemetry, shared};
use crate::tls::{SocketTls, TlsBuildError};
use crate::upstream::{BackendSet, Balancer, Clients, InvalidEndpoint, RetryBudget};
use http::HeaderName;
use opentelemetry::Value;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tollgate_snapshot::{
    DEFAULT_CLIENT_CERT_HEADER, Retry, Route, Settings, Snapshot, Timeouts, ValidationError,
};

/// Why a snapshot could not become a runtime.
#[derive(Debug, Error)]
pub enum BuildError {
    /// The snapshot is structurally invalid.
    #[error("invalid snapshot")]
    Invalid(#[from] ValidationError),
    /// A socket address is not an IP address.
    #[error("socket address {0:?} is not an IP address")]
    SocketAddress(String),
    /// A socket's routes could not be indexed.
    #[error("socket {socket}: routes cannot be indexed")]
    Router {
        /// The socket, `address:bind_port`.
        socket: SocketAddr,
        /// The router's error.
        #[source]
        source: RouterError,
    },
    /// An endpoint address is not an IP address.
    #[error(transparent)]
    Endpoint(#[from] InvalidEndpoint),
    /// A listener's certificates or TLS options could not be loaded.
    #[error("listener TLS cannot be built: {0}")]
    Tls(#[from] TlsBuildError),
}

/// Everything the request path needs for one snapshot.
#[derive(Debug)]
pub struct Runtime {
    snapshot: Snapshot,
    sockets: HashMap<SocketAddr, SocketRuntime>,
    routes: Box<[RouteRuntime]>,
    backends: BackendSet,
    /// `tollgate.backend` of each backend, indexed like `Snapshot::backends`.
    backend_labels: Box<[Value]>,
    telemetry: RuntimeTelemetry,
    /// The client-certificate details header: removed from every request,
    /// set again from a verified client certificate.
    client_cert_header: HeaderName,
    /// Decides each request's client address.
    client_address: ClientAddressRule,
}

/// One socket: its router and the names used in logs and redirects.
#[derive(Debug)]
pub(crate) struct SocketRuntime {
    /// `address:bind_port`, for logs.
    pub(crate) name: String,
    /// The manifest port, for redirects.
    pub(crate) port: u16,
    /// Listener source names, indexed like `Socket::listeners`.
    pub(crate) listeners: Vec<String>,
    /// The same names as `tollgate.listener` values.
    pub(crate) listener_labels: Box<[Value]>,
    /// The routing index.
    pub(crate) router: SocketRouter,
    /// The listeners' TLS; `None` on a plain socket. New handshakes use the
    /// runtime current when they start.
    pub(crate) tls: Option<SocketTls>,
    /// The SNI tables of a socket of TLS listeners (TLSRoutes), which
    /// relays connections instead of serving HTTP; `None` otherwise.
    pub(crate) relay: Option<SocketRelay>,
    /// Connections start with a PROXY protocol header.
    pub(crate) proxy_protocol: bool,
}

/// One route rule with its chain, weighted backends and timeouts.
#[derive(Debug)]
pub(crate) struct RouteRuntime {
    /// Source name, `httproute/<ns>/<name>/rule/<i>`.
    pub(crate) name: Box<str>,
    /// The rule's filters.
    pub(crate) chain: Chain,
    /// Backend references, indexed like `Route::backends`.
    pub(crate) backends: Box<[BackendChoice]>,
    /// Smooth weighted round robin over `backends`.
    pub(crate) balancer: Balancer,
    /// Request and per-try timeouts.
    pub(crate) timeouts: Timeouts,
    /// The rule's retry policy, when it has one.
    pub(crate) retry: Option<RouteRetry>,
    /// Route and rule labels of telemetry.
    pub(crate) labels: RouteLabels,
    /// The rule's own trace sampler, when it sets a ratio.
    pub(crate) sampler: Option<crate::telemetry::RatioSampler>,
    /// The rule's request stages (auth), in order.
    pub(crate) stages: Stages,
    /// Whether the rule is a GRPCRoute's (its errors are gRPC answers).
    pub(crate) grpc: bool,
}

/// A rule's retry policy, with the budget its retries spend.
#[derive(Debug)]
pub(crate) struct RouteRetry {
    /// Codes, attempts and backoff.
    pub(crate) policy: Retry,
    /// Shared by every request of the rule, kept across swaps.
    pub(crate) budget: Arc<RetryBudget>,
    /// Largest request body kept to send again, in bytes.
    pub(crate) max_body: usize,
}

/// One weighted backend reference of a rule.
#[derive(Debug)]
pub(crate) struct BackendChoice {
    /// Index into `Snapshot::backends`; `None` when the reference is invalid.
    pub(crate) backend: Option<usize>,
    /// Filters applied only when this reference is chosen.
    pub(crate) chain: Chain,
}

impl Runtime {
    /// Validates `snapshot` and builds routers, filter chains and backends.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the snapshot is invalid, an address does not
    /// parse, or a socket's routes cannot be indexed; the caller keeps the
    /// previous runtime.
    pub fn build(snapshot: Snapshot, clients: &Clients) -> Result<Runtime, BuildError> {
        snapshot.validate()?;
        let connect_timeout = Duration::from_millis(snapshot.settings.upstream_connect_timeout_ms);
        let backends = BackendSet::build(
            &snapshot.backends,
            clients,
            connect_timeout,
            snapshot.backend_client_certificate.as_ref(),
        )?;
        clients.prune();
        let mut sockets = HashMap::with_capacity(snapshot.sockets.len());
        for socket in &snapshot.sockets {
            let ip: IpAddr = socket
                .address
                .parse()
                .map_err(|_| BuildError::SocketAddress(socket.address.clone()))?;
            let addr = SocketAddr::new(ip, socket.bind_port);
            let router = SocketRouter::build(socket).map_err(|source| BuildError::Router {
                socket: addr,
                source,
            })?;
            let tls = SocketTls::build(socket, &snapshot.settings.client_cert_header)?;
            sockets.insert(
                addr,
                SocketRuntime {
                    name: addr.to_string(),
                    port: socket.port,
                    listeners: socket.listeners.iter().map(|l| l.name.clone()).collect(),
                    listener_labels: socket
                        .listeners
                        .iter()
                        .map(|l| shared(l.name.clone()))
                        .collect(),
                    router,
                    tls,
                    relay: SocketRelay::build(socket),
                    proxy_protocol: socket.proxy_protocol,
                },
            );
        }
        let cx = BuildContext {
            clients: clients.auth(),
            backends: &backends,
        };
        // One stage per effective configuration, shared by its rules.
        let auth: Vec<Arc<dyn Stage>> = snapshot
            .auth
            .iter()
            .map(|config| Arc::new(AuthStage::build(config, &cx)) as Arc<dyn Stage>)
            .collect();
        let global = clients
            .rate_limits()
            .global(snapshot.settings.redis.as_ref());
        let limits: Vec<Arc<dyn Stage>> = snapshot
            .rate_limits
            .iter()
            .map(|config| {
                let stage = RateLimitStage::build(config, clients.rate_limits(), global.clone());
                Arc::new(stage) as Arc<dyn Stage>
            })
            .collect();
        let stages = SharedStages {
            auth: &auth,
            rate_limits: &limits,
        };
        let routes = snapshot
            .routes
            .iter()
            .map(|route| build_route(route, &backends, clients, &snapshot.settings, &stages))
            .collect();
        sockets.shrink_to_fit();
        let backend_labels = snapshot
            .backends
            .iter()
            .map(|b| shared(b.name.clone()))
            .collect();
        let telemetry = RuntimeTelemetry::build(&snapshot.gateway, &snapshot.settings.telemetry);
        let client_cert_header = client_cert_header(&snapshot);
        let client_address = ClientAddressRule::build(&snapshot.settings.client_address);
        Ok(Runtime {
            client_address,
            client_cert_header,
            snapshot,
            sockets,
            routes,
            backends,
            backend_labels,
            telemetry,
        })
    }

    /// A runtime with no sockets and no routes for `gateway` (`ns/name`),
    /// served before the first snapshot arrives.
    pub fn empty(gateway: &str) -> Runtime {
        let snapshot = Snapshot::empty(gateway);
        let telemetry = RuntimeTelemetry::build(gateway, &snapshot.settings.telemetry);
        Runtime {
            client_address: ClientAddressRule::default(),
            client_cert_header: client_cert_header(&snapshot),
            snapshot,
            sockets: HashMap::new(),
            routes: Box::default(),
            backends: BackendSet::default(),
            backend_labels: Box::default(),
            telemetry,
        }
    }

    /// The snapshot this runtime was built from.
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The socket addresses (`address:bind_port`) that should be bound.
    pub fn sockets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.sockets.keys().copied()
    }

    pub(crate) fn socket(&self, local: &SocketAddr) -> Option<&SocketRuntime> {
        self.sockets.get(local)
    }

    pub(crate) fn route(&self, index: usize) -> Option<&RouteRuntime> {
        self.routes.get(index)
    }

    pub(crate) fn backends(&self) -> &BackendSet {
        &self.backends
    }

    /// The `tollgate.backend` value of backend `index`.
    pub(crate) fn backend_label(&self, index: usize) -> Option<&Value> {
        self.backend_labels.get(index)
    }

    /// What this snapshot says about telemetry.
    pub(crate) fn telemetry(&self) -> &RuntimeTelemetry {
        &self.telemetry
    }

    /// The client-certificate details header's name.
    pub(crate) fn client_cert_header(&self) -> &HeaderName {
        &self.client_cert_header
    }

    /// The rule deciding each request's client address.
    pub(crate) fn client_address(&self) -> &ClientAddressRule {
        &self.client_address
    }
}

/// The details header name of `snapshot`; `validate` has checked it is a
/// lowercase token, so the default stands in only for the impossible.
fn client_cert_header(snapshot: &Snapshot) -> HeaderName {
    HeaderName::from_bytes(snapshot.settings.client_cert_header.name.as_bytes())
        .unwrap_or_else(|_| HeaderName::from_static(DEFAULT_CLIENT_CERT_HEADER))
}

/// The stages of a snapshot, shared by index by its rules.
struct SharedStages<'a> {
    auth: &'a [Arc<dyn Stage>],
    rate_limits: &'a [Arc<dyn Stage>],
}

fn build_route(
    route: &Route,
    backends: &BackendSet,
    clients: &Clients,
    settings: &Settings,
    shared: &SharedStages<'_>,
) -> RouteRuntime {
    // The order of the stages, written down once: who the caller is
    // first, then how much they may do.
    let stages: Vec<Arc<dyn Stage>> = [
        route.auth.and_then(|i| shared.auth.get(i)),
        route.rate_limit.and_then(|i| shared.rate_limits.get(i)),
    ]
    .into_iter()
    .flatten()
    .cloned()
    .collect();
    let stages = if stages.is_empty() {
        Stages::default()
    } else {
        Stages::new(stages)
    };
    RouteRuntime {
        name: route.name.as_str().into(),
        chain: Chain::build(&route.name, &route.filters, backends),
        backends: route
            .backends
            .iter()
            .map(|b| BackendChoice {
                backend: b.backend,
                chain: Chain::build(&route.name, &b.filters, backends),
            })
            .collect(),
        balancer: Balancer::new(route.backends.iter().map(|b| b.weight)),
        timeouts: route.timeouts.clone(),
        retry: route.retry.as_ref().map(|policy| RouteRetry {
            policy: policy.clone(),
            budget: clients.retry_budget(&route.name, &settings.retry),
            max_body: usize::try_from(settings.retry.max_buffered_body_bytes).unwrap_or(usize::MAX),
        }),
        labels: RouteLabels::new(&route.name, route.rule_name.as_deref()),
        sampler: route
            .sampling_per_million
            .map(crate::telemetry::RatioSampler::per_million),
        stages,
        grpc: route.grpc,
    }
}
