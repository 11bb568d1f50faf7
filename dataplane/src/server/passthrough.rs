//! The accept path of TLS listeners (TLSRoute): route by SNI, then relay.
//!
//! Passthrough: the ClientHello is read and parsed (rustls' [`Acceptor`])
//! but kept byte for byte, within the request-header timeout; its SNI
//! picks the route, and the kept bytes are written to the backend before
//! anything else, so the backend sees the client's handshake untouched
//! and the client verifies the backend's certificate, never the gateway's.
//! A ClientHello without SNI, or with a name no route covers, closes the
//! connection: the gateway cannot answer someone else's TLS.
//!
//! Terminate: the handshake is the HTTPS one (`tls.rs`: listener and
//! certificate by SNI) without ALPN, since the bytes that follow are not
//! the gateway's to interpret; then the decrypted stream is relayed to
//! the route's backend over TCP. Both end in `tcp_relay.rs`.

use super::lifecycle::millis;
use super::service::ConnCtx;
use super::tcp_relay::{connect_and_relay, route, with_timeout};
use bytes::BytesMut;
use rustls::server::Acceptor;
use std::io;
use std::sync::Arc;
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio_rustls::LazyConfigAcceptor;

/// Largest ClientHello kept for replay. A ClientHello is a few hundred
/// bytes to a few KiB (post-quantum key shares included); anything larger
/// is not one worth relaying.
const MAX_CLIENT_HELLO: usize = 64 * 1024;

/// Why no ClientHello was read.
#[derive(Debug, Error)]
enum HelloError {
    /// The stream ended or failed first.
    #[error("reading the ClientHello failed: {0}")]
    Io(#[from] io::Error),
    /// Not a TLS ClientHello.
    #[error("not a TLS ClientHello: {0}")]
    Invalid(#[from] rustls::Error),
    /// More than [`MAX_CLIENT_HELLO`] bytes without a complete one.
    #[error("ClientHello larger than {MAX_CLIENT_HELLO} bytes")]
    TooLarge,
}

/// Serves a connection on a Passthrough socket: read the ClientHello,
/// route by its SNI, relay the raw bytes.
pub(crate) async fn serve_passthrough(mut tcp: TcpStream, ctx: ConnCtx) {
    let timeout = millis(ctx.settings.request_header_timeout_ms);
    let mut hello = BytesMut::with_capacity(2048);
    let read = tokio::select! {
        () = ctx.drain.signalled() => return,
        read = with_timeout(timeout, read_client_hello(&mut tcp, &mut hello)) => read,
    };
    let peer = ctx.info.peer;
    let sni = match read {
        Some(Ok(sni)) => sni,
        Some(Err(error)) => {
            tracing::debug!(%peer, %error, "no ClientHello");
            ctx.telemetry.relay_connection("client_hello");
            return;
        }
        None => {
            tracing::debug!(%peer, "no ClientHello in time");
            ctx.telemetry.relay_connection("client_hello");
            return;
        }
    };
    match route(&ctx, None, sni.as_deref()) {
        Ok(target) => connect_and_relay(&ctx, tcp, target, &hello).await,
        Err(no) => {
            tracing::debug!(%peer, ?sni, reason = no.label(), "no TLSRoute, closing");
            ctx.telemetry.relay_connection(no.label());
        }
    }
}

/// Serves a connection on a Terminate socket: handshake with the
/// listener's certificates, route by SNI, relay the plaintext.
pub(crate) async fn serve_terminate(tcp: TcpStream, ctx: ConnCtx) {
    let timeout = millis(ctx.settings.request_header_timeout_ms);
    let shaken = tokio::select! {
        () = ctx.drain.signalled() => return,
        shaken = with_timeout(timeout, terminate(tcp, &ctx)) => shaken,
    };
    let peer = ctx.info.peer;
    let (stream, listener) = match shaken {
        Some(Ok(shaken)) => shaken,
        Some(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed");
            ctx.telemetry.relay_connection("handshake");
            return;
        }
        None => {
            tracing::debug!(%peer, "TLS handshake timed out");
            ctx.telemetry.relay_connection("handshake");
            return;
        }
    };
    let sni = stream.get_ref().1.server_name().map(str::to_owned);
    match route(&ctx, Some(&listener), sni.as_deref()) {
        Ok(target) => connect_and_relay(&ctx, stream, target, &[]).await,
        Err(no) => {
            tracing::debug!(%peer, ?sni, reason = no.label(), "no TLSRoute, closing");
            ctx.telemetry.relay_connection(no.label());
        }
    }
}

/// The server side of a Terminate handshake: the listener the SNI
/// selects, its configuration without ALPN.
async fn terminate(
    tcp: TcpStream,
    ctx: &ConnCtx,
) -> io::Result<(tokio_rustls::server::TlsStream<TcpStream>, Arc<str>)> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), tcp).await?;
    let (name, config) = {
        let runtime = ctx.runtime.load();
        let sni = start.client_hello().server_name().map(str::to_owned);
        let listener = runtime
            .socket(&ctx.info.local)
            .and_then(|s| s.tls.as_ref())
            .and_then(|tls| tls.select(sni.as_deref()))
            .ok_or_else(|| io::Error::other("no TLS listener on this socket"))?;
        let mut config = (*listener.config).clone();
        config.alpn_protocols.clear();
        (Arc::clone(&listener.name), Arc::new(config))
    };
    let stream = start.into_stream(config).await?;
    Ok((stream, name))
}

