//! Bound sockets and their accept loops.
//!
//! A socket is bound once, when the first snapshot that needs it is applied,
//! and kept across swaps (rebinding would drop queued connections). Its
//! accept loop reads the current runtime's settings for every new
//! connection, sheds connections over `max_connections` by closing them at
//! once, and stops when the socket leaves the snapshot or the data plane
//! shuts down; connections already accepted then drain.

use super::activity::Activity;
use super::conn;
use super::conn_settings::ConnSettings;
use super::drain::{Drain, Signal, Tracker};
use super::lifecycle::millis;
use super::passthrough;
use super::proxy_protocol::{self, Header};
use super::rest::Connections;
use super::service::{ConnCtx, RuntimeCell};
use crate::clock::Fresh;
use crate::proxy::ConnInfo;
use crate::telemetry::DataplaneTelemetry;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinHandle;
use tollgate_snapshot::TlsMode;

/// Pending connections the kernel queues per socket.
const BACKLOG: u32 = 1024;

/// Binds `addr` for listening with `SO_REUSEADDR`.
///
/// # Errors
///
/// The socket could not be created, bound or put in listening state.
pub(crate) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// What every accept loop shares with the data plane.
#[derive(Clone, Debug)]
pub(crate) struct ServerCtx {
    /// The runtime cell.
    pub(crate) runtime: RuntimeCell,
    /// Counts accept loops and connections for `closed()`.
    pub(crate) tracker: Tracker,
    /// Raised on data-plane shutdown.
    pub(crate) shutdown: Signal,
    /// Open and parked connections.
    pub(crate) connections: Arc<Connections>,
    /// Request telemetry.
    pub(crate) telemetry: DataplaneTelemetry,
}

/// A running accept loop.
#[derive(Debug)]
pub(crate) struct Bound {
    removed: Signal,
    task: JoinHandle<()>,
}

impl Bound {
    /// Stops accepting; returns once the socket is closed. Connections
    /// already accepted drain on their own.
    pub(crate) async fn stop(self) {
        self.removed.raise();
        let _ = self.task.await;
    }
}

/// Starts accepting on `listener`, bound at `addr` (the snapshot's socket address).
pub(crate) fn spawn(listener: TcpListener, addr: SocketAddr, server: ServerCtx) -> Bound {
    let removed = Signal::new();
    let drain = Drain {
        shutdown: server.shutdown.clone(),
        removed: removed.clone(),
    };
    let guard = server.tracker.guard();
    let task = tokio::spawn(async move {
        let _guard = guard;
        accept_loop(listener, addr, server, drain).await;
    });
    Bound { removed, task }
}

async fn accept_loop(listener: TcpListener, addr: SocketAddr, server: ServerCtx, drain: Drain) {
    let slots = Tracker::new();
    loop {
        let accepted = tokio::select! {
            () = drain.signalled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: back off, keep serving.
                tracing::warn!(%addr, %error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (settings, tls, relay, proxied) = {
            let runtime = server.runtime.load();
            let socket = runtime.socket(&addr);
            let tls = socket.is_some_and(|s| s.tls.is_some());
            let relay = socket.and_then(|s| s.relay.as_ref()).map(|r| r.mode);
            let proxied = socket.is_some_and(|s| s.proxy_protocol);
            (
                ConnSettings::from(&runtime.snapshot().settings),
                tls,
                relay,
                proxied,
            )
        };
        let max = settings.max_connections as usize;
        if max > 0 && slots.count() >= max {
            tracing::debug!(%addr, %peer, max, "connection limit reached, closing");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let ctx = ConnCtx {
            runtime: Arc::clone(&server.runtime),
            info: Arc::new(ConnInfo::new(
                peer,
                addr,
                match (relay, tls) {
                    (Some(_), _) => "tls",
                    (None, true) => "https",
                    (None, false) => "http",
                },
            )),
            settings,
            activity: Activity::new(),
            drain: drain.clone(),
            _guard: server.tracker.guard(),
            _slot: slots.guard(),
            open: server.connections.open(),
            telemetry: server.telemetry.clone(),
        };
        // Each connection's polls share one clock read: `crate::clock`.
        if proxied {
            tokio::spawn(Fresh::new(serve_proxied(stream, ctx, relay, tls)));
            continue;
        }
        // TLS listeners (TLSRoute) relay; the others serve HTTP.
        match relay {
            Some(TlsMode::Passthrough) => {
                tokio::spawn(Fresh::new(passthrough::serve_passthrough(stream, ctx)))
            }
            Some(TlsMode::Terminate) => {
                tokio::spawn(Fresh::new(passthrough::serve_terminate(stream, ctx)))
            }
            None if tls => tokio::spawn(Fresh::new(conn::serve_tls(stream, ctx))),
            None => tokio::spawn(Fresh::new(conn::serve(stream, ctx))),
        };
    }
    tracing::info!(%addr, "stopped accepting");
}

/// Serves a connection of a socket behind a PROXY-protocol balancer: the
/// header first (within the request-header timeout), whose source becomes
/// the peer, then as any other connection of the socket.
async fn serve_proxied(mut stream: TcpStream, mut ctx: ConnCtx, relay: Option<TlsMode>, tls: bool) {
    let timeout = millis(ctx.settings.request_header_timeout_ms);
    let header = tokio::select! {
        () = ctx.drain.signalled() => return,
        header = proxy_protocol::read(&mut stream, timeout) => header,
    };
    match header {
        Ok(Header::Proxied(source)) => {
            let info = &ctx.info;
            ctx.info = Arc::new(ConnInfo::new(source, info.local, info.scheme));
        }
        Ok(Header::Local) => {}
        Err(error) => {
            tracing::debug!(peer = %ctx.info.peer, %error, "connection refused: PROXY protocol");
            return;
        }
    }
    match relay {
        Some(TlsMode::Passthrough) => Box::pin(passthrough::serve_passthrough(stream, ctx)).await,
        Some(TlsMode::Terminate) => Box::pin(passthrough::serve_terminate(stream, ctx)).await,
        None if tls => Box::pin(conn::serve_tls(stream, ctx)).await,
        None => Box::pin(conn::serve(stream, ctx)).await,
    }
}
