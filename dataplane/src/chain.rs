//! Filter chains: a rule's (or a backend reference's) filters, built once
//! per snapshot into a closed enum and applied in manifest order.
//!
//! Request-side stages may answer directly (CORS preflight, redirect) or
//! change the request on its way upstream (header modifier, URL rewrite) or
//! pick it for mirroring. Response-side stages (response header modifier,
//! CORS decoration) run on the upstream's response. Which filter does what is
//! decided here and nowhere else.
//!
//! `Runtime::build` builds the chains and the proxy pipeline applies them,
//! so this module sits below both: the runtime never imports the proxy.

use crate::body::{ProxyBody, empty};
use crate::context::RequestContext;
use crate::error::local_response;
use crate::filters::{self, MirrorStage, RedirectInput};
use crate::upstream::BackendSet;
use http::header::{HeaderMap, HeaderValue, LOCATION};
use http::{Response, StatusCode};
use tollgate_snapshot::{Cors, Filter, HeaderModifier, Redirect, UrlRewrite};

/// One built filter.
#[derive(Debug)]
pub(crate) enum Stage {
    /// `CORS`: answer preflights on the request side, decorate responses.
    Cors(Cors),
    /// `RequestRedirect`: answer with a `Location`.
    Redirect(Redirect),
    /// `RequestHeaderModifier`.
    RequestHeaders(HeaderModifier),
    /// `ResponseHeaderModifier`.
    ResponseHeaders(HeaderModifier),
    /// `URLRewrite`: new `Host` and/or path sent upstream.
    Rewrite(UrlRewrite),
    /// `RequestMirror` to a valid backend.
    Mirror(MirrorStage),
}

/// The built filters of a rule or of a backend reference, in manifest order.
/// A boxed slice: most chains are empty and then allocate nothing.
#[derive(Debug, Default)]
pub(crate) struct Chain {
    stages: Box<[Stage]>,
}

impl Chain {
    /// Builds the stages of `filters`. A mirror whose backend reference is
    /// invalid is dropped here: it can never send anything.
    pub(crate) fn build(at: &str, filters: &[Filter], backends: &BackendSet) -> Chain {
        let stages = filters
            .iter()
            .filter_map(|filter| match filter {
                Filter::Cors(c) => Some(Stage::Cors(c.clone())),
                Filter::RequestRedirect(r) => Some(Stage::Redirect(r.clone())),
                Filter::RequestHeaderModifier(m) => Some(Stage::RequestHeaders(m.clone())),
                Filter::ResponseHeaderModifier(m) => Some(Stage::ResponseHeaders(m.clone())),
                Filter::UrlRewrite(u) => Some(Stage::Rewrite(u.clone())),
                Filter::RequestMirror(m) => {
                    match m.backend.filter(|i| backends.get(*i).is_some()) {
                        Some(backend) => Some(Stage::Mirror(MirrorStage::new(
                            backend,
                            u64::from(m.numerator),
                            u64::from(m.denominator),
                        ))),
                        None => {
                            tracing::debug!(at, "mirror with an invalid backend is skipped");
                            None
                        }
                    }
                }
            })
            .collect();
        Chain { stages }
    }

    /// Whether a CORS filter needs the request headers at response time.
    pub(crate) fn has_cors(&self) -> bool {
        self.stages.iter().any(|s| matches!(s, Stage::Cors(_)))
    }

    /// The answer to a CORS preflight, when the rule has a CORS filter and
    /// the request is one. Runs before authentication, since browsers send
    /// preflights without credentials.
    pub(crate) fn preflight(&self, ctx: &RequestContext<'_>) -> Option<Response<ProxyBody>> {
        self.stages.iter().find_map(|stage| match stage {
            Stage::Cors(cors) => {
                filters::cors::preflight(cors, &ctx.method, &ctx.headers).map(preflight_response)
            }
            _ => None,
        })
    }

    /// Runs the request-side stages in order. `Some` is the gateway's own
    /// answer (preflight or redirect): later stages and the upstream are
    /// skipped.
    pub(crate) fn apply_request<'r>(
        &'r self,
        ctx: &mut RequestContext<'r>,
    ) -> Option<Response<ProxyBody>> {
        for stage in &self.stages {
            match stage {
                // Preflights were answered before authentication.
                Stage::Cors(_) => {}
                Stage::Redirect(redirect) => return Some(redirect_response(redirect, ctx)),
                Stage::RequestHeaders(modifier) => {
                    filters::apply_header_modifier(modifier, &mut ctx.headers);
                }
                Stage::Rewrite(rewrite) => apply_rewrite(rewrite, ctx),
                Stage::Mirror(mirror) => {
                    if mirror.picks_next() {
                        ctx.mirrors.push(mirror);
                    }
                }
                Stage::ResponseHeaders(_) => {}
            }
        }
        None
    }

    /// Runs the response-side stages in order. `request` holds the request
    /// headers as received when [`Chain::has_cors`]; CORS decoration is
    /// skipped without them.
    pub(crate) fn apply_response(&self, request: Option<&HeaderMap>, response: &mut HeaderMap) {
        for stage in &self.stages {
            match stage {
                Stage::ResponseHeaders(modifier) => {
                    filters::apply_header_modifier(modifier, response)
                }
                Stage::Cors(cors) => {
                    if let Some(request) = request {
                        filters::cors::decorate(cors, request, response);
                    }
                }
                _ => {}
            }
        }
    }
}

fn apply_rewrite(rewrite: &UrlRewrite, ctx: &mut RequestContext<'_>) {
    if let Some(hostname) = &rewrite.hostname {
        match HeaderValue::from_str(hostname) {
            Ok(value) => ctx.host_header = Some(value),
            Err(_) => tracing::warn!(hostname, "URLRewrite hostname is not a valid header value"),
        }
    }
    if let Some(path) = &rewrite.path {
        ctx.path = filters::rewrite_path(path, &ctx.path, ctx.matched_prefix);
    }
}

fn redirect_response(redirect: &Redirect, ctx: &RequestContext<'_>) -> Response<ProxyBody> {
    let location = filters::redirect_location(
        redirect,
        &RedirectInput {
            scheme: ctx.scheme,
            host: &ctx.host,
            listener_port: ctx.listener_port,
            path: &ctx.path,
            query: ctx.query.as_deref(),
            matched_prefix: ctx.matched_prefix,
        },
    );
    // Validation admits only redirect codes; fall back to 302 regardless.
    let status = StatusCode::from_u16(redirect.status_code).unwrap_or(StatusCode::FOUND);
    let mut response = local_response(status, &format!("redirecting to {location}"));
    match HeaderValue::from_str(&location) {
        Ok(value) => {
            response.headers_mut().insert(LOCATION, value);
        }
        Err(_) => tracing::warn!(location, "redirect Location is not a valid header value"),
    }
    response
}

/// The filter's preflight answer with the gateway's own body shape (no
/// body at all for 204).
fn preflight_response(answer: Response<()>) -> Response<ProxyBody> {
    let (parts, ()) = answer.into_parts();
    let mut response = if parts.status == StatusCode::NO_CONTENT {
        Response::new(empty())
    } else {
        local_response(parts.status, "CORS preflight")
    };
    *response.status_mut() = parts.status;
    response.headers_mut().extend(parts.headers);
    response
}
