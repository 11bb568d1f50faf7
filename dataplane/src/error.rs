//! Pipeline errors and the one function that turns them into responses.
//!
//! Every failure on the request path — a request the gateway refuses, a
//! request no route wants, a backend that cannot be reached — is a
//! [`ProxyError`]. Each carries its [`ErrorKind`] (which status it becomes),
//! its [`Side`] (whose fault it is: the client, the upstream, or the gateway's
//! own configuration) and whether a retry would be allowed. [`respond`] is the
//! only place that turns one into an HTTP response, so every error the
//! gateway makes looks the same: a short plain-text body, never shaped like a
//! backend's, and an `x-tollgate-error` header naming the kind.

use crate::body::{BoxError, ProxyBody, full};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use thiserror::Error;

/// Header naming the [`ErrorKind`] on every error the gateway answers itself.
pub const ERROR_HEADER: HeaderName = HeaderName::from_static("x-tollgate-error");

/// The response extension that marks an answer the gateway made itself,
/// with its kind. Telemetry reads `error.type` from this, never from the
/// `x-tollgate-error` header: a backend's response may carry that header
/// too (its own, or another Tollgate's further in), and a backend's 404
/// must not be counted as the gateway's `routing` error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GatewayError(pub ErrorKind);

const PLAIN_TEXT: HeaderValue = HeaderValue::from_static("text/plain; charset=utf-8");

/// Which stage failed, and so which status the client gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No route matches the request: 404.
    Routing,
    /// The request is malformed or refused before routing: 400.
    BadRequest,
    /// The client's request body could not be read (malformed, cut short,
    /// reset): 400.
    RequestBody,
    /// The request's Host belongs to another listener than the one its TLS
    /// connection was made for (SNI): 421.
    Misdirected,
    /// The client's request body stalled or came too slowly: 408.
    RequestBodyTimeout,
    /// The rule has nothing valid to send to: 500.
    NoBackend,
    /// The chosen backend has no ready endpoint: 503.
    NoEndpoints,
    /// The upstream connection was refused or timed out: 503.
    UpstreamConnect,
    /// The upstream did not answer in time: 504.
    UpstreamTimeout,
    /// The upstream reset the connection or broke the protocol: 502.
    UpstreamProtocol,
    /// The TLS handshake with the upstream failed (its certificate is not
    /// trusted or not for the policy's name, or it refused ours): 502.
    UpstreamTls,
    /// A WebSocket upgrade for a backend that cannot take one (h2c): 502.
    UpgradeUnsupported,
    /// The request carries no valid credential: 401, with a
    /// `WWW-Authenticate` challenge.
    Unauthenticated,
    /// The caller is known but not allowed: 403.
    Forbidden,
    /// The caller is over a rate limit: 429, with `Retry-After`.
    RateLimited,
    /// A service a stage depends on (JWKS, introspection, external auth,
    /// Redis) failed and the stage fails closed: 503.
    Dependency,
}

impl ErrorKind {
    /// Every kind, in declaration order.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::Routing,
        ErrorKind::BadRequest,
        ErrorKind::RequestBody,
        ErrorKind::Misdirected,
        ErrorKind::RequestBodyTimeout,
        ErrorKind::NoBackend,
        ErrorKind::NoEndpoints,
        ErrorKind::UpstreamConnect,
        ErrorKind::UpstreamTimeout,
        ErrorKind::UpstreamProtocol,
        ErrorKind::UpstreamTls,
        ErrorKind::UpgradeUnsupported,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::RateLimited,
        ErrorKind::Dependency,
    ];

    /// The response status for this kind.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorKind::Routing => StatusCode::NOT_FOUND,
            ErrorKind::BadRequest | ErrorKind::RequestBody => StatusCode::BAD_REQUEST,
            ErrorKind::RequestBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorKind::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            ErrorKind::NoBackend => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NoEndpoints | ErrorKind::UpstreamConnect => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::UpstreamProtocol
            | ErrorKind::UpstreamTls
            | ErrorKind::UpgradeUnsupported => StatusCode::BAD_GATEWAY,
            ErrorKind::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Dependency => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable label used in `x-tollgate-error`, logs and metrics.
    pub const fn label(self) -> &'static str {
        match self {
            ErrorKind::Routing => "routing",
            ErrorKind::BadRequest => "bad-request",
            ErrorKind::RequestBody => "request-body",
            ErrorKind::RequestBodyTimeout => "request-body-timeout",
            ErrorKind::Misdirected => "misdirected",
            ErrorKind::NoBackend => "no-backend",
            ErrorKind::NoEndpoints => "no-endpoints",
            ErrorKind::UpstreamConnect => "upstream-connect",
            ErrorKind::UpstreamTimeout => "upstream-timeout",
            ErrorKind::UpstreamProtocol => "upstream-protocol",
            ErrorKind::UpstreamTls => "upstream-tls",
            ErrorKind::UpgradeUnsupported => "upgrade-unsupported",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::RateLimited => "rate-limited",
            ErrorKind::Dependency => "dependency",
        }
    }
}

