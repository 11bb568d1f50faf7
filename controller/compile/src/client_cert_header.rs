//! The client-certificate details header of a `GatewayConfig`
//! (`spec.tls.clientCertificateHeader`) as a snapshot setting.
//!
//! The header is a Gateway setting rather than a listener's: the data plane
//! removes it from every request on every listener, mutual TLS or not, so
//! a client can never pass off its own copy as the gateway's.

use crate::conditions::{Problem, reasons};
use tollgate_crds::ClientCertificateHeaderConfig;
use tollgate_snapshot::{ClientCertField, ClientCertHeader};

/// The details header of a GatewayConfig's `tls.clientCertificateHeader`;
/// absent parts keep the defaults.
///
/// # Errors
///
/// A name that is not an HTTP token, or an unknown field
/// (`InvalidParameters`).
pub(crate) fn client_cert_header_from(
    config: Option<&ClientCertificateHeaderConfig>,
) -> Result<ClientCertHeader, Problem> {
    let mut header = ClientCertHeader::default();
    let Some(config) = config else {
        return Ok(header);
    };
    let invalid = |m: String| Problem::new(reasons::INVALID_PARAMETERS, m);
    if let Some(name) = &config.name {
        header.name = name.to_ascii_lowercase();
        if !header.is_valid_name() {
            return Err(invalid(format!(
                "tls.clientCertificateHeader.name {name:?} is not a valid header name"
            )));
        }
    }
    if let Some(fields) = &config.fields {
        header.fields = Vec::with_capacity(fields.len());
        for name in fields {
            let field = ClientCertField::parse(name).ok_or_else(|| {
                invalid(format!(
                    "tls.clientCertificateHeader.fields: unknown field {name:?}; use Hash, Subject, URI or DNS"
                ))
            })?;
            if !header.fields.contains(&field) {
                header.fields.push(field);
            }
        }
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Names are lowercased and checked; fields parse in any case, keep
    /// their order and drop repeats; unknown ones are refused.
    #[test]
    fn header_config_maps_onto_settings() {
        assert_eq!(
            client_cert_header_from(None).unwrap(),
            ClientCertHeader::default()
        );
        let config = ClientCertificateHeaderConfig {
            name: Some("X-Client-Cert".into()),
            fields: Some(vec!["dns".into(), "Hash".into(), "DNS".into()]),
        };
        let header = client_cert_header_from(Some(&config)).unwrap();
        assert_eq!(header.name, "x-client-cert");
        assert_eq!(header.fields, [ClientCertField::Dns, ClientCertField::Hash]);
        let bad_name = ClientCertificateHeaderConfig {
            name: Some("bad header".into()),
            fields: None,
        };
        assert!(client_cert_header_from(Some(&bad_name)).is_err());
        let bad_field = ClientCertificateHeaderConfig {
            name: None,
            fields: Some(vec!["Cert".into()]),
        };
        let err = client_cert_header_from(Some(&bad_field)).unwrap_err();
        assert!(err.message.contains("Cert"), "{}", err.message);
    }
}
