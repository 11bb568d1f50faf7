//! The process-wide registry of upstream connections and the endpoints it
//! hands out.
//!
//! [`Clients`] outlives every runtime: an endpoint whose address is in both
//! the old and the new snapshot keeps its pool. HTTP/1.1 endpoints get a
//! pool of their own (`http1`); h2c endpoints share one multiplexing HTTP/2
//! client per connect timeout.

use super::added::{Added, add_fields};
use super::budget::RetryBudget;
use super::error::UpstreamError;
use super::http1::{self, Http1Pool};
use super::tls::{TlsClient, TlsKey, tls_client};
use crate::body::ProxyBody;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tollgate_snapshot::{BackendProtocol, RetrySettings};

/// How often idle HTTP/1.1 connections are checked for expiry and upstream
/// closes.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// Percent, interval and reserve rate of a retry budget.
type BudgetKey = (u32, u64, u32);

/// The pooled HTTP/2 (h2c) client.
type H2cClient = Client<HttpConnector, ProxyBody>;

/// The process's upstream connections. Cheap to clone: clones share pools.
#[derive(Clone, Default)]
pub struct Clients {
    inner: Arc<Mutex<Registry>>,
    /// The auth methods' state (JWKS caches, the client for auth calls).
    auth: Arc<crate::auth::AuthClients>,
    /// Rate-limit counters (local) and the Redis client (global).
    rate_limits: Arc<crate::ratelimit::RateLimitClients>,
}

#[derive(Default)]
struct Registry {
    /// HTTP/1.1 pools by address and connect timeout; weak, so a pool dies
    /// with the last runtime that names its endpoint.
    http1: HashMap<(SocketAddr, Duration), Weak<Http1Pool>>,
    h2c: HashMap<Duration, Arc<H2cClient>>,
    /// Retry budgets by rule name and settings; weak like the pools.
    budgets: HashMap<(String, BudgetKey), Weak<RetryBudget>>,
    /// HTTPS clients by TLS settings; weak, like the HTTP/1.1 pools.
    tls: HashMap<TlsKey, Weak<TlsClient>>,
    sweeper: bool,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

impl Clients {
    /// An empty registry; connections are made on first use.
    pub fn new() -> Clients {
        Clients::default()
    }

    /// The auth methods' process-wide state.
    pub(crate) fn auth(&self) -> &Arc<crate::auth::AuthClients> {
        &self.auth
    }

    /// The rate limits' process-wide state.
    pub(crate) fn rate_limits(&self) -> &Arc<crate::ratelimit::RateLimitClients> {
        &self.rate_limits
    }

    /// The endpoint at `addr` speaking `protocol`, over TLS when `tls` is
    /// set, sharing the connections of any live endpoint with the same
    /// address and settings.
    ///
    /// Called from `Runtime::build`, never on the request path.
    pub fn endpoint(
        &self,
        addr: SocketAddr,
        protocol: BackendProtocol,
        connect_timeout: Duration,
        tls: Option<&UpstreamTls>,
    ) -> Endpoint {
        let authority = Authority::try_from(addr.to_string().as_str())
            .unwrap_or_else(|_| Authority::from_static("invalid"));
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let transport = match (tls, protocol) {
            (Some(tls), _) => {
                let key = TlsKey {
                    tls: tls.backend.clone(),
                    client_certificate: tls.client_certificate.clone(),
                    protocol,
                    connect_timeout,
                };
                let client = match registry.tls.get(&key).and_then(Weak::upgrade) {
                    Some(client) => client,
                    None => {
                        let client = Arc::new(tls_client(&key, http1::IDLE_TIMEOUT));
                        registry.tls.insert(key, Arc::downgrade(&client));
                        client
                    }
                };
                Transport::Tls(client)
            }
            (None, BackendProtocol::Http1) => {
                let key = (addr, connect_timeout);
                let pool = match registry.http1.get(&key).and_then(Weak::upgrade) {
                    Some(pool) => pool,
                    None => {
                        let pool = Arc::new(Http1Pool::new(addr, connect_timeout));
                        registry.http1.insert(key, Arc::downgrade(&pool));
                        pool
                    }
                };
                Transport::Http1(pool)
            }
            (None, BackendProtocol::H2c) => Transport::H2c(
                registry
                    .h2c
                    .entry(connect_timeout)
                    .or_insert_with(|| Arc::new(h2c_client(connect_timeout)))
                    .clone(),
            ),
        };
        Endpoint {
            authority,
            addr,
            protocol,
            transport,
        }
    }

