//! Serving HTTP/1.1 on one connection, parked between requests.
//!
//! hyper holds an 8 KiB write buffer and an 8–16 KiB read buffer for as long
//! as an HTTP/1 connection lives, idle or not: about 20 KiB for every idle
//! keep-alive connection. Like nginx, Tollgate gives them back while a
//! connection waits for its next request. Once the connection is at rest —
//! a request served on it, every response byte flushed, no head or body
//! partly read, nothing in flight — the hyper connection is ended without
//! closing the socket (`graceful_shutdown` ends an idle hyper connection at
//! once, and `poll_without_shutdown` hands the socket back), and the task
//! waits for the socket to become readable, holding the socket and a few
//! small shared counters. The next bytes start a new hyper connection on the
//! same socket; whatever hyper had read and not used is replayed to it.
//!
//! A hyper connection is parked only after it served a request: before
//! that, a shutdown would make hyper answer its first request with
//! `Connection: close`. An h2c upgrade takes the socket back the same way:
//! the service leaves the upgraded request in [`PendingUpgrade`] and the
//! socket goes to the HTTP/2 server once hyper has written `101`. So does a
//! WebSocket the backend accepted: it leaves a [`PendingTunnel`] and the
//! socket is relayed to the backend (`tunnel.rs`), never parked again.

use super::activity::Activity;
use super::codec;
use super::conn_settings::ConnSettings;
use super::framing::{Framing, FramingWatch, Verdicts};
use super::gate::Gated;
use super::h2c::{self, PendingUpgrade};
use super::headclock::HeadClock;
use super::lifecycle::{finish, log_end, millis, stop_signal};
use super::prefixed::Prefixed;
use super::rest::{Rest, RestIo};
use super::service::{ConnCtx, Infallibly, dispatch, refuse};
use super::transport::Transport;
use super::tunnel::{self, PendingTunnel};
use crate::body::ProxyBody;
use crate::boxed::pin_in_place;
use crate::proxy::{head_is_valid, offers_websocket};
use bytes::Bytes;
use futures_util::future::{BoxFuture, Either, OptionFuture};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::{Future, poll_fn, ready};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

/// How long a connection in a burst of requests waits for the next one
/// before it parks.
///
/// Parking and restarting a hyper connection costs a fifth of proxying a
/// request, so a connection that keeps busy must not park between requests;
/// one that is not busy should give its buffers back at once, as nginx does
/// (freed late, they would stay in the allocator's high-water mark). So a
/// connection parks as soon as it is at rest after its first request and
/// after a request that came after it had waited at least this long; a
/// connection whose requests come faster parks after this long at rest.
const PARK_AFTER: Duration = Duration::from_millis(100);

/// hyper's HTTP/1 header-count limit when none is set.
const HYPER_DEFAULT_MAX_HEADERS: usize = 100;

/// Serves HTTP/1.1 on `io` until it closes, idles out or finishes draining.
///
/// Plain exchanges are served by Tollgate's own codec (`codec`); the first
/// request it leaves to hyper moves the connection, with the bytes read so
/// far, to hyper for good.
///
/// Generic over the stream so plain TCP pays nothing for TLS: each is its
/// own copy of this loop.
pub(super) async fn serve_h1<T: Transport>(io: Prefixed<T>, ctx: Arc<ConnCtx>) {
    if let Some(io) = codec::serve(io, &ctx).await {
        // Boxed: the rare path's state would otherwise size every task.
        Box::pin(serve_hyper(io, ctx)).await;
    }
}