/// Where a failure happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client sent something the gateway refuses.
    Downstream,
    /// The backend failed.
    Upstream,
    /// The gateway's own configuration cannot serve the request.
    Internal,
}

/// One failure of the request pipeline.
#[derive(Debug, Error)]
pub enum ProxyError {
    /// No route matched.
    #[error("no route for host {host:?} path {path:?}")]
    NoRoute {
        /// Host as routed (lowercase, no port).
        host: String,
        /// Normalized path.
        path: String,
    },
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The client's request body could not be read while it was sent
    /// upstream: the client's fault, though the upstream exchange failed.
    #[error("the request body could not be read")]
    RequestBody {
        /// The upstream exchange's error, which carries the body's.
        #[source]
        source: BoxError,
    },
    /// The client's request body stalled or arrived too slowly
    /// (`Settings::request_body_timeout_ms`).
    #[error("the request body stalled or arrived too slowly")]
    RequestBodyTimeout,
    /// The Host selects another listener than the TLS connection's SNI did
    /// (a client reusing one connection for another name, RFC 9110 §15.5.20).
    #[error("host {host:?} is not served on this TLS connection (made for listener {listener})")]
    Misdirected {
        /// Host as routed.
        host: String,
        /// The listener the connection's SNI selected.
        listener: String,
    },
    /// The rule has no valid backend to send to.
    #[error("{0}")]
    NoBackend(String),
    /// The chosen backend has no ready endpoint.
    #[error("backend {0} has no ready endpoints")]
    NoEndpoints(String),
    /// Connecting to the upstream failed (refused or timed out).
    #[error("cannot connect to upstream {endpoint}")]
    UpstreamConnect {
        /// The endpoint tried.
        endpoint: String,
        /// The connector's error.
        #[source]
        source: BoxError,
    },
    /// The upstream did not send response headers in time.
    #[error("upstream {endpoint} timed out after {after_ms} ms")]
    UpstreamTimeout {
        /// The endpoint tried.
        endpoint: String,
        /// The timeout that expired.
        after_ms: u64,
    },
    /// The TLS handshake with the upstream failed.
    #[error("TLS handshake with upstream {endpoint} failed")]
    UpstreamTls {
        /// The endpoint tried.
        endpoint: String,
        /// The handshake's error.
        #[source]
        source: BoxError,
    },
    /// The upstream reset the connection or sent an invalid response.
    #[error("upstream {endpoint} failed")]
    UpstreamProtocol {
        /// The endpoint tried.
        endpoint: String,
        /// The client's error.
        #[source]
        source: BoxError,
    },
    /// A WebSocket upgrade routed to a backend that speaks no HTTP/1.1
    /// (h2c), so it cannot take one.
    #[error("backend {backend} speaks h2c and cannot take an HTTP/1.1 upgrade (WebSocket)")]
    UpgradeUnsupported {
        /// The backend's source name.
        backend: String,
    },
    /// No valid credential. `reason` is a stable label (`missing`,
    /// `expired`, `bad-signature`, …) for logs, spans and metrics; the
    /// client sees only the status and the challenge.
    #[error("authentication failed: {reason}")]
    Unauthenticated {
        /// Why, as a stable label.
        reason: &'static str,
        /// The `WWW-Authenticate` value (RFC 6750 / RFC 7617).
        challenge: Option<HeaderValue>,
    },
    /// The caller is not allowed; `reason` as for `Unauthenticated`.
    #[error("access denied: {reason}")]
    Forbidden {
        /// Why, as a stable label.
        reason: &'static str,
    },
    /// Over a rate limit.
    #[error("rate limit {limit} exceeded")]
    RateLimited {
        /// The limit's name, for logs.
        limit: String,
        /// Seconds until the client may try again (`Retry-After`).
        retry_after_secs: Option<u64>,
        /// The `RateLimit-Policy` / `RateLimit` headers, unless turned off.
        standing: Option<Box<http::HeaderMap>>,
    },
    /// A dependency of a stage failed and the stage fails closed.
    #[error("{dependency} unavailable")]
    Dependency {
        /// What failed, e.g. `jwks example`, `ext-auth`.
        dependency: String,
        /// The call's error.
        #[source]
        source: BoxError,
    },
}

