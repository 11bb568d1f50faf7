//! `compile`: Kubernetes objects in, routing snapshots and statuses out.
//!
//! A pure function: no I/O, no clock (the time stamped on conditions is
//! [`CompileOptions::now`]), no randomness, deterministic output order. All
//! Gateway API semantics — class acceptance, listener validation, route
//! attachment, hostname intersection, match precedence, ReferenceGrant
//! checks, backend resolution — are decided here so the data plane only
//! executes a resolved plan. A user mistake becomes a status condition on
//! the object that holds it, never an error: the rest still compiles.

mod backends;
mod certificates;
mod conditions;
mod filters;
mod gateway;
mod gatewayclass;
mod hostname;
mod httproute;
mod listeners;
mod matches;
mod memo;
mod rules;
mod selector;
mod snapshot;
mod unserved;

use crate::resources::Resources;
use conditions::Stamp;
use gateway::{GatewayPlan, compile_gateway};
use gateway_api::experimental::httproutes::{HttpRoute, HttpRouteStatus};
use gatewayclass::{ClassOutcome, compile_gateway_class};
use httproute::{CompiledRoute, attach};
use listeners::GATEWAY_GROUP;
use memo::{Inputs, RouteMemos};
use serde::{Deserialize, Serialize};
use snapshot::{Attachment, build_snapshot};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use tollgate_snapshot::Snapshot;

/// The GatewayClass `controllerName` Tollgate answers to by default.
pub const CONTROLLER_NAME: &str = "tollgate.dev/gateway-controller";

/// Inputs to `compile` that do not come from Kubernetes objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// GatewayClasses with this `controllerName` are Tollgate's.
    pub controller_name: String,
    /// Address listeners bind when a Gateway has no `spec.addresses`.
    pub bind_address: String,
    /// Added to every listener port when binding (tests use unprivileged ports).
    pub listener_port_offset: u16,
    /// RFC 3339 time written as `lastTransitionTime` on new conditions.
    pub now: String,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            controller_name: CONTROLLER_NAME.to_string(),
            bind_address: "0.0.0.0".to_string(),
            listener_port_offset: 0,
            now: "1970-01-01T00:00:00Z".to_string(),
        }
    }
}

/// What `compile` produces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compiled {
    /// One snapshot per accepted Gateway, keyed by `namespace/name`.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// The status each object should hold, sorted by kind, namespace, name.
    pub statuses: Vec<ObjectStatus>,
}

/// The status Kubernetes would hold for one object.
///
/// This is also the documented schema of the admin `GET /status` endpoint:
/// a JSON array of these objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Object kind, e.g. `Gateway`.
    pub kind: String,
    /// Namespace; absent for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// The object's whole `status`, in the Kubernetes JSON form of its kind
    /// (conditions, listeners, addresses, route parents).
    pub status: serde_json::Value,
}

/// Compiles every object into snapshots and statuses.
///
/// # Guarantees
///
/// - Pure and deterministic: the same inputs give the same output, byte
///   for byte once serialised.
/// - Only objects of Tollgate's classes (`options.controller_name`) get a
///   status; one invalid object never keeps another from compiling.
/// - Every snapshot passes [`Snapshot::validate`].
pub fn compile(resources: &Resources, options: &CompileOptions) -> Compiled {
    Compiler::default().compile(resources, options)
}

/// `compile` that remembers its route results between calls, so a change
/// recompiles only the HTTPRoutes it can affect (see `memo`).
///
/// Keep one per stream of views (one provider); its memory follows the
/// number of routes.
#[derive(Debug, Default)]
pub struct Compiler {
    routes: RouteMemos,
}

impl Compiler {
    /// Compiles every object into snapshots and statuses.
    ///
    /// # Guarantees
    ///
    /// The output equals [`compile`]`(resources, options)`, whatever this
    /// compiler compiled before.
    pub fn compile(&mut self, resources: &Resources, options: &CompileOptions) -> Compiled {
        compile_with(resources, options, &mut self.routes)
    }
}

