//! BackendTLSPolicy status: one entry per Tollgate Gateway that routes to a
//! Service the policy targets (its ancestors), with `Accepted` and
//! `ResolvedRefs` as the Gateway API defines them.
//!
//! A policy no Tollgate Gateway uses gets no entry: another controller may
//! own its ancestors, and Tollgate writes only what it serves.

use crate::backend_tls::{precedence, resolve};
use crate::conditions::{Problem, Stamp, reasons, types};
use crate::listeners::GATEWAY_GROUP;
use crate::output::{Compiled, push_status};
use crate::resources::Resources;
use gateway_api::backendtlspolicies::{
    BackendTlsPolicy, BackendTlsPolicyStatus, BackendTlsPolicyStatusAncestors,
    BackendTlsPolicyStatusAncestorsAncestorRef,
};
use std::collections::{BTreeMap, BTreeSet};

/// Services (`namespace`, `name`) each Gateway (`namespace/name`) routes to.
pub(crate) type ServicesByGateway<'a> = BTreeMap<&'a str, BTreeSet<(&'a str, &'a str)>>;

/// Appends the status of every BackendTLSPolicy some Gateway in `used` needs.
pub(crate) fn compile_backend_tls_status(
    resources: &Resources,
    used: &ServicesByGateway<'_>,
    controller: &str,
    stamp: &Stamp,
    out: &mut Compiled,
) {
    for policy in resources.backend_tls_policies.values() {
        let ns = policy.metadata.namespace.as_deref().unwrap_or_default();
        let name = policy.metadata.name.as_deref().unwrap_or_default();
        let services: BTreeSet<&str> = policy
            .spec
            .target_refs
            .iter()
            .filter(|t| t.group.is_empty() && t.kind == "Service")
            .map(|t| t.name.as_str())
            .collect();
        let ancestors: Vec<&str> = used
            .iter()
            .filter(|(_, s)| s.iter().any(|(n, svc)| *n == ns && services.contains(svc)))
            .map(|(gateway, _)| *gateway)
            .collect();
        if ancestors.is_empty() {
            continue;
        }
        let stamp = stamp.for_generation(policy.metadata.generation);
        let conditions = conditions(resources, policy, &services, &stamp);
        let status = BackendTlsPolicyStatus {
            ancestors: ancestors
                .into_iter()
                .map(|gateway| {
                    let (g_ns, g_name) = gateway.split_once('/').unwrap_or(("", gateway));
                    BackendTlsPolicyStatusAncestors {
                        ancestor_ref: BackendTlsPolicyStatusAncestorsAncestorRef {
                            group: Some(GATEWAY_GROUP.to_string()),
                            kind: Some("Gateway".to_string()),
                            name: g_name.to_string(),
                            namespace: Some(g_ns.to_string()),
                            port: None,
                            section_name: None,
                        },
                        conditions: conditions.clone(),
                        controller_name: controller.to_string(),
                    }
                })
                .collect(),
        };
        push_status(out, "BackendTLSPolicy", Some(ns), name, &status);
    }
}

fn conditions(
    resources: &Resources,
    policy: &BackendTlsPolicy,
    services: &BTreeSet<&str>,
    stamp: &Stamp,
) -> Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    let resolved = resolve(resources, policy);
    let ns = policy.metadata.namespace.as_deref().unwrap_or_default();
    let not_accepted = conflict(resources, policy)
        .or_else(|| target_missing(resources, ns, services))
        .or(resolved.not_accepted);
    let accepted = match not_accepted {
        Some(p) => stamp.condition(types::ACCEPTED, false, p.reason, p.message),
        None => stamp.condition(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            "Policy is accepted",
        ),
    };
    let resolved_refs = match resolved.unresolved {
        Some(p) => stamp.condition(types::RESOLVED_REFS, false, p.reason, p.message),
        None => stamp.condition(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "All references resolved",
        ),
    };
    vec![accepted, resolved_refs]
}

/// `Conflicted` when another policy takes precedence for one of this
/// policy's targets (same Service and same `sectionName`).
fn conflict(resources: &Resources, policy: &BackendTlsPolicy) -> Option<Problem> {
    let ns = policy.metadata.namespace.as_deref();
    policy.spec.target_refs.iter().find_map(|t| {
        let section = t.section_name.as_deref();
        resources
            .backend_tls_policies
            .values()
            .filter(|q| q.metadata.namespace.as_deref() == ns)
            .filter(|q| !std::ptr::eq(&***q, policy))
            .filter(|q| {
                q.spec.target_refs.iter().any(|qt| {
                    qt.group == t.group
                        && qt.kind == t.kind
                        && qt.name == t.name
                        && qt.section_name.as_deref() == section
                })
            })
            .find(|q| precedence(q) < precedence(policy))
            .map(|q| {
                Problem::new(
                    reasons::CONFLICTED,
                    format!(
                        "BackendTLSPolicy {} already targets Service {}{}",
                        q.metadata.name.as_deref().unwrap_or_default(),
                        t.name,
                        section.map(|s| format!(" port {s}")).unwrap_or_default()
                    ),
                )
            })
    })
}

/// `TargetNotFound` when none of the targeted Services exists.
fn target_missing(resources: &Resources, ns: &str, services: &BTreeSet<&str>) -> Option<Problem> {
    let any = services
        .iter()
        .any(|s| resources.services.contains_key(&format!("{ns}/{s}")));
    (!any).then(|| {
        Problem::new(
            reasons::TARGET_NOT_FOUND,
            "no Service the policy targets exists",
        )
    })
}
