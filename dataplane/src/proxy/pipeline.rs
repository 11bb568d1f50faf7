//! The pipeline: the order of the request stages, written down once.
//!
//! ```text
//!   downstream request
//!     │
//!   1 head      absolute-form/`:authority` → host; Host required on HTTP/1.1;
//!     │         path normalized (routing and upstream see the same path);
//!     │         the client's hop-by-hop headers and client-cert header
//!     │         removed                                            head.rs, hygiene.rs
//!   2 route     socket router: host, path, method, headers, query → rule   router/
//!   3 rule      rule filters in manifest order: CORS preflight or redirect
//!     │         answer here; header modifier, URL rewrite, mirror pick     chain.rs
//!   4 forward   X-Forwarded-*, Forwarded; a verified client certificate's
//!     │         details header (made at the handshake)  hygiene.rs, tls/client_auth.rs
//!   5 mirror    body read limits; picked mirrors sent in the background,
//!     │         body teed                                          body.rs, mirror.rs
//!   6 balance   weighted backend reference → its filters → endpoint (RR)   upstream/
//!   7 upstream  send; request_ms over the whole exchange, backend_request_ms
//!     │         per attempt, both up to the response headers; a failure of
//!     │         the client's body is the client's (400/408), not the upstream's;
//!     │         a gRPC call's `grpc-timeout` shortens request_ms  grpc.rs
//!     │         the rule's retry policy tries again within its budget  retry.rs
//!             (telemetry: the route chosen plans the server span; its trace
//!              context goes into the request after forwarding headers, and
//!              each upstream attempt gets a client span as parent)
//!   8 response  the upstream's hop-by-hop headers removed, then response
//!     │         filters (rule, then backend), CORS decoration; body streamed
//!   downstream response            (an error at any stage → error::respond)
//! ```
//!
//! A WebSocket upgrade takes the same stages: its offer is read before
//! hygiene (1), the upgrade request goes out on a connection of its own
//! (7), and a `101` leaves the backend's side of the tunnel for the server
//! (8); see `upgrade.rs`.
//!
//! Hop-by-hop headers go first on both sides: a header the client (or the
//! backend) names in `Connection` never reaches the other side, so routing
//! must not see it either, and it must not take away a header a filter
//! adds. Removing them before routing and filters makes what routes, what
//! filters add and what the other side receives agree.

mod attempt;

use super::body::{self, BodyLimits, RequestBody};
use super::connection::ConnInfo;
use super::head;
use super::hygiene::{add_forwarding, remove_hop_by_hop};
use super::mirror::{self, Tee};
use super::retry;
use super::upgrade::Offer;
use crate::body::{DownstreamBody, ProxyBody};
use crate::boxed::pin_in_place;
use crate::clock::Ticks;
use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::router::RequestView;
use crate::runtime::{BackendChoice, RouteRuntime, Runtime, SocketRuntime};
use crate::stage::Flow;
use crate::telemetry::{Exchange, RequestHead};
use crate::upstream::BuiltBackend;
use attempt::{Leg, upstream_request};
use http::{Request, Response, Version};
use http_body_util::BodyExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A pipeline error with the configuration element that was serving the
/// request, for the log line.
#[derive(Debug)]
pub(crate) struct Failure<'a> {
    pub(crate) error: ProxyError,
    pub(crate) source: &'a str,
}

fn at<'s>(source: &'s str) -> impl FnOnce(ProxyError) -> Failure<'s> {
    move |error| Failure { error, source }
}

/// One request's trip through the stages drawn in the module docs.
pub(crate) struct Pipeline<'a> {
    runtime: &'a Runtime,
    conn: &'a ConnInfo,
    /// When the head arrived (the clock reading the exchange shares).
    started: Ticks,
    /// A gRPC call's `grpc-timeout`, read before the request is taken apart.
    grpc_timeout: Option<Duration>,
    /// Whether routing chose a GRPCRoute rule, so a later failure is
    /// answered the gRPC way even to a client that did not say `grpc`.
    grpc_route: AtomicBool,
}

