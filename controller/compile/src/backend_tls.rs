//! BackendTLSPolicy: which policy applies to a Service port and what it
//! resolves to.
//!
//! A policy targets a Service, optionally one named port (`sectionName`).
//! For one Service port the policy naming that port wins over one naming
//! the whole Service; between equals the older wins, then the first by
//! name (GEP-713), and the losers are `Conflicted`. The winner's CA
//! references resolve to PEM bundles in the snapshot; a reference that
//! cannot be used is left out, and when none is usable the backend keeps
//! TLS with nothing trusted, so its requests fail with a 5xx instead of
//! going out in cleartext or unverified, as the spec demands. Statuses are
//! written in `backend_tls_status`.

use crate::conditions::{Problem, reasons};
use crate::resources::Resources;
use gateway_api::backendtlspolicies::{
    BackendTlsPolicy, BackendTlsPolicySpec, BackendTlsPolicyValidationSubjectAltNamesType,
};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use std::sync::Arc;
use tollgate_snapshot::{BackendTls, SubjectAltName};

/// The ConfigMap key holding a CA bundle.
pub(crate) const CA_KEY: &str = "ca.crt";

/// The only `wellKnownCACertificates` value Tollgate knows.
const SYSTEM: &str = "System";

/// The policy for port `port_name` of Service `ns/service`, if any targets it.
pub(crate) fn policy_for<'a>(
    resources: &'a Resources,
    ns: &str,
    service: &str,
    port_name: Option<&str>,
) -> Option<&'a Arc<BackendTlsPolicy>> {
    resources
        .backend_tls_policies
        .values()
        .filter(|p| p.metadata.namespace.as_deref() == Some(ns))
        .filter_map(|p| Some((targets(&p.spec, service, port_name)?, p)))
        .min_by(|(a_exact, a), (b_exact, b)| {
            // Section-specific first (true sorts after false, so reverse).
            b_exact
                .cmp(a_exact)
                .then_with(|| precedence(a).cmp(&precedence(b)))
        })
        .map(|(_, p)| p)
}

/// Whether `spec` targets port `port_name` of `service`: `Some(true)` by
/// its section name, `Some(false)` as the whole Service, `None` not at all.
pub(crate) fn targets(
    spec: &BackendTlsPolicySpec,
    service: &str,
    port_name: Option<&str>,
) -> Option<bool> {
    spec.target_refs
        .iter()
        .filter(|t| t.group.is_empty() && t.kind == "Service" && t.name == service)
        .filter_map(|t| match t.section_name.as_deref() {
            None => Some(false),
            Some(section) => (Some(section) == port_name).then_some(true),
        })
        .max()
}

/// The GEP-713 order: older first, then by name.
pub(crate) fn precedence(policy: &BackendTlsPolicy) -> (Option<i128>, &str) {
    let created = policy
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_nanosecond());
    // Objects without a timestamp (a manifest folder) sort by name alone.
    (created, policy.metadata.name.as_deref().unwrap_or_default())
}

/// What one policy resolves to, and what is wrong with it.
#[derive(Debug)]
pub(crate) struct Resolved {
    /// The TLS settings the data plane uses.
    pub(crate) tls: BackendTls,
    /// Why the policy is not accepted (`Accepted=False`).
    pub(crate) not_accepted: Option<Problem>,
    /// The first reference that does not resolve (`ResolvedRefs=False`).
    pub(crate) unresolved: Option<Problem>,
}

