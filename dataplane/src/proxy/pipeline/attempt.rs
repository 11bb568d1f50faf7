//! Stage 7 of the pipeline: one upstream attempt (building the request
//! for the endpoint, sending it within the rule's timeouts, telling the
//! exchange) and the [`retry::Attempt`] the retry policy drives.

use super::super::retry;
use super::super::upgrade::Offer;
use super::{Pipeline, body};
use crate::body::ProxyBody;
use crate::boxed::pin_in_place;
use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::runtime::{BackendChoice, RouteRuntime};
use crate::telemetry::Exchange;
use crate::upstream::{Added, Endpoint, UpstreamError, add_fields};
use futures_util::FutureExt;
use futures_util::future::Either;
use http::header::{HOST, HeaderMap, HeaderValue};
use http::{Request, Response, Uri};
use std::time::Duration;

impl Pipeline<'_> {
    /// One upstream attempt to `leg` (rule, backend reference, endpoint)
    /// with `(headers, body, resend count)`, told to `exchange`; an
    /// `upgrade` offer (and its backend's name) prepares the request for
    /// the backend's `101`.
    pub(super) async fn attempt(
        &self,
        ctx: &RequestContext<'_>,
        (route, choice, endpoint): (&RouteRuntime, &BackendChoice, &Endpoint),
        (mut headers, body, resends): (HeaderMap, ProxyBody, u32),
        upgrade: Option<(&Offer, &str)>,
        exchange: &mut Exchange,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let attempt = exchange.attempt(&mut headers).resent(resends);
        let mut upstream = upstream_request(ctx, endpoint, headers, body)?;
        if let Some((offer, backend)) = upgrade {
            offer.prepare(&mut upstream, endpoint.protocol, backend)?;
        }
        let added = attempt.trace();
        let sent = self
            .send(route, endpoint, upstream, upgrade.is_some(), added)
            .await;
        if let Some((index, label)) = choice
            .backend
            .and_then(|i| Some((i, self.runtime.backend_label(i)?)))
        {
            let outcome = match &sent {
                Ok(response) => Ok(response.status().as_u16()),
                Err(error) => Err(error.kind().label()),
            };
            let url = |with_query| url_full(ctx, endpoint, with_query);
            exchange.attempted(attempt, (index, label), endpoint.address(), outcome, url);
        }
        sent
    }

    /// One upstream attempt, bounded by the rule's timeouts (for an
    /// `upgrade`, up to the backend's answer: a tunnel has its own idle
    /// timeout).
    ///
    /// Built from combinators, not an `async fn`: that would keep the
    /// request a second time, and the client's future beside the timeout
    /// that holds it, in the future every request moves through its layers.
    fn send<'s>(
        &'s self,
        route: &RouteRuntime,
        endpoint: &'s Endpoint,
        mut request: Request<ProxyBody>,
        upgrade: bool,
        added: Added<'s>,
    ) -> impl Future<Output = Result<Response<ProxyBody>, ProxyError>> + Send + 's {
        // The upgrade's future is boxed: it is several times the size of a
        // plain exchange's, and every request's future would carry its room.
        // The plain exchange's (about 1.1 kB) is boxed too, built in its box
        // (`crate::boxed`): the combinators below and the caller's await
        // would otherwise copy it four times over.
        let call = if upgrade {
            add_fields(request.headers_mut(), added);
            Either::Left(Box::pin(endpoint.send_upgrade(request)))
        } else {
            Either::Right(pin_in_place(|| endpoint.send_with(request, added)))
        };
        let request_left = self.request_ms(route).map(|ms| {
            (
                Duration::from_millis(ms).saturating_sub(self.started.age()),
                ms,
            )
        });
        let per_try = route
            .timeouts
            .backend_request_ms
            .map(|ms| (Duration::from_millis(ms), ms));
        let limit = request_left
            .into_iter()
            .chain(per_try)
            .min_by_key(|(left, _)| *left);
        match limit {
            Some((left, after_ms)) => Either::Left(tokio::time::timeout(left, call).map(
                move |timed| match timed {
                    Ok(result) => result.map_err(|error| upstream_error(error, endpoint)),
                    Err(_) => Err(ProxyError::UpstreamTimeout {
                        endpoint: endpoint.authority.to_string(),
                        after_ms,
                    }),
                },
            )),
            None => Either::Right(
                call.map(move |result| result.map_err(|error| upstream_error(error, endpoint))),
            ),
        }
    }
}

