//! Upstream connections for HTTP upgrades (WebSocket): one fresh HTTP/1.1
//! connection per upgrade, never pooled.
//!
//! The keep-alive pool (`http1.rs`) drives its connections from the request
//! and its response body and hands them back after a complete exchange; an
//! upgraded connection is neither: after `101` it stops being HTTP and
//! belongs to the tunnel until one side closes it. So an upgrade dials its
//! own connection, lets hyper drive it on a task of its own with upgrades
//! enabled, and leaves the backend's [`hyper::upgrade::OnUpgrade`] in the
//! response's extensions for whoever relays the tunnel. A backend that
//! refuses the upgrade (any answer but `101`) streams that answer back like
//! any response and its connection closes after it, so a connection that
//! was offered an upgrade never carries a second request. A backend under
//! a BackendTLSPolicy gets the same over TLS (ALPN `http/1.1` only, since
//! an HTTP/1.1 upgrade needs it), verified as its pooled requests are.

use super::error::UpstreamError;
use crate::body::ProxyBody;
use http::{Request, Response};
use http_body_util::BodyExt;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How an upgrade reaches a TLS backend: the verifying configuration
/// (ALPN `http/1.1`) and the name to send and verify.
pub(crate) type UpgradeTls = (Arc<ClientConfig>, ServerName<'static>);

/// Sends the upgrade request `request` (origin-form URI, `Host`,
/// `Connection: upgrade` and `Upgrade` set) to `addr` on a new connection
/// and returns the response head.
///
/// # Errors
///
/// [`UpstreamError::Connect`] when no connection could be made within
/// `connect_timeout`; [`UpstreamError::Tls`] when the TLS handshake
/// failed; [`UpstreamError::Protocol`] when the connection failed before a
/// response head arrived.
pub(crate) async fn send(
    addr: SocketAddr,
    connect_timeout: Duration,
    tls: Option<&UpgradeTls>,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, UpstreamError> {
    let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| UpstreamError::Connect("connect timed out".into()))?
        .map_err(|error| UpstreamError::Connect(error.into()))?;
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "TCP_NODELAY not set");
    }
    match tls {
        None => exchange(stream, request).await,
        Some((config, name)) => {
            let stream = TlsConnector::from(Arc::clone(config))
                .connect(name.clone(), stream)
                .await
                .map_err(|error| UpstreamError::Tls(error.into()))?;
            exchange(stream, request).await
        }
    }
}

/// Sends `request` on the fresh connection `io` with upgrades enabled.
async fn exchange<S>(
    io: S,
    request: Request<ProxyBody>,
) -> Result<Response<ProxyBody>, UpstreamError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::Builder::new()
        .handshake::<_, ProxyBody>(TokioIo::new(io))
        .await
        .map_err(|error| UpstreamError::Connect(error.into()))?;
    // The task ends when the connection hands its socket to the upgrade
    // (after `101`) or closes (after a refusal's body, or on error).
    tokio::spawn(async move {
        if let Err(error) = conn.with_upgrades().await {
            tracing::debug!(%error, "upstream upgrade connection ended with an error");
        }
    });
    let response = sender
        .send_request(request)
        .await
        .map_err(|error| UpstreamError::Protocol(error.into()))?;
    // The extensions, `OnUpgrade` among them, stay with the mapped response.
    Ok(response.map(|body| body.map_err(Into::into).boxed_unsync()))
}
