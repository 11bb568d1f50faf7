//! Client certificates on a TLS listener (mutual TLS): the verifier its
//! handshakes use, and what the connection learns from them.
//!
//! `AllowValidOnly` hands rustls a `WebPkiClientVerifier` over the
//! listener's CA bundles and revocation lists: a client without a
//! certificate that chains to them, or with a revoked one, gets no session.
//! `AllowInsecureFallback` asks for a certificate but, as the Gateway API
//! says, lets a client in without one or with one that does not verify (the
//! client still has to prove it holds the certificate's key). Such a
//! connection must not look authenticated to the backend, so its chain is
//! verified once after the handshake, with the same strict verifier, and
//! only a chain that passes earns the details header
//! (`client_details.rs`). Verifiers are built with the snapshot, never per
//! handshake; the header value is made once per connection.

use super::client_details::details;
use http::HeaderValue;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use tollgate_snapshot::{
    ClientCertField, ClientCertHeader, ClientValidation, ClientValidationMode,
};

/// A listener's client-certificate policy, built once per snapshot.
#[derive(Debug)]
pub(crate) struct ClientAuth {
    mode: ClientValidationMode,
    /// Verifies a chain against the CAs and CRLs, certificate required.
    strict: Arc<dyn ClientCertVerifier>,
    /// Fields of the details header.
    fields: Box<[ClientCertField]>,
}

impl ClientAuth {
    /// Builds the verifier for `validation`; `header` chooses the fields.
    ///
    /// # Errors
    ///
    /// Why a CA bundle or CRL cannot be used (compile checks them first).
    pub(crate) fn build(
        validation: &ClientValidation,
        header: &ClientCertHeader,
    ) -> Result<ClientAuth, String> {
        let mut roots = RootCertStore::empty();
        for pem in &validation.ca_certificates {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|_| "a client CA bundle is not valid PEM".to_string())?;
                roots
                    .add(cert)
                    .map_err(|e| format!("a client CA certificate cannot be used: {e}"))?;
            }
        }
        let crls = validation
            .crls
            .iter()
            .flat_map(|pem| CertificateRevocationListDer::pem_slice_iter(pem.as_bytes()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "a revocation list is not valid PEM".to_string())?;
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let strict = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
            .with_crls(crls)
            // The CRLs come per Gateway, the CAs per port: a certificate
            // whose issuer has no CRL among them is not revocation-checked
            // rather than refused.
            .allow_unknown_revocation_status()
            .build()
            .map_err(|e| format!("client certificate validation cannot be built: {e}"))?;
        Ok(ClientAuth {
            mode: validation.mode,
            strict,
            fields: header.fields.clone().into_boxed_slice(),
        })
    }

    /// The verifier the listener's handshakes use.
    pub(crate) fn handshake_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        match self.mode {
            ClientValidationMode::AllowValidOnly => Arc::clone(&self.strict),
            ClientValidationMode::AllowInsecureFallback => Arc::new(Fallback {
                strict: Arc::clone(&self.strict),
            }),
        }
    }

    /// The details header value for a finished handshake whose client sent
    /// `chain` (leaf first): `None` without a verified certificate.
    pub(crate) fn details(&self, chain: Option<&[CertificateDer<'_>]>) -> Option<HeaderValue> {
        let (leaf, intermediates) = chain?.split_first()?;
        // Under AllowValidOnly rustls verified the chain during the
        // handshake; under fallback nobody has yet.
        if self.mode == ClientValidationMode::AllowInsecureFallback
            && self
                .strict
                .verify_client_cert(leaf, intermediates, UnixTime::now())
                .is_err()
        {
            return None;
        }
        HeaderValue::from_str(&details(leaf, &self.fields)?).ok()
    }
}

/// `AllowInsecureFallback`: asks for a certificate, takes any (or none),
/// and still checks the client's signature with it.
#[derive(Debug)]
struct Fallback {
    strict: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for Fallback {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.strict.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        // Let in; `ClientAuth::details` decides after the handshake whether
        // the chain verifies, so it is verified once, not twice.
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.strict.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.strict.supported_verify_schemes()
    }
}
