//! Serving one downstream connection: protocol choice, limits, timeouts, drain.
//!
//! The first bytes decide the protocol: the HTTP/2 client preface means
//! HTTP/2 with prior knowledge, anything else HTTP/1.1 (which may still
//! upgrade to h2c). The limits and timeouts of the runtime serving at accept
//! time apply for the connection's whole life (HTTP/1.1 itself is served in
//! `h1.rs`); an HTTP/2 connection's stream limit bounds the upstream
//! connections it can hold. A connection ends when the client closes it,
//! when it has been idle for `idle_timeout_ms`, or when it is told to
//! drain; draining lets in-flight requests finish for `drain_timeout_ms`
//! and then closes the connection regardless.

use super::frames::PREFACE;
use super::gate::Gated;
use super::h1::serve_h1;
use super::headclock::HeadClock;
use super::prefixed::Prefixed;
use super::service::{ConnCtx, dispatch};
use bytes::BytesMut;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;
use tollgate_snapshot::DEFAULT_MAX_CONCURRENT_STREAMS;

/// Which protocol a connection speaks, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
}

/// Serves `stream` until it closes, idles out or finishes draining.
pub(crate) async fn serve(mut stream: TcpStream, ctx: ConnCtx) {
    let ctx = Arc::new(ctx);
    let header_timeout = millis(ctx.settings.request_header_timeout_ms);
    let mut first = BytesMut::with_capacity(PREFACE.len());
    let sniffed = tokio::select! {
        () = ctx.drain.signalled() => return,
        sniffed = with_timeout(header_timeout, sniff(&mut stream, &mut first)) => sniffed,
    };
    let protocol = match sniffed {
        Some(Ok(Some(protocol))) => protocol,
        Some(Ok(None)) => return,
        Some(Err(error)) => {
            tracing::debug!(peer = %ctx.info.peer, %error, "read failed");
            return;
        }
        None => {
            tracing::debug!(peer = %ctx.info.peer, "no request head in time");
            return;
        }
    };
    let io = Prefixed::new(first.freeze(), stream);
    match protocol {
        Protocol::Http1 => serve_h1(io, ctx).await,
        // Boxed, like every rarely taken branch of a connection's task: the
        // task is as large as its largest state, for the connection's life.
        Protocol::Http2 => Box::pin(serve_h2(io, ctx)).await,
    }
}

/// Reads until the bytes are the whole preface or cannot be; `None` on EOF.
async fn sniff(stream: &mut TcpStream, buf: &mut BytesMut) -> std::io::Result<Option<Protocol>> {
    loop {
        let n = buf.len().min(PREFACE.len());
        if buf[..n] != PREFACE[..n] {
            return Ok(Some(Protocol::Http1));
        }
        if n == PREFACE.len() {
            return Ok(Some(Protocol::Http2));
        }
        if stream.read_buf(buf).await? == 0 {
            return Ok(None);
        }
    }
}

/// Serves HTTP/2 on `io`, which starts with the client preface.
pub(crate) async fn serve_h2<T>(io: T, ctx: Arc<ConnCtx>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    // Every stream may hold an upstream connection (HTTP/1.1 upstreams
    // carry one request at a time), so the stream limit is what bounds the
    // upstream connections one client connection can open. Announced in
    // SETTINGS, clients queue requests past it themselves; a stream opened
    // past it anyway is refused with REFUSED_STREAM, which RFC 9113 §8.7
    // marks as never processed and safe to retry — as Envoy's and nginx's
    // per-connection stream limits do, rather than queueing requests
    // inside the gateway where nothing bounds the wait.
    let streams = match ctx.settings.max_concurrent_streams {
        0 => DEFAULT_MAX_CONCURRENT_STREAMS,
        n => n,
    };
    builder.max_concurrent_streams(streams);
    if ctx.settings.max_request_header_bytes != 0 {
        builder.max_header_list_size(ctx.settings.max_request_header_bytes);
    }
    let service_ctx = Arc::clone(&ctx);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        async move { Ok::<_, Infallible>(dispatch(&ctx, req).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    drive(pin!(conn), |c| c.graceful_shutdown(), &ctx).await;
}

/// Why a connection stops serving before the client ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Told to drain (shutdown or its socket was removed).
    Drain,
    /// No request in flight for `idle_timeout_ms`.
    IdleOut,
    /// An HTTP/1.1 request head took longer than the header timeout.
    SlowHead,
}

/// Resolves when the connection must stop; `head` is the HTTP/1.1 head
/// clock and its limit.
///
/// Gated: the connection's loop polls it on every wake-up of the
/// connection, and it needs a look only when its own waker fired.
pub(super) fn stop_signal<'a>(
    ctx: &'a ConnCtx,
    head: Option<(&'a HeadClock, Duration)>,
) -> Gated<impl Future<Output = Stop> + 'a> {
    let idle = millis(ctx.settings.idle_timeout_ms);
    Gated::new(async move {
        let idle_out = async {
            match idle {
                Some(idle) => ctx.activity.idle_for(idle).await,
                None => std::future::pending().await,
            }
        };
        let slow_head = async {
            match head {
                Some((clock, limit)) => clock.expired(limit, &ctx.activity).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = ctx.drain.signalled() => Stop::Drain,
            () = idle_out => Stop::IdleOut,
            () = slow_head => Stop::SlowHead,
        }
    })
}

/// Polls a hyper connection to its end, or until it must stop.
async fn drive<C, E>(mut conn: Pin<&mut C>, graceful: impl Fn(Pin<&mut C>), ctx: &ConnCtx)
where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let stop = stop_signal(ctx, None);
    let reason = tokio::select! {
        biased;
        result = conn.as_mut() => return log_end(ctx, result),
        reason = stop => reason,
    };
    finish(conn, graceful, ctx, reason).await;
}

/// Ends a hyper connection that must stop: a slow head closes it at once
/// (no response, like hyper's own header timeout); otherwise it shuts down
/// gracefully and in-flight requests get the drain timeout to finish.
pub(super) async fn finish<C, E>(
    mut conn: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    ctx: &ConnCtx,
    reason: Stop,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match reason {
        Stop::SlowHead => {
            tracing::debug!(peer = %ctx.info.peer, "no complete request head in time");
            return;
        }
        Stop::IdleOut => tracing::debug!(peer = %ctx.info.peer, "idle timeout"),
        Stop::Drain => {}
    }
    graceful(conn.as_mut());
    match tokio::time::timeout(ctx.drain_timeout(), conn).await {
        Ok(result) => log_end(ctx, result),
        Err(_) => tracing::debug!(peer = %ctx.info.peer, "drain timeout, closing"),
    }
}

pub(super) fn log_end<E: std::fmt::Display>(ctx: &ConnCtx, result: Result<(), E>) {
    if let Err(error) = result {
        tracing::debug!(peer = %ctx.info.peer, %error, "connection ended with an error");
    }
}

/// A duration from milliseconds, where 0 means "no limit".
pub(super) fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

async fn with_timeout<F: Future>(limit: Option<Duration>, future: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}
