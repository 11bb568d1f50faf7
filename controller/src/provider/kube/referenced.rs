//! Which Secrets and ConfigMaps the current objects point at.
//!
//! The Kubernetes provider watches Secrets and ConfigMaps by metadata only
//! (names and resourceVersions), so its memory does not grow with the
//! cluster's unrelated Secrets, and fetches in full only the objects named
//! here. The sets come from Gateways (listener certificates, the client
//! certificate for backends, CA bundles for client validation), from
//! ListenerSets (their listeners' certificates); GatewayConfig
//! names none yet, and BackendTLSPolicy joins once `Resources` carries it.
//!
//! A reference in another namespace is included whether or not a
//! ReferenceGrant allows it: fetching is cheap, and `compile` is the one
//! place that decides whether the reference may be used, so it can say why
//! not in a status condition.

use std::collections::BTreeSet;
use tollgate_compile::resources::Resources;

/// A `(namespace, name)` pair.
pub type NamespacedName = (String, String);

/// The kind a reference names after applying its defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RefKind {
    Secret,
    ConfigMap,
    Other,
}

/// Secrets referenced by any Gateway: `spec.listeners[].tls.certificateRefs`
/// and `spec.tls.backend.clientCertificateRef` (kind defaults to Secret),
/// `caCertificateRefs` of kind Secret, and the revocation-list Secret of
/// the `tollgate.dev/client-crl-secret` annotation.
pub fn referenced_secrets(resources: &Resources) -> BTreeSet<NamespacedName> {
    referenced(resources, RefKind::Secret)
}

/// ConfigMaps referenced by any Gateway (the `caCertificateRefs` of
/// `spec.tls.frontend`, default and per port) or BackendTLSPolicy
/// (`spec.validation.caCertificateRefs`), of kind ConfigMap.
pub fn referenced_config_maps(resources: &Resources) -> BTreeSet<NamespacedName> {
    referenced(resources, RefKind::ConfigMap)
}

fn referenced(resources: &Resources, want: RefKind) -> BTreeSet<NamespacedName> {
    let mut out = BTreeSet::new();
    for gateway in resources.gateways.values() {
        let own_ns = gateway.metadata.namespace.as_deref().unwrap_or("default");
        for r in gateway_refs(gateway) {
            if ref_kind(r.group, r.kind, r.default_kind) == want {
                let ns = r.namespace.unwrap_or(own_ns);
                out.insert((ns.to_string(), r.name.to_string()));
            }
        }
    }
    // A ListenerSet's certificates default to the ListenerSet's namespace.
    for set in resources.listener_sets.values() {
        let own_ns = set.metadata.namespace.as_deref().unwrap_or("default");
        let certificates = set.spec.listeners.iter().flat_map(|l| {
            l.tls
                .iter()
                .flat_map(|t| t.certificate_refs.iter().flatten())
        });
        for c in certificates {
            if ref_kind(c.group.as_deref(), c.kind.as_deref(), RefKind::Secret) == want {
                let ns = c.namespace.as_deref().unwrap_or(own_ns);
                out.insert((ns.to_string(), c.name.clone()));
            }
        }
    }
    // BackendTLSPolicy CA bundles are ConfigMaps (other kinds are
    // `InvalidKind`) in the policy's own namespace.
    let policies = resources.backend_tls_policies.values();
    for policy in policies.filter(|_| want == RefKind::ConfigMap) {
        let ns = policy.metadata.namespace.as_deref().unwrap_or("default");
        for r in policy.spec.validation.ca_certificate_refs.iter().flatten() {
            if ref_kind(Some(&r.group), Some(&r.kind), RefKind::Other) == want {
                out.insert((ns.to_string(), r.name.clone()));
            }
        }
    }
    out
}

/// One object reference inside a Gateway, borrowed.
struct Ref<'a> {
    group: Option<&'a str>,
    kind: Option<&'a str>,
    name: &'a str,
    namespace: Option<&'a str>,
    /// The kind when the reference leaves it out.
    default_kind: RefKind,
}

fn gateway_refs(gateway: &gateway_api::experimental::gateways::Gateway) -> Vec<Ref<'_>> {
    let mut refs = Vec::new();
    for listener in &gateway.spec.listeners {
        for c in listener
            .tls
            .iter()
            .flat_map(|t| t.certificate_refs.iter().flatten())
        {
            refs.push(Ref {
                group: c.group.as_deref(),
                kind: c.kind.as_deref(),
                name: &c.name,
                namespace: c.namespace.as_deref(),
                default_kind: RefKind::Secret,
            });
        }
    }
    // Revocation lists for client certificates (a Tollgate annotation).
    let annotations = gateway.metadata.annotations.as_ref();
    if let Some(name) = annotations.and_then(|a| a.get(tollgate_compile::CRL_ANNOTATION)) {
        refs.push(Ref {
            group: None,
            kind: None,
            name,
            namespace: None,
            default_kind: RefKind::Secret,
        });
    }
    let Some(tls) = &gateway.spec.tls else {
        return refs;
    };
    if let Some(c) = tls
        .backend
        .as_ref()
        .and_then(|b| b.client_certificate_ref.as_ref())
    {
        refs.push(Ref {
            group: c.group.as_deref(),
            kind: c.kind.as_deref(),
            name: &c.name,
            namespace: c.namespace.as_deref(),
            default_kind: RefKind::Secret,
        });
    }
    if let Some(frontend) = &tls.frontend {
        for c in frontend
            .default
            .validation
            .iter()
            .flat_map(|v| &v.ca_certificate_refs)
        {
            refs.push(ca_ref(&c.group, &c.kind, &c.name, c.namespace.as_deref()));
        }
        let per_port = frontend.per_port.iter().flatten();
        for v in per_port.filter_map(|p| p.tls.validation.as_ref()) {
            for c in &v.ca_certificate_refs {
                refs.push(ca_ref(&c.group, &c.kind, &c.name, c.namespace.as_deref()));
            }
        }
    }
    refs
}

fn ca_ref<'a>(group: &'a str, kind: &'a str, name: &'a str, namespace: Option<&'a str>) -> Ref<'a> {
    Ref {
        group: Some(group),
        kind: Some(kind),
        name,
        namespace,
        // CA bundle references always name their kind.
        default_kind: RefKind::Other,
    }
}

/// The kind a reference names: the core group is `""` or `core`, and an
/// absent kind takes `default`.
fn ref_kind(group: Option<&str>, kind: Option<&str>, default: RefKind) -> RefKind {
    if !matches!(group.unwrap_or(""), "" | "core") {
        return RefKind::Other;
    }
    match kind {
        None => default,
        Some("Secret") => RefKind::Secret,
        Some("ConfigMap") => RefKind::ConfigMap,
        Some(_) => RefKind::Other,
    }
}

#[cfg(test)]
mod tests;
