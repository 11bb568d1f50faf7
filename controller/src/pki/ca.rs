//! The snapshot CA: issues the controller's serving certificate and each
//! Gateway's data-plane client certificate.
//!
//! The CA is an ECDSA P-256 key made with rcgen on the first start and
//! kept in a Secret (`secret.rs`), so every replica serves with, and
//! trusts, the same CA. Its certificate's subject is fixed, so an issuer
//! rebuilt from the stored key alone signs certificates that chain to the
//! stored CA certificate.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// The CA certificate's common name.
const CA_NAME: &str = "tollgate-snapshot-ca";
/// How long a new CA is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// How far back a certificate's validity starts, for clocks a bit behind.
const BACKDATE: Duration = Duration::from_secs(300);

/// Why a certificate could not be made or read.
#[derive(Debug, Error)]
pub enum PkiError {
    /// rcgen refused (bad name, bad key).
    #[error("certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    /// Stored material is missing or unreadable.
    #[error("{0}")]
    Invalid(String),
    /// The Kubernetes API failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    /// rustls refused the certificate or key.
    #[error("tls: {0}")]
    Tls(#[from] rustls::Error),
}

/// A certificate issued by the CA, PEM, with its validity.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
}

/// The CA: its certificate and an issuer made from its key.
pub struct Ca {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca").finish_non_exhaustive()
    }
}

fn ca_params(now: SystemTime) -> Result<CertificateParams, PkiError> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut params, now, CA_LIFETIME);
    Ok(params)
}

/// rcgen takes `time` dates; counting from its 1970-01-01 avoids a
/// dependency on `time` just to say "now".
fn set_validity(params: &mut CertificateParams, now: SystemTime, lifetime: Duration) {
    let (from, to) = validity(now, lifetime);
    let epoch = rcgen::date_time_ymd(1970, 1, 1);
    params.not_before = epoch + from.duration_since(UNIX_EPOCH).unwrap_or_default();
    params.not_after = epoch + to.duration_since(UNIX_EPOCH).unwrap_or_default();
}

/// From a little before `now` (at most a tenth of the life, so short
/// test lifetimes stay meaningful) to `lifetime` after it.
fn validity(now: SystemTime, lifetime: Duration) -> (SystemTime, SystemTime) {
    let from = now.checked_sub(BACKDATE.min(lifetime / 10)).unwrap_or(now);
    (from, now + lifetime)
}

impl Ca {
    /// A new CA (ECDSA P-256).
    ///
    /// # Errors
    ///
    /// Key generation or signing failed.
    pub fn generate() -> Result<Ca, PkiError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let key_pem = key.serialize_pem();
        let certified = CertifiedIssuer::self_signed(ca_params(SystemTime::now())?, key)?;
        let cert_pem = certified.pem();
        Ca::from_pem(&cert_pem, &key_pem)
    }

    /// The CA kept in a Secret: its certificate and key, PEM.
    ///
    /// # Errors
    ///
    /// The key does not parse.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Ca, PkiError> {
        let key = KeyPair::from_pem(key_pem)?;
        Ok(Ca {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer: Issuer::new(ca_params(SystemTime::now())?, key),
        })
    }

    /// The CA certificate, PEM (what clients and the server trust).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key, PEM (kept only in the CA Secret).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// A client certificate for Gateway `namespace/name`: the URI SAN
    /// [`identity`](super::names::identity), client-auth usage only.
    ///
    /// # Errors
    ///
    /// Key generation or signing failed.
    pub fn issue_client(
        &self,
        namespace: &str,
        name: &str,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        let uri = super::names::identity(namespace, name);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{namespace}/{name}"));
        params
            .subject_alt_names
            .push(SanType::URI(uri.as_str().try_into()?));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params, now, lifetime)
    }

    /// A serving certificate for `hosts` (DNS names or IP addresses).
    ///
    /// # Errors
    ///
    /// A host is not a valid name, or signing failed.
    pub fn issue_server(
        &self,
        hosts: &[String],
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Issued, PkiError> {
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "tollgate-controller");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params, now, lifetime)
    }

    fn issue(
        &self,
        mut params: CertificateParams,
        now: SystemTime,
        lifetime: Duration,
    ) -> Result<Issued, PkiError> {
        set_validity(&mut params, now, lifetime);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let cert = params.signed_by(&key, &self.issuer)?;
        let (not_before, not_after) = validity(now, lifetime);
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            not_before,
            not_after,
        })
    }
}
