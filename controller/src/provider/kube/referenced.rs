//! Which Secrets and ConfigMaps the current objects point at.
//!
//! The Kubernetes provider watches Secrets and ConfigMaps by metadata only
//! (names and resourceVersions), so its memory does not grow with the
//! cluster's unrelated Secrets, and fetches in full only the objects named
//! here. The sets come from Gateways (listener certificates, the client
//! certificate for backends, CA bundles for client validation), from
//! ListenerSets (their listeners' certificates), BackendTLSPolicies (CA
//! bundles) and AuthPolicies (API keys, htpasswd, client secrets, cookie
//! keys, local JWKS, CA bundles; Secrets an `apiKeyAuth.selector` picks
//! come from [`selected_secrets`]) and GatewayConfigs (the Redis password
//! Secrets and CA bundle of `spec.rateLimit.redis`).
//!
//! A reference in another namespace is included whether or not a
//! ReferenceGrant allows it: fetching is cheap, and `compile` is the one
//! place that decides whether the reference may be used, so it can say why
//! not in a status condition.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use std::collections::{BTreeMap, BTreeSet};
use tollgate_compile::label_selector_matches;
use tollgate_compile::resources::Resources;
use tollgate_crds::{AuthPolicy, GatewayConfig, LocalObjectRef};

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
    // AuthPolicy and GatewayConfig references are all in the object's own
    // namespace.
    let auth = resources
        .auth_policies
        .values()
        .map(|p| (&p.metadata, auth_policy_refs(p)));
    let configs = resources
        .gateway_configs
        .values()
        .map(|c| (&c.metadata, gateway_config_refs(c)));
    for (meta, refs) in auth.chain(configs) {
        let ns = meta.namespace.as_deref().unwrap_or("default");
        for (r, default_kind) in refs {
            if ref_kind(r.group.as_deref(), r.kind.as_deref(), default_kind) == want {
                out.insert((ns.to_string(), r.name.clone()));
            }
        }
    }
    out
}

/// The Redis password Secrets (master and sentinels) and CA bundle
/// (a ConfigMap unless it says Secret) of a GatewayConfig's rate limits.
fn gateway_config_refs(config: &GatewayConfig) -> Vec<(&LocalObjectRef, RefKind)> {
    let redis = config
        .spec
        .rate_limit
        .as_ref()
        .and_then(|r| r.redis.as_ref());
    let Some(redis) = redis else {
        return Vec::new();
    };
    let secrets = [
        &redis.password_secret_ref,
        &redis.sentinel_password_secret_ref,
    ];
    let secrets = secrets.into_iter().flatten().map(|r| (r, RefKind::Secret));
    let ca = redis
        .ca_certificate_ref
        .iter()
        .map(|r| (r, RefKind::ConfigMap));
    secrets.chain(ca).collect()
}

/// Every Secret or ConfigMap an AuthPolicy names (defaults and
/// overrides), with the kind a reference without one means.
fn auth_policy_refs(policy: &AuthPolicy) -> Vec<(&LocalObjectRef, RefKind)> {
    let spec = &policy.spec;
    let mut refs: Vec<(&LocalObjectRef, RefKind)> = spec
        .ca_certificate_refs
        .iter()
        .flatten()
        .map(|r| (r, RefKind::ConfigMap))
        .collect();
    for sections in std::iter::once(&spec.sections).chain(spec.overrides.as_ref()) {
        let keys = sections.api_key_auth.iter();
        refs.extend(
            keys.flat_map(|k| k.credential_refs.iter().flatten())
                .map(|r| (r, RefKind::Secret)),
        );
        refs.extend(
            sections
                .basic_auth
                .iter()
                .map(|b| (&b.users, RefKind::Secret)),
        );
        if let Some(oidc) = &sections.oidc {
            refs.push((&oidc.client_secret, RefKind::Secret));
            refs.push((&oidc.cookie_key_ref, RefKind::Secret));
        }
        refs.extend(
            sections
                .introspection
                .iter()
                .map(|i| (&i.client_secret, RefKind::Secret)),
        );
        let providers = sections.jwt.iter().flat_map(|j| &j.providers);
        let local = providers.filter_map(|p| p.local_jwks.as_ref()?.value_ref.as_ref());
        refs.extend(local.map(|r| (r, RefKind::ConfigMap)));
    }
    refs
}

/// Whether any AuthPolicy picks API-key Secrets by label, so that any
/// Secret change may matter.
pub fn selects_secrets(resources: &Resources) -> bool {
    resources
        .auth_policies
        .values()
        .flat_map(|p| std::iter::once(&p.spec.sections).chain(p.spec.overrides.as_ref()))
        .any(|s| {
            s.api_key_auth
                .as_ref()
                .is_some_and(|k| k.selector.is_some())
        })
}

/// The Secrets, among `candidates` (`namespace`, `name`, labels), that an
/// AuthPolicy's `apiKeyAuth.selector` picks in its own namespace.
pub fn selected_secrets<'a>(
    resources: &Resources,
    candidates: impl Iterator<Item = (&'a str, &'a str, &'a BTreeMap<String, String>)>,
) -> BTreeSet<NamespacedName> {
    let selectors: Vec<(&str, &LabelSelector)> = resources
        .auth_policies
        .values()
        .flat_map(|p| {
            let ns = p.metadata.namespace.as_deref().unwrap_or("default");
            std::iter::once(&p.spec.sections)
                .chain(p.spec.overrides.as_ref())
                .filter_map(move |s| Some((ns, s.api_key_auth.as_ref()?.selector.as_ref()?)))
        })
        .collect();
    if selectors.is_empty() {
        return BTreeSet::new();
    }
    candidates
        .filter(|(ns, _, labels)| {
            selectors
                .iter()
                .any(|(sel_ns, sel)| sel_ns == ns && label_selector_matches(sel, labels))
        })
        .map(|(ns, name, _)| (ns.to_string(), name.to_string()))
        .collect()
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
