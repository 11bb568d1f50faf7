//! Listener certificate references: whether each `certificateRefs` entry
//! of an HTTPS or TLS listener names a usable `kubernetes.io/tls` Secret the
//! Gateway may read.
//!
//! The answer is the listener's `ResolvedRefs` condition, with the Gateway
//! API's reasons: `InvalidCertificateRef` for a missing Secret, a Secret
//! of the wrong type or without `tls.crt`/`tls.key`, a kind other than
//! Secret, or a Terminate listener without references; `RefNotPermitted`
//! for a Secret in another namespace that no ReferenceGrant opens to the
//! Gateway. Checked for every listener, served or not, so a user sees a
//! broken reference whatever else is wrong.
//!
//! A Secret that resolves is also parsed (`certificate_pem.rs`): a chain or
//! key that does not parse, a key type the data plane cannot sign with, or
//! a key that does not belong to the certificate is `InvalidCertificateRef`
//! too, for this listener only. Every reference of a listener must hold;
//! all of them go into the snapshot, in order (say one ECDSA and one RSA
//! certificate, for clients that support only one of them).

use crate::backends::{Referrer, reference_granted};
use crate::certificate_pem::parse_certificate;
use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use gateway_api::experimental::gateways::{GatewayListeners, GatewayListenersTlsMode};
use tollgate_snapshot::Certificate;

/// The Secret type a certificate reference must name.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// The certificates of `listener` (of `owner`: a Gateway, or a ListenerSet
/// whose own ReferenceGrants apply), in reference order; empty when the
/// listener terminates no TLS.
///
/// # Errors
///
/// Why a reference does not resolve or its Secret does not hold a usable
/// certificate: the listener's `ResolvedRefs` problem.
pub(crate) fn resolve_certificates(
    resources: &Resources,
    owner: &Referrer<'_>,
    listener: &GatewayListeners,
) -> Result<Vec<Certificate>, Problem> {
    let gateway_ns = owner.namespace;
    let terminates = match listener.protocol.as_str() {
        "HTTPS" => true,
        "TLS" => listener
            .tls
            .as_ref()
            .is_some_and(|t| matches!(t.mode, None | Some(GatewayListenersTlsMode::Terminate))),
        _ => false,
    };
    if !terminates {
        return Ok(Vec::new());
    }
    let refs = listener
        .tls
        .as_ref()
        .and_then(|t| t.certificate_refs.as_deref())
        .unwrap_or_default();
    if refs.is_empty() {
        return Err(Problem::new(
            reasons::INVALID_CERTIFICATE_REF,
            format!(
                "listener {} terminates TLS but has no certificateRefs",
                listener.name
            ),
        ));
    }
    refs.iter().map(|r| {
        let group = r.group.as_deref().unwrap_or("");
        let kind = r.kind.as_deref().unwrap_or("Secret");
        let ns = r.namespace.as_deref().unwrap_or(gateway_ns);
        let name = &r.name;
        if !group.is_empty() || kind != "Secret" {
            let kind = if group.is_empty() {
                kind.to_string()
            } else {
                format!("{kind}.{group}")
            };
            return Err(Problem::new(
                reasons::INVALID_CERTIFICATE_REF,
                format!("certificateRef to {kind} {ns}/{name}: only core Secrets are supported"),
            ));
        }
        if ns != gateway_ns && !reference_granted(resources, owner, ("", "Secret"), ns, name) {
            return Err(Problem::new(
                reasons::REF_NOT_PERMITTED,
                format!(
                    "Secret {ns}/{name} is in another namespace and no ReferenceGrant there allows {}s from {gateway_ns}",
                    owner.kind
                ),
            ));
        }
        secret_certificate(resources, ns, name)
    })
    .collect()
}

/// The certificate in Secret `ns/name`.
///
/// # Errors
///
/// Why the Secret cannot serve as a certificate. Messages never quote the
/// Secret's content.
fn secret_certificate(resources: &Resources, ns: &str, name: &str) -> Result<Certificate, Problem> {
    let invalid = |why: &str| {
        Err(Problem::new(
            reasons::INVALID_CERTIFICATE_REF,
            format!("Secret {ns}/{name} {why}"),
        ))
    };
    let Some(secret) = resources.secrets.get(&format!("{ns}/{name}")) else {
        return invalid("does not exist");
    };
    if secret.type_.as_deref() != Some(TLS_SECRET_TYPE) {
        return invalid(&format!("is not of type {TLS_SECRET_TYPE}"));
    }
    // `stringData` counts too: the API server folds it into `data`, but a
    // manifest folder is read as written.
    let value = |key: &str| -> Option<&[u8]> {
        let text = secret.string_data.as_ref().and_then(|d| d.get(key));
        let data = secret.data.as_ref().and_then(|d| d.get(key));
        text.map(|v| v.as_bytes())
            .filter(|v| !v.is_empty())
            .or(data.map(|v| v.0.as_slice()).filter(|v| !v.is_empty()))
    };
    let (Some(chain), Some(key)) = (value("tls.crt"), value("tls.key")) else {
        return invalid("lacks tls.crt or tls.key");
    };
    parse_certificate(&format!("secret/{ns}/{name}"), chain, key).or_else(|why| invalid(&why))
}
