//! The request pipeline: from a downstream request to the response sent back.
//!
//! [`handle`] is what a listener calls for every request. It never fails:
//! whatever goes wrong becomes a response in [`crate::error::respond`]. The
//! stages and their order live in one place, `pipeline::Pipeline`; each
//! stage's logic lives in its own module (`head`, `hygiene`, `mirror`, `retry` here,
//! the rule filters in `crate::chain`), and the runtime it reads was built
//! ahead of time.

mod body;
mod client_address;
mod connection;
mod head;
mod hygiene;
mod mirror;
mod pipeline;
mod retry;
mod upgrade;

pub(crate) use client_address::{ClientAddressRule, parse_net};
pub use connection::ConnInfo;
pub(crate) use hygiene::{FORWARDING_FIELDS, remove_hop_by_hop};
pub(crate) use upgrade::{BackendUpgrade, Relayable, is_extended_connect, offers_websocket};

use crate::body::{DownstreamBody, ProxyBody};
use crate::head_facts::HeadFacts;
use crate::runtime::Runtime;
use crate::telemetry::Exchange;
use http::{Request, Response};
use hyper::body::Incoming;
use std::sync::Arc;

/// Whether the head of `req` passes the checks of the pipeline's first
/// stage (one valid `Host`, required on HTTP/1.1; a path that normalizes)
/// under `runtime`'s settings. The HTTP/1.1 server asks before it accepts
/// an h2c upgrade, after which those checks could no longer see the
/// request as it arrived.
pub(crate) fn head_is_valid<B>(runtime: &Runtime, req: &Request<B>) -> bool {
    let head = head::Head {
        uri: req.uri(),
        headers: req.headers(),
        version: req.version(),
    };
    let allow_encoded_slashes = runtime.snapshot().settings.allow_encoded_slashes;
    head::read(head, allow_encoded_slashes).is_ok()
}

/// Reads a whole request body of at most `limit` bytes under `runtime`'s
/// body read limits, for the h2c upgrade, which carries the body across.
///
/// # Errors
///
/// The gateway's answer, made by [`crate::error::respond`]: 408 when the
/// body stalls or comes too slowly, 400 when it cannot be read or is
/// longer than `limit`.
pub(crate) async fn collect_body(
    runtime: &Runtime,
    conn: &ConnInfo,
    body: Incoming,
    limit: usize,
) -> Result<bytes::Bytes, Response<ProxyBody>> {
    let limits = body::BodyLimits::from_settings(&runtime.snapshot().settings);
    let limited = http_body_util::Limited::new(body::RequestBody::new(body, limits), limit);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => {
            let error = body::client_fault(error).unwrap_or_else(|error| {
                crate::error::ProxyError::BadRequest(format!("request body: {error}"))
            });
            let source = runtime
                .socket(&conn.local)
                .map_or(runtime.snapshot().gateway.as_str(), |s| s.name.as_str());
            Err(crate::error::respond(&error, source))
        }
    }
}

/// Serves one request with `runtime`.
///
/// # Guarantees
///
/// Never fails and never panics: errors become the gateway's own plain-text
/// answers with an `x-tollgate-error` header (gRPC calls get trailers-only
/// gRPC answers instead: `crate::grpc`). Request and response bodies
/// are streamed, not buffered.
pub async fn handle(
    runtime: Arc<Runtime>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let req = req.map(DownstreamBody::from);
    let facts = HeadFacts::read(req.headers());
    let mut exchange = Exchange::begin(None, None, (&req, &facts), conn.scheme, None);
    handle_observed(runtime, conn, req, &mut exchange).await
}

/// [`handle`], telling `exchange` what the pipeline decided (route,
/// upstream attempts) for the request's telemetry.
pub(crate) async fn handle_observed(
    runtime: Arc<Runtime>,
    conn: Arc<ConnInfo>,
    req: Request<DownstreamBody>,
    exchange: &mut Exchange,
) -> Response<ProxyBody> {
    let grpc = exchange.grpc_request();
    let timeout = grpc.then(|| crate::grpc::timeout(req.headers())).flatten();
    let pipeline = pipeline::Pipeline::new(&runtime, &conn).with_grpc_timeout(timeout);
    match pipeline.run(req, exchange).await {
        Ok(response) => response,
        Err(failure) => {
            if let Some(reason) = failure.error.reason() {
                exchange.refused(reason, failure.error.kind().label());
            }
            if grpc || pipeline.routed_grpc() {
                crate::grpc::respond(&failure.error, failure.source)
            } else {
                crate::error::respond(&failure.error, failure.source)
            }
        }
    }
}