/// Serves HTTP/1.1 with hyper, parking between requests; see the module
/// docs.
async fn serve_hyper<T: Transport>(io: Prefixed<T>, ctx: Arc<ConnCtx>) {
    let builder = builder(&ctx.settings);
    let verdicts = Arc::new(Verdicts::default());
    let clock = Arc::new(HeadClock::default());
    let rest = Arc::new(Rest::default());
    let pending = Arc::new(PendingUpgrade::default());
    let tunnels = Arc::new(PendingTunnel::default());
    // h2c is an upgrade of cleartext HTTP/1.1 only (RFC 9113 §3.1 removed
    // it altogether; over TLS, ALPN chooses HTTP/2).
    let cleartext = ctx.info.sni_listener.is_none();
    let service = {
        let (ctx, verdicts, pending, tunnels) = (
            Arc::clone(&ctx),
            Arc::clone(&verdicts),
            Arc::clone(&pending),
            Arc::clone(&tunnels),
        );
        service_fn(move |req| {
            let ctx = Arc::clone(&ctx);
            // One verdict per request, taken in arrival order.
            let framing = verdicts.next();
            // Only an h2c offer needs the upgrade slot.
            let pending = (cleartext && framing == Framing::Clear && h2c::is_upgrade(&req))
                .then(|| Arc::clone(&pending));
            let tunnel =
                (framing == Framing::Clear && offers_websocket(&req)).then(|| Arc::clone(&tunnels));
            // Boxed: parking needs `poll_without_shutdown`, which needs an
            // `Unpin` future, and unboxed the whole proxy pipeline would
            // live inside every hyper connection; one allocation per request.
            // A trait object: the nested `impl Future` types left as they
            // are trip rustc's `Send` inference for the connection task.
            let upgrades = Upgrades { pending, tunnel };
            let answer: BoxFuture<'static, _> =
                pin_in_place(|| Infallibly::new(h1_request(ctx, req, framing, upgrades)));
            answer
        })
    };
    let head = millis(ctx.settings.request_header_timeout_ms).map(|limit| (&*clock, limit));
    let mut stop = pin!(stop_signal(&ctx, head));
    let watch = FramingWatch::new(io, Arc::clone(&verdicts), Arc::clone(&clock));
    let mut io = RestIo::new(Bytes::new(), watch, Arc::clone(&rest));
    // How long the connection last waited parked.
    let mut parked_for = Duration::ZERO;
    loop {
        let (seen_before, _) = verdicts.seen();
        // See `PARK_AFTER`: a connection parks as soon as it is at rest
        // after its first request, or after a request that came after a
        // long wait; in a burst of requests it parks after `PARK_AFTER`.
        let eager = seen_before == 0 || parked_for >= PARK_AFTER;
        let at_rest = || {
            rest.quiet() && ctx.activity.idle_since().is_some() && {
                let (seen, all_taken) = verdicts.seen();
                seen > seen_before && all_taken
            }
        };
        // Boxed so that a parked connection's task does not keep room for it.
        let mut conn = Box::new(builder.serve_connection(TokioIo::new(io), service.clone()));
        let resting = (!eager).then(|| Gated::new(rest_for(&ctx.activity, PARK_AFTER, &at_rest)));
        let mut resting = pin!(OptionFuture::from(resting));
        let mut parking = false;
        let stopped = loop {
            tokio::select! {
                biased;
                result = poll_fn(|cx| {
                    if parking {
                        return conn.poll_without_shutdown(cx);
                    }
                    let polled = Pin::new(&mut *conn).poll(cx);
                    if eager && polled.is_pending() && at_rest() {
                        parking = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                        return conn.poll_without_shutdown(cx);
                    }
                    polled
                }) => match result {
                    Ok(()) => break None,
                    Err(error) => return log_end(&ctx, Err(error)),
                },
                reason = stop.as_mut() => break Some(reason),
                // An idle hyper connection ends at once: the next poll
                // hands the socket back.
                Some(()) = resting.as_mut(), if !parking && !eager => {
                    parking = true;
                    Pin::new(&mut *conn).graceful_shutdown();
                }
            }
        };
        if let Some(reason) = stopped {
            let conn = Pin::new(&mut *conn);
            return Box::pin(finish(conn, |c| c.graceful_shutdown(), &ctx, reason)).await;
        }
        // The box is freed at the end of this block, before the connection
        // parks.
        let parts = {
            let conn = conn;
            (*conn).into_parts()
        };
        let mut watch = parts.io.into_inner().into_watch();
        if let Some(frames) = pending.take() {
            // HTTP/2 from here on: nothing left for the framing watch.
            let io = Prefixed::new(parts.read_buf, watch.into_inner());
            return Box::pin(h2c::serve_upgraded(Arc::clone(&ctx), io, frames)).await;
        }
        if let Some(accepted) = tunnels.take() {
            // The tunnel's from here on: no more HTTP, no parking.
            let io = Prefixed::new(parts.read_buf, watch.into_inner());
            return Box::pin(tunnel::relay(&ctx, io, accepted)).await;
        }
        if !parking {
            // hyper ended the connection (the client closed it, asked for
            // `Connection: close`, or sent what hyper refuses) and has
            // already shut the socket down.
            return;
        }
        // Even empty, `read_buf` holds on to hyper's whole read buffer:
        // keep a copy of what is left instead.
        let unread = Bytes::copy_from_slice(&parts.read_buf);
        drop(parts.read_buf);
        parked_for = Duration::ZERO;
        if unread.is_empty() && !watch.get_ref().has_prefix() {
            let parked_at = Instant::now();
            let _parked = ctx.open.park();
            watch.shrink();
            watch.get_mut().release();
            // Wait without reading (see transport.rs): readiness may be left
            // over from the last request, and a hyper connection started
            // without a request to read could not be parked again until it
            // served one.
            tokio::select! {
                biased;
                readable = watch.get_mut().get_mut().wait_readable() => match readable {
                    Ok(false) => return, // the client closed the connection
                    Ok(true) => parked_for = parked_at.elapsed(),
                    Err(error) => return log_end(&ctx, Err(error)),
                },
                reason = stop.as_mut() => {
                    tracing::debug!(peer = %ctx.info.peer, ?reason, "closing a parked connection");
                    let _ = watch.shutdown().await;
                    return;
                }
            }
        }
        io = RestIo::new(unread, watch, Arc::clone(&rest));
    }
}

