//! Calls the auth methods make (JWKS, introspection, external auth, OIDC
//! token endpoint): one small HTTP client for all of them.
//!
//! A [`Call`] is built once per snapshot from a [`CallTarget`]: an absolute
//! URI, optionally with a `backendRef`'s endpoints to dial instead of the
//! URI's host (round robin), and a CA bundle for `https`. Every call has the
//! target's timeout; the caller decides what a failure means (fail open or
//! closed). Responses are read whole up to [`MAX_RESPONSE_BYTES`]: auth
//! answers are small, and a service that sends more is broken.

mod span;

pub(crate) use span::CallSpan;

use super::BuildContext;
use crate::body::{BoxError, ProxyBody, full};
use crate::upstream::{RoundRobin, TlsClient, TlsKey, tls_client};
use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tollgate_snapshot::{BackendProtocol, BackendTls, CallTarget};

/// Largest response body read from an auth service.
pub(crate) const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How long idle connections to auth services are kept.
const IDLE: Duration = Duration::from_secs(90);

/// Why a call failed. Every variant is a failed dependency, never the
/// client's fault.
#[derive(Debug, Error)]
pub(crate) enum CallError {
    /// The target's URI is not absolute `http(s)://host[:port]/path`.
    #[error("invalid call target {0:?}")]
    Target(String),
    /// The `backendRef` has no endpoint.
    #[error("no endpoint for {0}")]
    NoEndpoint(String),
    /// No answer within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Connecting, sending or reading failed.
    #[error("call failed")]
    Failed(#[source] BoxError),
    /// The response body is larger than [`MAX_RESPONSE_BYTES`].
    #[error("response too large")]
    TooLarge,
}

enum Transport {
    Plain(Client<HttpConnector, ProxyBody>),
    Tls(TlsClient),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Transport::Plain(_) => "Plain",
            Transport::Tls(_) => "Tls",
        })
    }
}

/// A built call target; cheap to share.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    scheme: Scheme,
    /// The URI's authority: the `Host` sent.
    authority: Authority,
    /// The URI's path (and query).
    path: PathAndQuery,
    /// A `backendRef`'s endpoints, dialled instead of the authority.
    endpoints: Vec<SocketAddr>,
    cursor: RoundRobin,
    timeout: Duration,
    transport: Transport,
    /// For errors and logs.
    uri: String,
}

impl Call {
    /// Builds the call for `target`.
    ///
    /// # Errors
    ///
    /// [`CallError::Target`] when the URI is not absolute http(s).
    pub(crate) fn build(target: &CallTarget, cx: &BuildContext<'_>) -> Result<Call, CallError> {
        Call::build_for(target, cx, BackendProtocol::Http1)
    }

    /// Builds the call for `target` over HTTP/2 only (prior knowledge on
    /// `http`, ALPN `h2` on `https`): what gRPC services need.
    ///
    /// # Errors
    ///
    /// As for [`Call::build`].
    pub(crate) fn build_h2(target: &CallTarget, cx: &BuildContext<'_>) -> Result<Call, CallError> {
        Call::build_for(target, cx, BackendProtocol::H2c)
    }

    fn build_for(
        target: &CallTarget,
        cx: &BuildContext<'_>,
        protocol: BackendProtocol,
    ) -> Result<Call, CallError> {
        let bad = || CallError::Target(target.uri.clone());
        let uri: Uri = target.uri.parse().map_err(|_| bad())?;
        let scheme = uri.scheme().cloned().ok_or_else(bad)?;
        let authority = uri.authority().cloned().ok_or_else(bad)?;
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let endpoints = target
            .backend
            .and_then(|i| cx.backends.get(i))
            .map(|b| b.endpoints.iter().map(|e| e.address()).collect())
            .unwrap_or_default();
        let timeout = Duration::from_millis(target.timeout_ms.max(1));
        let transport = if scheme == Scheme::HTTPS {
            let tls = BackendTls {
                hostname: authority.host().to_string(),
                ca_certificates: target.ca_pem.iter().cloned().collect(),
                system_roots: target.ca_pem.is_none(),
                subject_alt_names: Vec::new(),
                policy: target.uri.clone(),
            };
            let key = TlsKey {
                tls,
                client_certificate: None,
                protocol,
                connect_timeout: timeout,
            };
            Transport::Tls(tls_client(&key, IDLE))
        } else if scheme == Scheme::HTTP {
            let mut http = HttpConnector::new();
            http.set_connect_timeout(Some(timeout));
            http.set_nodelay(true);
            Transport::Plain(
                Client::builder(TokioExecutor::new())
                    .http2_only(protocol == BackendProtocol::H2c)
                    .pool_idle_timeout(IDLE)
                    .pool_timer(TokioTimer::new())
                    .set_host(false)
                    .build(http),
            )
        } else {
            return Err(bad());
        };
        Ok(Call {
            inner: Arc::new(Inner {
                scheme,
                authority,
                path,
                endpoints,
                cursor: RoundRobin::default(),
                timeout,
                transport,
                uri: target.uri.clone(),
            }),
        })
    }

    /// The target as written, for logs.
    pub(crate) fn uri(&self) -> &str {
        &self.inner.uri
    }

    /// The target's path (and query), which callers may extend.
    pub(crate) fn path(&self) -> &str {
        self.inner.path.as_str()
    }

    /// Sends `request` to the target, with the URI's `Host`. The request's
    /// URI supplies only the path and query (the target's when it has
    /// none). The whole exchange, body included, is under the timeout.
    /// Trailers, if any, are appended to the response headers (gRPC puts
    /// its status there).
    ///
    /// # Errors
    ///
    /// [`CallError`] on any failure; a non-2xx status is not a failure.
    pub(crate) async fn send(&self, request: Request<Bytes>) -> Result<Response<Bytes>, CallError> {
        let inner = &self.inner;
        tokio::time::timeout(inner.timeout, self.exchange(request))
            .await
            .map_err(|_| CallError::Timeout(inner.timeout))?
    }

    async fn exchange(&self, request: Request<Bytes>) -> Result<Response<Bytes>, CallError> {
        let inner = &self.inner;
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| inner.path.clone());
        let authority = match inner.cursor.select(inner.endpoints.len()) {
            Some(i) => {
                let addr = inner.endpoints[i];
                Authority::try_from(addr.to_string().as_str())
                    .map_err(|_| CallError::Target(inner.uri.clone()))?
            }
            None if inner.endpoints.is_empty() => inner.authority.clone(),
            None => return Err(CallError::NoEndpoint(inner.uri.clone())),
        };
        parts.uri = Uri::builder()
            .scheme(inner.scheme.clone())
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|_| CallError::Target(inner.uri.clone()))?;
        if let Ok(host) = HeaderValue::from_str(inner.authority.as_str()) {
            parts.headers.insert(http::header::HOST, host);
        }
        let request = Request::from_parts(parts, full(body));
        let response = match &inner.transport {
            Transport::Plain(client) => client.request(request).await,
            Transport::Tls(tls) => tls.pooled.request(request).await,
        }
        .map_err(|e| CallError::Failed(Box::new(e)))?;
        let (mut parts, body) = response.into_parts();
        let limited = http_body_util::Limited::new(body, MAX_RESPONSE_BYTES);
        let collected = limited.collect().await.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                CallError::TooLarge
            } else {
                CallError::Failed(e)
            }
        })?;
        if let Some(trailers) = collected.trailers() {
            for (name, value) in trailers {
                parts.headers.append(name, value.clone());
            }
        }
        let bytes = collected.to_bytes();
        Ok(Response::from_parts(parts, bytes))
    }
}
