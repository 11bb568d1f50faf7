//! What the HTTP servers need from a connection's byte stream beyond
//! reading and writing: waiting, without reading, for the next bytes of a
//! parked connection (`h1.rs`).
//!
//! Plain TCP peeks the socket. TLS must look at rustls first: a record may
//! already have been read off the socket and decrypted into rustls's
//! plaintext buffer, and the socket would then stay quiet while a request
//! waits. Only when rustls holds no plaintext does the connection wait on
//! the TCP socket; bytes arriving there may still be a record without
//! application data (an alert, a key update), which the next hyper
//! connection reads and handles like any other.

use std::future::Future;
use std::io;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// A downstream connection's stream: plain TCP or TLS over TCP.
pub(crate) trait Transport: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Resolves once bytes can be read (`true`) or the peer has closed
    /// the connection (`false`), consuming nothing.
    fn wait_readable(&mut self) -> impl Future<Output = io::Result<bool>> + Send;
}

impl Transport for TcpStream {
    async fn wait_readable(&mut self) -> io::Result<bool> {
        // A peek, not `readable()`: readiness may be left over from the
        // last request (see h1.rs).
        let mut byte = [0u8; 1];
        Ok(self.peek(&mut byte).await? > 0)
    }
}

impl Transport for TlsStream<TcpStream> {
    async fn wait_readable(&mut self) -> io::Result<bool> {
        let (tcp, tls) = self.get_mut();
        // Decrypts whatever complete records rustls already holds; with
        // nothing new it only reports the state.
        let state = tls
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() {
            return Ok(true);
        }
        tcp.wait_readable().await
    }
}