/// Reads from `io` into `buf` until `buf` holds a whole ClientHello;
/// returns its SNI (`None` when the client sent none). Every byte read
/// stays in `buf`, to be replayed to the backend.
///
/// # Errors
///
/// [`HelloError`] when the stream ends first, the bytes are not TLS, or
/// the ClientHello exceeds [`MAX_CLIENT_HELLO`].
async fn read_client_hello<R>(io: &mut R, buf: &mut BytesMut) -> Result<Option<String>, HelloError>
where
    R: AsyncRead + Unpin,
{
    let mut acceptor = Acceptor::default();
    let mut fed = 0;
    loop {
        if buf.len() >= MAX_CLIENT_HELLO {
            return Err(HelloError::TooLarge);
        }
        if io.read_buf(buf).await? == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let mut unread = &buf[fed..];
        while !unread.is_empty() {
            acceptor.read_tls(&mut unread)?;
        }
        fed = buf.len();
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                return Ok(accepted.client_hello().server_name().map(str::to_owned));
            }
            Err((error, _alert)) => return Err(error.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use rustls::ClientConfig;
    use rustls::pki_types::ServerName;
    use std::io::Cursor;

    /// The bytes a rustls client sends first for `sni`.
    fn client_hello(sni: &str) -> Vec<u8> {
        crate::tls::install_crypto_provider();
        let config = ClientConfig::builder()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let name = ServerName::try_from(sni.to_string()).unwrap();
        let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
        let mut out = Vec::new();
        conn.write_tls(&mut out).unwrap();
        out
    }

    /// A reader that hands out at most `step` bytes per read, as a slow
    /// client's segments would arrive.
    struct Trickle(Cursor<Vec<u8>>, usize);

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<io::Result<()>> {
            let step = self.1.min(buf.remaining());
            let mut chunk = vec![0; step];
            let n = std::io::Read::read(&mut self.0, &mut chunk)?;
            buf.put_slice(&chunk[..n]);
            std::task::Poll::Ready(Ok(()))
        }
    }

    /// The SNI is found even when the ClientHello arrives a few bytes at a
    /// time, and every byte read is kept for the backend.
    #[tokio::test]
    async fn sni_is_read_and_the_bytes_kept() {
        let hello = client_hello("a.example.com");
        for step in [7, 100, 1 << 16] {
            let mut io = Trickle(Cursor::new(hello.clone()), step);
            let mut buf = BytesMut::new();
            let sni = read_client_hello(&mut io, &mut buf).await.unwrap();
            assert_eq!(sni.as_deref(), Some("a.example.com"));
            assert_eq!(&buf[..], &hello[..], "step {step}");
        }
    }

    /// Bytes that are not TLS, or that stop half-way, are refused.
    #[tokio::test]
    async fn not_a_client_hello() {
        let mut buf = BytesMut::new();
        let mut http = &b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..];
        let error = read_client_hello(&mut http, &mut buf).await.unwrap_err();
        assert!(matches!(error, HelloError::Invalid(_)), "{error}");
        let hello = client_hello("a.example.com");
        let mut half = &hello[..hello.len() / 2];
        let mut buf = BytesMut::new();
        let error = read_client_hello(&mut half, &mut buf).await.unwrap_err();
        assert!(matches!(error, HelloError::Io(_)), "{error}");
    }
}