/// What an upstream client's failure to `endpoint` means to the client.
fn upstream_error(error: UpstreamError, endpoint: &Endpoint) -> ProxyError {
    let endpoint = endpoint.authority.to_string();
    match error {
        UpstreamError::Connect(source) => ProxyError::UpstreamConnect { endpoint, source },
        UpstreamError::Tls(source) => ProxyError::UpstreamTls { endpoint, source },
        UpstreamError::Protocol(source) => match body::client_fault(source) {
            Ok(client) => client,
            Err(source) => ProxyError::UpstreamProtocol { endpoint, source },
        },
    }
}

/// What a retried request's attempts share: everything but the endpoint,
/// the body and the resend count.
pub(super) struct Leg<'p, 'a> {
    pub(super) pipeline: &'p Pipeline<'a>,
    pub(super) ctx: &'p RequestContext<'p>,
    pub(super) route: &'p RouteRuntime,
    pub(super) choice: &'p BackendChoice,
    pub(super) headers: HeaderMap,
}

impl retry::Attempt for Leg<'_, '_> {
    fn attempt(
        &mut self,
        exchange: &mut Exchange,
        endpoint: &Endpoint,
        body: ProxyBody,
        resend_count: u32,
    ) -> impl Future<Output = retry::Sent> + Send {
        let leg = (self.route, self.choice, endpoint);
        let request = (self.headers.clone(), body, resend_count);
        self.pipeline
            .attempt(self.ctx, leg, request, None, exchange)
    }
}

/// The absolute URL an attempt sends to (`url.full` of its client span):
/// the endpoint's address, the path as rewritten, and the query only when
/// the Gateway records queries.
///
/// Built by appending to one allocation of the exact size: `format!`'s
/// machinery cost about 700 instructions here, for every sampled request.
fn url_full(ctx: &RequestContext<'_>, endpoint: &Endpoint, with_query: bool) -> String {
    let scheme = endpoint.absolute_scheme();
    let scheme = scheme.as_ref().map_or("http", |s| s.as_str());
    let authority = endpoint.authority.as_str();
    let query = ctx.query.as_deref().filter(|_| with_query);
    let len = scheme.len() + 3 + authority.len() + ctx.path.len();
    let mut url = String::with_capacity(len + query.map_or(0, |q| q.len() + 1));
    for part in [scheme, "://", authority, &ctx.path] {
        url.push_str(part);
    }
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// The request to send to `endpoint`: the context's method, path and query,
/// `headers`, and `Host` as received or rewritten (the endpoint when the
/// client named no host, since HTTP/1.1 requires one).
pub(super) fn upstream_request(
    ctx: &RequestContext<'_>,
    endpoint: &Endpoint,
    mut headers: HeaderMap,
    body: ProxyBody,
) -> Result<Request<ProxyBody>, ProxyError> {
    // Pooled HTTP/1.1 connections are per endpoint: origin-form is what
    // goes on the wire. The h2c and TLS clients pool by the absolute URI.
    let uri = match (endpoint.absolute_scheme(), ctx.unchanged_target()) {
        (None, Some(target)) => target.clone(),
        (scheme, _) => match scheme {
            None => Uri::builder(),
            Some(scheme) => Uri::builder()
                .scheme(scheme)
                .authority(endpoint.authority.clone()),
        }
        .path_and_query(ctx.path_and_query())
        .build()
        .map_err(|_| ProxyError::BadRequest("invalid request path".into()))?,
    };
    let host = match &ctx.host_header {
        Some(host) => host.clone(),
        None => HeaderValue::from_str(endpoint.authority.as_str())
            .map_err(|_| ProxyError::BadRequest("invalid host".into()))?,
    };
    headers.insert(HOST, host);
    let mut request = Request::new(body);
    *request.method_mut() = ctx.method.clone();
    *request.uri_mut() = uri;
    *request.version_mut() = endpoint.request_version();
    *request.headers_mut() = headers;
    Ok(request)
}
