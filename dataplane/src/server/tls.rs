//! The TLS accept path: ClientHello, listener by SNI, handshake.
//!
//! The ClientHello is read before any configuration is chosen
//! (`LazyConfigAcceptor`), so the listener it names by SNI decides the
//! certificates, versions, cipher suites and ALPN of the handshake. The
//! runtime is loaded at that moment: a snapshot swapped in with a new
//! certificate is used by every handshake that starts afterwards, while
//! connections already established keep theirs.
//!
//! Sockets of `protocol: TLS` listeners (TLSRoute) take another path,
//! `passthrough.rs`: it keeps the ClientHello's bytes to replay them to a
//! backend (Passthrough), or handshakes without ALPN (Terminate).

use super::service::RuntimeCell;
use http::HeaderValue;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

/// Why a TLS connection did not get to HTTP. Each is counted by its
/// [`HandshakeError::label`] and logged at debug: they are the client's
/// doing (a scanner, a client that trusts no certificate offered, a port
/// probe) far more often than the gateway's.
#[derive(Debug, Error)]
pub(crate) enum HandshakeError {
    /// The handshake did not finish within the request-header timeout.
    #[error("TLS handshake timed out")]
    Timeout,
    /// The socket has no TLS listener any more (the snapshot changed).
    #[error("no TLS listener on this socket")]
    NoListener,
    /// The client sent something other than a valid TLS handshake, or
    /// the handshake failed (no common version, cipher suite or
    /// certificate; an alert from the client).
    #[error("TLS handshake failed: {0}")]
    Failed(#[source] io::Error),
}

impl HandshakeError {
    /// The `error.type` recorded for this failure.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            HandshakeError::Timeout => "timeout",
            HandshakeError::NoListener => "no_listener",
            HandshakeError::Failed(e) if e.kind() == io::ErrorKind::UnexpectedEof => "eof",
            HandshakeError::Failed(_) => "handshake",
        }
    }
}

/// Runs the server side of a handshake on `tcp`, accepted on `local`,
/// within `timeout` (the request-header timeout; `None`: no limit).
///
/// Returns the TLS stream, the name of the listener its SNI selected, and,
/// on a mutual-TLS listener, the details header value of the client
/// certificate it verified (made here, once per connection).
///
/// # Errors
///
/// [`HandshakeError`] when no TLS session was established.
pub(crate) async fn handshake(
    tcp: TcpStream,
    runtime: &RuntimeCell,
    local: SocketAddr,
    timeout: Option<Duration>,
) -> Result<(TlsStream<TcpStream>, Arc<str>, Option<HeaderValue>), HandshakeError> {
    let handshake = async {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), tcp)
            .await
            .map_err(HandshakeError::Failed)?;
        let (name, config, client_auth) = {
            let runtime = runtime.load();
            let sni = start.client_hello().server_name().map(str::to_owned);
            let listener = runtime
                .socket(&local)
                .and_then(|s| s.tls.as_ref())
                .and_then(|tls| tls.select(sni.as_deref()))
                .ok_or(HandshakeError::NoListener)?;
            (
                Arc::clone(&listener.name),
                Arc::clone(&listener.config),
                listener.client_auth.clone(),
            )
        };
        let stream = start
            .into_stream(config)
            .await
            .map_err(HandshakeError::Failed)?;
        let details = client_auth.and_then(|a| a.details(stream.get_ref().1.peer_certificates()));
        Ok((stream, name, details))
    };
    match timeout {
        Some(limit) => tokio::time::timeout(limit, handshake)
            .await
            .unwrap_or(Err(HandshakeError::Timeout)),
        None => handshake.await,
    }
}