/// Resolves once the connection has been at rest for `after`: no request
/// in flight for that long, and `at_rest` (nothing half-read or unflushed)
/// holds.
async fn rest_for(activity: &Activity, after: Duration, at_rest: &impl Fn() -> bool) {
    loop {
        activity.idle_for(after).await;
        if at_rest() {
            return;
        }
        tokio::time::sleep(after).await;
    }
}

fn builder(settings: &ConnSettings) -> http1::Builder {
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
    builder
}

/// Where a request's accepted upgrade waits for the connection loop: an
/// h2c offer's frames, or a WebSocket's tunnel.
struct Upgrades {
    pending: Option<Arc<PendingUpgrade>>,
    tunnel: Option<Arc<PendingTunnel>>,
}

/// One request's answer.
///
/// The request's future is moved whole into its box (see `serve_h1`), so
/// every byte of room it keeps is copied on every request. The rare
/// branches (a refusal, an h2c offer, a WebSocket tunnel) are therefore
/// boxed on their own, as are retries and upstream upgrades down the
/// pipeline, and this is a plain function: the common future is
/// [`dispatch`]'s alone, without a layer keeping another copy of the request.
fn h1_request(
    ctx: Arc<ConnCtx>,
    req: Request<Incoming>,
    framing: Framing,
    upgrades: Upgrades,
) -> Either<BoxFuture<'static, Response<ProxyBody>>, impl Future<Output = Response<ProxyBody>>> {
    let rare = |future: BoxFuture<'static, Response<ProxyBody>>| Either::Left(future);
    match (framing, upgrades.pending) {
        (Framing::Ambiguous, _) => {
            let reason = "both Content-Length and Transfer-Encoding";
            rare(Box::pin(ready(refuse(&ctx, &req, reason))))
        }
        (Framing::Unfollowed, _) => {
            let reason = "request framing was not followed";
            rare(Box::pin(ready(refuse(&ctx, &req, reason))))
        }
        // An offer is accepted only for a head plain HTTP/1.1 would serve;
        // otherwise it is declined and the pipeline answers as it would
        // without the offer (400 for a missing or repeated Host).
        (Framing::Clear, Some(pending)) if head_is_valid(&ctx.runtime.load(), &req) => rare(
            Box::pin(async move { h2c::upgrade(&ctx, req, &pending).await }),
        ),
        (Framing::Clear, _) => match upgrades.tunnel {
            Some(tunnel) => rare(Box::pin(async move {
                tunnel::dispatch_h1(ctx, req, &tunnel).await
            })),
            None => Either::Right(dispatch(ctx, req)),
        },
    }
}
