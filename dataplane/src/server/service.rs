//! The per-request service of a downstream connection.
//!
//! Every request, whatever protocol it came in on, goes through [`dispatch`]:
//! it is counted as in flight (for the idle timeout), checked for what must
//! never reach an upstream, and handed to the proxy with the runtime loaded
//! once, here — so a snapshot swap never changes a request half-way.

use super::activity::{Activity, RequestGuard, TrackedBody};
use super::conn_settings::ConnSettings;
use super::drain::{Drain, TrackGuard};
use super::rest::OpenGuard;
use crate::body::{DownstreamBody, ProxyBody, empty};
use crate::error::ErrorKind;
use crate::head_facts::HeadFacts;
use crate::proxy::{BackendUpgrade, ConnInfo, handle_observed};
use crate::runtime::Runtime;
use crate::telemetry::{DataplaneTelemetry, Exchange, ObservedBody};
use arc_swap::ArcSwap;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::upgrade::OnUpgrade;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// The runtime currently serving; swapped whole by `Dataplane::apply`.
pub(crate) type RuntimeCell = Arc<ArcSwap<Runtime>>;

/// Everything a connection's requests share.
#[derive(Debug)]
pub(crate) struct ConnCtx {
    /// The runtime cell, loaded once per request.
    pub(crate) runtime: RuntimeCell,
    /// Addresses of the connection, passed to the proxy.
    pub(crate) info: Arc<ConnInfo>,
    /// Limits and timeouts, read once when the connection was accepted.
    pub(crate) settings: ConnSettings,
    /// In-flight requests, for the idle timeout.
    pub(crate) activity: Arc<Activity>,
    /// When to stop taking requests.
    pub(crate) drain: Drain,
    /// Keeps the connection counted until its last task ends.
    pub(crate) _guard: TrackGuard,
    /// Keeps the connection counted against its socket's `max_connections`.
    pub(crate) _slot: TrackGuard,
    /// Counts the connection as open (and, while parked, parked).
    pub(crate) open: OpenGuard,
    /// Request telemetry.
    pub(crate) telemetry: DataplaneTelemetry,
}

impl ConnCtx {
    /// How long in-flight requests may finish once the connection drains,
    /// from the runtime serving now (settings may have changed since accept).
    pub(crate) fn drain_timeout(&self) -> Duration {
        Duration::from_millis(self.runtime.load().snapshot().settings.drain_timeout_ms)
    }
}

/// Checks a request and hands it to the proxy with the current runtime.
///
/// Not an `async fn` itself: the future returned is [`dispatch_with`]'s,
/// with no layer of its own keeping another copy of the request.
pub(crate) fn dispatch<B: Into<DownstreamBody> + Send + 'static>(
    ctx: Arc<ConnCtx>,
    req: Request<B>,
) -> impl Future<Output = Response<ProxyBody>> + Send {
    // Never taken: only requests marked relayable are upgraded.
    dispatch_with(ctx, req, |(_, exchange, _)| exchange.finish(0))
}

/// An upgrade the backend accepted: its side of the tunnel, the request's
/// telemetry (to finish when the tunnel ends) and its activity guard.
pub(crate) type Accepted = (OnUpgrade, Exchange, RequestGuard);

/// [`dispatch`], handing an upgrade the backend accepted to `on_tunnel`
/// instead of finishing the request's record with the response body.
pub(crate) async fn dispatch_with<B: Into<DownstreamBody>>(
    ctx: Arc<ConnCtx>,
    req: Request<B>,
    on_tunnel: impl FnOnce(Accepted),
) -> Response<ProxyBody> {
    let req = req.map(Into::into);
    let guard = ctx.activity.begin();
    let runtime = ctx.runtime.load_full();
    let info = &ctx.info;
    // The facts end here, before the await: kept across it, they would
    // grow this future and cost the handler's future a copy.
    let mut exchange = {
        let facts = HeadFacts::read(req.headers());
        if let Some(reason) = facts.refusal {
            return refuse(&ctx, &req, reason);
        }
        let obs = ctx.telemetry.observability();
        Exchange::begin(
            obs,
            Some(&runtime),
            (&req, &facts),
            info.scheme,
            Some(info.peer),
        )
    };
    let mut response = handle_observed(runtime, Arc::clone(info), req, &mut exchange).await;
    exchange.respond(&response);
    if let Some(BackendUpgrade(backend)) = response.extensions_mut().remove::<BackendUpgrade>() {
        on_tunnel((backend, exchange, guard));
        // The switch carries no body; the bytes that follow are the tunnel's.
        return response.map(|_| empty());
    }
    response.map(|body| ObservedBody::new(TrackedBody::new(body, guard), exchange).boxed_unsync())
}

pin_project_lite::pin_project! {
    /// A response future as hyper's services return it (always `Ok`).
    ///
    /// A named future rather than an `async` wrapper, which would keep the
    /// wrapped future twice (as its capture and as what it awaits); see
    /// `h1::h1_request`.
    pub(crate) struct Infallibly<F> {
        #[pin]
        answer: F,
    }
}

impl<F> Infallibly<F> {
    pub(crate) fn new(answer: F) -> Self {
        Infallibly { answer }
    }
}

impl<F: Future<Output = Response<ProxyBody>>> Future for Infallibly<F> {
    type Output = Result<Response<ProxyBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().answer.poll(cx).map(Ok)
    }
}

/// Answers a request refused before routing (`reason`: what is wrong with
/// its head) with [`bad_request`], recorded like any other request: a
/// client sending bad heads shows in the request metrics as `bad-request`.
pub(crate) fn refuse<B>(ctx: &ConnCtx, req: &Request<B>, reason: &str) -> Response<ProxyBody> {
    let info = &ctx.info;
    tracing::debug!(peer = %info.peer, reason, "rejected request");
    let runtime = ctx.runtime.load_full();
    let obs = ctx.telemetry.observability();
    let exchange = Exchange::begin(
        obs,
        Some(&runtime),
        (req, &HeadFacts::read(req.headers())),
        info.scheme,
        Some(info.peer),
    );
    exchange.answered(bad_request())
}

/// A `400 Bad Request` that also ends the connection.
pub(crate) fn bad_request() -> Response<ProxyBody> {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    crate::error::mark(&mut response, ErrorKind::BadRequest);
    response
}
