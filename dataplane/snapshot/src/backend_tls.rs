//! TLS from the data plane to a backend: what a BackendTLSPolicy and the
//! Gateway's `spec.tls.backend` resolve to.
//!
//! Trust material travels as PEM text because the data plane builds its
//! rustls configuration from it and the controller must not need to know
//! rustls. The only secret here, the client certificate's private key, is
//! [`Redacted`], which never shows in `Debug` output or in the admin
//! endpoint's redacted snapshot.

use crate::tls::Redacted;
use serde::{Deserialize, Serialize};

/// How the data plane connects to one backend over TLS.
///
/// With neither CA certificates nor `system_roots` nothing is trusted and
/// every connection fails: that is how a policy whose CA references are all
/// invalid makes requests fail with a 5xx instead of going out unverified.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendTls {
    /// The server name sent as SNI and, without `subject_alt_names`,
    /// verified against the certificate.
    pub hostname: String,
    /// Trusted CA certificates, PEM (the `ca.crt` of each valid ConfigMap).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_certificates: Vec<String>,
    /// Also trust the system's well-known CAs (`wellKnownCACertificates: System`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system_roots: bool,
    /// When set, the certificate must carry one of these names instead of
    /// `hostname`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<SubjectAltName>,
    /// The policy it came from, `backendtlspolicy/<ns>/<name>`, for logs.
    pub policy: String,
}

/// One acceptable subject alternative name of a backend certificate.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SubjectAltName {
    /// A DNS name; a certificate wildcard covers one label, as in RFC 6125.
    Hostname(String),
    /// A URI, compared exactly (e.g. a SPIFFE ID).
    Uri(String),
}

/// A client certificate the data plane presents to TLS backends (the
/// Gateway's `spec.tls.backend.clientCertificateRef`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientCertificate {
    /// The certificate chain, PEM, leaf first.
    pub certificate_chain: String,
    /// The private key, PEM.
    pub private_key: Redacted,
    /// The Secret it came from, `secret/<ns>/<name>`, for logs.
    pub source: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_never_prints() {
        let cert = ClientCertificate {
            certificate_chain: "CHAIN".into(),
            private_key: Redacted::new("-----BEGIN PRIVATE KEY-----\nSECRET"),
            source: "secret/default/client".into(),
        };
        let shown = format!("{cert:?} {:?}", cert.private_key);
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("<redacted 34 bytes>"), "{shown}");
        // The wire form carries the key: the data plane needs it.
        let json = serde_json::to_string(&cert).unwrap();
        assert!(json.contains("SECRET"));
    }

    #[test]
    fn subject_alt_names_round_trip() {
        let tls = BackendTls {
            hostname: "abc.example.com".into(),
            ca_certificates: vec!["PEM".into()],
            system_roots: false,
            subject_alt_names: vec![
                SubjectAltName::Hostname("abc.example.com".into()),
                SubjectAltName::Uri("spiffe://cluster/ns/a/sa/b".into()),
            ],
            policy: "backendtlspolicy/default/p".into(),
        };
        let json = serde_json::to_value(&tls).unwrap();
        assert_eq!(
            json["subjectAltNames"],
            serde_json::json!([{"hostname": "abc.example.com"}, {"uri": "spiffe://cluster/ns/a/sa/b"}])
        );
        let back: BackendTls = serde_json::from_value(json).unwrap();
        assert_eq!(back, tls);
    }
}