/// Resolves `policy`'s validation settings against the view.
pub(crate) fn resolve(resources: &Resources, policy: &BackendTlsPolicy) -> Resolved {
    let ns = policy.metadata.namespace.as_deref().unwrap_or_default();
    let name = policy.metadata.name.as_deref().unwrap_or_default();
    let validation = &policy.spec.validation;
    let mut tls = BackendTls {
        hostname: validation.hostname.to_ascii_lowercase(),
        policy: format!("backendtlspolicy/{ns}/{name}"),
        ..BackendTls::default()
    };
    let mut not_accepted = None;
    let mut unresolved = None;
    let refs = validation
        .ca_certificate_refs
        .as_deref()
        .unwrap_or_default();
    match validation.well_known_ca_certificates.as_deref() {
        None | Some("") => {}
        Some(SYSTEM) if refs.is_empty() => tls.system_roots = true,
        Some(SYSTEM) => {
            not_accepted = Some(Problem::new(
                reasons::INVALID,
                "caCertificateRefs and wellKnownCACertificates are both set; set one",
            ));
        }
        Some(other) => {
            not_accepted = Some(Problem::new(
                reasons::INVALID,
                format!("wellKnownCACertificates {other} is not supported; use System"),
            ));
        }
    }
    for r in refs {
        match ca_bundle(resources, ns, &r.group, &r.kind, &r.name) {
            Ok(pem) => tls.ca_certificates.push(pem),
            Err(problem) => {
                unresolved.get_or_insert(problem);
            }
        }
    }
    if not_accepted.is_none() && !refs.is_empty() && tls.ca_certificates.is_empty() {
        not_accepted = Some(Problem::new(
            reasons::NO_VALID_CA_CERTIFICATE,
            "no caCertificateRef resolves to a usable CA certificate",
        ));
    }
    if not_accepted.is_none() && refs.is_empty() && !tls.system_roots {
        not_accepted = Some(Problem::new(
            reasons::INVALID,
            "set caCertificateRefs or wellKnownCACertificates",
        ));
    }
    for san in validation.subject_alt_names.iter().flatten() {
        let value = match san.r#type {
            BackendTlsPolicyValidationSubjectAltNamesType::Hostname => san
                .hostname
                .as_deref()
                .map(|h| SubjectAltName::Hostname(h.to_ascii_lowercase())),
            BackendTlsPolicyValidationSubjectAltNamesType::Uri => {
                san.uri.clone().map(SubjectAltName::Uri)
            }
        };
        match value {
            Some(value) => tls.subject_alt_names.push(value),
            None => {
                not_accepted.get_or_insert_with(|| {
                    Problem::new(
                        reasons::INVALID,
                        "a subjectAltName lacks the value its type names",
                    )
                });
            }
        }
    }
    // A policy that cannot be honoured trusts nothing: its backend's
    // requests fail rather than leave unverified.
    if not_accepted.is_some() {
        tls.ca_certificates.clear();
        tls.system_roots = false;
    }
    Resolved {
        tls,
        not_accepted,
        unresolved,
    }
}

/// The PEM CA bundle a `caCertificateRefs` entry names.
fn ca_bundle(
    resources: &Resources,
    ns: &str,
    group: &str,
    kind: &str,
    name: &str,
) -> Result<String, Problem> {
    if !group.is_empty() || kind != "ConfigMap" {
        let kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        return Err(Problem::new(
            reasons::INVALID_KIND,
            format!("caCertificateRef to {kind} {name}: only ConfigMaps are supported"),
        ));
    }
    let invalid = |why: &str| {
        Problem::new(
            reasons::INVALID_CA_CERTIFICATE_REF,
            format!("ConfigMap {ns}/{name} {why}"),
        )
    };
    let map = resources
        .config_maps
        .get(&format!("{ns}/{name}"))
        .ok_or_else(|| invalid("does not exist"))?;
    let pem = map
        .data
        .as_ref()
        .and_then(|d| d.get(CA_KEY))
        .cloned()
        .or_else(|| {
            let bytes = map.binary_data.as_ref()?.get(CA_KEY)?;
            String::from_utf8(bytes.0.clone()).ok()
        })
        .ok_or_else(|| invalid(&format!("has no {CA_KEY}")))?;
    let certificates = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&format!("{CA_KEY} is not PEM: {e}")))?;
    if certificates.is_empty() {
        return Err(invalid(&format!("{CA_KEY} holds no certificate")));
    }
    Ok(pem)
}

/// The TLS settings for port `port_name` of Service `ns/service`: the
/// winning policy's, resolved.
pub(crate) fn backend_tls(
    resources: &Resources,
    ns: &str,
    service: &str,
    port_name: Option<&str>,
) -> Option<BackendTls> {
    policy_for(resources, ns, service, port_name).map(|p| resolve(resources, p).tls)
}
