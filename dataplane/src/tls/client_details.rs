//! The details header value for a verified client certificate.
//!
//! Backends behind a mutual-TLS listener learn who the client is from one
//! header, in the manner of Envoy's `x-forwarded-client-cert`:
//! `Hash=<hex>;Subject="<DN>";URI=<uri>;DNS=<name>`, with the fields (and
//! their order) the Gateway's `GatewayConfig` chooses. It is made once per
//! connection, right after the handshake, and copied onto each request.
//!
//! The subject is written as RFC 4514 does (last RDN first, `,` between
//! RDNs, `+` inside one) and always quoted; a value with a `;`, `,`, `=` or
//! `"` is quoted too. Inside quotes `"` and `\` are escaped with `\`, and
//! bytes a header cannot carry (control characters, non-ASCII) are written
//! `\XX` in hex, so the value is always a valid header value.

use sha2::{Digest, Sha256};
use std::fmt::Write;
use tollgate_snapshot::ClientCertField;
use x509_parser::extensions::GeneralName;
use x509_parser::objects::{oid_registry, oid2abbrev};
use x509_parser::x509::X509Name;

/// The header value for the leaf certificate `der`, with `fields` in order;
/// `None` when the certificate does not parse (rustls verified it, so in
/// practice never) or no field has a value.
pub(crate) fn details(der: &[u8], fields: &[ClientCertField]) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let names = cert
        .subject_alternative_name()
        .ok()
        .flatten()
        .map(|ext| ext.value.general_names.as_slice())
        .unwrap_or_default();
    let mut parts: Vec<String> = Vec::new();
    for field in fields {
        match field {
            ClientCertField::Hash => {
                let digest = Sha256::digest(der);
                let mut hex = String::with_capacity(5 + 64);
                hex.push_str("Hash=");
                for b in digest {
                    let _ = write!(hex, "{b:02x}");
                }
                parts.push(hex);
            }
            ClientCertField::Subject => {
                parts.push(format!("Subject={}", quoted(&subject(cert.subject()))));
            }
            ClientCertField::Uri => {
                for name in names {
                    if let GeneralName::URI(uri) = name {
                        parts.push(format!("URI={}", value(uri)));
                    }
                }
            }
            ClientCertField::Dns => {
                for name in names {
                    if let GeneralName::DNSName(dns) = name {
                        parts.push(format!("DNS={}", value(dns)));
                    }
                }
            }
        }
    }
    (!parts.is_empty()).then(|| parts.join(";"))
}

/// `name` as RFC 4514 writes it: last RDN first.
fn subject(name: &X509Name<'_>) -> String {
    let registry = oid_registry();
    let rdns: Vec<String> = name
        .iter_rdn()
        .map(|rdn| {
            let attrs: Vec<String> = rdn
                .iter()
                .map(|attr| {
                    let key = oid2abbrev(attr.attr_type(), registry)
                        .map(str::to_string)
                        .unwrap_or_else(|_| attr.attr_type().to_id_string());
                    let val = match attr.as_str() {
                        Ok(s) => s.to_string(),
                        Err(_) => {
                            let mut hex = String::from("#");
                            for b in attr.attr_value().data.iter() {
                                let _ = write!(hex, "{b:02x}");
                            }
                            hex
                        }
                    };
                    format!("{key}={}", escape_dn(&val))
                })
                .collect();
            attrs.join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

/// RFC 4514 escaping of the characters special inside a DN.
fn escape_dn(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, ',' | '+' | ';' | '<' | '>' | '=' | '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A value, quoted when it holds a character that separates fields.
fn value(v: &str) -> String {
    if v.contains([';', ',', '=', '"', ' ']) || !v.bytes().all(|b| b.is_ascii_graphic()) {
        quoted(v)
    } else {
        v.to_string()
    }
}

/// `"v"` with `"` and `\` escaped and unprintable bytes as `\XX`.
fn quoted(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for b in v.bytes() {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(char::from(b));
            }
            b' ' => out.push(' '),
            b if b.is_ascii_graphic() => out.push(char::from(b)),
            b => {
                let _ = write!(out, "\\{b:02X}");
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
    use tollgate_snapshot::ClientCertField as F;

    fn cert(sans: Vec<SanType>, dn: &[(DnType, &str)]) -> Vec<u8> {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        for (t, v) in dn {
            name.push(t.clone(), *v);
        }
        params.distinguished_name = name;
        params.subject_alt_names = sans;
        params.self_signed(&key).unwrap().der().to_vec()
    }

    /// Every field, in the configured order, Envoy style; the hash is the
    /// SHA-256 of the DER; SANs repeat their key; the subject is RFC 4514
    /// order (last RDN first).
    #[test]
    fn all_fields_in_the_configured_order() {
        let der = cert(
            vec![
                SanType::URI("spiffe://example.org/ns/a/sa/b".try_into().unwrap()),
                SanType::DnsName("a.example".try_into().unwrap()),
                SanType::DnsName("b.example".try_into().unwrap()),
            ],
            &[
                (DnType::OrganizationName, "Acme"),
                (DnType::CommonName, "client"),
            ],
        );
        let hash: String = Sha256::digest(&der)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let got = details(&der, &[F::Hash, F::Subject, F::Uri, F::Dns]).unwrap();
        assert_eq!(
            got,
            format!(
                "Hash={hash};Subject=\"CN=client,O=Acme\";URI=spiffe://example.org/ns/a/sa/b;DNS=a.example;DNS=b.example"
            )
        );
        let only = details(&der, &[F::Dns, F::Subject]).unwrap();
        assert_eq!(
            only,
            "DNS=a.example;DNS=b.example;Subject=\"CN=client,O=Acme\""
        );
    }

    /// Quotes, backslashes, separators and non-ASCII in the subject cannot
    /// break out of the field or the header; a field without values is
    /// left out, and no value at all is no header.
    #[test]
    fn hostile_values_stay_inside_a_valid_header() {
        let der = cert(vec![], &[(DnType::CommonName, "a\";DNS=evil\\,é")]);
        let got = details(&der, &[F::Subject, F::Dns]).unwrap();
        // RFC 4514 escapes inside the DN, then quoting escapes those.
        assert_eq!(got, r#"Subject="CN=a\\\"\\;DNS\\=evil\\\\\\,\C3\A9""#);
        assert!(HeaderValue::from_str(&got).is_ok());
        assert_eq!(details(&der, &[F::Uri]), None);
        assert_eq!(details(b"not a certificate", &[F::Hash]), None);
    }
}