fn compile_with(
    resources: &Resources,
    options: &CompileOptions,
    memos: &mut RouteMemos,
) -> Compiled {
    let stamp = Stamp::new(&options.now, None);
    let mut out = Compiled::default();
    let classes: BTreeMap<&str, ClassOutcome> = resources
        .gateway_classes
        .iter()
        .filter(|(_, c)| c.spec.controller_name == options.controller_name)
        .map(|(name, c)| (name.as_str(), compile_gateway_class(resources, c, &stamp)))
        .collect();
    for (name, class) in &classes {
        push_status(&mut out, "GatewayClass", None, name, &class.status);
    }
    let gateways: BTreeMap<&str, GatewayPlan> = resources
        .gateways
        .iter()
        .filter_map(|(key, g)| {
            let class_name = g.spec.gateway_class_name.as_str();
            let class = classes.get(class_name)?;
            Some((
                key.as_str(),
                compile_gateway(resources, g, class_name, class, options, &stamp),
            ))
        })
        .collect();
    let routes = compile_routes(resources, &gateways, memos);
    let mut attachments: BTreeMap<&str, Vec<Attachment>> = BTreeMap::new();
    for (i, (route, compiled)) in routes.iter().enumerate() {
        // The time is stamped here, not in the memoized rules, so a new
        // second does not make every route's rules new.
        let route_stamp = stamp.for_generation(route.metadata.generation);
        let mut parents = Vec::new();
        for parent in route.spec.parent_refs.iter().flatten() {
            let Some((key, plan)) = parent_gateway(&gateways, &compiled.namespace, parent) else {
                continue;
            };
            let controller = &options.controller_name;
            let outcome = attach(resources, compiled, parent, plan, controller, &route_stamp);
            let found = attachments.entry(key).or_default();
            found.extend(
                outcome
                    .attachments
                    .into_iter()
                    .map(|(listener, hostnames)| Attachment {
                        route: i,
                        listener,
                        hostnames,
                    }),
            );
            parents.push(outcome.status);
        }
        let status = HttpRouteStatus { parents };
        let name = route.metadata.name.as_deref().unwrap_or_default();
        push_status(
            &mut out,
            "HTTPRoute",
            Some(&compiled.namespace),
            name,
            &status,
        );
    }
    // Memos of routes that are gone (or no longer Tollgate's) go too.
    let keys: HashSet<&str> = routes.iter().map(|(_, c)| c.key.as_str()).collect();
    memos.retain(|k| keys.contains(k));
    let compiled_routes: Vec<Arc<CompiledRoute>> = routes.into_iter().map(|(_, c)| c).collect();
    for (key, plan) in &gateways {
        let found = attachments.get(key).map(Vec::as_slice).unwrap_or_default();
        let status = plan.status(&attached_counts(plan, found));
        push_status(
            &mut out,
            "Gateway",
            Some(&plan.namespace),
            &plan.name,
            &status,
        );
        if plan.not_programmed().is_none() {
            let snapshot =
                build_snapshot(plan, &compiled_routes, found, options.listener_port_offset);
            out.snapshots.insert(key.to_string(), snapshot);
        }
    }
    unserved::compile_unserved(resources, options, &gateways, &stamp, &mut out);
    out.statuses
        .sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    out
}

/// Compiles the HTTPRoutes that name at least one of Tollgate's Gateways,
/// in `namespace/name` order.
fn compile_routes<'a>(
    resources: &'a Resources,
    gateways: &BTreeMap<&str, GatewayPlan>,
    memos: &mut RouteMemos,
) -> Vec<(&'a HttpRoute, Arc<CompiledRoute>)> {
    let inputs = Inputs::new(resources);
    resources
        .http_routes
        .iter()
        .filter(|(_, r)| {
            let ns = r.metadata.namespace.as_deref().unwrap_or_default();
            r.spec
                .parent_refs
                .iter()
                .flatten()
                .any(|p| parent_gateway(gateways, ns, p).is_some())
        })
        .map(|(key, r)| (&**r, memos.compile(&inputs, key, r)))
        .collect()
}

/// The Tollgate Gateway a parentRef names, if it names one.
fn parent_gateway<'g, 'k>(
    gateways: &'g BTreeMap<&'k str, GatewayPlan>,
    route_ns: &str,
    parent: &gateway_api::experimental::httproutes::HttpRouteParentRefs,
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

/// Routes attached per listener, each route counted once per listener.
fn attached_counts(plan: &GatewayPlan, attachments: &[Attachment]) -> Vec<i32> {
    let mut per_listener: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); plan.listeners.len()];
    for a in attachments {
        if let Some(set) = per_listener.get_mut(a.listener) {
            set.insert(a.route);
        }
    }
    per_listener
        .iter()
        .map(|s| i32::try_from(s.len()).unwrap_or(i32::MAX))
        .collect()
}

fn push_status<T: Serialize>(
    out: &mut Compiled,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    status: &T,
) {
    // Serialising the generated status types cannot fail (string keys,
    // no non-finite floats); a null status would still name the object.
    let status = serde_json::to_value(status).unwrap_or_default();
    out.statuses.push(ObjectStatus {
        kind: kind.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        status,
    });
}
