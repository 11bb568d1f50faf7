//! The Gateway's client certificate for TLS backends
//! (`spec.tls.backend.clientCertificateRef`).
//!
//! The reference must name a `kubernetes.io/tls` Secret whose `tls.crt`
//! holds a PEM certificate chain and `tls.key` a PEM private key; a Secret
//! in another namespace needs a ReferenceGrant. Anything else is the
//! Gateway's `ResolvedRefs=False` (`InvalidClientCertificateRef` or
//! `RefNotPermitted`), and TLS backends are then reached without a client
//! certificate: a backend that requires one refuses the handshake.

use crate::backends::{Referrer, reference_granted};
use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use gateway_api::experimental::gateways::Gateway;
use k8s_openapi::api::core::v1::Secret;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tollgate_snapshot::{ClientCertificate, Redacted};

/// The Secret type a client certificate must have.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// The Gateway's backend client certificate: `Ok(None)` when it names none.
pub(crate) fn backend_client_certificate(
    resources: &Resources,
    gateway: &Gateway,
) -> Result<Option<ClientCertificate>, Problem> {
    let Some(r) = gateway
        .spec
        .tls
        .as_ref()
        .and_then(|t| t.backend.as_ref())
        .and_then(|b| b.client_certificate_ref.as_ref())
    else {
        return Ok(None);
    };
    let gateway_ns = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let ns = r.namespace.as_deref().unwrap_or(gateway_ns);
    let name = r.name.as_str();
    let group = r.group.as_deref().unwrap_or("");
    let kind = r.kind.as_deref().unwrap_or("Secret");
    let invalid = |why: String| Problem::new(reasons::INVALID_CLIENT_CERTIFICATE_REF, why);
    if !group.is_empty() || kind != "Secret" {
        return Err(invalid(format!(
            "clientCertificateRef to {kind} {ns}/{name}: only core Secrets are supported"
        )));
    }
    let gateway_ref = Referrer {
        group: crate::listeners::GATEWAY_GROUP,
        kind: "Gateway",
        namespace: gateway_ns,
    };
    if ns != gateway_ns && !reference_granted(resources, &gateway_ref, ("", "Secret"), ns, name) {
        return Err(Problem::new(
            reasons::REF_NOT_PERMITTED,
            format!(
                "Secret {ns}/{name} is in another namespace and no ReferenceGrant there allows Gateways from {gateway_ns}"
            ),
        ));
    }
    let secret = resources
        .secrets
        .get(&format!("{ns}/{name}"))
        .ok_or_else(|| invalid(format!("Secret {ns}/{name} does not exist")))?;
    if secret.type_.as_deref() != Some(TLS_SECRET_TYPE) {
        return Err(invalid(format!(
            "Secret {ns}/{name} is not of type {TLS_SECRET_TYPE}"
        )));
    }
    let chain = secret_text(secret, "tls.crt")
        .ok_or_else(|| invalid(format!("Secret {ns}/{name} lacks tls.crt")))?;
    let key = secret_text(secret, "tls.key")
        .ok_or_else(|| invalid(format!("Secret {ns}/{name} lacks tls.key")))?;
    let certificates = CertificateDer::pem_slice_iter(chain.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|c| !c.is_empty());
    if certificates.is_none() {
        return Err(invalid(format!(
            "Secret {ns}/{name}: tls.crt holds no PEM certificate"
        )));
    }
    if PrivateKeyDer::from_pem_slice(key.as_bytes()).is_err() {
        return Err(invalid(format!(
            "Secret {ns}/{name}: tls.key holds no PEM private key"
        )));
    }
    Ok(Some(ClientCertificate {
        certificate_chain: chain,
        private_key: Redacted::new(key),
        source: format!("secret/{ns}/{name}"),
    }))
}

/// A Secret value as text, from `data` or (in a manifest folder) `stringData`.
fn secret_text(secret: &Secret, key: &str) -> Option<String> {
    let data = secret.data.as_ref().and_then(|d| d.get(key));
    let text = secret.string_data.as_ref().and_then(|d| d.get(key));
    data.and_then(|v| String::from_utf8(v.0.clone()).ok())
        .or_else(|| text.cloned())
        .filter(|v| !v.is_empty())
}
