//! The [`Dataplane`] handle: apply snapshots, serve, report, shut down.
//!
//! `apply` is the only way traffic changes: the runtime is built on a
//! blocking thread (regex compilation, routing indexes), the sockets it
//! needs are bound, and only when all of that worked is the new runtime
//! stored — one atomic pointer swap — and the sockets it no longer needs
//! closed. Anything failing leaves the old runtime serving untouched.

use super::drain::{Signal, Tracker};
use super::listener::{self, Bound, ServerCtx};
use super::rest::Connections;
use super::service::RuntimeCell;
use super::status::{ConnectionCounts, ControllerLink, DataplaneStatus, Rejected};
use crate::runtime::{BuildError, Runtime};
use crate::telemetry::DataplaneTelemetry;
use crate::upstream::Clients;
use arc_swap::ArcSwap;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use thiserror::Error;
use tollgate_snapshot::Snapshot;

/// How to create a [`Dataplane`].
#[derive(Clone, Debug, Default)]
pub struct DataplaneOptions {
    /// The Gateway served, `namespace/name`; snapshots for others are refused.
    pub gateway: String,
    /// Where request telemetry goes (default: nowhere).
    pub telemetry: DataplaneTelemetry,
    /// Added to every snapshot socket's port when binding, so several
    /// data planes of one Gateway can share a host (tests, benchmarks);
    /// routing still sees the snapshot's ports. 0 by default.
    pub port_offset: u16,
}

/// Why a snapshot was not applied. The previous runtime keeps serving.
#[derive(Debug, Error)]
pub enum ApplyError {
    /// The snapshot is for another Gateway.
    #[error("snapshot is for gateway {got}, this data plane serves {expected}")]
    WrongGateway {
        /// The Gateway this data plane serves.
        expected: String,
        /// The Gateway named in the snapshot.
        got: String,
    },
    /// The snapshot is invalid or its runtime could not be built.
    #[error("snapshot could not be built: {0}")]
    Build(#[source] BuildError),
    /// Building the runtime panicked (a bug); the snapshot is refused.
    #[error("building the runtime failed unexpectedly: {0}")]
    BuildPanicked(#[source] tokio::task::JoinError),
    /// A socket the snapshot needs could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        #[source]
        source: std::io::Error,
    },
    /// The data plane is shutting down.
    #[error("the data plane is shutting down")]
    ShuttingDown,
}

/// A running data plane. Cheap to clone; clones share everything.
#[derive(Clone, Debug)]
pub struct Dataplane {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    gateway: String,
    /// Added to every snapshot socket's port when binding (`--listener-port-offset`).
    port_offset: u16,
    runtime: RuntimeCell,
    clients: Clients,
    /// Bound sockets; the lock also serialises `apply`.
    listeners: tokio::sync::Mutex<BTreeMap<SocketAddr, Bound>>,
    status: Mutex<DataplaneStatus>,
    tracker: Tracker,
    /// Raised when the data plane stops being ready before it drains
    /// (`withdraw`): it still serves, but tells load balancers to stop.
    withdrawn: Signal,
    shutdown: Signal,
    connections: Arc<Connections>,
    telemetry: DataplaneTelemetry,
}

impl Dataplane {
    /// A data plane serving nothing until the first [`Dataplane::apply`].
    pub fn new(options: DataplaneOptions) -> Dataplane {
        let status = DataplaneStatus {
            gateway: options.gateway.clone(),
            ..DataplaneStatus::default()
        };
        Dataplane {
            inner: Arc::new(Inner {
                runtime: Arc::new(ArcSwap::from_pointee(Runtime::empty(&options.gateway))),
                gateway: options.gateway,
                port_offset: options.port_offset,
                clients: Clients::default(),
                listeners: tokio::sync::Mutex::new(BTreeMap::new()),
                status: Mutex::new(status),
                tracker: Tracker::new(),
                withdrawn: Signal::new(),
                shutdown: Signal::new(),
                connections: Arc::default(),
                telemetry: options.telemetry,
            }),
        }
    }

    /// Builds `snapshot`, binds its new sockets, swaps it in, then stops
    /// accepting on sockets it no longer has.
    ///
    /// # Guarantees
    ///
    /// On success, requests accepted after this returns are served by the
    /// new snapshot; requests already in flight finish with the old one.
    /// Sockets present in both snapshots are never rebound.
    ///
    /// # Errors
    ///
    /// [`ApplyError`] when the snapshot is refused; the previous runtime
    /// keeps serving and the refusal shows in [`Dataplane::status`].
    pub async fn apply(&self, snapshot: Snapshot) -> Result<(), ApplyError> {
        self.apply_shared(Arc::new(snapshot), None).await
    }

