//! `compile_tls_routes`: TLSRoutes attached to the `protocol: TLS`
//! listeners of Tollgate's Gateways, their statuses, and the SNI tables
//! they add to snapshots.
//!
//! A TLSRoute has no rules to speak of (one rule of weighted backendRefs),
//! so it is compiled in one pass here rather than through the HTTPRoute
//! memo. Attachment follows the Gateway API as for HTTPRoutes: the
//! parentRef's `sectionName` and `port` select listeners
//! (`NoMatchingParent`), only TLS listeners admit the kind and their
//! `allowedRoutes` the namespace (`NotAllowedByListeners`), and the route's
//! hostnames are intersected with the listener's
//! (`NoMatchingListenerHostname`). Backends resolve like HTTPRoute ones
//! (`backends.rs`, with ReferenceGrants from `TLSRoute`).
//!
//! Two routes claiming one SNI hostname on one listener cannot both get
//! its connections: the oldest route (then the first by `namespace/name`)
//! keeps it. A route that keeps no hostname on a parent is not accepted
//! there, so the loss shows on its status instead of traffic vanishing.

use crate::backends::{BackendTarget, resolve_backend_from};
use crate::conditions::{Problem, Stamp, reasons, types};
use crate::gateway::GatewayPlan;
use crate::hostname::effective_hostnames;
use crate::httproute::{namespace_allowed, resolved_condition};
use crate::listeners::GATEWAY_GROUP;
use crate::output::{Compiled, push_status};
use crate::resources::Resources;
use crate::tlsroute_snapshot::{Attached, TlsAttachments};
use gateway_api::experimental::tlsroutes::{
    TlsRoute, TlsRouteParentRefs, TlsRouteStatus, TlsRouteStatusParents,
    TlsRouteStatusParentsParentRef,
};
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use tollgate_snapshot::{Backend, HostMatch};

/// A TLSRoute with its backends resolved.
#[derive(Debug)]
struct CompiledTlsRoute<'a> {
    route: &'a TlsRoute,
    /// `namespace/name`.
    key: String,
    namespace: String,
    /// Creation time then key: the smaller wins a hostname conflict.
    age: (Option<Timestamp>, String),
    hostnames: Vec<HostMatch>,
    /// Weighted backends; `None` where the reference does not resolve.
    backends: Vec<(Option<Backend>, u32)>,
    ref_problems: Vec<Problem>,
}

/// The listeners one parentRef selects, with the effective hostnames on
/// each, or why it selects none.
type Selected = Result<Vec<(usize, Vec<HostMatch>)>, Problem>;

/// One route's claim on one listener, before conflicts are settled.
#[derive(Debug)]
struct Claim {
    route: usize,
    parent: usize,
    listener: usize,
    hostnames: Vec<HostMatch>,
}

