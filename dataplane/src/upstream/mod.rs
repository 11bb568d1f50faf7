//! Upstream clients, backends and load balancing.
//!
//! [`Clients`] holds the pooled hyper clients every runtime shares: one
//! keep-alive HTTP/1.1 client and one HTTP/2-with-prior-knowledge (h2c)
//! client per connect timeout. It is created once per process and cloned into
//! each [`Runtime`](crate::runtime::Runtime), so connection pools survive
//! snapshot swaps. [`BackendSet`] and [`Balancer`] are the per-snapshot side:
//! resolved endpoint addresses and the weighted/round-robin selection built
//! once in `Runtime::build`.

mod backend;
mod balance;

pub use backend::{BackendSet, BuiltBackend};
pub use balance::{Balancer, RoundRobin};

use crate::proxy::ProxyBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tollgate_snapshot::BackendProtocol;

/// How long an idle pooled upstream connection is kept.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// A hyper client over plain TCP carrying [`ProxyBody`] requests.
pub type UpstreamClient = Client<HttpConnector, ProxyBody>;

/// The shared, pooled upstream clients of one process.
///
/// Cheap to clone: clones share pools. Clients are keyed by connect timeout
/// because the connector owns that setting; a snapshot that keeps the same
/// `upstream_connect_timeout_ms` keeps the same pools.
#[derive(Clone, Default)]
pub struct Clients {
    pairs: Arc<Mutex<HashMap<Duration, ClientPair>>>,
}

impl std::fmt::Debug for Clients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clients").finish_non_exhaustive()
    }
}

/// The HTTP/1.1 and h2c clients for one connect timeout.
#[derive(Clone)]
pub struct ClientPair {
    http1: UpstreamClient,
    h2c: UpstreamClient,
}

impl std::fmt::Debug for ClientPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientPair").finish_non_exhaustive()
    }
}

impl Clients {
    /// Empty client set; clients are made on first use by a runtime build.
    pub fn new() -> Clients {
        Clients::default()
    }

    /// The clients using `connect_timeout`, created on first use.
    ///
    /// Called from `Runtime::build`, never on the request path.
    pub fn pair(&self, connect_timeout: Duration) -> ClientPair {
        let mut pairs = self.pairs.lock().unwrap_or_else(|p| p.into_inner());
        pairs
            .entry(connect_timeout)
            .or_insert_with(|| ClientPair::new(connect_timeout))
            .clone()
    }
}

impl ClientPair {
    fn new(connect_timeout: Duration) -> ClientPair {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let mut http1 = Client::builder(TokioExecutor::new());
        http1
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .set_host(false);
        let mut h2c = Client::builder(TokioExecutor::new());
        h2c.http2_only(true)
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .set_host(false);
        ClientPair {
            http1: http1.build(connector.clone()),
            h2c: h2c.build(connector),
        }
    }

    /// The client speaking `protocol`.
    pub fn for_protocol(&self, protocol: BackendProtocol) -> &UpstreamClient {
        match protocol {
            BackendProtocol::Http1 => &self.http1,
            BackendProtocol::H2c => &self.h2c,
        }
    }
}