    /// [`Dataplane::apply`] of a snapshot shared with its publisher, whose
    /// content hash is `hash` when the caller already knows it (the
    /// in-process publisher does): a large snapshot is then neither copied
    /// nor hashed again on its way to traffic.
    ///
    /// # Errors
    ///
    /// As [`Dataplane::apply`].
    pub async fn apply_shared(
        &self,
        snapshot: Arc<Snapshot>,
        hash: Option<String>,
    ) -> Result<(), ApplyError> {
        // From arrival: the span shows a wait behind an earlier apply too.
        let span = self.inner.telemetry.apply_span(&snapshot);
        let mut listeners = self.inner.listeners.lock().await;
        let version = snapshot.version;
        let hash = match hash {
            Some(hash) => hash,
            // Hashing a large snapshot takes milliseconds: not on the worker.
            None => {
                let shared = Arc::clone(&snapshot);
                crate::priority::in_background(move || shared.content_hash())
                    .await
                    .map_err(ApplyError::BuildPanicked)?
            }
        };
        let started = std::time::Instant::now();
        let result = self.swap_in(&mut listeners, snapshot).await;
        let outcome = match &result {
            Ok(_) => Ok(started.elapsed()),
            Err(error) => Err(error as &dyn std::fmt::Display),
        };
        let telemetry = &self.inner.telemetry;
        telemetry.snapshot(&self.inner.gateway, version, outcome, span);
        let mut status = self.lock_status();
        match &result {
            Ok(counts) => {
                status.version = Some(version);
                status.hash = Some(hash);
                status.counts = *counts;
                status.ready = true;
                status.last_rejected = None;
                status.from_state_file = false;
            }
            Err(error) => {
                tracing::warn!(version, %error, "snapshot rejected");
                status.last_rejected = Some(Rejected {
                    version,
                    hash,
                    error: error.to_string(),
                });
            }
        }
        status.sockets = listeners
            .keys()
            .filter_map(|a| self.bind_address(*a).ok())
            .map(|a| a.to_string())
            .collect();
        result.map(|_| ())
    }

    async fn swap_in(
        &self,
        listeners: &mut BTreeMap<SocketAddr, Bound>,
        snapshot: Arc<Snapshot>,
    ) -> Result<tollgate_snapshot::Counts, ApplyError> {
        if self.inner.shutdown.is_raised() {
            return Err(ApplyError::ShuttingDown);
        }
        if snapshot.gateway != self.inner.gateway {
            return Err(ApplyError::WrongGateway {
                expected: self.inner.gateway.clone(),
                got: snapshot.gateway.clone(),
            });
        }
        let counts = snapshot.counts();
        let clients = self.inner.clients.clone();
        // What did not change is taken over from the runtime serving.
        let serving = self.inner.runtime.load_full();
        let build = move || Runtime::build_from(snapshot, &clients, &serving);
        let runtime = crate::priority::in_background(build)
            .await
            .map_err(ApplyError::BuildPanicked)?
            .map_err(ApplyError::Build)?;
        let wanted: BTreeSet<SocketAddr> = runtime.sockets().collect();
        let mut fresh = Vec::new();
        for &addr in wanted.iter().filter(|a| !listeners.contains_key(a)) {
            let at = self.bind_address(addr)?;
            let bound =
                listener::bind(at).map_err(|source| ApplyError::Bind { addr: at, source })?;
            fresh.push((addr, bound));
        }
        let previous = self.inner.runtime.swap(Arc::new(runtime));
        // Freeing a large runtime takes a while; not on the request path.
        // (Requests still holding it free it with their last reference.)
        tokio::task::spawn_blocking(move || {
            crate::priority::background_priority();
            drop(previous);
        });
        let server = self.server_ctx();
        for (addr, bound) in fresh {
            tracing::info!(%addr, "listening");
            listeners.insert(addr, listener::spawn(bound, addr, server.clone()));
        }
        let gone: Vec<SocketAddr> = listeners
            .keys()
            .filter(|a| !wanted.contains(a))
            .copied()
            .collect();
        for addr in gone {
            if let Some(bound) = listeners.remove(&addr) {
                bound.stop().await;
            }
        }
        Ok(counts)
    }