impl<'a> Pipeline<'a> {
    /// A pipeline for a request that arrived now.
    pub(crate) fn new(runtime: &'a Runtime, conn: &'a ConnInfo) -> Pipeline<'a> {
        Pipeline {
            runtime,
            conn,
            started: Ticks::now(),
            grpc_timeout: None,
            grpc_route: AtomicBool::new(false),
        }
    }

    /// The pipeline of a gRPC call with the client's `grpc-timeout`.
    pub(crate) fn with_grpc_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.grpc_timeout = timeout;
        self
    }

    /// Whether routing chose a GRPCRoute rule.
    pub(crate) fn routed_grpc(&self) -> bool {
        self.grpc_route.load(Ordering::Relaxed)
    }

    /// The request timeout of `route` for this request: the rule's, or the
    /// gRPC client's deadline when that is shorter.
    fn request_ms(&self, route: &RouteRuntime) -> Option<u64> {
        crate::grpc::request_ms(route.timeouts.request_ms, self.grpc_timeout)
    }

    /// Runs every stage; `Err` is turned into a response by the caller.
    pub(crate) async fn run(
        &self,
        req: Request<DownstreamBody>,
        exchange: &mut Exchange,
    ) -> Result<Response<ProxyBody>, Failure<'a>> {
        let runtime = self.runtime;
        let socket = runtime.socket(&self.conn.local).ok_or_else(|| Failure {
            error: ProxyError::NoRoute {
                host: String::new(),
                path: String::new(),
            },
            source: runtime.snapshot().gateway.as_str(),
        })?;
        let (mut parts, body) = req.into_parts();
        let offer = Offer::read(&parts);
        // 1 head
        let allow_encoded_slashes = runtime.snapshot().settings.allow_encoded_slashes;
        let head = head::Head {
            uri: &parts.uri,
            headers: &parts.headers,
            version: parts.version,
        };
        let target = head::read(head, allow_encoded_slashes).map_err(at(&socket.name))?;
        remove_hop_by_hop(&mut parts.headers);
        // Only the gateway speaks for a client certificate: a client's own
        // copy goes before anything (routing, filters) can see it. Looked
        // for by walking the few names, cheaper than hashing the name.
        let cert_header = runtime.client_cert_header();
        if parts.headers.keys().any(|name| name == cert_header) {
            parts.headers.remove(cert_header);
        }
        // 2 route
        let view = RequestView {
            host: &target.host,
            path: &target.path,
            query: target.query.as_deref(),
            method: &parts.method,
            headers: &parts.headers,
        };
        let seen = RequestHead {
            host: None,
            host_header: target.host_header.as_ref(),
            path: &target.path,
            query: target.query.as_deref(),
            headers: &parts.headers,
        };
        self.check_sni(socket, &target.host)
            .map_err(at(&socket.name))?;
        let Some(found) = socket.router.find(&view) else {
            exchange.unrouted(&seen);
            let error = ProxyError::NoRoute {
                host: target.host,
                path: target.path,
            };
            return Err(Failure {
                error,
                source: &socket.name,
            });
        };
        let route = runtime.route(found.route).ok_or_else(|| Failure {
            error: ProxyError::NoBackend(format!("route index {} missing", found.route)),
            source: listener_name(socket, found.listener),
        })?;
        self.grpc_route.store(route.grpc, Ordering::Relaxed);
        exchange.routed(
            &seen,
            found.route,
            route.sampler.as_ref(),
            (self.conn.local, found.listener),
            found.path_template,
        );
        let cors_request = needs_request_headers(route).then(|| parts.headers.clone());
        let original_host = target.host_header.clone();
        let client = runtime
            .client_address()
            .client(self.conn.peer.ip(), &parts.headers);
        let mut ctx = RequestContext {
            method: parts.method,
            headers: parts.headers,
            scheme: self.conn.scheme,
            host: target.host,
            host_header: target.host_header,
            original_host,
            path: target.path,
            query: target.query,
            target: parts.uri,
            listener_port: socket.port,
            matched_prefix: found.matched_prefix,
            mirrors: Vec::new(),
            client,
            principal: None,
            route: &route.name,
            rate_limit: None,
            response_headers: None,
            completions: Vec::new(),
            // Only stages make spans of their own: a sampled request
            // without any allocates nothing for them.
            trace: if route.stages.is_empty() {
                None
            } else {
                exchange.stage_trace()
            },
        };
        // 3 stages: a CORS preflight is answered before authentication (a
        // browser sends no credentials with one), then auth
        if let Some(answer) = route.chain.preflight(&ctx) {
            return Ok(answer);
        }
        if !route.stages.is_empty() {
            let flow = route.stages.on_request(&mut ctx).await;
            if let Some(trace) = ctx.trace.take() {
                exchange.stage_spans(*trace);
            }
            exchange.identified(ctx.client, ctx.principal.as_ref());
            if let Some(decision) = ctx.rate_limit {
                exchange.rate_limited(decision);
            }
            if let Flow::Answer(answer) = flow.map_err(at(&route.name))? {
                return Ok(answer);
            }
        } else if ctx.client != self.conn.peer.ip() {
            exchange.identified(ctx.client, None);
        }
        // 4 rule
        if let Some(answer) = route.chain.apply_request(&mut ctx) {
            return Ok(answer);
        }
        // 4 forward
        add_forwarding(
            &mut ctx.headers,
            &self.conn.forwarding,
            ctx.original_host.as_ref(),
        );
        if let Some(details) = &self.conn.client_cert {
            ctx.headers
                .insert(runtime.client_cert_header().clone(), details.clone());
        }
        // 5 mirror
        let limits = BodyLimits::from_settings(&runtime.snapshot().settings);
        let body = RequestBody::new(body, limits).boxed_unsync();
        let body = exchange.count_request_body(body);
        let body = self.send_mirrors(&mut ctx, body, exchange);
        // 6 balance
        let (choice, backend) = self.select_backend(route).map_err(at(&route.name))?;
        if let Some(answer) = choice.chain.apply_request(&mut ctx) {
            return Ok(answer);
        }
        let body = self.send_mirrors(&mut ctx, body, exchange);
        let endpoint = backend.select().ok_or_else(|| Failure {
            error: ProxyError::NoEndpoints(backend.name.clone()),
            source: &route.name,
        })?;
        // 7 upstream (retries: retry.rs; an upgrade is sent once)
        let headers = std::mem::take(&mut ctx.headers);
        let sent = match (&route.retry, &offer) {
            (Some(retry), None) => {
                let deadline = self
                    .request_ms(route)
                    .map(|ms| self.started.instant() + Duration::from_millis(ms));
                let leg = Leg {
                    pipeline: self,
                    ctx: &ctx,
                    route,
                    choice,
                    headers,
                };
                // Boxed, as the other cold paths: see `crate::server::h1`
                // (and built in its box: `crate::boxed`).
                pin_in_place(|| {
                    retry::send(retry, backend, endpoint, body, deadline, exchange, leg)
                })
                .await
            }
            _ => {
                let leg = (route, choice, endpoint);
                let upgrade = offer.as_ref().map(|o| (o, backend.name.as_str()));
                self.attempt(&ctx, leg, (headers, body, 0), upgrade, exchange)
                    .await
            }
        };
        let response = sent.map_err(at(&route.name))?;
        // 8 response
        let (mut head, body) = response.into_parts();
        remove_hop_by_hop(&mut head.headers);
        for chain in [&route.chain, &choice.chain] {
            chain.apply_response(cors_request.as_ref(), &mut head.headers);
        }
        route.stages.on_response(&ctx, &mut head);
        if let Some(added) = ctx.response_headers.take() {
            head.headers.extend(*added);
        }
        let body = crate::stage::completing(body, &head, &mut ctx, self.started);
        if let Some(offer) = &offer {
            offer.respond(&mut head).map_err(at(&route.name))?;
        }
        head.version = Version::default();
        Ok(Response::from_parts(head, body))
    }

    /// Sends every mirror picked so far and returns the main body, teed when
    /// a mirror needs a copy of it.
    ///
    /// Mirrors carry the server span as their trace parent.
    ///
    /// The test is inlined (most requests have no mirror; the call alone
    /// was 17 instructions, twice a request).
    #[inline]
    fn send_mirrors(
        &self,
        ctx: &mut RequestContext<'_>,
        body: ProxyBody,
        exchange: &Exchange,
    ) -> ProxyBody {
        if ctx.mirrors.is_empty() {
            return body;
        }
        self.mirror(ctx, body, exchange)
    }

    /// [`Pipeline::send_mirrors`] when there are mirrors to send.
    fn mirror(
        &self,
        ctx: &mut RequestContext<'_>,
        body: ProxyBody,
        exchange: &Exchange,
    ) -> ProxyBody {
        exchange.inject(&mut ctx.headers);
        let mut tee = Tee::new(body);
        for stage in std::mem::take(&mut ctx.mirrors) {
            let Some(backend) = self.runtime.backends().get(stage.backend) else {
                continue;
            };
            let Some(endpoint) = backend.select() else {
                tracing::debug!(backend = %backend.name, "mirror backend has no endpoints; skipped");
                continue;
            };
            let copy = upstream_request(ctx, endpoint, ctx.headers.clone(), tee.tap());
            if let Ok(copy) = copy {
                mirror::spawn(endpoint.clone(), &backend.name, copy);
            }
        }
        tee.into_body()
    }

    /// Picks the rule's next backend reference by weight.
    fn select_backend<'r>(
        &self,
        route: &'r RouteRuntime,
    ) -> Result<(&'r BackendChoice, &'a BuiltBackend), ProxyError> {
        let choice = route
            .balancer
            .select()
            .and_then(|i| route.backends.get(i))
            .ok_or_else(|| {
                ProxyError::NoBackend("the rule has no backend with a weight above 0".into())
            })?;
        let backend = choice
            .backend
            .and_then(|i| self.runtime.backends().get(i))
            .ok_or_else(|| {
                ProxyError::NoBackend("the chosen backend reference is invalid".into())
            })?;
        Ok((choice, backend))
    }
}

fn needs_request_headers(route: &RouteRuntime) -> bool {
    route.chain.has_cors() || route.backends.iter().any(|b| b.chain.has_cors())
}

impl Pipeline<'_> {
    /// On a TLS connection, the Host must select the listener the SNI did:
    /// certificates and TLS options are per listener, so a client that
    /// reuses a connection for another name (HTTP/2 coalescing, or a Host
    /// that differs from the SNI) is told to connect again (421).
    fn check_sni(&self, socket: &SocketRuntime, host: &str) -> Result<(), ProxyError> {
        let Some(sni) = &self.conn.sni_listener else {
            return Ok(());
        };
        let by_host = socket.router.listener_for(host);
        match by_host.and_then(|i| socket.listeners.get(i)) {
            Some(name) if name.as_str() != &**sni => Err(ProxyError::Misdirected {
                host: host.to_string(),
                listener: sni.to_string(),
            }),
            _ => Ok(()),
        }
    }
}

fn listener_name(socket: &SocketRuntime, listener: usize) -> &str {
    socket
        .listeners
        .get(listener)
        .map_or(socket.name.as_str(), String::as_str)
}