    /// The retry budget of the rule named `route` under `settings`: the
    /// one a live runtime already uses, so a snapshot swap keeps what the
    /// rule has spent, or a full one.
    ///
    /// Called from `Runtime::build`, never on the request path.
    pub fn retry_budget(&self, route: &str, settings: &RetrySettings) -> Arc<RetryBudget> {
        let key = (
            route.to_string(),
            (
                settings.budget_percent,
                settings.budget_interval_ms,
                settings.min_retries_per_second,
            ),
        );
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(budget) = registry.budgets.get(&key).and_then(Weak::upgrade) {
            return budget;
        }
        let budget = Arc::new(RetryBudget::new(settings));
        registry.budgets.insert(key, Arc::downgrade(&budget));
        budget
    }

    /// Forgets pools no runtime uses any more, and makes sure idle
    /// connections are swept. Called once per runtime build.
    pub fn prune(&self) {
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        registry.http1.retain(|_, pool| pool.strong_count() > 0);
        registry
            .budgets
            .retain(|_, budget| budget.strong_count() > 0);
        registry.tls.retain(|_, client| client.strong_count() > 0);
        drop(registry);
        self.start_sweeper();
    }

    /// Starts the idle-connection sweeper once, when a Tokio runtime is
    /// there to run it (runtimes built outside one, in tools and tests,
    /// simply keep idle connections until their next checkout).
    fn start_sweeper(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if std::mem::replace(&mut registry.sweeper, true) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        handle.spawn(async move {
            let mut tick = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let pools: Vec<Arc<Http1Pool>> = {
                    let mut registry = inner.lock().unwrap_or_else(PoisonError::into_inner);
                    registry.http1.retain(|_, pool| pool.strong_count() > 0);
                    registry.http1.values().filter_map(Weak::upgrade).collect()
                };
                for pool in pools {
                    pool.sweep();
                }
            }
        });
    }
}

/// A legacy-client answer as the proxy wants it.
fn legacy(
    result: Result<Response<hyper::body::Incoming>, hyper_util::client::legacy::Error>,
) -> Result<Response<ProxyBody>, UpstreamError> {
    match result {
        Ok(response) => Ok(response.map(|b| b.map_err(Into::into).boxed_unsync())),
        Err(error) if is_tls(&error) => Err(UpstreamError::Tls(error.into())),
        Err(error) if error.is_connect() => Err(UpstreamError::Connect(error.into())),
        Err(error) => Err(UpstreamError::Protocol(error.into())),
    }
}

/// Whether a rustls error is somewhere in `error`'s causes: the connector
/// reports a failed handshake as I/O errors wrapping it, and an I/O error's
/// `source` skips the error it wraps, so those are opened by hand.
fn is_tls(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<rustls::Error>() {
            return true;
        }
        cause = match e.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => e.source(),
        };
    }
    false
}

fn h2c_client(connect_timeout: Duration) -> H2cClient {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .pool_idle_timeout(http1::IDLE_TIMEOUT)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .set_host(false)
        .build(connector)
}

/// One backend endpoint with its connections.
#[derive(Clone)]
pub struct Endpoint {
    /// `ip:port`, IPv6 in brackets.
    pub authority: Authority,
    /// The same address, parsed.
    addr: SocketAddr,
    /// Wire protocol spoken to it.
    pub protocol: BackendProtocol,
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Http1(Arc<Http1Pool>),
    H2c(Arc<H2cClient>),
    Tls(Arc<TlsClient>),
}

