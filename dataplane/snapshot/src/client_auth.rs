//! Client certificates (mutual TLS): how a listener validates them, and
//! what of a verified one reaches the backend.
//!
//! [`ClientValidation`] comes from the Gateway's `spec.tls.frontend`
//! (default, or the entry for the listener's port) and rides on the
//! listener's [`crate::ListenerTls`]: CA bundles and revocation lists travel
//! as PEM so the data plane builds its verifier from the snapshot alone.
//! [`ClientCertHeader`] is a Gateway setting (from `GatewayConfig`): the
//! header every request loses on arrival, whoever sent it, and that the
//! gateway sets again only for a client whose certificate it verified.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Client-certificate validation on one listener.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientValidation {
    /// Trust anchors: PEM bundles, one per usable `caCertificateRefs` entry.
    pub ca_certificates: Vec<String>,
    /// Whether a client without a valid certificate is let in.
    #[serde(default, skip_serializing_if = "ClientValidationMode::is_default")]
    pub mode: ClientValidationMode,
    /// Certificate revocation lists (PEM); a certificate they list is
    /// refused. Empty: no revocation checking.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crls: Vec<String>,
}

/// The Gateway API's `FrontendValidationModeType`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientValidationMode {
    /// The handshake needs a certificate that verifies.
    #[default]
    AllowValidOnly,
    /// A certificate is asked for, but a client without one, or with one
    /// that does not verify, is let in (and gets no details header).
    AllowInsecureFallback,
}

impl ClientValidationMode {
    /// Whether this is [`ClientValidationMode::AllowValidOnly`].
    pub fn is_default(&self) -> bool {
        *self == ClientValidationMode::AllowValidOnly
    }
}

/// The header carrying a verified client certificate's details upstream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClientCertHeader {
    /// Header name, lowercase.
    pub name: String,
    /// Fields written, in this order.
    pub fields: Vec<ClientCertField>,
}

/// The default header name, as Envoy names it.
pub const DEFAULT_CLIENT_CERT_HEADER: &str = "x-forwarded-client-cert";

impl Default for ClientCertHeader {
    fn default() -> Self {
        ClientCertHeader {
            name: DEFAULT_CLIENT_CERT_HEADER.to_string(),
            fields: vec![
                ClientCertField::Hash,
                ClientCertField::Subject,
                ClientCertField::Uri,
                ClientCertField::Dns,
            ],
        }
    }
}

impl ClientCertHeader {
    /// Whether this is the default header.
    pub fn is_default(&self) -> bool {
        *self == ClientCertHeader::default()
    }

    /// Whether `name` is a lowercase HTTP token (RFC 9110 `tchar`s), so the
    /// data plane can always build it.
    pub fn is_valid_name(&self) -> bool {
        !self.name.is_empty()
            && self.name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b)
            })
    }
}

/// One field of the details header (Envoy's `x-forwarded-client-cert`
/// keys).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ClientCertField {
    /// `Hash=<hex SHA-256 of the leaf certificate's DER>`.
    Hash,
    /// `Subject="<RFC 4514 subject>"`.
    Subject,
    /// `URI=<uri>`, once per URI subject alternative name.
    #[serde(rename = "URI")]
    Uri,
    /// `DNS=<name>`, once per DNS subject alternative name.
    #[serde(rename = "DNS")]
    Dns,
}

impl ClientCertField {
    /// Every field, by the name configuration uses.
    pub const ALL: [ClientCertField; 4] = [
        ClientCertField::Hash,
        ClientCertField::Subject,
        ClientCertField::Uri,
        ClientCertField::Dns,
    ];

    /// Parses a field name as configuration writes it (any case).
    pub fn parse(name: &str) -> Option<ClientCertField> {
        Self::ALL
            .into_iter()
            .find(|f| f.to_string().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ClientCertField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClientCertField::Hash => "Hash",
            ClientCertField::Subject => "Subject",
            ClientCertField::Uri => "URI",
            ClientCertField::Dns => "DNS",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Defaults are left out of the snapshot, so snapshots of Gateways
    /// without mutual TLS keep their form and hash.
    #[test]
    fn defaults_serialise_small_and_fields_parse() {
        let v = ClientValidation {
            ca_certificates: vec!["pem".into()],
            mode: ClientValidationMode::AllowValidOnly,
            crls: Vec::new(),
        };
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json, serde_json::json!({"caCertificates": ["pem"]}));
        assert_eq!(ClientCertField::parse("uri"), Some(ClientCertField::Uri));
        assert_eq!(ClientCertField::parse("Cert"), None);
        let header: ClientCertHeader =
            serde_json::from_value(serde_json::json!({"fields": ["Hash", "DNS"]})).unwrap();
        assert_eq!(header.name, DEFAULT_CLIENT_CERT_HEADER);
        assert_eq!(header.fields, [ClientCertField::Hash, ClientCertField::Dns]);
    }
}
