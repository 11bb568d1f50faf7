//! Relaying one routed connection (TLSRoute) to its backend over TCP.
//!
//! Both TLS listener modes end here once the route is known: Passthrough
//! with the client's raw stream (and the ClientHello bytes already read
//! from it), Terminate with the decrypted stream. The endpoint is chosen
//! by the route, connected within the upstream connect timeout, and the
//! bytes are copied both ways (`copy_bidirectional`) until either side
//! closes (the other direction runs on until it closes too), nothing
//! moves for the tunnel idle timeout, or the connection drains (shutdown
//! or its socket removed): it then gets `drain_timeout_ms` to end by
//! itself and is closed. Like a WebSocket tunnel (`tunnel.rs`), a relay
//! holds only its two sockets, so snapshot swaps never cut it.

use super::service::ConnCtx;
use super::tunnel::copy_metered;
use crate::relay::{NoRoute, RelayRoute};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Where a routed connection goes: the route's name (for logs) and the
/// endpoint it chose.
#[derive(Debug)]
pub(super) struct Target {
    pub(super) route: Arc<str>,
    pub(super) endpoint: SocketAddr,
}

/// Chooses the endpoint for a connection with `sni`, with the runtime
/// loaded once: on the listener `listener` (Terminate, where the
/// handshake chose it), else on the listener the SNI selects.
///
/// # Errors
///
/// [`NoRoute`] when nothing covers the SNI or the route has no usable
/// backend; the caller closes the connection.
pub(super) fn route(
    ctx: &ConnCtx,
    listener: Option<&str>,
    sni: Option<&str>,
) -> Result<Target, NoRoute> {
    let runtime = ctx.runtime.load();
    let relay = runtime
        .socket(&ctx.info.local)
        .and_then(|s| s.relay.as_ref())
        .ok_or(NoRoute::UnknownSni)?;
    let found: Option<&RelayRoute> = match listener {
        Some(name) => relay.find_on(name, sni),
        None => relay.find(sni),
    };
    let route = found.ok_or(NoRoute::UnknownSni)?;
    let endpoint = route.select(runtime.backends())?;
    Ok(Target {
        route: Arc::clone(&route.name),
        endpoint,
    })
}

/// Connects to `target` within the upstream connect timeout, writes
/// `first` (the ClientHello of a Passthrough connection, or nothing) and
/// relays `client` to it until the relay ends. Counts the connection and
/// its bytes.
pub(super) async fn connect_and_relay<C>(ctx: &ConnCtx, client: C, target: Target, first: &[u8])
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (peer, endpoint, route) = (ctx.info.peer, target.endpoint, &target.route);
    let limit = Duration::from_millis(ctx.settings.upstream_connect_timeout_ms);
    let connected = tokio::select! {
        () = ctx.drain.signalled() => return,
        connected = with_timeout(Some(limit), TcpStream::connect(endpoint)) => connected,
    };
    let mut upstream = match connected {
        Some(Ok(stream)) => stream,
        failed => {
            let error = match failed {
                Some(Err(e)) => e.to_string(),
                _ => "timed out".to_string(),
            };
            tracing::debug!(%peer, %endpoint, %route, %error, "relay connect failed");
            ctx.telemetry.relay_connection("connect_failed");
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    if let Err(error) = upstream.write_all(first).await {
        tracing::debug!(%peer, %endpoint, %route, %error, "relay write failed");
        ctx.telemetry.relay_connection("connect_failed");
        return;
    }
    ctx.telemetry.relay_connection("relayed");
    let (up, down) = relay(ctx, client, upstream).await;
    // The ClientHello went up too, before the copy started.
    let up = up + first.len() as u64;
    tracing::debug!(%peer, %endpoint, %route, up, down, "relay ended");
    ctx.telemetry.relay_bytes(up, down);
}

/// Why a relay ended.
/// Copies bytes both ways until the relay ends; returns the bytes read
/// from the client and from the backend.
async fn relay<C>(ctx: &ConnCtx, client: C, backend: TcpStream) -> (u64, u64)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let _counted = ctx.open.tunnel();
    copy_metered(ctx, client, backend, "tls relay").await
}

/// `future`, cut at `limit` (`None`: no limit); `None` when cut.
pub(super) async fn with_timeout<F: Future>(
    limit: Option<Duration>,
    future: F,
) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}
