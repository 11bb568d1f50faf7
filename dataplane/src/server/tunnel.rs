//! Relaying accepted upgrades (WebSocket tunnels) between client and backend.
//!
//! The pipeline decides whether a request is upgraded (`proxy/upgrade.rs`);
//! the server owns the client's connection, so the bytes after the switch
//! are relayed here. An HTTP/1.1 upgrade takes the whole connection: the
//! service leaves the accepted [`Tunnel`] in a [`PendingTunnel`], hyper
//! writes `101`, the connection loop (`h1.rs`) takes the socket back as it
//! does for h2c and relays on the connection's own task — never pooled or
//! parked again. An HTTP/2 extended CONNECT is one stream among others:
//! its relay runs on a task of its own, holding the connection's context
//! so the connection stays counted (and draining waits for it).
//!
//! A tunnel belongs to neither snapshot nor route: once relaying, it holds
//! only the two sockets, so snapshot swaps and route removals leave it
//! alone. It ends when either side closes (the other side's write half is
//! shut down, the other direction runs on until it closes too), when no
//! byte moved either way for the tunnel idle timeout
//! (`Settings::tunnel_idle_timeout`), or when the connection drains
//! (shutdown or its socket removed): it then gets `drain_timeout_ms` to end
//! by itself and is closed. The request's telemetry record is written when
//! the tunnel ends, with the bytes relayed each way (see `Tunnel::finish`).

use super::activity::RequestGuard;
use super::service::{Accepted, ConnCtx, dispatch_with};
use crate::body::ProxyBody;
use crate::error::{ProxyError, respond};
use crate::proxy::{Relayable, is_extended_connect as is_websocket_connect};
use crate::telemetry::Exchange;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::ext::Protocol;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// An upgrade the backend accepted, waiting for the client's side.
#[derive(Debug)]
pub(crate) struct Tunnel {
    backend: OnUpgrade,
    /// Finished when the tunnel ends (or is dropped unrelayed).
    exchange: Option<Exchange>,
    /// Keeps the request in flight, so an HTTP/2 connection carrying the
    /// tunnel never counts as idle.
    _request: RequestGuard,
}

impl Tunnel {
    /// The tunnel of a request the backend accepted.
    fn new((backend, exchange, request): Accepted) -> Tunnel {
        Tunnel {
            backend,
            exchange: Some(exchange),
            _request: request,
        }
    }

    /// Writes the request's one record: `up` bytes went from the client
    /// to the backend, `down` back. The record spans the whole tunnel, so
    /// its duration is the WebSocket's lifetime and its status the
    /// switch the client was answered (101, or 200 for extended CONNECT).
    fn finish(&mut self, up: u64, down: u64) {
        if let Some(exchange) = self.exchange.take() {
            exchange.finish_tunnel(up, down);
        }
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.finish(0, 0);
    }
}

/// Where an HTTP/1.1 connection's accepted upgrade waits for hyper to
/// write `101` and hand the socket back.
#[derive(Debug, Default)]
pub(crate) struct PendingTunnel(Mutex<Option<Tunnel>>);

impl PendingTunnel {
    /// The accepted upgrade, once.
    pub(crate) fn take(&self) -> Option<Tunnel> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn put(&self, tunnel: Tunnel) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(tunnel);
    }
}

/// Serves an HTTP/1.1 WebSocket offer; an accepted one waits in `pending`.
pub(crate) async fn dispatch_h1(
    ctx: Arc<ConnCtx>,
    mut req: Request<Incoming>,
    pending: &PendingTunnel,
) -> Response<ProxyBody> {
    req.extensions_mut().insert(Relayable);
    dispatch_with(ctx, req, |accepted| pending.put(Tunnel::new(accepted))).await
}

/// Whether `req` is an HTTP/2 extended CONNECT (RFC 8441), for any
/// `:protocol`.
pub(crate) fn is_extended_connect<B>(req: &Request<B>) -> bool {
    req.method() == http::Method::CONNECT && req.extensions().get::<Protocol>().is_some()
}

/// Serves an HTTP/2 extended CONNECT; an accepted one is relayed on a task
/// of its own once hyper has sent the `200`. Only `:protocol websocket` is
/// relayed: another protocol is answered 400 rather than sent to a backend
/// as a plain CONNECT it never asked for.
pub(crate) async fn dispatch_h2(
    ctx: Arc<ConnCtx>,
    mut req: Request<Incoming>,
) -> Response<ProxyBody> {
    if !is_websocket_connect(req.method(), req.version(), req.extensions()) {
        let protocol = req
            .extensions()
            .get::<Protocol>()
            .map_or("", |p| p.as_str());
        let error = ProxyError::BadRequest(format!("unsupported :protocol {protocol:?}"));
        return respond(&error, "extended CONNECT");
    }
    let client = req.extensions_mut().remove::<OnUpgrade>();
    req.extensions_mut().insert(Relayable);
    let relay_ctx = Arc::clone(&ctx);
    dispatch_with(ctx, req, move |accepted| {
        let tunnel = Tunnel::new(accepted);
        let Some(client) = client else { return };
        tokio::spawn(async move {
            match client.await {
                Ok(stream) => relay(&relay_ctx, TokioIo::new(stream), tunnel).await,
                Err(error) => tracing::debug!(%error, "extended CONNECT stream not upgraded"),
            }
        });
    })
    .await
}

