//! The runtime: a snapshot turned into what the request path needs.
//!
//! `Runtime::build` runs off the request path when a snapshot arrives: it
//! validates the snapshot, indexes each socket's routes, builds every rule's
//! and backend reference's filter chain, parses endpoint addresses and sets
//! up the balancers. The result is immutable apart from balancer cursors and
//! is swapped in whole; a snapshot that fails to build is rejected and the
//! previous runtime keeps serving. Rules and sockets equal to those of the
//! runtime serving are taken over from it rather than built again
//! (`reuse`), so a change costs what it changed.

mod reuse;
mod route;

use crate::fast_hash::FastMap;
use crate::proxy::ClientAddressRule;
use crate::relay::SocketRelay;
use crate::router::{RouterError, SocketRouter};
use crate::telemetry::{RuntimeTelemetry, shared};
use crate::tls::{SocketTls, TlsBuildError};
use crate::upstream::{BackendSet, Clients, InvalidEndpoint};
use http::HeaderName;
use opentelemetry::Value;
use reuse::{Reuse, SharedStages};
pub(crate) use route::{BackendChoice, RouteRetry, RouteRuntime};
use route::{build_route, build_stages};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tollgate_snapshot::{DEFAULT_CLIENT_CERT_HEADER, Snapshot, ValidationError};

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
    /// Shared with whoever handed it over (the in-process publisher), so
    /// a large snapshot is not copied on its way to traffic.
    snapshot: Arc<Snapshot>,
    /// By local address, looked up for every request: a [`FastMap`], as
    /// the addresses come from the snapshot, not from clients.
    sockets: FastMap<SocketAddr, Arc<SocketRuntime>>,
    routes: Box<[Arc<RouteRuntime>]>,
    /// The auth and rate-limit stages the rules share.
    stages: SharedStages,
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

impl Runtime {
    /// Validates `snapshot` and builds routers, filter chains and backends.
    ///
    /// # Errors
    ///
    /// [`BuildError`] when the snapshot is invalid, an address does not
    /// parse, or a socket's routes cannot be indexed; the caller keeps the
    /// previous runtime.
    pub fn build(snapshot: Snapshot, clients: &Clients) -> Result<Runtime, BuildError> {
        Self::build_with(Arc::new(snapshot), clients, &Reuse::none())
    }

    /// [`Runtime::build`], taking over from `previous` (the runtime
    /// serving) every rule and socket whose inputs did not change.
    ///
    /// # Guarantees
    ///
    /// Serves exactly as `Runtime::build(snapshot, clients)` would, except
    /// that reused rules keep their balancer positions.
    ///
    /// # Errors
    ///
    /// As [`Runtime::build`].
    pub fn build_from(
        snapshot: Arc<Snapshot>,
        clients: &Clients,
        previous: &Runtime,
    ) -> Result<Runtime, BuildError> {
        let sockets = previous
            .snapshot
            .sockets
            .iter()
            .filter_map(|s| {
                let ip: IpAddr = s.address.parse().ok()?;
                let built = previous.sockets.get(&SocketAddr::new(ip, s.bind_port))?;
                Some((s, built))
            })
            .collect();
        let reuse = Reuse::from(
            &previous.snapshot,
            &previous.routes,
            &previous.stages,
            sockets,
            &snapshot,
        );
        Self::build_with(snapshot, clients, &reuse)
    }

    fn build_with(
        snapshot: Arc<Snapshot>,
        clients: &Clients,
        reuse: &Reuse<'_>,
    ) -> Result<Runtime, BuildError> {
        snapshot.validate()?;
        let connect_timeout = Duration::from_millis(snapshot.settings.upstream_connect_timeout_ms);
        let backends = BackendSet::build(
            &snapshot.backends,
            clients,
            connect_timeout,
            snapshot.backend_client_certificate.as_ref(),
        )?;
        clients.prune();
        let mut sockets =
            FastMap::with_capacity_and_hasher(snapshot.sockets.len(), Default::default());
        for socket in &snapshot.sockets {
            let ip: IpAddr = socket
                .address
                .parse()
                .map_err(|_| BuildError::SocketAddress(socket.address.clone()))?;
            let addr = SocketAddr::new(ip, socket.bind_port);
            if let Some(built) = reuse.socket(socket) {
                sockets.insert(addr, built);
                continue;
            }
            let router = SocketRouter::build(socket).map_err(|source| BuildError::Router {
                socket: addr,
                source,
            })?;
            let tls = SocketTls::build(socket, &snapshot.settings.client_cert_header)?;
            sockets.insert(
                addr,
                Arc::new(SocketRuntime {
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
                }),
            );
        }
        let stages = match reuse.stages() {
            Some(previous) => SharedStages {
                auth: previous.auth.clone(),
                rate_limits: previous.rate_limits.clone(),
            },
            None => build_stages(&snapshot, &backends, clients),
        };
        let routes = snapshot
            .routes
            .iter()
            .map(|route| {
                reuse.route(route).unwrap_or_else(|| {
                    let built = build_route(route, &backends, clients, &snapshot.settings, &stages);
                    Arc::new(built)
                })
            })
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
            stages,
            backends,
            backend_labels,
            telemetry,
        })
    }

    /// A runtime with no sockets and no routes for `gateway` (`ns/name`),
    /// served before the first snapshot arrives.
    pub fn empty(gateway: &str) -> Runtime {
        let snapshot = Arc::new(Snapshot::empty(gateway));
        let telemetry = RuntimeTelemetry::build(gateway, &snapshot.settings.telemetry);
        Runtime {
            client_address: ClientAddressRule::default(),
            client_cert_header: client_cert_header(&snapshot),
            snapshot,
            sockets: FastMap::default(),
            routes: Box::default(),
            stages: SharedStages::default(),
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
        self.sockets.get(local).map(|s| &**s)
    }

    pub(crate) fn route(&self, index: usize) -> Option<&RouteRuntime> {
        self.routes.get(index).map(|r| &**r)
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
