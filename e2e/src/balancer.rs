//! [`Balancer`]: a tiny TCP load balancer in front of data-plane processes,
//! standing in for a cloud load balancer or kube-proxy in rolling tests.
//!
//! It behaves like the balancers a Tollgate rollout has to survive, and no
//! better: it polls each backend's `GET /readyz` on its admin port every
//! 100 ms, and picks for each new client connection, round-robin, one of
//! the backends that answered 200 at their last poll. It never picks a
//! backend that was not ready, never retries, and relays bytes both ways
//! until either side closes. A client connection that finds no ready
//! backend, or whose backend refuses the connection, is closed at once, so
//! the client sees the failure.

use crate::client::HttpClient;
use crate::error::HarnessError;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How often readiness is polled.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How long one readiness poll may take before it counts as not ready.
const POLL_TIMEOUT: Duration = Duration::from_millis(500);

/// One backend: where traffic goes, where readiness is asked.
#[derive(Clone, Debug)]
struct Backend {
    traffic: SocketAddr,
    admin: SocketAddr,
    ready: bool,
    picked: usize,
}

/// The balancer's state, shared by its tasks.
#[derive(Debug, Default)]
struct Shared {
    backends: Mutex<Vec<Backend>>,
    next: AtomicUsize,
    /// Client connections closed because no backend was ready or the
    /// backend refused the connection.
    dropped: AtomicUsize,
}

impl Shared {
    fn backends(&self) -> std::sync::MutexGuard<'_, Vec<Backend>> {
        self.backends.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Round-robin among the backends ready at their last poll.
    fn pick(&self) -> Option<SocketAddr> {
        let mut backends = self.backends();
        let ready: Vec<usize> = (0..backends.len()).filter(|i| backends[*i].ready).collect();
        if ready.is_empty() {
            return None;
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed) % ready.len();
        let backend = &mut backends[ready[n]];
        backend.picked += 1;
        Some(backend.traffic)
    }
}

/// A running balancer on 127.0.0.1; its tasks stop on drop.
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl Balancer {
    /// Starts accepting on a fresh loopback port, with no backend yet.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub async fn start() -> Result<Balancer, HarnessError> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::default());
        let tasks = vec![
            tokio::spawn(accept(listener, shared.clone())),
            tokio::spawn(poll(shared.clone())),
        ];
        Ok(Balancer {
            addr,
            shared,
            tasks,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds a backend, not ready until its first poll answers 200.
    pub fn add(&self, traffic: SocketAddr, admin: SocketAddr) {
        self.shared.backends().push(Backend {
            traffic,
            admin,
            ready: false,
            picked: 0,
        });
    }

    /// Removes the backend receiving traffic at `traffic`; returns how
    /// many client connections it was given.
    pub fn remove(&self, traffic: SocketAddr) -> usize {
        let mut backends = self.shared.backends();
        let picked = backends
            .iter()
            .filter(|b| b.traffic == traffic)
            .map(|b| b.picked)
            .sum();
        backends.retain(|b| b.traffic != traffic);
        picked
    }

    /// Whether the backend at `traffic` was ready at its last poll.
    pub fn is_ready(&self, traffic: SocketAddr) -> bool {
        self.shared
            .backends()
            .iter()
            .any(|b| b.traffic == traffic && b.ready)
    }

    /// Client connections given to each backend still present.
    pub fn picks(&self) -> Vec<(SocketAddr, usize)> {
        self.shared
            .backends()
            .iter()
            .map(|b| (b.traffic, b.picked))
            .collect()
    }

    /// Client connections closed without a backend.
    pub fn dropped(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Some(backend) = shared.pick() else {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            match TcpStream::connect(backend).await {
                Ok(upstream) => relay(client, upstream).await,
                Err(_) => {
                    shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
}

/// Copies both ways; when one side ends its writes, the other side's
/// writes are ended too (half-close), like a TCP proxy does.
async fn relay(mut client: TcpStream, mut upstream: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

/// Polls every backend's readiness every [`POLL_INTERVAL`].
async fn poll(shared: Arc<Shared>) {
    let client = HttpClient::http1();
    loop {
        let admins: Vec<SocketAddr> = shared.backends().iter().map(|b| b.admin).collect();
        let checks = admins.into_iter().map(|admin| {
            let client = client.clone();
            async move {
                let url = format!("http://{admin}/readyz");
                let ready = matches!(
                    tokio::time::timeout(POLL_TIMEOUT, client.get(&url)).await,
                    Ok(Ok(reply)) if reply.status == 200
                );
                (admin, ready)
            }
        });
        let results = futures_util::future::join_all(checks).await;
        {
            let mut backends = shared.backends();
            for (admin, ready) in results {
                for backend in backends.iter_mut().filter(|b| b.admin == admin) {
                    backend.ready = ready;
                }
            }
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
