//! TLS to backends: the rustls client configuration a BackendTLSPolicy
//! asks for, and the pooled HTTPS client that uses it.
//!
//! One client per distinct TLS settings (trust, names, client certificate)
//! and connect timeout, shared by every endpoint with those settings and
//! kept across snapshot swaps like the HTTP/1.1 pools: its connections are
//! keyed by endpoint address inside. ALPN offers `h2` and `http/1.1`, and
//! the backend's choice decides the protocol of each connection (a backend
//! declared h2c-capable gets `h2` only). The SNI is the policy's hostname,
//! never the endpoint IP.
//!
//! Verification: the certificate must chain to the policy's CA bundles (or
//! the system roots) and name the hostname, or, when `subjectAltNames` is
//! set, one of those names instead (DNS names with RFC 6125 wildcards, URIs
//! exactly). With nothing trusted every handshake fails: the request gets
//! a 502 rather than going out unverified.

use super::upgrade::UpgradeTls;
use crate::body::ProxyBody;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{
    WebPkiServerVerifier, verify_server_cert_signed_by_trust_anchor, verify_server_name,
};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore, SignatureScheme,
};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tollgate_snapshot::{BackendProtocol, BackendTls, ClientCertificate, SubjectAltName};

/// The pooled HTTPS client of one TLS setting, and what an upgrade
/// (WebSocket) needs to dial its own connection with the same trust.
pub(crate) struct TlsClient {
    /// Pooled requests (HTTP/1.1 or h2 by ALPN).
    pub(crate) pooled: Client<HttpsConnector<HttpConnector>, ProxyBody>,
    /// Upgrades: the same configuration with ALPN `http/1.1`, and the name.
    pub(crate) upgrade: UpgradeTls,
    /// The connect timeout.
    pub(crate) connect_timeout: Duration,
}

/// Everything that makes two TLS clients differ.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TlsKey {
    pub(crate) tls: BackendTls,
    pub(crate) client_certificate: Option<ClientCertificate>,
    pub(crate) protocol: BackendProtocol,
    pub(crate) connect_timeout: Duration,
}

/// Builds the clients for `key`.
pub(crate) fn tls_client(key: &TlsKey, idle_timeout: Duration) -> TlsClient {
    let config = client_config(key);
    let mut upgrade_config = config.clone();
    upgrade_config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Compile only passes precise hostnames; anything else would fail
    // name verification anyway.
    let server_name = ServerName::try_from(key.tls.hostname.clone()).unwrap_or(
        ServerName::IpAddress(std::net::Ipv4Addr::UNSPECIFIED.into()),
    );
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(key.connect_timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .with_server_name_resolver(FixedServerNameResolver::new(server_name.clone()));
    let connector = match key.protocol {
        BackendProtocol::H2c => builder.enable_http2().wrap_connector(http),
        BackendProtocol::Http1 => builder.enable_all_versions().wrap_connector(http),
    };
    let pooled = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(idle_timeout)
        .pool_timer(TokioTimer::new())
        .timer(TokioTimer::new())
        .set_host(false)
        .build(connector);
    TlsClient {
        pooled,
        upgrade: (Arc::new(upgrade_config), server_name),
        connect_timeout: key.connect_timeout,
    }
}

/// The rustls configuration for `key`; problems with the material are
/// logged and make verification fail closed, never open.
fn client_config(key: &TlsKey) -> ClientConfig {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match trust(&key.tls) {
        Some(roots) if key.tls.subject_alt_names.is_empty() => {
            match WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider)).build()
            {
                Ok(verifier) => verifier,
                Err(error) => {
                    tracing::warn!(policy = %key.tls.policy, %error, "backend TLS verifier failed to build; nothing trusted");
                    Arc::new(PolicyVerifier::untrusted(&provider))
                }
            }
        }
        Some(roots) => Arc::new(PolicyVerifier {
            roots: Some(roots),
            names: key.tls.subject_alt_names.clone(),
            algorithms: provider.signature_verification_algorithms,
        }),
        None => Arc::new(PolicyVerifier::untrusted(&provider)),
    };
    let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| ClientConfig::builder())
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match key.client_certificate.as_ref().and_then(client_auth) {
        Some((chain, private_key)) => {
            match builder.clone().with_client_auth_cert(chain, private_key) {
                Ok(config) => config,
                Err(error) => {
                    tracing::warn!(%error, "backend client certificate unusable; connecting without one");
                    builder.with_no_client_auth()
                }
            }
        }
        None => builder.with_no_client_auth(),
    }
}

/// The process's crypto provider: the installed default, else aws-lc-rs.
fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
}

/// The roots `tls` trusts, or `None` when it trusts nothing.
fn trust(tls: &BackendTls) -> Option<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for pem in &tls.ca_certificates {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            if let Err(error) = roots.add(cert) {
                tracing::debug!(policy = %tls.policy, %error, "CA certificate skipped");
            }
        }
    }
    if tls.system_roots {
        roots.extend(system_roots().roots.iter().cloned());
    }
    (!roots.is_empty()).then(|| Arc::new(roots))
}

/// The system's CA certificates, read once per process.
fn system_roots() -> &'static RootCertStore {
    static ROOTS: OnceLock<RootCertStore> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let found = rustls_native_certs::load_native_certs();
        for error in &found.errors {
            tracing::warn!(%error, "reading system CA certificates");
        }
        let mut roots = RootCertStore::empty();
        let (added, skipped) = roots.add_parsable_certificates(found.certs);
        tracing::debug!(added, skipped, "system CA certificates loaded");
        roots
    })
}

fn client_auth(
    cert: &ClientCertificate,
) -> Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_slice_iter(cert.certificate_chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty());
    let key = PrivateKeyDer::from_pem_slice(cert.private_key.expose().as_bytes()).ok();
    if chain.is_none() || key.is_none() {
        tracing::warn!(source = %cert.source, "backend client certificate does not parse");
    }
    Some((chain?, key?))
}

/// Verifies a backend certificate when the standard check does not fit:
/// against a list of subject alternative names instead of the SNI name,
/// or, with no roots at all, not at all (every handshake fails).
#[derive(Debug)]
struct PolicyVerifier {
    /// `None`: nothing is trusted.
    roots: Option<Arc<RootCertStore>>,
    names: Vec<SubjectAltName>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PolicyVerifier {
    /// A verifier that trusts nothing.
    fn untrusted(provider: &CryptoProvider) -> Self {
        PolicyVerifier {
            roots: None,
            names: Vec::new(),
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for PolicyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        let Some(roots) = &self.roots else {
            return Err(TlsError::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ));
        };
        let cert = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &cert,
            roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        if self.names.iter().any(|n| san_matches(n, &cert, end_entity)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(TlsError::InvalidCertificate(
                rustls::CertificateError::NotValidForName,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Whether the certificate carries `name`.
fn san_matches(
    name: &SubjectAltName,
    cert: &ParsedCertificate<'_>,
    der: &CertificateDer<'_>,
) -> bool {
    match name {
        SubjectAltName::Hostname(host) => {
            ServerName::try_from(host.as_str()).is_ok_and(|n| verify_server_name(cert, &n).is_ok())
        }
        SubjectAltName::Uri(uri) => webpki::EndEntityCert::try_from(der)
            .is_ok_and(|c| c.valid_uri_names().any(|u| u == uri)),
    }
}
