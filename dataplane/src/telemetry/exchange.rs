//! One request's telemetry, from the head arriving to the last byte of the
//! response: the request context every recorder reads.
//!
//! The pipeline tells the exchange what it decided (route, upstream
//! attempts); [`Exchange::finish`] then records the request once:
//! `http.server.request.duration` and body sizes, the server span, the
//! access-log line. Whatever is not needed (no span sampled, no log line
//! drawn) is never copied out of the request.

mod attempt;
mod attributes;
mod finish;
mod grpc;
mod identity;
mod received;
mod request;
mod retry;
mod stages;

use attempt::Attempt;
pub(crate) use request::RequestHead;
pub(crate) use request::split_host;
use request::{Detail, shared_str, status_label, version_index, wall_clock_at};

use super::Observability;
use super::bound::RequestKey;
use super::labels::{self, SCHEMES};
use super::runtime::RuntimeTelemetry;
use super::sampling::RatioSampler;
use super::spans::{self, Planned};
use crate::clock::Ticks;
use crate::error::GatewayError;
use crate::head_facts::HeadFacts;
use crate::runtime::Runtime;
use http::header::HOST;
use http::{HeaderMap, Method, Request, Response, Version};
use opentelemetry::Context;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// What routing decided. The rule's labels stay in the runtime (found by
/// `route`): a request copies none of them unless it is written out.
#[derive(Debug)]
struct Routed {
    template: Arc<str>,
    /// The socket the request came in on and its listener's index there
    /// (the label stays in the runtime: [`Exchange::listener_label`]).
    local: SocketAddr,
    listener: u32,
    /// The rule's index, for the metric cache key.
    route: u32,
}

impl Routed {
    /// The listener for the metric cache key: the socket's port beside
    /// the listener's index on it, as the index alone repeats across
    /// sockets.
    fn listener_key(&self) -> u32 {
        u32::from(self.local.port()) << 16 | (self.listener & 0xffff)
    }
}

/// What the last upstream attempt went to and took.
#[derive(Debug)]
struct Upstream {
    /// The backend's index in the runtime (its label is there).
    backend: usize,
    endpoint: SocketAddr,
    took: Duration,
}

/// One request's telemetry; see the module docs.
#[derive(Debug)]
pub(crate) struct Exchange {
    obs: Option<Arc<Observability>>,
    settings: Option<Arc<Runtime>>,
    /// When the head arrived (the poll's clock reading, shared with the
    /// pipeline's: [`crate::clock`]; the wall clock is read only for a
    /// sampled span or a log line: [`wall_clock_at`]).
    started: Ticks,
    /// The wall-clock time of `started`, converted once for all of the
    /// request's spans so a child never seems to start before its parent.
    wall: Option<SystemTime>,
    method: Method,
    version: Version,
    peer: Option<SocketAddr>,
    /// The client's trace context (empty when tracing is off).
    parent: Context,
    server_span: Option<Planned>,
    /// Whether spans are exported for this request's Gateway.
    tracing: bool,
    logged: bool,
    detail: Option<Box<Detail>>,
    routed: Option<Routed>,
    upstream: Option<Upstream>,
    /// Upstream attempts made (retries included).
    attempts: u32,
    /// Request body bytes, when known: the declared `Content-Length`, plus
    /// what a tunnel carried upstream. `http.server.request.body.size`
    /// records only known sizes, as OpenTelemetry's Java instrumentation
    /// does: a request without a body (a plain GET) is no sample of body
    /// sizes, and skipping it saves a histogram record on most requests.
    bytes_in: Option<u64>,
    status: u16,
    error: Option<&'static str>,
    /// Indices of the method and scheme labels ([`labels::METHODS`],
    /// [`SCHEMES`]).
    method_index: u8,
    scheme_index: u8,
    /// Whether the request is a gRPC call by its `Content-Type`.
    grpc_request: bool,
    /// Client address and principal, when the stages found them.
    identity: Option<Box<identity::Identity>>,
    /// What a gRPC call adds (`rpc.*`); `None` for other requests.
    grpc: Option<Box<grpc::GrpcCall>>,
}

