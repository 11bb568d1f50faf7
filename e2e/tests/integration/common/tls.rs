//! TLS for the end-to-end tests: a test CA and certificates made with
//! rcgen, HTTPS manifests, and a rustls client that reports what it got
//! (the certificate, the protocol, whether the session resumed).

use rcgen::SignatureAlgorithm;
use rustls::client::{ClientSessionMemoryCache, Resumption};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, HandshakeKind, ProtocolVersion, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// The e2e library's test CA ([`tollgate_e2e::tls::Ca`]) with the
/// shorthands the listener tests use: one name for the CA, ECDSA leaves
/// unless told otherwise, panics instead of errors.
pub struct Ca {
    inner: tollgate_e2e::tls::Ca,
    /// The CA certificate, PEM.
    pub pem: String,
}

/// A leaf certificate and its key, PEM.
#[derive(Clone)]
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

impl Ca {
    pub fn new() -> Ca {
        let inner = tollgate_e2e::tls::Ca::new("tollgate test CA").unwrap();
        Ca {
            pem: inner.pem(),
            inner,
        }
    }

    /// An ECDSA P-256 certificate for `names`.
    pub fn leaf(&self, names: &[&str]) -> Leaf {
        self.leaf_with(names, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// A certificate for `names` with a key of `alg`.
    pub fn leaf_with(&self, names: &[&str], alg: &'static SignatureAlgorithm) -> Leaf {
        let leaf = self.inner.leaf_with(names, &[], alg).unwrap();
        Leaf {
            cert_pem: leaf.chain_pem,
            key_pem: leaf.key_pem,
            der: leaf.der,
        }
    }

    /// Writes the CA certificate to `dir/ca.pem` for curl and openssl.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// Roots trusting only this CA.
    pub fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        roots.add(self.inner.der()).unwrap();
        roots
    }
}

/// A `kubernetes.io/tls` Secret `name` in `default` holding `leaf`.
pub fn secret(name: &str, leaf: &Leaf) -> String {
    let indent = |s: &str| s.lines().map(|l| format!("    {l}\n")).collect::<String>();
    format!(
        "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: |\n{}  tls.key: |\n{}",
        indent(&leaf.cert_pem),
        indent(&leaf.key_pem)
    )
}

/// What a client may verify and speak.
#[derive(Clone)]
pub struct ClientOptions {
    pub alpn: Vec<&'static str>,
    pub versions: Vec<&'static rustls::SupportedProtocolVersion>,
    /// Only these signature schemes (say, RSA only); empty: all.
    pub schemes: Vec<SignatureScheme>,
    /// Shared across connections to resume sessions.
    pub resumption: Option<Arc<ClientSessionMemoryCache>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            alpn: vec!["h2", "http/1.1"],
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            schemes: Vec::new(),
            resumption: None,
        }
    }
}

/// A rustls client config trusting `ca`.
pub fn client_config(ca: &Ca, options: &ClientOptions) -> Arc<ClientConfig> {
    let mut provider = aws_lc_rs::default_provider();
    if !options.schemes.is_empty() {
        let all = provider.signature_verification_algorithms;
        let mapping: Vec<_> = all
            .mapping
            .iter()
            .filter(|(s, _)| options.schemes.contains(s))
            .copied()
            .collect();
        // Tests only: the provider wants 'static tables.
        provider.signature_verification_algorithms = WebPkiSupportedAlgorithms {
            all: all.all,
            mapping: Box::leak(mapping.into_boxed_slice()),
        };
    }
    let provider: Arc<CryptoProvider> = Arc::new(provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&options.versions)
        .unwrap()
        .with_root_certificates(ca.roots())
        .with_no_client_auth();
    config.alpn_protocols = options.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    config.resumption = match &options.resumption {
        Some(cache) => Resumption::store(cache.clone()),
        None => Resumption::disabled(),
    };
    Arc::new(config)
}

/// What a handshake gave the client.
pub struct Shaken {
    pub stream: TlsStream<TcpStream>,
}

impl Shaken {
    pub fn leaf(&self) -> CertificateDer<'static> {
        let (_, conn) = self.stream.get_ref();
        conn.peer_certificates().unwrap()[0].clone().into_owned()
    }
    pub fn alpn(&self) -> Option<Vec<u8>> {
        self.stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec)
    }
    pub fn version(&self) -> Option<ProtocolVersion> {
        self.stream.get_ref().1.protocol_version()
    }
    pub fn kind(&self) -> Option<HandshakeKind> {
        self.stream.get_ref().1.handshake_kind()
    }
}

/// Connects to `port` on 127.0.0.1 and shakes hands with SNI `sni`.
pub async fn connect(port: u16, sni: &str, config: Arc<ClientConfig>) -> std::io::Result<Shaken> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let stream = TlsConnector::from(config).connect(name, tcp).await?;
    Ok(Shaken { stream })
}

/// Sends `GET path` with `Host: host` on `shaken` (HTTP/2 when ALPN agreed
/// on it), returning the status and body.
pub async fn get(shaken: Shaken, host: &str, path: &str) -> (u16, String) {
    let mut sender = Sender::new(shaken).await;
    sender.get(host, path).await
}

/// An HTTP client on one TLS connection.
pub enum Sender {
    H1(hyper::client::conn::http1::SendRequest<http_body_util::Empty<bytes::Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<http_body_util::Empty<bytes::Bytes>>),
}

impl Sender {
    pub async fn new(shaken: Shaken) -> Sender {
        use hyper_util::rt::{TokioExecutor, TokioIo};
        let h2 = shaken.alpn().as_deref() == Some(b"h2");
        let io = TokioIo::new(shaken.stream);
        if h2 {
            let (sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .unwrap();
            tokio::spawn(conn);
            Sender::H2(sender)
        } else {
            let (sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            Sender::H1(sender)
        }
    }

    pub async fn get(&mut self, host: &str, path: &str) -> (u16, String) {
        use http_body_util::BodyExt;
        let response = match self {
            Sender::H1(s) => {
                let req = http::Request::get(path)
                    .header("host", host)
                    .body(http_body_util::Empty::new())
                    .unwrap();
                // The previous exchange may still be finishing: a request
                // sent before the connection is ready again is refused.
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
            Sender::H2(s) => {
                let req = http::Request::get(format!("https://{host}{path}"))
                    .body(http_body_util::Empty::new())
                    .unwrap();
                s.ready().await.unwrap();
                s.send_request(req).await.unwrap()
            }
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

/// Fails with what to install when `tool` is missing: a TLS test that
/// needs it must not pass by skipping.
pub fn require_tool(tool: &str, package: &str) {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "{tool} is not installed: run scripts/install-deps.sh (apt-get install {package})"
    );
}
