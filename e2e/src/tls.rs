//! TLS test doubles: a certificate authority made with rcgen, and a TLS
//! backend that answers every request with what it saw of the connection
//! (SNI, ALPN, whether a client certificate came, HTTP version, path, Host)
//! as JSON. Tests of backend TLS look at those answers; tests of listener
//! TLS use the CA for server certificates and client trust, and tests of
//! mutual TLS for client certificates and revocation lists.

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer, DnType,
    IsCa, KeyIdMethod, KeyPair, RevocationReason, RevokedCertParams, SanType, SerialNumber,
    date_time_ymd,
};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
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

/// The crypto provider of every test double: the one Tollgate uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A test certificate authority.
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A certificate chain and its private key, both PEM.
#[derive(Clone, Debug)]
pub struct Leaf {
    /// The certificate, PEM.
    pub chain_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
    /// The certificate, DER (what a client sees).
    pub der: CertificateDer<'static>,
}

impl Ca {
    /// A new CA whose certificate has `name` as its common name.
    ///
    /// # Errors
    ///
    /// Key generation or signing failed.
    pub fn new(name: &str) -> Result<Ca> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate()?)?;
        Ok(Ca { issuer })
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate, DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// An ECDSA P-256 leaf certificate for the DNS names `dns` and the URI
    /// SANs `uris`.
    ///
    /// # Errors
    ///
    /// A name is not valid in a certificate, or signing failed.
    pub fn leaf(&self, dns: &[&str], uris: &[&str]) -> Result<Leaf> {
        self.leaf_with(dns, uris, &rcgen::PKCS_ECDSA_P256_SHA256)
    }

    /// [`Ca::leaf`] with a key of `alg` (RSA, another curve).
    ///
    /// # Errors
    ///
    /// A name is not valid in a certificate, or key generation or signing
    /// failed.
    pub fn leaf_with(
        &self,
        dns: &[&str],
        uris: &[&str],
        alg: &'static rcgen::SignatureAlgorithm,
    ) -> Result<Leaf> {
        let mut params =
            CertificateParams::new(dns.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        for uri in uris {
            params
                .subject_alt_names
                .push(SanType::URI((*uri).try_into()?));
        }
        let key = KeyPair::generate_for(alg)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }

    /// A client certificate (mutual TLS) with serial number `serial`, the
    /// DNS name `<cn>.example` and the URI `spiffe://tests.example/<cn>`.
    /// Its subject is encoded CN first (rcgen keeps the place of its default
    /// CN), so RFC 4514 writes it `O=Tollgate Tests,CN=<cn>`.
    ///
    /// # Errors
    ///
    /// Key generation or signing failed.
    pub fn client(&self, cn: &str, serial: u64) -> Result<Leaf> {
        let mut params = CertificateParams::new(vec![format!("{cn}.example")])?;
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Tollgate Tests");
        params.distinguished_name.push(DnType::CommonName, cn);
        let uri = format!("spiffe://tests.example/{cn}");
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
        params.serial_number = Some(SerialNumber::from(serial));
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Leaf {
            chain_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        })
    }

    /// A revocation list (PEM) of this CA naming the serial numbers
    /// `revoked`, valid from 2024 for a century.
    ///
    /// # Errors
    ///
    /// Signing failed.
    pub fn crl(&self, revoked: &[u64]) -> Result<String> {
        let params = CertificateRevocationListParams {
            this_update: date_time_ymd(2024, 1, 1),
            next_update: date_time_ymd(2124, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: date_time_ymd(2024, 1, 1),
                    reason_code: Some(RevocationReason::KeyCompromise),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }
}

/// A server configuration for `leaf`, offering `alpn`, and requiring a
/// client certificate from `client_ca` when given.
///
/// # Errors
///
/// The certificate or key does not parse.
pub fn server_config(leaf: &Leaf, alpn: &[&str], client_ca: Option<&Ca>) -> Result<ServerConfig> {
    let chain = CertificateDer::pem_slice_iter(leaf.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .context("certificate PEM")?;
    let key = PrivateKeyDer::from_pem_slice(leaf.key_pem.as_bytes()).context("key PEM")?;
    let builder =
        ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.der())?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider()).build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Ok(config)
}

/// A running TLS backend.
pub struct TlsEcho {
    /// Where it listens.
    pub addr: SocketAddr,
    handshakes: Arc<AtomicUsize>,
}

impl TlsEcho {
    /// Starts a backend serving `leaf`, offering `alpn`, and requiring a
    /// client certificate from `client_ca` when given.
    ///
    /// # Errors
    ///
    /// The certificate does not parse or no port could be bound.
    pub async fn start(leaf: &Leaf, alpn: &[&str], client_ca: Option<&Ca>) -> Result<TlsEcho> {
        let config = server_config(leaf, alpn, client_ca)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
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
        Ok(TlsEcho { addr, handshakes })
    }

    /// Completed handshakes so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }
}