impl Exchange {
    /// Starts the telemetry of `req` (whose header fields told `facts`),
    /// arriving now on a connection from `peer`, to be served by `runtime`.
    pub(crate) fn begin<B>(
        obs: Option<&Arc<Observability>>,
        runtime: Option<&Arc<Runtime>>,
        (req, facts): (&Request<B>, &HeadFacts),
        scheme: &'static str,
        peer: Option<SocketAddr>,
    ) -> Exchange {
        let method_index = labels::method_index(req.method());
        let scheme_index = SCHEMES.iter().position(|s| *s == scheme).unwrap_or(0) as u8;
        let mut exchange = Exchange {
            obs: obs.cloned(),
            settings: runtime.cloned(),
            started: Ticks::now(),
            wall: None,
            method: req.method().clone(),
            version: req.version(),
            peer,
            parent: Context::new(),
            server_span: None,
            tracing: false,
            logged: false,
            detail: None,
            routed: None,
            upstream: None,
            attempts: 0,
            bytes_in: facts.declared_length,
            status: 0,
            error: None,
            method_index,
            scheme_index,
            grpc_request: facts.grpc,
            identity: None,
            grpc: None,
        };
        let (Some(obs), Some(runtime)) = (obs, runtime) else {
            return exchange;
        };
        let t = runtime.telemetry();
        if facts.grpc {
            exchange.grpc = grpc::GrpcCall::read(req.uri().path()).map(Box::new);
        }
        obs.active.add(method_index, scheme_index, 1);
        exchange.tracing = t.tracing && obs.traces.enabled();
        exchange.logged = t.logs_this_request();
        if exchange.tracing || exchange.logged {
            let sent = facts.trace_context;
            exchange.parent = obs.propagation.extract_seen(req.headers(), sent);
        }
        // A drawn log line needs the request's details whatever happens; a
        // span only once it is known to be sampled (see `plan_span`).
        if exchange.logged {
            let head = RequestHead {
                host: req.uri().authority().map(|a| a.as_str()),
                host_header: req.headers().get(HOST),
                path: req.uri().path(),
                query: req.uri().query(),
                headers: req.headers(),
            };
            exchange.detail = Some(Detail::boxed(&head, t));
        }
        exchange
    }

    /// Whether the request is a gRPC call by its `Content-Type` (known
    /// whether or not telemetry is on).
    pub(crate) fn grpc_request(&self) -> bool {
        self.grpc_request
    }

    fn telemetry(&self) -> Option<&RuntimeTelemetry> {
        self.settings.as_ref().map(|r| r.telemetry())
    }

    /// Records what routing chose and plans the server span (the sampling
    /// decision uses the rule's ratio, else the Gateway's, else the
    /// environment's).
    pub(crate) fn routed(
        &mut self,
        head: &RequestHead<'_>,
        route: usize,
        sampler: Option<&RatioSampler>,
        (local, listener): (SocketAddr, usize),
        template: &Arc<str>,
    ) {
        if self.obs.is_none() {
            return;
        }
        self.routed = Some(Routed {
            template: Arc::clone(template),
            local,
            listener: u32::try_from(listener).unwrap_or(u32::MAX),
            route: u32::try_from(route).unwrap_or(u32::MAX),
        });
        self.plan_span(sampler, Some(head));
    }

    /// Records that no route wants the request: its server span is
    /// planned with the Gateway's or the environment's sampler, so
    /// gateway-made 404s are traced too.
    pub(crate) fn unrouted(&mut self, head: &RequestHead<'_>) {
        self.plan_span(None, Some(head));
    }

    /// Plans the server span (once): sampled by `route`'s sampler, else
    /// the Gateway's, else the environment's. The request's details are
    /// copied from `head` only when the span is sampled, so an unsampled
    /// request copies nothing. A request answered before routing (a bad
    /// head) has no `head`: its span carries what the exchange knows.
    #[inline]
    fn plan_span(&mut self, route: Option<&RatioSampler>, head: Option<&RequestHead<'_>>) {
        // Checked here, inlined into both callers: most requests of a
        // Gateway without tracing, and every response, stop at this test.
        if self.tracing && self.server_span.is_none() {
            self.plan_new_span(route, head);
        }
    }

    /// [`Exchange::plan_span`] once the span is known to be wanted.
    fn plan_new_span(&mut self, route: Option<&RatioSampler>, head: Option<&RequestHead<'_>>) {
        let (Some(obs), Some(runtime)) = (&self.obs, &self.settings) else {
            return;
        };
        let t = runtime.telemetry();
        // The ratio is the route's, the Gateway's or the environment's;
        // the kind (follow the client or not) the Gateway's or the
        // environment's.
        let kind = t.parent_based.unwrap_or(obs.sampler.follows_parent());
        let sampler = route
            .or(t.sampler.as_ref())
            .unwrap_or(&obs.sampler)
            .parent_based(kind);
        let span = spans::plan_server(&sampler, &self.parent);
        if span.sampled()
            && self.detail.is_none()
            && let Some(head) = head
        {
            self.detail = Some(Detail::boxed(head, t));
        }
        self.server_span = Some(span);
    }

    /// Puts the server span into `headers` as the trace context of what is
    /// sent on its behalf (mirrors); nothing when tracing is off.
    pub(crate) fn inject(&self, headers: &mut HeaderMap) {
        if let (Some(obs), Some(span)) = (&self.obs, &self.server_span) {
            obs.propagation
                .inject_span(&span.context(&self.parent), &self.parent, headers);
        }
    }