    /// Where snapshot socket `addr` is bound: its port plus the offset.
    fn bind_address(&self, mut addr: SocketAddr) -> Result<SocketAddr, ApplyError> {
        let Some(port) = addr.port().checked_add(self.inner.port_offset) else {
            let source = std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "port {} + offset {} exceeds 65535",
                    addr.port(),
                    self.inner.port_offset
                ),
            );
            return Err(ApplyError::Bind { addr, source });
        };
        addr.set_port(port);
        Ok(addr)
    }

    /// Marks the applied snapshot as the one kept on disk (static
    /// stability), until the next apply replaces it.
    pub(crate) fn mark_from_state_file(&self) {
        self.lock_status().from_state_file = true;
    }

    fn server_ctx(&self) -> ServerCtx {
        ServerCtx {
            runtime: Arc::clone(&self.inner.runtime),
            tracker: self.inner.tracker.clone(),
            shutdown: self.inner.shutdown.clone(),
            connections: Arc::clone(&self.inner.connections),
            telemetry: self.inner.telemetry.clone(),
        }
    }

    /// Records a snapshot refused before it reached [`Dataplane::apply`]
    /// (one of a schema this data plane cannot read); the previous
    /// runtime keeps serving and the refusal shows in the status and in
    /// reports, like any other.
    pub fn refuse(&self, rejected: Rejected) {
        self.lock_status().last_rejected = Some(rejected);
    }

    /// Stops being ready while still serving: `/readyz` answers 503 from
    /// now on, so load balancers take this instance out of rotation while
    /// its listeners keep accepting. [`Dataplane::shutdown`] follows once
    /// they had time to notice (`--drain-delay-seconds`).
    pub fn withdraw(&self) {
        if !self.inner.withdrawn.is_raised() {
            tracing::info!("no longer ready; still serving until shutdown");
        }
        self.inner.withdrawn.raise();
    }

    /// Begins graceful shutdown: stop accepting, let in-flight requests
    /// finish for `settings.drain_timeout_ms`, then close every connection.
    pub fn shutdown(&self) {
        if !self.inner.shutdown.is_raised() {
            tracing::info!("shutting down");
        }
        self.inner.shutdown.raise();
    }

    /// Resolves once shutdown has begun and every connection is closed.
    pub async fn closed(&self) {
        self.inner.shutdown.raised().await;
        self.inner.tracker.idle().await;
    }

    /// Resolves once shutdown has begun.
    pub(crate) async fn shutdown_begun(&self) {
        self.inner.shutdown.raised().await;
    }

    /// The current state, for the admin `/status` endpoint.
    pub fn status(&self) -> DataplaneStatus {
        let mut status = self.lock_status().clone();
        status.draining = self.inner.shutdown.is_raised();
        status.ready = status.ready && !status.draining && !self.inner.withdrawn.is_raised();
        let (open, parked) = self.inner.connections.counts();
        let tunnels = self.inner.connections.tunnels();
        status.connections = ConnectionCounts {
            open,
            parked,
            tunnels,
        };
        status
    }

    /// The runtime serving now.
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        self.inner.runtime.load_full()
    }

    /// Updates the link to the controller that `update` changes (a link
    /// is reported from the first call on).
    pub(crate) fn controller_link(&self, update: impl FnOnce(&mut ControllerLink)) {
        update(
            self.lock_status()
                .controller
                .get_or_insert_with(ControllerLink::default),
        );
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, DataplaneStatus> {
        // The status is plain data written whole; a panic elsewhere cannot
        // leave it half-updated, so a poisoned lock is still usable.
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offset moves the bound port only; a port past 65535 is refused
    /// rather than wrapped onto another listener's port.
    #[test]
    fn the_port_offset_moves_binds_and_never_wraps() {
        let dp = Dataplane::new(DataplaneOptions {
            gateway: "ns/gw".into(),
            port_offset: 1000,
            ..DataplaneOptions::default()
        });
        let addr: SocketAddr = "127.0.0.1:80".parse().unwrap();
        assert_eq!(dp.bind_address(addr).unwrap().to_string(), "127.0.0.1:1080");
        let high: SocketAddr = "127.0.0.1:65000".parse().unwrap();
        assert!(matches!(
            dp.bind_address(high),
            Err(ApplyError::Bind { .. })
        ));
    }
}
