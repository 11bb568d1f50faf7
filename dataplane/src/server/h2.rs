//! Serving HTTP/2 on one connection, with prior knowledge or after an h2c
//! upgrade.
//!
//! The stream limit is announced in SETTINGS and bounds the upstream
//! connections one client connection can hold; the connection ends like
//! every other (`lifecycle.rs`).

use super::lifecycle::drive;
use super::service::{ConnCtx, Infallibly, dispatch};
use super::tunnel;
use crate::boxed::pin_in_place;
use crate::clock::FreshExecutor;
use futures_util::future::Either;
use hyper::server::conn::http2;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::pin::pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tollgate_snapshot::DEFAULT_MAX_CONCURRENT_STREAMS;

/// Serves HTTP/2 on `io`, which starts with the client preface.
pub(crate) async fn serve_h2<T>(io: T, ctx: Arc<ConnCtx>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http2::Builder::new(FreshExecutor);
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
    // RFC 8441: WebSockets over HTTP/2 as extended CONNECT streams.
    builder.enable_connect_protocol();
    if ctx.settings.max_request_header_bytes != 0 {
        builder.max_header_list_size(ctx.settings.max_request_header_bytes);
    }
    let service_ctx = Arc::clone(&ctx);
    let service = service_fn(move |req| {
        let ctx = Arc::clone(&service_ctx);
        // Each stream's future is moved into a task of its own, through
        // several calls that each copy it whole: boxed (and built in its
        // box, `crate::boxed`), what moves is a pointer, not 5 kB.
        let answer = if tunnel::is_extended_connect(&req) {
            Either::Left(Box::pin(tunnel::dispatch_h2(ctx, req)))
        } else {
            Either::Right(pin_in_place(|| dispatch(ctx, req)))
        };
        Infallibly::new(answer)
    });
    let conn = builder.serve_connection(TokioIo::new(io), service);
    drive(pin!(conn), |c| c.graceful_shutdown(), &ctx).await;
}