impl ProxyError {
    /// Which stage failed.
    pub fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::NoRoute { .. } => ErrorKind::Routing,
            ProxyError::BadRequest(_) => ErrorKind::BadRequest,
            ProxyError::RequestBody { .. } => ErrorKind::RequestBody,
            ProxyError::RequestBodyTimeout => ErrorKind::RequestBodyTimeout,
            ProxyError::Misdirected { .. } => ErrorKind::Misdirected,
            ProxyError::NoBackend(_) => ErrorKind::NoBackend,
            ProxyError::NoEndpoints(_) => ErrorKind::NoEndpoints,
            ProxyError::UpstreamConnect { .. } => ErrorKind::UpstreamConnect,
            ProxyError::UpstreamTimeout { .. } => ErrorKind::UpstreamTimeout,
            ProxyError::UpstreamProtocol { .. } => ErrorKind::UpstreamProtocol,
            ProxyError::UpstreamTls { .. } => ErrorKind::UpstreamTls,
            ProxyError::UpgradeUnsupported { .. } => ErrorKind::UpgradeUnsupported,
            ProxyError::Unauthenticated { .. } => ErrorKind::Unauthenticated,
            ProxyError::Forbidden { .. } => ErrorKind::Forbidden,
            ProxyError::RateLimited { .. } => ErrorKind::RateLimited,
            ProxyError::Dependency { .. } => ErrorKind::Dependency,
        }
    }

    /// Whose fault it is.
    pub fn side(&self) -> Side {
        match self.kind() {
            ErrorKind::Routing
            | ErrorKind::BadRequest
            | ErrorKind::RequestBody
            | ErrorKind::RequestBodyTimeout
            | ErrorKind::Misdirected
            | ErrorKind::Unauthenticated
            | ErrorKind::Forbidden
            | ErrorKind::RateLimited => Side::Downstream,
            ErrorKind::NoBackend | ErrorKind::UpgradeUnsupported | ErrorKind::Dependency => {
                Side::Internal
            }
            ErrorKind::NoEndpoints
            | ErrorKind::UpstreamConnect
            | ErrorKind::UpstreamTimeout
            | ErrorKind::UpstreamProtocol
            | ErrorKind::UpstreamTls => Side::Upstream,
        }
    }

    /// Whether retrying on another endpoint would be allowed: only when the
    /// request cannot have reached the upstream (the connection never opened).
    pub fn retryable(&self) -> bool {
        matches!(self.kind(), ErrorKind::UpstreamConnect)
    }

    /// The stable reason label of an auth refusal, for telemetry.
    pub fn reason(&self) -> Option<&'static str> {
        match self {
            ProxyError::Unauthenticated { reason, .. } | ProxyError::Forbidden { reason } => {
                Some(reason)
            }
            _ => None,
        }
    }

    /// What the client is told. Refusals say no more than their status, so
    /// a caller probing a protected route learns nothing about why (an
    /// expired token and a forged one look alike).
    pub(crate) fn public_message(&self) -> std::borrow::Cow<'_, str> {
        match self.kind() {
            ErrorKind::Unauthenticated => "authentication required".into(),
            ErrorKind::Forbidden => "access denied".into(),
            ErrorKind::RateLimited => "too many requests".into(),
            _ => self.to_string().into(),
        }
    }

    /// Headers the answer carries besides `x-tollgate-error`.
    fn add_headers(&self, headers: &mut http::HeaderMap) {
        match self {
            ProxyError::Unauthenticated {
                challenge: Some(challenge),
                ..
            } => {
                headers.insert(http::header::WWW_AUTHENTICATE, challenge.clone());
            }
            ProxyError::RateLimited {
                retry_after_secs,
                standing,
                ..
            } => {
                if let Some(secs) = retry_after_secs {
                    headers.insert(http::header::RETRY_AFTER, HeaderValue::from(*secs));
                }
                if let Some(standing) = standing {
                    headers.extend(standing.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
            }
            _ => {}
        }
    }
}

/// Turns a pipeline error into the gateway's answer, and logs it.
///
/// `source` names the configuration element that was serving the request
/// (the route, else the listener, else the socket), so a log line points at
/// the manifest to look at.
///
/// # Guarantees
///
/// The body is `<code> <reason>: <message>\n` in `text/plain; charset=utf-8`
/// and the `x-tollgate-error` header carries [`ErrorKind::label`].
pub fn respond(error: &ProxyError, source: &str) -> Response<ProxyBody> {
    let kind = error.kind();
    let chain = error_chain(error);
    match error.side() {
        Side::Downstream => {
            tracing::debug!(source, kind = kind.label(), error = %chain, "request refused");
        }
        Side::Upstream | Side::Internal => {
            tracing::warn!(source, kind = kind.label(), side = ?error.side(),
                retryable = error.retryable(), error = %chain, "request failed");
        }
    }
    let mut response = local_response(kind.status(), &error.public_message());
    mark(&mut response, kind);
    error.add_headers(response.headers_mut());
    response
}

/// Marks `response` as the gateway's own answer of `kind`: the
/// `x-tollgate-error` header for the client, the [`GatewayError`]
/// extension for telemetry.
pub fn mark<B>(response: &mut Response<B>, kind: ErrorKind) {
    let label = HeaderValue::from_static(kind.label());
    response.headers_mut().insert(ERROR_HEADER, label);
    response.extensions_mut().insert(GatewayError(kind));
}

/// A response the gateway makes itself (errors, redirects, CORS preflights):
/// `<code> <reason>: <message>\n` as UTF-8 plain text.
pub fn local_response(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let reason = status.canonical_reason().unwrap_or("");
    let text = format!("{} {reason}: {message}\n", status.as_u16());
    let mut response = Response::new(full(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, PLAIN_TEXT);
    response
}

fn error_chain(error: &ProxyError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests;
