//! Serving one downstream connection: protocol choice, limits, timeouts, drain.
//!
//! The first bytes decide the protocol: the HTTP/2 client preface means
//! HTTP/2 with prior knowledge, anything else HTTP/1.1 (which may still
//! upgrade to h2c). The limits and timeouts of the runtime serving at accept
//! time apply for the connection's whole life. A connection ends when the
//! client closes it, when it has been idle for `idle_timeout_ms`, or when it
//! is told to drain; draining lets in-flight requests finish for
//! `drain_timeout_ms` and then closes the connection regardless.

use super::frames::PREFACE;
use super::framing::{FramingWatch, Verdicts};
use super::gate::Gated;
use super::h2c;
use super::headclock::HeadClock;
use super::pipeline::ProxyBody;
use super::prefixed::Prefixed;
use super::service::{ConnCtx, bad_request, dispatch};
use bytes::BytesMut;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::convert::Infallible;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::TcpStream;

/// hyper's HTTP/1 header-count limit when none is set.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

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
        Protocol::Http2 => serve_h2(io, ctx).await,
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

async fn serve_h1<T>(io: T, ctx: Arc<ConnCtx>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let settings = &ctx.settings;
    let mut builder = http1::Builder::new();
    // The header timeout is the connection's own (see headclock.rs), not
    // hyper's, which would also cut idle keep-alive connections.
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(None);
    // hyper keeps up to 100 header slots on the stack and allocates per
    // request once a limit is set, so leave its default alone when it agrees.
    // A zero limit would refuse every request; it means "hyper's default".
    let max_headers = settings.max_request_headers as usize;
    if max_headers != 0 && max_headers != HYPER_DEFAULT_MAX_HEADERS {
        builder.max_headers(max_headers);
    }
    if settings.max_request_header_bytes != 0 {
        builder.max_header_size(settings.max_request_header_bytes as usize);
    }
    let verdicts = Arc::new(Verdicts::default());
    let clock = Arc::new(HeadClock::default());
    let io = FramingWatch::new(io, Arc::clone(&verdicts), Arc::clone(&clock));
    let service_ctx = Arc::clone(&ctx);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        // One verdict per request, taken in arrival order.
        let ambiguous = verdicts.next_is_ambiguous();
        // Boxed: hyper keeps the service future inside the connection, so
        // unboxed the whole proxy pipeline would live in every idle
        // connection's task; boxed it costs one allocation per request.
        Box::pin(async move { Ok::<_, Infallible>(h1_request(ctx, req, ambiguous).await) })
    });
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let head = millis(ctx.settings.request_header_timeout_ms).map(|limit| (&*clock, limit));
    drive(pin!(conn), |c| c.graceful_shutdown(), &ctx, head).await;
}

async fn h1_request(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
    ambiguous_framing: bool,
) -> Response<ProxyBody> {
    if ambiguous_framing {
        tracing::debug!(peer = %ctx.info.peer, "both Content-Length and Transfer-Encoding");
        bad_request()
    } else if h2c::is_upgrade(&req) {
        h2c::upgrade(ctx, req).await
    } else {
        dispatch(&ctx, req).await
    }
}

/// Serves HTTP/2 on `io`, which starts with the client preface.
pub(crate) async fn serve_h2<T>(io: T, ctx: Arc<ConnCtx>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(TokioExecutor::new());
    builder.timer(TokioTimer::new());
    if ctx.settings.max_request_header_bytes != 0 {
        builder.max_header_list_size(ctx.settings.max_request_header_bytes);
    }
    let service_ctx = Arc::clone(&ctx);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        async move { Ok::<_, Infallible>(dispatch(&ctx, req).await) }
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    drive(pin!(conn), |c| c.graceful_shutdown(), &ctx, None).await;
}

/// Polls a hyper connection to its end, shutting it down gracefully when it
/// idles out or is told to drain, and dropping it when draining takes too
/// long or (HTTP/1.1) a request head takes longer than `head`'s limit.
async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    ctx: &ConnCtx,
    head: Option<(&HeadClock, Duration)>,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let idle = millis(ctx.settings.idle_timeout_ms);
    // The watchers are gated: the select below runs on every wake-up of
    // the connection, and they need a look only when their own waker fired.
    let idle_out = Gated::new(async {
        match idle {
            Some(idle) => ctx.activity.idle_for(idle).await,
            None => std::future::pending().await,
        }
    });
    let drained = Gated::new(ctx.drain.signalled());
    let slow_head = Gated::new(async {
        match head {
            Some((clock, limit)) => clock.expired(limit, &ctx.activity).await,
            None => std::future::pending().await,
        }
    });
    tokio::select! {
        biased;
        result = conn.as_mut() => return log_end(ctx, result),
        () = drained => {}
        () = idle_out => tracing::debug!(peer = %ctx.info.peer, "idle timeout"),
        () = slow_head => {
            // Like hyper's own header timeout: no response, the connection closes.
            tracing::debug!(peer = %ctx.info.peer, "no complete request head in time");
            return;
        }
    }
    graceful(conn.as_mut());
    match tokio::time::timeout(ctx.drain_timeout(), conn).await {
        Ok(result) => log_end(ctx, result),
        Err(_) => tracing::debug!(peer = %ctx.info.peer, "drain timeout, closing"),
    }
}

fn log_end<E: std::fmt::Display>(ctx: &ConnCtx, result: Result<(), E>) {
    if let Err(error) = result {
        tracing::debug!(peer = %ctx.info.peer, %error, "connection ended with an error");
    }
}

/// A duration from milliseconds, where 0 means "no limit".
fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}

async fn with_timeout<F: Future>(limit: Option<Duration>, future: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}