    /// Records the response about to be sent: its status, `error.type`
    /// (the gateway's own error label, else the status of a 5xx), and the
    /// response headers to record.
    pub(crate) fn respond<B>(&mut self, response: &Response<B>) {
        self.plan_span(None, None);
        self.status = response.status().as_u16();
        if let Some(call) = &mut self.grpc {
            call.observe(response.headers());
        }
        // The gateway's own answers are all 4xx or 5xx, or gRPC failures
        // (200 with a non-zero `grpc-status`), and carry their kind as an
        // extension: a success is not looked up, and a backend's
        // `x-tollgate-error` header is the backend's business.
        let grpc_failed = self
            .grpc
            .as_ref()
            .is_some_and(|c| c.status().unwrap_or(0) != 0);
        let made = (self.status >= 400 || grpc_failed)
            .then(|| response.extensions().get::<GatewayError>())
            .flatten();
        self.error = match made {
            Some(GatewayError(kind)) => Some(kind.label()),
            None => response
                .status()
                .is_server_error()
                .then(|| status_label(self.status)),
        };
        if let (Some(detail), Some(t)) = (
            &mut self.detail,
            self.settings.as_ref().map(|r| r.telemetry()),
        ) {
            detail.record_response_headers(t, response.headers());
        }
    }

    /// Records the trailers at the end of the response body (a gRPC
    /// call's `grpc-status`).
    pub(crate) fn trailers(&mut self, trailers: &HeaderMap) {
        if let Some(call) = &mut self.grpc {
            call.observe(trailers);
        }
    }

    /// Records a relayed upgrade when its tunnel ends: `up` bytes went
    /// from the client to the backend (counted as request body), `down`
    /// back (response body); the duration covers the tunnel's life.
    pub(crate) fn finish_tunnel(mut self, up: u64, down: u64) {
        self.bytes_in = Some(self.bytes_in.unwrap_or(0).saturating_add(up));
        self.finish(down);
    }

    /// Records the finished request: `sent` body bytes went out.
    #[inline]
    pub(crate) fn finish(mut self, sent: u64) {
        if self.obs.is_some() {
            self.record(sent);
            // Recorded: nothing is left for `drop` to do.
            self.obs = None;
        }
    }

    /// Records `response`, which the gateway made before the request was
    /// served (a refused head), as the whole exchange, and returns it.
    pub(crate) fn answered<B>(mut self, response: Response<B>) -> Response<B> {
        self.respond(&response);
        self.finish(0);
        response
    }

    fn record(&self, sent: u64) {
        let (Some(obs), Some(runtime)) = (&self.obs, &self.settings) else {
            return;
        };
        let started = self.started;
        let took = started.elapsed();
        obs.active.add(self.method_index, self.scheme_index, -1);
        let key = RequestKey {
            route: self.routed.as_ref().map_or(u32::MAX, |r| r.route),
            template: self
                .routed
                .as_ref()
                .map_or(0, |r| Arc::as_ptr(&r.template).cast::<u8>() as usize),
            listener: self.routed.as_ref().map_or(u32::MAX, Routed::listener_key),
            method: self.method_index,
            status: self.status,
            error: labels::error_index(self.error),
            version: version_index(self.version),
            grpc: self.grpc.as_ref().map_or(0, |c| c.key()),
        };
        let attributes = || self.metric_attributes();
        let t = runtime.telemetry();
        t.bound.request(key, &obs.instruments, attributes, |bound| {
            bound.duration.record(took.as_secs_f64());
            if let Some(bytes) = self.bytes_in {
                bound.request_size.record(bytes);
            }
            bound.response_size.record(sent);
        });
        let sampled = self.server_span.as_ref().is_some_and(Planned::sampled);
        if sampled || self.logged {
            self.write_records(obs, sampled, sent, took);
        }
    }

    /// The span and the log line of a request that wants them. Out of
    /// line and marked cold: most requests want neither, and building
    /// them is kilobytes of code that would otherwise sit between the
    /// instructions every request runs, costing instruction-cache lines
    /// at each.
    #[cold]
    #[inline(never)]
    fn write_records(&self, obs: &Observability, sampled: bool, sent: u64, took: Duration) {
        let start = self.wall.unwrap_or_else(|| wall_clock_at(self.started));
        if sampled {
            self.write_span(obs, self.metric_attributes(), start, took);
        }
        if self.logged {
            self.write_log(obs, sent, start, took);
        }
    }

    /// The wall-clock time the request started (converted once).
    pub(super) fn wall_start(&mut self) -> SystemTime {
        *self.wall.get_or_insert_with(|| wall_clock_at(self.started))
    }
}

/// `error.type` of a request whose client went away before its response
/// was out (the connection closed or the stream was reset while it was
/// being served, or a drain's deadline cut it): nginx's 499.
pub(crate) const CLIENT_CLOSED: &str = "client-closed";

impl Drop for Exchange {
    /// A request dropped unfinished still leaves the in-flight count, and
    /// is recorded (duration, span, log line) as [`CLIENT_CLOSED`]: with
    /// no status when no response had been chosen yet.
    fn drop(&mut self) {
        if self.obs.is_some() {
            self.error = Some(CLIENT_CLOSED);
            self.record(0);
        }
    }
}