/// Compiles every TLSRoute naming one of `gateways`, pushes its status,
/// and returns what attached where.
pub(crate) fn compile_tls_routes(
    resources: &Resources,
    gateways: &BTreeMap<&str, GatewayPlan>,
    controller_name: &str,
    stamp: &Stamp,
    out: &mut Compiled,
) -> TlsAttachments {
    let routes: Vec<CompiledTlsRoute<'_>> = resources
        .tls_routes
        .iter()
        .filter(|(_, r)| {
            let ns = r.metadata.namespace.as_deref().unwrap_or_default();
            r.spec
                .parent_refs
                .iter()
                .flatten()
                .any(|p| parent_gateway(gateways, ns, p).is_some())
        })
        .map(|(key, r)| compile_one(resources, key, r))
        .collect();
    // Every parentRef's listeners (or why none), in route then parent order.
    let mut selected: Vec<Vec<Option<Selected>>> = Vec::new();
    let mut claims: BTreeMap<(&str, usize, HostMatch), (usize, usize)> = BTreeMap::new();
    let mut all: Vec<(String, Claim)> = Vec::new();
    for (ri, route) in routes.iter().enumerate() {
        let mut per_parent = Vec::new();
        for (pi, parent) in route.route.spec.parent_refs.iter().flatten().enumerate() {
            let Some((key, plan)) = parent_gateway(gateways, &route.namespace, parent) else {
                per_parent.push(None);
                continue;
            };
            let found = select_listeners(resources, route, parent, plan);
            for (listener, hosts) in found.iter().flatten() {
                for h in hosts {
                    let slot = claims
                        .entry((key, *listener, h.clone()))
                        .or_insert((ri, pi));
                    if routes[slot.0].age > route.age {
                        *slot = (ri, pi);
                    }
                }
                all.push((
                    key.to_string(),
                    Claim {
                        route: ri,
                        parent: pi,
                        listener: *listener,
                        hostnames: hosts.clone(),
                    },
                ));
            }
            per_parent.push(Some(found));
        }
        selected.push(per_parent);
    }
    let mut attachments = TlsAttachments::default();
    // Hostnames won per (route, parent), and the older route that took any other.
    let mut won: BTreeMap<(usize, usize), (usize, Option<String>)> = BTreeMap::new();
    for (key, claim) in all {
        let route = &routes[claim.route];
        let mut hostnames = Vec::new();
        let entry = won.entry((claim.route, claim.parent)).or_default();
        for h in claim.hostnames {
            match claims.get(&(key.as_str(), claim.listener, h.clone())) {
                Some(&(winner, _)) if winner != claim.route => {
                    entry.1 = Some(format!("{h} (TLSRoute {})", routes[winner].key));
                }
                _ => hostnames.push(h),
            }
        }
        entry.0 += hostnames.len();
        if hostnames.is_empty() {
            continue;
        }
        let attached = Attached {
            listener: claim.listener,
            route_key: route.key.clone(),
            hostnames,
            backends: route.backends.clone(),
        };
        attachments.push(key, attached);
    }
    for (ri, route) in routes.iter().enumerate() {
        let route_stamp = stamp.for_generation(route.route.metadata.generation);
        let parents = route
            .route
            .spec
            .parent_refs
            .iter()
            .flatten()
            .enumerate()
            .filter_map(|(pi, parent)| {
                let found = selected[ri][pi].as_ref()?;
                let problem = match (found, won.get(&(ri, pi))) {
                    (Err(p), _) => Some(p.clone()),
                    (Ok(_), Some((0, Some(lost)))) => Some(Problem::new(
                        reasons::UNSUPPORTED_VALUE,
                        format!(
                            "every hostname is routed by a route that takes precedence (older, or first by namespace/name): {lost}"
                        ),
                    )),
                    _ => None,
                };
                Some(parent_status(route, parent, problem, controller_name, &route_stamp))
            })
            .collect();
        let status = TlsRouteStatus { parents };
        let name = route.route.metadata.name.as_deref().unwrap_or_default();
        push_status(out, "TLSRoute", Some(&route.namespace), name, &status);
    }
    attachments
}

fn compile_one<'a>(resources: &Resources, key: &str, route: &'a TlsRoute) -> CompiledTlsRoute<'a> {
    let namespace = route.metadata.namespace.clone().unwrap_or_default();
    let mut backends = Vec::new();
    let mut ref_problems = Vec::new();
    for r in route.spec.rules.iter().flat_map(|rule| &rule.backend_refs) {
        let weight = u32::try_from(r.weight.unwrap_or(1)).unwrap_or(0);
        let target = BackendTarget {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
            port: r.port,
        };
        let from = crate::backends::Referrer {
            group: crate::listeners::GATEWAY_GROUP,
            kind: "TLSRoute",
            namespace: &namespace,
        };
        match resolve_backend_from(resources, &from, target) {
            // Bytes are relayed as they come: no BackendTLSPolicy applies.
            Ok(b) => backends.push((Some(Backend { tls: None, ..b }), weight)),
            Err(p) => {
                ref_problems.push(p);
                backends.push((None, weight));
            }
        }
    }
    CompiledTlsRoute {
        route,
        key: key.to_string(),
        namespace,
        age: (
            route.metadata.creation_timestamp.as_ref().map(|t| t.0),
            key.to_string(),
        ),
        hostnames: route
            .spec
            .hostnames
            .iter()
            .map(|h| HostMatch::parse(h))
            .collect(),
        backends,
        ref_problems,
    }
}

