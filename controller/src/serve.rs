//! A small HTTP server loop shared by the admin and snapshot endpoints.
//!
//! Both speak HTTP/1.1 and HTTP/2 (cleartext with prior knowledge, or
//! negotiated by ALPN over TLS), which the snapshot stream needs so many
//! data planes share few connections. Over TLS ([`spawn_tls`]) every
//! request carries the verified client certificate's URI SANs as a
//! [`PeerIdentity`] extension, which handlers authorise against; a plain
//! server's requests carry none.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tracing::debug;

/// Longest TLS handshake accepted.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The verified client certificate of a TLS request: its URI SANs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// URI subject alternative names, e.g. `urn:tollgate:gateway:NS:NAME`.
    pub uris: Vec<String>,
}

/// Response body type of the controller's servers.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A response with a status, a content type and a body.
pub fn respond(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    response
}

/// A JSON response.
pub fn json(value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_vec_pretty(value) {
        Ok(bytes) => respond(200, "application/json", bytes),
        Err(e) => respond(500, "text/plain; charset=utf-8", format!("{e}\n")),
    }
}

/// Binds `addr` and serves `handler` on every connection until the task is
/// dropped. Returns the bound address (useful with port 0).
///
/// # Errors
///
/// The bind error.
pub async fn spawn<H, F>(addr: SocketAddr, handler: H) -> std::io::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    spawn_on(addr, None, handler).await
}

/// [`spawn`] over TLS with `config` (which should require client
/// certificates): each request gets the client's [`PeerIdentity`].
///
/// # Errors
///
/// The bind error.
pub async fn spawn_tls<H, F>(
    addr: SocketAddr,
    config: Arc<rustls::ServerConfig>,
    handler: H,
) -> std::io::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    spawn_on(addr, Some(TlsAcceptor::from(config)), handler).await
}

async fn spawn_on<H, F>(
    addr: SocketAddr,
    tls: Option<TlsAcceptor>,
    handler: H,
) -> std::io::Result<SocketAddr>
where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let handler = Arc::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let (handler, tls) = (handler.clone(), tls.clone());
            tokio::spawn(async move {
                let Some(tls) = tls else {
                    return serve_io(TokioIo::new(stream), None, handler, peer).await;
                };
                let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await
                {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => return debug!(%peer, "TLS handshake timed out"),
                };
                let uris = stream
                    .get_ref()
                    .1
                    .peer_certificates()
                    .and_then(|certs| certs.first())
                    .map(|der| crate::pki::server::uri_sans(der))
                    .unwrap_or_default();
                let identity = PeerIdentity { uris };
                serve_io(TokioIo::new(stream), Some(identity), handler, peer).await;
            });
        }
    });
    Ok(local)
}

/// Serves one connection, tagging every request with `identity`.
async fn serve_io<I, H, F>(io: I, identity: Option<PeerIdentity>, handler: Arc<H>, peer: SocketAddr)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = service_fn(move |mut req: Request<Incoming>| {
        if let Some(identity) = &identity {
            req.extensions_mut().insert(identity.clone());
        }
        let fut = handler(req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let builder = auto::Builder::new(TokioExecutor::new());
    if let Err(e) = builder.serve_connection(io, service).await {
        debug!(%peer, error = %e, "connection ended with an error");
    }
}
