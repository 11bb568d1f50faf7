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

use crate::backends::{Referrer, reference_granted};
use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use gateway_api::experimental::gateways::{GatewayListeners, GatewayListenersTlsMode};

/// The Secret type a certificate reference must name.
const TLS_SECRET_TYPE: &str = "kubernetes.io/tls";

/// Why the certificate references of `listener` (of a Gateway in
/// `gateway_ns`) do not resolve, or `None` when they do or none are needed.
pub(crate) fn certificate_problem(
    resources: &Resources,
    gateway_ns: &str,
    listener: &GatewayListeners,
) -> Option<Problem> {
    let terminates = match listener.protocol.as_str() {
        "HTTPS" => true,
        "TLS" => listener
            .tls
            .as_ref()
            .is_some_and(|t| matches!(t.mode, None | Some(GatewayListenersTlsMode::Terminate))),
        _ => false,
    };
    if !terminates {
        return None;
    }
    let refs = listener
        .tls
        .as_ref()
        .and_then(|t| t.certificate_refs.as_deref())
        .unwrap_or_default();
    if refs.is_empty() {
        return Some(Problem::new(
            reasons::INVALID_CERTIFICATE_REF,
            format!(
                "listener {} terminates TLS but has no certificateRefs",
                listener.name
            ),
        ));
    }
    refs.iter().find_map(|r| {
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
            return Some(Problem::new(
                reasons::INVALID_CERTIFICATE_REF,
                format!("certificateRef to {kind} {ns}/{name}: only core Secrets are supported"),
            ));
        }
        let gateway = Referrer {
            kind: "Gateway",
            namespace: gateway_ns,
        };
        if ns != gateway_ns && !reference_granted(resources, &gateway, ("", "Secret"), ns, name) {
            return Some(Problem::new(
                reasons::REF_NOT_PERMITTED,
                format!(
                    "Secret {ns}/{name} is in another namespace and no ReferenceGrant there allows Gateways from {gateway_ns}"
                ),
            ));
        }
        secret_problem(resources, ns, name)
    })
}

/// Why Secret `ns/name` cannot serve as a certificate, if it cannot.
fn secret_problem(resources: &Resources, ns: &str, name: &str) -> Option<Problem> {
    let invalid = |why: &str| {
        Some(Problem::new(
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
    let has = |key: &str| {
        let data = secret.data.as_ref().and_then(|d| d.get(key));
        let text = secret.string_data.as_ref().and_then(|d| d.get(key));
        data.is_some_and(|v| !v.0.is_empty()) || text.is_some_and(|v| !v.is_empty())
    };
    if !has("tls.crt") || !has("tls.key") {
        return invalid("lacks tls.crt or tls.key");
    }
    None
}
