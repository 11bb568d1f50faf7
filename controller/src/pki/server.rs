//! The snapshot server's TLS: a serving certificate from the snapshot CA,
//! client certificates required and verified against the same CA, and
//! the Gateway identity read from a verified client certificate.
//!
//! Every replica issues its own serving certificate from the CA (the CA
//! key is in the Secret every replica reads) and renews it in place: the
//! certificate resolver is swapped, connections already open keep theirs.

use super::ca::{Ca, PkiError};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{RootCertStore, ServerConfig};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// Validity of a serving certificate; renewed after a third of it.
pub const SERVER_CERT_LIFETIME: Duration = Duration::from_secs(90 * 24 * 3600);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The current serving certificate, replaceable while serving.
#[derive(Debug)]
pub struct ServerCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

impl ServerCert {
    fn certified(ca: &Ca, hosts: &[String]) -> Result<Arc<CertifiedKey>, PkiError> {
        let issued = ca.issue_server(hosts, SystemTime::now(), SERVER_CERT_LIFETIME)?;
        let chain = CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| PkiError::Invalid(format!("server certificate: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("server key: {e}")))?;
        Ok(Arc::new(CertifiedKey::from_der(chain, key, &provider())?))
    }

    /// Issues a new serving certificate and uses it for new connections.
    ///
    /// # Errors
    ///
    /// Issuing failed; the previous certificate keeps serving.
    pub fn renew(&self, ca: &Ca, hosts: &[String]) -> Result<(), PkiError> {
        let fresh = ServerCert::certified(ca, hosts)?;
        if let Ok(mut current) = self.current.write() {
            *current = fresh;
        }
        Ok(())
    }
}

/// A server configuration for the snapshot port: a certificate from `ca`
/// for `hosts`, client certificates required and chained to `ca`, ALPN h2
/// and http/1.1. Also returns the certificate holder for renewals.
///
/// # Errors
///
/// Issuing or configuring failed.
pub fn server_config(
    ca: &Ca,
    hosts: &[String],
) -> Result<(Arc<ServerConfig>, Arc<ServerCert>), PkiError> {
    let cert = Arc::new(ServerCert {
        current: RwLock::new(ServerCert::certified(ca, hosts)?),
    });
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
        let der = der.map_err(|e| PkiError::Invalid(format!("CA certificate: {e}")))?;
        roots.add(der)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| PkiError::Invalid(format!("client verifier: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(cert.clone());
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((Arc::new(config), cert))
}

/// Renews the serving certificate every third of its life, for ever.
pub async fn renew_server_cert(ca: Arc<Ca>, cert: Arc<ServerCert>, hosts: Vec<String>) {
    loop {
        tokio::time::sleep(SERVER_CERT_LIFETIME / 3).await;
        match cert.renew(&ca, &hosts) {
            Ok(()) => tracing::info!("renewed the snapshot server certificate"),
            Err(error) => tracing::warn!(%error, "cannot renew the snapshot server certificate"),
        }
    }
}

/// The hosts the serving certificate names: the snapshot URL's host, plus
/// `localhost` and `127.0.0.1` (tests, port-forwards).
pub fn server_hosts(snapshot_url: &str) -> Vec<String> {
    let mut hosts = Vec::new();
    if let Ok(uri) = snapshot_url.parse::<http::Uri>()
        && let Some(host) = uri.host()
    {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
    }
    for extra in ["localhost", "127.0.0.1"] {
        if !hosts.iter().any(|h| h == extra) {
            hosts.push(extra.to_string());
        }
    }
    hosts
}

/// The URI SANs of a verified client certificate (DER).
pub fn uri_sans(der: &[u8]) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return Vec::new();
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|n| match n {
            GeneralName::URI(uri) => Some((*uri).to_string()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The URL's host comes first; loopback names are always there.
    #[test]
    fn hosts_of_the_snapshot_url() {
        assert_eq!(
            server_hosts("https://tollgate-controller.tollgate.svc:9903"),
            ["tollgate-controller.tollgate.svc", "localhost", "127.0.0.1"]
        );
        assert_eq!(
            server_hosts("https://127.0.0.1:1"),
            ["127.0.0.1", "localhost"]
        );
    }

    /// A client certificate's identity reads back from its DER.
    #[test]
    fn client_identity_reads_back() {
        let ca = Ca::generate().unwrap();
        let issued = ca
            .issue_client("ns", "gw", SystemTime::now(), Duration::from_secs(60))
            .unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();
        assert_eq!(uri_sans(&der), ["urn:tollgate:gateway:ns:gw"]);
    }
}
