//! External authorization: ask another service whether a request may pass,
//! the way Envoy's `ext_authz` HTTP mode and the Gateway API
//! `ExternalAuth` filter do.
//!
//! The check is the client's request without its body: same method, the
//! target's path followed by the request's path and query, the selected
//! headers, and `X-Forwarded-{For,Proto,Host,Uri,Method}` written by the
//! gateway (never the client's copies), so services built for forward auth
//! (oauth2-proxy, Authelia) know what was asked and by whom.
//!
//! A 2xx lets the request through and copies the named headers of the
//! answer onto it. Any other answer *is* the response: status, headers and
//! body reach the client unchanged, so a 302 to a sign-in page with its
//! `Set-Cookie` works. When the service cannot be reached or does not answer
//! in time the call fails closed with a 503 (the Gateway API filter "MUST
//! fail closed" and names no status; a 503 says the failure is the
//! gateway's dependency, not the caller) unless the policy says
//! `failOpen`. The gRPC protocol (`envoy.service.auth.v3`) is in
//! [`super::ext_auth_grpc`] and fails the same ways.
//!
//! The Gateway API says an HTTP service allows with a `200`; any 2xx is
//! taken here, because oauth2-proxy's `/oauth2/auth` answers `202`.

use super::BuildContext;
use super::call::{Call, CallSpan};
use super::ext_auth_grpc as grpc;
use crate::body::full;
use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::ip_text::ip_string;
use crate::proxy::remove_hop_by_hop;
use crate::stage::Flow;
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HOST, TE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, Uri};
use tollgate_snapshot::{ExtAuth, ExtAuthProtocol};

/// Headers the gateway writes on every check, replacing the client's.
const FORWARDED: [&str; 5] = [
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-forwarded-method",
];

/// One built external auth call.
#[derive(Debug)]
pub(crate) struct ExtAuthCall {
    /// `Err` holds why the call cannot be made (a bad target): every
    /// request then counts as the service being down.
    call: Result<Call, String>,
    protocol: ExtAuthProtocol,
    /// Request headers sent; empty: all but `Host` and `Content-Length`.
    headers_to_auth: Vec<HeaderName>,
    /// Headers of an allowing answer copied onto the request.
    headers_to_backend: Vec<HeaderName>,
    fail_open: bool,
    /// The policy or filter, for logs and the `Dependency` error.
    source: Box<str>,
}

impl ExtAuthCall {
    /// Builds the call; a target that cannot be built is logged once here.
    pub(crate) fn build(config: &ExtAuth, cx: &BuildContext<'_>) -> ExtAuthCall {
        let call = match config.protocol {
            ExtAuthProtocol::Http => Call::build(&config.target, cx),
            ExtAuthProtocol::Grpc => Call::build_h2(&config.target, cx),
        }
        .map_err(|e| e.to_string());
        if let Err(error) = &call {
            tracing::warn!(source = %config.source, %error, "external auth cannot be called");
        }
        ExtAuthCall {
            call,
            protocol: config.protocol,
            headers_to_auth: names(&config.headers_to_auth),
            headers_to_backend: names(&config.headers_to_backend),
            fail_open: config.fail_open,
            source: config.source.as_str().into(),
        }
    }

    /// Asks the service about the request in `ctx`.
    ///
    /// # Errors
    ///
    /// [`ProxyError::Dependency`] when the service cannot be asked and the
    /// call fails closed.
    pub(crate) async fn check(&self, ctx: &mut RequestContext<'_>) -> Result<Flow, ProxyError> {
        let asked = match (&self.call, self.protocol) {
            (Ok(call), ExtAuthProtocol::Http) => self.ask_http(call, ctx).await,
            (Ok(call), ExtAuthProtocol::Grpc) => self.ask_grpc(call, ctx).await,
            (Err(error), _) => Err(error.clone()),
        };
        match asked {
            Ok(Flow::Answer(answer)) => {
                let caller = ctx.principal.as_ref().and_then(|p| p.name()).unwrap_or("-");
                tracing::debug!(source = %self.source, status = %answer.status(), caller, "denied by external auth");
                Ok(Flow::Answer(answer))
            }
            Ok(Flow::Continue) => Ok(Flow::Continue),
            Err(error) if self.fail_open => {
                tracing::warn!(source = %self.source, %error, "external auth unavailable; failing open");
                // Nobody vouched for the caller: a client's own copies of
                // the identity headers must not pass as the service's.
                copy_to_backend(
                    &self.headers_to_backend,
                    &HeaderMap::new(),
                    &mut ctx.headers,
                );
                Ok(Flow::Continue)
            }
            Err(error) => {
                tracing::warn!(source = %self.source, %error, "external auth unavailable");
                Err(ProxyError::Dependency {
                    dependency: format!("ext-auth {}", self.source),
                    source: error.into(),
                })
            }
        }
    }

