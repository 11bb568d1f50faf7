//! TLS to backends (BackendTLSPolicy): real rustls backends with
//! certificates made by rcgen, checked for what they saw (SNI, ALPN,
//! client certificate) and for failing closed when verification fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]


use crate::common::*;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair, SanType};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tollgate_snapshot::*;

/// A test certificate authority.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Ca { issuer }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf for `dns` names plus optional URI SANs: (chain PEM, key PEM).
    fn leaf(&self, dns: &[&str], uris: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into().unwrap()));
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A TLS backend answering with what it saw of the connection.
struct TlsEcho {
    addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
}

impl TlsEcho {
    async fn start(leaf: &(String, String), alpn: &[&str], client_ca: Option<&Ca>) -> TlsEcho {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(leaf.0.as_bytes())
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(leaf.1.as_bytes()).unwrap();
        let builder = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = match client_ca {
            Some(ca) => {
                let mut roots = rustls::RootCertStore::empty();
                roots.add(ca.issuer.der().clone()).unwrap();
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                        .build()
                        .unwrap();
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                let counted = Arc::clone(&counted);
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    counted.fetch_add(1, Ordering::SeqCst);
                    let (_, session) = tls.get_ref();
                    let seen = json!({
                        "sni": session.server_name(),
                        "alpn": session.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
                        "clientCertificate": session.peer_certificates().is_some_and(|c| !c.is_empty()),
                    });
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let mut seen = seen.clone();
                        seen["path"] = json!(req.uri().path());
                        seen["version"] = json!(format!("{:?}", req.version()));
                        seen["host"] =
                            json!(req.headers().get("host").and_then(|h| h.to_str().ok()));
                        async move {
                            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(
                                seen.to_string(),
                            ))))
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        TlsEcho { addr, handshakes }
    }

    fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: "127.0.0.1".into(),
            port: self.addr.port(),
        }
    }
}

/// Backend TLS trusting `ca` for `hostname`.
fn trusting(ca: &Ca, hostname: &str) -> BackendTls {
    BackendTls {
        hostname: hostname.into(),
        ca_certificates: vec![ca.pem()],
        policy: "backendtlspolicy/default/test".into(),
        ..BackendTls::default()
    }
}

/// A gateway sending everything to `backend` over `tls`.
async fn gateway(
    backend_at: &TlsEcho,
    tls: BackendTls,
    client: Option<ClientCertificate>,
) -> Gateway {
    let endpoint = backend_at.endpoint();
    Gateway::start(move |port| {
        let mut b = backend("secure", vec![endpoint]);
        b.tls = Some(tls);
        let mut s = snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("all", vec![], vec![to(0, 1)])],
            vec![b],
        );
        s.backend_client_certificate = client;
        s
    })
    .await
}

#[tokio::test]
async fn verified_backend_gets_sni_and_h2_by_alpn() {
    let ca = Ca::new("test ca");
    let echo = TlsEcho::start(
        &ca.leaf(&["abc.example.com"], &[]),
        &["h2", "http/1.1"],
        None,
    )
    .await;
    let gw = gateway(&echo, trusting(&ca, "abc.example.com"), None).await;
    let answer = gw.get("front.example.com", "/hello").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = answer.echo();
    assert_eq!(seen["sni"], "abc.example.com");
    assert_eq!(seen["alpn"], "h2");
    assert_eq!(seen["version"], "HTTP/2.0");
    assert_eq!(seen["path"], "/hello");
    assert_eq!(seen["clientCertificate"], false);
}

#[tokio::test]
async fn backend_offering_only_http1_gets_http1() {
    let ca = Ca::new("test ca");
    let echo = TlsEcho::start(&ca.leaf(&["abc.example.com"], &[]), &["http/1.1"], None).await;
    let gw = gateway(&echo, trusting(&ca, "abc.example.com"), None).await;
    let answer = gw.get("front.example.com", "/one").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = answer.echo();
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(seen["host"], "front.example.com");
    // The pooled connection is reused: one handshake for two requests.
    assert_eq!(
        gw.get("front.example.com", "/two").await.status,
        StatusCode::OK
    );
    assert_eq!(echo.handshakes.load(Ordering::SeqCst), 1);
}

/// Every way verification can fail ends in a gateway 502, never a request
/// sent unverified.
#[tokio::test]
async fn failed_verification_fails_closed() {
    let ca = Ca::new("test ca");
    let other = Ca::new("other ca");
    let echo = TlsEcho::start(&ca.leaf(&["abc.example.com"], &[]), &["http/1.1"], None).await;
    let cases = [
        ("untrusted CA", trusting(&other, "abc.example.com")),
        (
            "hostname not in certificate",
            trusting(&ca, "other.example.com"),
        ),
        (
            "nothing trusted",
            BackendTls {
                hostname: "abc.example.com".into(),
                ..BackendTls::default()
            },
        ),
        (
            "subjectAltNames without a match",
            BackendTls {
                subject_alt_names: vec![SubjectAltName::Hostname("nope.example.com".into())],
                ..trusting(&ca, "abc.example.com")
            },
        ),
    ];
    for (case, tls) in cases {
        let gw = gateway(&echo, tls, None).await;
        let answer = gw.get("front.example.com", "/").await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_GATEWAY,
            "{case}: {}",
            answer.text()
        );
        assert_eq!(answer.headers["x-tollgate-error"], "upstream-tls", "{case}");
    }
    assert_eq!(echo.handshakes.load(Ordering::SeqCst), 0);
}

/// With subjectAltNames the hostname is only the SNI; the certificate must
/// carry one of the names (DNS or URI) instead.
#[tokio::test]
async fn subject_alt_names_replace_the_hostname() {
    let ca = Ca::new("test ca");
    let spiffe = "spiffe://cluster.local/ns/default/sa/api";
    let echo = TlsEcho::start(&ca.leaf(&["api.internal"], &[spiffe]), &["http/1.1"], None).await;
    for san in [
        SubjectAltName::Hostname("api.internal".into()),
        SubjectAltName::Uri(spiffe.into()),
    ] {
        let tls = BackendTls {
            subject_alt_names: vec![
                SubjectAltName::Hostname("other.internal".into()),
                san.clone(),
            ],
            ..trusting(&ca, "sni.example.com")
        };
        let gw = gateway(&echo, tls, None).await;
        let answer = gw.get("front.example.com", "/").await;
        assert_eq!(answer.status, StatusCode::OK, "{san:?}: {}", answer.text());
        assert_eq!(answer.echo()["sni"], "sni.example.com");
    }
}

#[tokio::test]
async fn client_certificate_is_presented_when_the_gateway_names_one() {
    let ca = Ca::new("server ca");
    let clients = Ca::new("client ca");
    let echo = TlsEcho::start(
        &ca.leaf(&["abc.example.com"], &[]),
        &["http/1.1"],
        Some(&clients),
    )
    .await;
    let without = gateway(&echo, trusting(&ca, "abc.example.com"), None).await;
    assert_eq!(without.get("a", "/").await.status, StatusCode::BAD_GATEWAY);
    let (chain, key) = clients.leaf(&["gateway.example.com"], &[]);
    let client = ClientCertificate {
        certificate_chain: chain,
        private_key: PrivateKeyPem::new(key),
        source: "secret/default/client".into(),
    };
    let with = gateway(&echo, trusting(&ca, "abc.example.com"), Some(client)).await;
    let answer = with.get("a", "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.echo()["clientCertificate"], true);
}
