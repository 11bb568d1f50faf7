//! Parsing a certificate Secret's `tls.crt` and `tls.key`.
//!
//! Compile checks what the data plane will do with them, with the same
//! parsers and the same crypto provider (aws-lc-rs), so that a Secret it
//! accepts always loads there and a broken one is reported on the listener
//! that references it instead of failing a whole snapshot. Nothing here
//! needs a process-wide provider: the key is loaded through the provider's
//! own function. Error messages describe the problem, never the content.

use rustls::crypto::aws_lc_rs::sign::any_supported_type;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_snapshot::{Certificate, Redacted};

/// Parses a PEM chain (leaf first) and private key into a snapshot
/// [`Certificate`] named `name`.
///
/// # Errors
///
/// Why the pair cannot serve: no certificate in the chain, a PEM section
/// that does not parse, no private key, a key type aws-lc-rs cannot sign
/// with, or a key that does not match the leaf certificate.
pub(crate) fn parse_certificate(
    name: &str,
    chain: &[u8],
    key: &[u8],
) -> Result<Certificate, String> {
    let certs = CertificateDer::pem_slice_iter(chain)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("has a tls.crt that is not valid PEM ({})", describe(&e)))?;
    if certs.is_empty() {
        return Err("has no PEM certificate in tls.crt".into());
    }
    let der = PrivateKeyDer::from_pem_slice(key).map_err(|e| match e {
        pem::Error::NoItemsFound => "has no PEM private key in tls.key".to_string(),
        e => format!("has a tls.key that is not valid PEM ({})", describe(&e)),
    })?;
    let signing = any_supported_type(&der).map_err(|_| {
        "has a tls.key of an unsupported type (use an RSA key of 2048 bits or more, \
         or ECDSA P-256 or P-384, or Ed25519)"
            .to_string()
    })?;
    let certified = CertifiedKey::new(certs, signing);
    certified.keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => {
            "has a tls.key that does not belong to the first certificate of tls.crt".to_string()
        }
        _ => "has a first certificate in tls.crt whose public key cannot be read".to_string(),
    })?;
    // The snapshot carries the text as given (minus surrounding space): the
    // data plane parses it the same way.
    let text = |b: &[u8]| String::from_utf8_lossy(b).trim().to_string() + "\n";
    Ok(Certificate {
        name: name.to_string(),
        chain_pem: Redacted::new(text(chain)),
        key_pem: Redacted::new(text(key)),
    })
}

/// A PEM error without the bytes some variants carry.
fn describe(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "bad base64",
        pem::Error::NoItemsFound => "no PEM section",
        _ => "unreadable",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(alg: &'static rcgen::SignatureAlgorithm) -> (String, String) {
        let key = rcgen::KeyPair::generate_for(alg).unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.example".into()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn ecdsa_and_rsa_pairs_parse() {
        let (chain, key) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let c = parse_certificate("secret/ns/a", chain.as_bytes(), key.as_bytes()).unwrap();
        assert!(
            c.chain_pem
                .expose()
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
        let (chain, key) = pair(&rcgen::PKCS_ED25519);
        assert!(parse_certificate("s", chain.as_bytes(), key.as_bytes()).is_ok());
    }

    /// Each broken Secret gets its own message, and none quotes the key.
    #[test]
    fn broken_pairs_say_why() {
        let (chain, key) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let (_, other_key) = pair(&rcgen::PKCS_ECDSA_P256_SHA256);
        let err =
            |c: &str, k: &str| parse_certificate("s", c.as_bytes(), k.as_bytes()).unwrap_err();
        assert!(err("not pem", &key).contains("no PEM certificate"));
        assert!(err(&chain, "not pem").contains("no PEM private key"));
        let cut = &chain[..chain.len() - 30];
        assert!(err(cut, &key).contains("not valid PEM"));
        assert!(err(&chain, &other_key).contains("does not belong"));
        let bogus = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        let message = err(&chain, bogus);
        assert!(message.contains("unsupported type"), "{message}");
        assert!(!message.contains("AAAA"));
    }
}