/// Why a tunnel ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ended {
    Closed,
    IdleOut,
    Drained,
}

/// Relays bytes between `client` and the backend's side of `tunnel` until
/// either side closes, the tunnel idles out or the connection drains.
pub(crate) async fn relay<C>(ctx: &ConnCtx, client: C, mut tunnel: Tunnel)
where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let _counted = ctx.open.tunnel();
    let backend = tokio::select! {
        biased;
        upgraded = &mut tunnel.backend => upgraded,
        () = ctx.drain.signalled() => return,
    };
    let backend = match backend {
        Ok(upgraded) => TokioIo::new(upgraded),
        Err(error) => {
            tracing::debug!(peer = %ctx.info.peer, %error, "backend upgrade failed");
            return;
        }
    };
    let (up, down) = copy_metered(ctx, client, backend, "tunnel").await;
    tunnel.finish(up, down);
}

/// Copies bytes both ways between `client` and `backend` until either side
/// closes, no byte has moved for the tunnel idle timeout, or the connection
/// drains (then the copy gets `drain_timeout_ms` to finish); returns the
/// bytes read from the client and from the backend. `what` names the
/// relay in logs. WebSocket tunnels and TLSRoute relays both end here.
pub(super) async fn copy_metered<C, B>(
    ctx: &ConnCtx,
    client: C,
    backend: B,
    what: &str,
) -> (u64, u64)
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let meter = Meter::new();
    let mut client = Metered::new(client, &meter, &meter.up);
    let mut backend = Metered::new(backend, &meter, &meter.down);
    let mut copy = pin!(tokio::io::copy_bidirectional(&mut client, &mut backend));
    let idle = ctx.settings.tunnel_idle_timeout();
    let mut ended = tokio::select! {
        result = copy.as_mut() => {
            if let Err(error) = result {
                tracing::debug!(peer = %ctx.info.peer, %error, what, "relay ended with an error");
            }
            Ended::Closed
        }
        () = meter.idle_for(idle) => Ended::IdleOut,
        () = ctx.drain.signalled() => Ended::Drained,
    };
    if ended == Ended::Drained
        && tokio::time::timeout(ctx.drain_timeout(), copy)
            .await
            .is_ok()
    {
        ended = Ended::Closed;
    }
    tracing::debug!(peer = %ctx.info.peer, ?ended, what, "relay finished");
    (
        meter.up.load(Ordering::Relaxed),
        meter.down.load(Ordering::Relaxed),
    )
}

/// Bytes relayed each way and when the last one moved. Atomics, though
/// one task uses them: an HTTP/2 tunnel's task must be `Send`.
#[derive(Debug)]
pub(super) struct Meter {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the last read from either side.
    last: AtomicU64,
    pub(super) up: AtomicU64,
    pub(super) down: AtomicU64,
}

impl Meter {
    pub(super) fn new() -> Meter {
        Meter {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            up: AtomicU64::new(0),
            down: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(nanos, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Resolves once nothing moved for `idle`; never without a limit.
    pub(super) async fn idle_for(&self, idle: Option<Duration>) {
        let Some(idle) = idle else {
            return std::future::pending().await;
        };
        loop {
            let deadline = self.last() + idle;
            tokio::time::sleep_until(deadline).await;
            if self.last() + idle <= Instant::now() {
                return;
            }
        }
    }
}

/// One side of a tunnel, counting what is read from it into `count`.
pub(super) struct Metered<'a, T> {
    inner: T,
    meter: &'a Meter,
    count: &'a AtomicU64,
}

impl<'a, T> Metered<'a, T> {
    pub(super) fn new(inner: T, meter: &'a Meter, count: &'a AtomicU64) -> Metered<'a, T> {
        Metered {
            inner,
            meter,
            count,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Metered<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = buf.filled().len() - before;
        if read > 0 {
            self.count.fetch_add(read as u64, Ordering::Relaxed);
            self.meter.touch();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Metered<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle timer fires only after a full quiet period since the last byte.
    #[tokio::test(start_paused = true)]
    async fn idle_counts_from_the_last_byte() {
        let meter = Meter::new();
        let idle = Some(Duration::from_secs(10));
        let started = Instant::now();
        tokio::time::sleep(Duration::from_secs(6)).await;
        meter.touch();
        meter.idle_for(idle).await;
        assert_eq!(started.elapsed(), Duration::from_secs(16));
    }

    /// Bytes read from each side are counted.
    #[tokio::test]
    async fn reads_are_counted() {
        use tokio::io::AsyncReadExt;
        let meter = Meter::new();
        let mut side = Metered::new(&b"hello"[..], &meter, &meter.up);
        let mut out = Vec::new();
        side.read_to_end(&mut out).await.unwrap();
        assert_eq!(meter.up.load(Ordering::Relaxed), 5);
        assert_eq!(meter.down.load(Ordering::Relaxed), 0);
    }
}