    /// The HTTP check: the request's method, path and headers, no body; a
    /// 2xx allows, anything else is the answer.
    async fn ask_http(&self, call: &Call, ctx: &mut RequestContext<'_>) -> Result<Flow, String> {
        let mut request = Request::new(Bytes::new());
        *request.method_mut() = ctx.method.clone();
        *request.uri_mut() = check_path(call.path(), &ctx.path_and_query())
            .parse()
            .map_err(|_| format!("invalid check path for {}", call.uri()))?;
        *request.headers_mut() = self.selected(ctx);
        forwarding(ctx, request.headers_mut());
        let span = CallSpan {
            name: None,
            purpose: "external-auth",
            attributes: Vec::new(),
        };
        let answer = call
            .send_traced(request, ctx.trace.as_deref_mut(), span)
            .await
            .map_err(|e| e.to_string())?;
        if answer.status().is_success() {
            copy_to_backend(&self.headers_to_backend, answer.headers(), &mut ctx.headers);
            return Ok(Flow::Continue);
        }
        let (mut parts, body) = answer.into_parts();
        remove_hop_by_hop(&mut parts.headers);
        Ok(Flow::Answer(Response::from_parts(parts, full(body))))
    }

    /// The gRPC check (see [`grpc`]).
    async fn ask_grpc(&self, call: &Call, ctx: &mut RequestContext<'_>) -> Result<Flow, String> {
        let path = ctx.path_and_query();
        let headers = self.selected(ctx);
        let host = ctx
            .original_host
            .as_ref()
            .and_then(|h| h.to_str().ok())
            .unwrap_or(&ctx.host);
        let check = grpc::Check {
            client: ctx.client,
            method: ctx.method.as_str(),
            path_and_query: &path,
            host,
            scheme: ctx.scheme,
            headers: &headers,
        };
        let mut request = Request::new(grpc::encode(&check));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = Uri::from_static(grpc::CHECK_PATH);
        let sent = request.headers_mut();
        sent.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        sent.insert(TE, HeaderValue::from_static("trailers"));
        let span = CallSpan {
            name: Some(grpc::CHECK_PATH.trim_start_matches('/').to_string()),
            purpose: "external-auth",
            attributes: grpc::span_attributes(),
        };
        let answer = call
            .send_traced(request, ctx.trace.as_deref_mut(), span)
            .await
            .map_err(|e| e.to_string())?;
        let status = answer
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok());
        if !answer.status().is_success() || status != Some("0") {
            return Err(format!(
                "gRPC check failed: HTTP {}, grpc-status {status:?}",
                answer.status()
            ));
        }
        match grpc::decode(answer.body())? {
            grpc::Decision::Allow { set, remove } => {
                for (name, value, append) in set {
                    let wanted = self.headers_to_backend.is_empty()
                        || self.headers_to_backend.contains(&name);
                    if !wanted {
                        continue;
                    }
                    if append {
                        ctx.headers.append(name, value);
                    } else {
                        ctx.headers.insert(name, value);
                    }
                }
                for name in remove {
                    ctx.headers.remove(name);
                }
                Ok(Flow::Continue)
            }
            grpc::Decision::Deny {
                status,
                headers,
                body,
            } => {
                let mut response = Response::new(full(body));
                *response.status_mut() = status;
                for (name, value) in headers {
                    response.headers_mut().append(name, value);
                }
                Ok(Flow::Answer(response))
            }
        }
    }

    /// The request headers the service is shown.
    fn selected(&self, ctx: &RequestContext<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if self.headers_to_auth.is_empty() {
            for (name, value) in &ctx.headers {
                if name != HOST && name != CONTENT_LENGTH {
                    headers.append(name, value.clone());
                }
            }
        } else {
            for name in &self.headers_to_auth {
                for value in ctx.headers.get_all(name) {
                    headers.append(name, value.clone());
                }
            }
        }
        headers
    }
}

