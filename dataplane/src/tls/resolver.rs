//! Which of a listener's certificates a client gets.
//!
//! A listener may hold several certificates (one per `certificateRefs`
//! entry), typically one ECDSA and one RSA: ECDSA handshakes are cheaper
//! and smaller, but some old clients verify only RSA. The client says what
//! it can verify in its ClientHello's signature algorithms; the first
//! certificate, in the listener's order, with a key that can sign one of
//! them is served. So a listener listing ECDSA first gives modern clients
//! ECDSA and RSA-only clients RSA.

use rustls::SignatureScheme;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::Arc;

/// A listener's certificates, chosen per ClientHello.
#[derive(Debug)]
pub(crate) struct CertificateChooser {
    keys: Box<[Arc<CertifiedKey>]>,
}

impl CertificateChooser {
    /// Chooses among `keys`, in order of preference.
    pub(crate) fn new(keys: Vec<Arc<CertifiedKey>>) -> CertificateChooser {
        CertificateChooser {
            keys: keys.into_boxed_slice(),
        }
    }
}

impl ResolvesServerCert for CertificateChooser {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        choose(&self.keys, hello.signature_schemes()).cloned()
    }
}

/// The first of `keys` that can sign with a scheme in `offered`. A client
/// that offered no schemes at all gets the first key; one that offered
/// only schemes no key has gets none, and rustls ends the handshake with
/// a `handshake_failure` alert instead of sending a certificate the client
/// could not verify.
pub(crate) fn choose<'a>(
    keys: &'a [Arc<CertifiedKey>],
    offered: &[SignatureScheme],
) -> Option<&'a Arc<CertifiedKey>> {
    if offered.is_empty() {
        return keys.first();
    }
    keys.iter().find(|k| k.key.choose_scheme(offered).is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::crypto::aws_lc_rs::sign::any_supported_type;
    use rustls_pki_types::PrivateKeyDer;

    fn key(alg: &'static rcgen::SignatureAlgorithm) -> Arc<CertifiedKey> {
        let pair = rcgen::KeyPair::generate_for(alg).unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".into()])
            .unwrap()
            .self_signed(&pair)
            .unwrap();
        let der = PrivateKeyDer::try_from(pair.serialize_der()).unwrap();
        let signer = any_supported_type(&der).unwrap();
        Arc::new(CertifiedKey::new(vec![cert.der().clone()], signer))
    }

    /// Given an ECDSA and an RSA certificate in that order: a client that
    /// verifies both gets ECDSA, an RSA-only client gets RSA, an
    /// ECDSA-only client gets ECDSA, and a client that verifies neither
    /// gets nothing.
    #[test]
    fn the_first_certificate_the_client_can_verify() {
        use SignatureScheme as S;
        let ecdsa = key(&rcgen::PKCS_ECDSA_P256_SHA256);
        let rsa = key(&rcgen::PKCS_RSA_SHA256);
        let keys = [Arc::clone(&ecdsa), Arc::clone(&rsa)];
        let modern = [
            S::ECDSA_NISTP256_SHA256,
            S::RSA_PSS_SHA256,
            S::RSA_PKCS1_SHA256,
        ];
        let cases: &[(&[S], Option<&Arc<CertifiedKey>>)] = &[
            (&modern, Some(&ecdsa)),
            (&[S::RSA_PKCS1_SHA256, S::RSA_PSS_SHA256], Some(&rsa)),
            (&[S::ECDSA_NISTP256_SHA256], Some(&ecdsa)),
            (&[S::ED25519], None),
            (&[], Some(&ecdsa)),
        ];
        for (offered, want) in cases {
            let got = choose(&keys, offered);
            assert_eq!(
                got.map(Arc::as_ptr),
                want.map(Arc::as_ptr),
                "offered {offered:?}"
            );
        }
        // Order is the listener's: RSA first wins for a modern client.
        let rsa_first = [Arc::clone(&rsa), ecdsa];
        assert!(Arc::ptr_eq(choose(&rsa_first, &modern).unwrap(), &rsa));
    }
}
