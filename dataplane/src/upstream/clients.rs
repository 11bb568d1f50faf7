//! The process-wide registry of upstream connections and the endpoints it
//! hands out.
//!
//! [`Clients`] outlives every runtime: an endpoint whose address is in both
//! the old and the new snapshot keeps its pool. HTTP/1.1 endpoints get a
//! pool of their own (`http1`); h2c endpoints share one multiplexing HTTP/2
//! client per connect timeout.

use super::error::UpstreamError;
use super::http1::{self, Http1Pool};
use crate::body::ProxyBody;
use http::uri::Authority;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tollgate_snapshot::BackendProtocol;

/// How often idle HTTP/1.1 connections are checked for expiry and upstream
/// closes.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

/// The pooled HTTP/2 (h2c) client.
type H2cClient = Client<HttpConnector, ProxyBody>;

/// The process's upstream connections. Cheap to clone: clones share pools.
#[derive(Clone, Default)]
pub struct Clients {
    inner: Arc<Mutex<Registry>>,
}

#[derive(Default)]
struct Registry {
    /// HTTP/1.1 pools by address and connect timeout; weak, so a pool dies
    /// with the last runtime that names its endpoint.
    http1: HashMap<(SocketAddr, Duration), Weak<Http1Pool>>,
    h2c: HashMap<Duration, Arc<H2cClient>>,
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

    /// The endpoint at `addr` speaking `protocol`, sharing the connections
    /// of any live endpoint with the same address and settings.
    ///
    /// Called from `Runtime::build`, never on the request path.
    pub fn endpoint(
        &self,
        addr: SocketAddr,
        protocol: BackendProtocol,
        connect_timeout: Duration,
    ) -> Endpoint {
        let authority = Authority::try_from(addr.to_string().as_str())
            .unwrap_or_else(|_| Authority::from_static("invalid"));
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let transport = match protocol {
            BackendProtocol::Http1 => {
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
            BackendProtocol::H2c => Transport::H2c(
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

    /// Forgets pools no runtime uses any more, and makes sure idle
    /// connections are swept. Called once per runtime build.
    pub fn prune(&self) {
        let mut registry = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        registry.http1.retain(|_, pool| pool.strong_count() > 0);
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
        match &self.transport {
            Transport::Http1(pool) => pool.send(request).await,
            Transport::H2c(client) => match client.request(request).await {
                Ok(response) => Ok(response.map(|b| b.map_err(Into::into).boxed_unsync())),
                Err(error) if error.is_connect() => Err(UpstreamError::Connect(error.into())),
                Err(error) => Err(UpstreamError::Protocol(error.into())),
            },
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
                super::upgrade::send(self.addr, pool.connect_timeout(), request).await
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
            Transport::H2c(_) => 0,
        }
    }
}