/// The target's path (without its query and trailing `/`) followed by the
/// request's path and query.
fn check_path(target: &str, request: &str) -> String {
    let base = target.split('?').next().unwrap_or("");
    format!("{}{request}", base.trim_end_matches('/'))
}

/// Writes the gateway's `X-Forwarded-*` headers, replacing any the client
/// sent: the service must not trust a client's claim about itself.
fn forwarding(ctx: &RequestContext<'_>, headers: &mut HeaderMap) {
    let host = ctx
        .original_host
        .clone()
        .or_else(|| HeaderValue::from_str(&ctx.host).ok());
    let values = [
        HeaderValue::try_from(ip_string(ctx.client)).ok(),
        Some(HeaderValue::from_static(ctx.scheme)),
        host,
        HeaderValue::from_str(&ctx.path_and_query()).ok(),
        HeaderValue::from_str(ctx.method.as_str()).ok(),
    ];
    for (name, value) in FORWARDED.iter().zip(values) {
        headers.remove(*name);
        if let Some(value) = value {
            headers.insert(*name, value);
        }
    }
}

/// Copies `names` from an allowing answer onto the request, replacing the
/// client's copies so a client cannot pose as whoever the service vouched
/// for. A name the answer lacks is removed from the request all the same.
fn copy_to_backend(names: &[HeaderName], answer: &HeaderMap, request: &mut HeaderMap) {
    for name in names {
        request.remove(name);
        for value in answer.get_all(name) {
            request.append(name, value.clone());
        }
    }
}

/// Header names, lowercase; names that are not valid headers are dropped
/// (`compile` has already refused them).
fn names(list: &[String]) -> Vec<HeaderName> {
    list.iter()
        .filter_map(|n| HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;

    #[test]
    fn the_check_path_joins_target_and_request() {
        assert_eq!(check_path("/", "/a?b=1"), "/a?b=1");
        assert_eq!(check_path("/auth/", "/a"), "/auth/a");
        assert_eq!(check_path("/auth?x=1", "/a?y=2"), "/auth/a?y=2");
    }

    #[test]
    fn forwarding_headers_replace_the_clients() {
        let mut ctx = context(&[("x-forwarded-for", "6.6.6.6")], Some("q=1"));
        ctx.path = "/app".into();
        let mut headers = ctx.headers.clone();
        forwarding(&ctx, &mut headers);
        assert_eq!(headers["x-forwarded-for"], "127.0.0.1");
        assert_eq!(headers["x-forwarded-proto"], "http");
        assert_eq!(headers["x-forwarded-host"], "api.example");
        assert_eq!(headers["x-forwarded-uri"], "/app?q=1");
        assert_eq!(headers["x-forwarded-method"], "GET");
        ctx.headers = headers;
        assert_eq!(ctx.headers.get_all("x-forwarded-for").iter().count(), 1);
    }

    #[test]
    fn allowed_headers_replace_client_copies_and_absent_ones_are_dropped() {
        let names = names(&["X-User".into(), "x-groups".into()]);
        let mut answer = HeaderMap::new();
        answer.append("x-user", HeaderValue::from_static("alice"));
        answer.append("x-other", HeaderValue::from_static("no"));
        let mut request = HeaderMap::new();
        request.append("x-user", HeaderValue::from_static("mallory"));
        request.append("x-groups", HeaderValue::from_static("admin"));
        copy_to_backend(&names, &answer, &mut request);
        assert_eq!(request["x-user"], "alice");
        assert!(request.get("x-groups").is_none());
        assert!(request.get("x-other").is_none());
    }
}
