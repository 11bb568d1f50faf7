//! Serving one downstream connection: protocol choice, limits, timeouts, drain.
//!
//! On a plain socket the first bytes decide the protocol: the HTTP/2
//! client preface means HTTP/2 with prior knowledge, anything else HTTP/1.1
//! (which may still upgrade to h2c). On a TLS socket the handshake comes
//! first (`tls.rs`, within the request-header timeout) and ALPN decides:
//! `h2` is HTTP/2, anything else, or no ALPN at all, HTTP/1.1; nothing is
//! sniffed. The limits and timeouts of the runtime serving at accept
//! time apply for the connection's whole life (HTTP/1.1 itself is served in
//! `h1.rs`, HTTP/2 in `h2.rs`); an HTTP/2 connection's stream limit bounds
//! the upstream connections it can hold. A connection ends (`lifecycle.rs`)
//! when the client closes it,
//! when it has been idle for `idle_timeout_ms`, or when it is told to
//! drain; draining lets in-flight requests finish for `drain_timeout_ms`
//! and then closes the connection regardless.

use super::frames::PREFACE;
use super::h1::serve_h1;
use super::h2::serve_h2;
use super::lifecycle::millis;
use super::prefixed::Prefixed;
use super::service::ConnCtx;
use super::tls::handshake;
use crate::proxy::ConnInfo;
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

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

/// Serves a connection accepted on a TLS socket: handshake, then HTTP/2
/// or HTTP/1.1 as ALPN agreed.
pub(crate) async fn serve_tls(tcp: TcpStream, mut ctx: ConnCtx) {
    let timeout = millis(ctx.settings.request_header_timeout_ms);
    let (peer, local) = (ctx.info.peer, ctx.info.local);
    let shaken = tokio::select! {
        () = ctx.drain.signalled() => return,
        shaken = Box::pin(handshake(tcp, &ctx.runtime, local, timeout)) => shaken,
    };
    let (stream, listener, client_cert) = match shaken {
        Ok(shaken) => shaken,
        Err(error) => {
            tracing::debug!(%peer, %local, %error, "TLS handshake failed");
            ctx.telemetry.tls_handshake_failed(error.label());
            return;
        }
    };
    let mut info = ConnInfo::tls(peer, local, listener);
    info.client_cert = client_cert;
    ctx.info = Arc::new(info);
    let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
    let ctx = Arc::new(ctx);
    let io = Prefixed::new(Bytes::new(), stream);
    if h2 {
        Box::pin(serve_h2(io, ctx)).await;
    } else {
        serve_h1(io, ctx).await;
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

async fn with_timeout<F: Future>(limit: Option<Duration>, future: F) -> Option<F::Output> {
    match limit {
        Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        None => Some(future.await),
    }
}
