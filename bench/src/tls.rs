//! TLS for the harness: the one certificate every proxy serves in the TLS
//! scenario, and the harness's own TLS client.
//!
//! The certificate is ECDSA P-256, made with rcgen into the run's work
//! folder, as the PEM files each proxy wants: chain and key apart (nginx,
//! Tollgate's snapshot) and together (HAProxy's `crt`). Same certificate,
//! same key, so the servers' signatures cost the same.
//!
//! The client is rustls with aws-lc-rs, restricted so that every target
//! does the same work per handshake: TLS 1.3 only, X25519 only (rustls
//! would otherwise offer the post-quantum X25519MLKEM768 first, which
//! Tollgate would take and OpenSSL 3.0 cannot, so Tollgate would do more
//! work than its peers), ALPN `http/1.1`, no session resumption (every
//! connection is a full handshake), and no certificate verification. The
//! last one is deliberate: the client shares its CPU with the backend, and
//! verifying two ECDSA signatures per handshake there would make the load
//! generator the limit sooner; `wrk` and `h2load` do not verify either. It
//! only ever talks to 127.0.0.1.

use crate::error::BenchError;
use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme, StreamOwned};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The DNS name in the certificate, sent as SNI and Host.
pub const SERVER_NAME: &str = "bench.example";

/// A client-side TLS connection over blocking TCP.
pub type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// The benchmark certificate, in memory and on disk.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    /// Certificate (PEM) file.
    pub cert: PathBuf,
    /// Private key (PKCS#8 PEM) file.
    pub key: PathBuf,
    /// Certificate and key in one PEM file (HAProxy's `crt`).
    pub combined: PathBuf,
    /// The certificate, PEM.
    pub chain_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

/// Generates an ECDSA P-256 certificate for [`SERVER_NAME`] into `dir`.
///
/// # Errors
///
/// When key generation or signing fails, or a file cannot be written.
pub fn generate(dir: &Path) -> Result<TlsFiles, BenchError> {
    let failed = |detail: rcgen::Error| BenchError::Http {
        what: "generating the benchmark certificate".into(),
        detail: detail.to_string(),
    };
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(failed)?;
    let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
        .and_then(|params| params.self_signed(&key))
        .map_err(failed)?;
    let files = TlsFiles {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        combined: dir.join("combined.pem"),
        chain_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    };
    let combined = format!("{}{}", files.chain_pem, files.key_pem);
    for (path, text) in [
        (&files.cert, &files.chain_pem),
        (&files.key, &files.key_pem),
        (&files.combined, &combined),
    ] {
        std::fs::write(path, text)
            .map_err(BenchError::io(format!("writing {}", path.display())))?;
    }
    Ok(files)
}

/// The client configuration described in the module docs.
///
/// # Errors
///
/// When the provider does not support TLS 1.3 (it does).
pub fn client_config() -> Result<Arc<ClientConfig>, BenchError> {
    let provider = Arc::new(CryptoProvider {
        kx_groups: vec![aws_lc_rs::kx_group::X25519],
        ..aws_lc_rs::default_provider()
    });
    let verifier = Arc::new(NoVerification(Arc::clone(&provider)));
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| BenchError::Http {
            what: "building the TLS client".into(),
            detail: e.to_string(),
        })?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any certificate and signature (see the module docs for why).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Connects to `addr` and completes a full handshake.
///
/// # Errors
///
/// When the connection or the handshake fails.
pub fn connect(config: &Arc<ClientConfig>, addr: SocketAddr) -> Result<TlsStream, BenchError> {
    let failed = |detail: String| BenchError::Http {
        what: format!("TLS handshake with {addr}"),
        detail,
    };
    let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2))
        .map_err(BenchError::io(format!("connecting to {addr}")))?;
    tcp.set_nodelay(true)
        .and_then(|()| tcp.set_read_timeout(Some(Duration::from_secs(5))))
        .map_err(BenchError::io("setting up a TLS connection"))?;
    let name = ServerName::try_from(SERVER_NAME).map_err(|e| failed(e.to_string()))?;
    let conn =
        ClientConnection::new(Arc::clone(config), name).map_err(|e| failed(e.to_string()))?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream
            .conn
            .complete_io(&mut stream.sock)
            .map_err(|e| failed(e.to_string()))?;
    }
    Ok(stream)
}

/// Sends `GET /` and reads the answer; its status code. With `close`, the
/// request says `Connection: close` and the answer is read to the end of
/// the connection; otherwise to the end of its `content-length` body, and
/// the connection stays usable.
///
/// # Errors
///
/// When sending fails or the connection ends before a whole answer head.
pub fn get(stream: &mut TlsStream, close: bool) -> Result<u16, BenchError> {
    let request = if close {
        format!("GET / HTTP/1.1\r\nHost: {SERVER_NAME}\r\nConnection: close\r\n\r\n")
    } else {
        format!("GET / HTTP/1.1\r\nHost: {SERVER_NAME}\r\n\r\n")
    };
    stream
        .write_all(request.as_bytes())
        .map_err(BenchError::io("sending a request over TLS"))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let (status, body_end) = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_ascii_lowercase();
            let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            break (status, i + 4 + length);
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => {
                return Err(BenchError::Http {
                    what: "reading an answer over TLS".into(),
                    detail: "the connection ended before the answer's head".into(),
                });
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    // With `close` the server ends the connection (it keeps the TIME_WAIT,
    // not the client's ports); an end without close_notify is fine here.
    while close || buf.len() < body_end {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Ok(status)
}

/// Polls a full handshake and `GET /` on `addr` every 20 ms until it
/// answers 200; whether it did within `timeout`.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(config) = client_config() else {
        return false;
    };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let answered = connect(&config, addr).and_then(|mut s| get(&mut s, true));
        if matches!(answered, Ok(200)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