/// The TLS settings of one backend: its policy and the Gateway's client
/// certificate.
#[derive(Clone, Debug)]
pub struct UpstreamTls {
    /// What the BackendTLSPolicy resolved to.
    pub backend: tollgate_snapshot::BackendTls,
    /// The client certificate to present, if the Gateway names one.
    pub client_certificate: Option<tollgate_snapshot::ClientCertificate>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("authority", &self.authority)
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// Sends `request` and waits for the response head. HTTP/1.1 requests
    /// carry an origin-form URI, h2c requests an absolute one.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] when no response head arrived.
    pub async fn send(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        self.send_with(request, None).await
    }

    /// [`Endpoint::send`] with `added` header fields, which the HTTP/1.1
    /// client writes straight into the request head (the fields that
    /// differ on every request, such as the trace context, would otherwise
    /// cost a header value's allocation and a map insert each); the others
    /// insert them into the request's headers first.
    ///
    /// # Errors
    ///
    /// As [`Endpoint::send`].
    ///
    /// Not an `async fn`: the future is the transport's own (see
    /// `Http1Pool::send` on why every layer's size counts).
    pub fn send_with<'a>(
        &'a self,
        mut request: Request<ProxyBody>,
        added: Added<'a>,
    ) -> impl Future<Output = Result<Response<ProxyBody>, UpstreamError>> + Send + 'a {
        match &self.transport {
            Transport::Http1(pool) => Either::Left(pool.send(request, added)),
            Transport::H2c(client) => {
                add_fields(request.headers_mut(), added);
                Either::Right(client.request(request).map(legacy))
            }
            Transport::Tls(client) => {
                add_fields(request.headers_mut(), added);
                Either::Right(client.pooled.request(request).map(legacy))
            }
        }
    }

    /// The scheme of the absolute-form URI requests to this endpoint need,
    /// or `None` for origin-form (a pooled HTTP/1.1 connection).
    pub fn absolute_scheme(&self) -> Option<Scheme> {
        match self.transport {
            Transport::Http1(_) => None,
            Transport::H2c(_) => Some(Scheme::HTTP),
            Transport::Tls(_) => Some(Scheme::HTTPS),
        }
    }

    /// The HTTP version requests to this endpoint are built with; over TLS
    /// the connection's ALPN result decides what goes on the wire.
    pub fn request_version(&self) -> Version {
        match self.transport {
            Transport::H2c(_) => Version::HTTP_2,
            Transport::Http1(_) | Transport::Tls(_) => Version::HTTP_11,
        }
    }

    /// Sends an HTTP/1.1 upgrade request (`Connection: upgrade`,
    /// `Upgrade` set) on a new connection of its own, never pooled, and
    /// waits for the response head; after `101` the backend's side of the
    /// tunnel is `hyper::upgrade::on(response)`.
    ///
    /// # Errors
    ///
    /// [`UpstreamError`] when no response head arrived; an h2c endpoint
    /// cannot take an HTTP/1.1 upgrade at all (the proxy refuses before
    /// asking).
    pub async fn send_upgrade(
        &self,
        request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        match &self.transport {
            Transport::Http1(pool) => {
                super::upgrade::send(self.addr, pool.connect_timeout(), None, request).await
            }
            Transport::Tls(client) => {
                // Built absolute for the pooled client; this connection is
                // the endpoint's own, so origin-form goes on the wire.
                let mut request = request;
                if let Some(origin) = request.uri().path_and_query().cloned() {
                    *request.uri_mut() = http::Uri::from(origin);
                }
                let tls = Some(&client.upgrade);
                super::upgrade::send(self.addr, client.connect_timeout, tls, request).await
            }
            Transport::H2c(_) => Err(UpstreamError::Protocol(
                "an h2c backend cannot take an HTTP/1.1 upgrade".into(),
            )),
        }
    }

    /// The endpoint's address.
    pub fn address(&self) -> SocketAddr {
        self.addr
    }

    /// Idle pooled HTTP/1.1 connections (0 for h2c).
    pub fn idle_connections(&self) -> usize {
        match &self.transport {
            Transport::Http1(pool) => pool.idle_count(),
            Transport::H2c(_) | Transport::Tls(_) => 0,
        }
    }
}