/// The TLS listeners `parent` selects that admit `route`, with the
/// effective hostnames on each; or why there are none.
fn select_listeners(
    resources: &Resources,
    route: &CompiledTlsRoute<'_>,
    parent: &TlsRouteParentRefs,
    gateway: &GatewayPlan,
) -> Selected {
    let named: Vec<usize> = (0..gateway.listeners.len())
        .filter(|&i| {
            let l = &gateway.listeners[i];
            parent.section_name.as_ref().is_none_or(|s| *s == l.name)
                && parent.port.is_none_or(|p| p == l.port)
        })
        .collect();
    if named.is_empty() {
        return Err(Problem::new(
            reasons::NO_MATCHING_PARENT,
            "no listener of the Gateway matches the parentRef's sectionName and port",
        ));
    }
    let by_kind: Vec<usize> = named
        .into_iter()
        .filter(|&i| gateway.listeners[i].supports("TLSRoute"))
        .collect();
    if by_kind.is_empty() {
        return Err(Problem::new(
            reasons::NOT_ALLOWED_BY_LISTENERS,
            "no selected listener accepts TLSRoutes (they need protocol TLS)",
        ));
    }
    let allowed: Vec<usize> = by_kind
        .into_iter()
        .filter(|&i| {
            let l = &gateway.listeners[i];
            namespace_allowed(resources, l, &gateway.namespace, &route.namespace)
        })
        .collect();
    if allowed.is_empty() {
        return Err(Problem::new(
            reasons::NOT_ALLOWED_BY_LISTENERS,
            format!(
                "no selected listener allows TLSRoutes from namespace {}",
                route.namespace
            ),
        ));
    }
    let attached: Vec<(usize, Vec<HostMatch>)> = allowed
        .into_iter()
        .map(|i| {
            let hosts = effective_hostnames(&gateway.listeners[i].hostname, &route.hostnames);
            (i, hosts)
        })
        .filter(|(_, hosts)| !hosts.is_empty())
        .collect();
    if attached.is_empty() {
        return Err(Problem::new(
            reasons::NO_MATCHING_LISTENER_HOSTNAME,
            "no hostname of the route matches a selected listener's hostname",
        ));
    }
    Ok(attached)
}

fn parent_status(
    route: &CompiledTlsRoute<'_>,
    parent: &TlsRouteParentRefs,
    problem: Option<Problem>,
    controller_name: &str,
    s: &Stamp,
) -> TlsRouteStatusParents {
    let accepted = match problem {
        Some(p) => s.condition(types::ACCEPTED, false, p.reason, p.message),
        None => s.condition(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            "route is accepted",
        ),
    };
    let resolved = resolved_condition(&route.ref_problems, s);

    TlsRouteStatusParents {
        conditions: vec![accepted, resolved],
        controller_name: controller_name.to_string(),
        parent_ref: TlsRouteStatusParentsParentRef {
            group: parent.group.clone(),
            kind: parent.kind.clone(),
            name: parent.name.clone(),
            namespace: parent.namespace.clone(),
            port: parent.port,
            section_name: parent.section_name.clone(),
        },
    }
}

/// The Tollgate Gateway a parentRef names, if it names one.
fn parent_gateway<'g, 'k>(
    gateways: &'g BTreeMap<&'k str, GatewayPlan>,
    route_ns: &str,
    parent: &TlsRouteParentRefs,
) -> Option<(&'k str, &'g GatewayPlan)> {
    let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
    let kind = parent.kind.as_deref().unwrap_or("Gateway");
    if group != GATEWAY_GROUP || kind != "Gateway" {
        return None;
    }
    let ns = parent.namespace.as_deref().unwrap_or(route_ns);
    let key = format!("{ns}/{}", parent.name);
    gateways.get_key_value(key.as_str()).map(|(k, g)| (*k, g))
}
