//! The compile pass: classes, Gateways, routes, attachment, snapshots and
//! statuses, in that order, over every object of a [`Resources`] view.

use crate::attach_memo::AttachMemos;
use crate::auth_policies::AuthPolicies;
use crate::auth_status::{StatusInputs, compile_auth_status};
use crate::backend_tls_status::{ServicesByGateway, compile_backend_tls_status};
use crate::conditions::Stamp;
use crate::endpoints::EndpointIndex;
use crate::gateway::{GatewayPlan, compile_gateway};
use crate::gatewayclass::{ClassOutcome, compile_gateway_class};
use crate::grpcroute::{compile_grpc_route, parent_ref};
use crate::httproute::{CompiledRoute, compile_http_route};
use crate::listeners::GATEWAY_GROUP;
use crate::listenerset::{LISTENER_SET, SetPlan, allows_any, merge_listener_sets};
use crate::memo::{Inputs, RouteMemos};
use crate::options::CompileOptions;
use crate::output::{Compiled, push_status};
use crate::ratelimit_policies::{RateLimitPolicies, compile_rate_limit_status};
use crate::refill::{LastCompile, Recompiled};
use crate::resources::Resources;
use crate::route_attach::{AttachInputs, Attachments, attach_routes};
use crate::snapshot::{Attachment, Policies, build_snapshot};
use crate::status_memo::RouteStatuses;
use crate::tlsroute::compile_tls_routes;
use crate::unserved;
use gateway_api::experimental::grpcroutes::GrpcRoute;
use gateway_api::experimental::httproutes::{HttpRoute, HttpRouteParentRefs};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_snapshot::Snapshot;

/// Compiles every object into snapshots and statuses.
///
/// # Guarantees
///
/// - Pure and deterministic: the same inputs give the same output, byte
///   for byte once serialised.
/// - Only objects of Tollgate's classes (`options.controller_name`) get a
///   status; one invalid object never keeps another from compiling.
/// - Every snapshot passes
///   [`Snapshot::validate`](tollgate_snapshot::Snapshot::validate).
pub fn compile(resources: &Resources, options: &CompileOptions) -> Compiled {
    Compiler::default().compile(resources, options)
}

/// `compile` that remembers its route results between calls, so a change
/// recompiles only the HTTPRoutes and GRPCRoutes it can affect (see `memo`)
/// and serialises only the route statuses it changed (see `status_memo`).
///
/// Keep one per stream of views (one provider); its memory follows the
/// number of routes.
#[derive(Debug, Default)]
pub struct Compiler {
    routes: Memos,
    /// The last compile [`Compiler::recompile`] ran; `None` after a plain
    /// [`Compiler::compile`] or a compile that did not finish.
    last: Option<LastCompile>,
}

/// The route memos of each kind, the routes' last statuses and their
/// last attachments.
#[derive(Debug, Default)]
pub(crate) struct Memos {
    http: RouteMemos<HttpRoute>,
    grpc: RouteMemos<GrpcRoute>,
    pub(crate) statuses: RouteStatuses,
    pub(crate) attached: AttachMemos,
}

impl Compiler {
    /// Compiles every object into snapshots and statuses.
    ///
    /// # Guarantees
    ///
    /// The output equals [`compile`]`(resources, options)`, whatever this
    /// compiler compiled before, except that a route status equal to the
    /// previous compile's apart from condition times keeps the previous
    /// times (and is the same shared value).
    pub fn compile(&mut self, resources: &Resources, options: &CompileOptions) -> Compiled {
        self.last = None;
        compile_with(resources, options, &mut self.routes, false)
    }

    /// Compiles `resources`, unless they differ from the view of the last
    /// `recompile` only in EndpointSlices (and `options` only in `now`):
    /// then the last snapshots, as `previous(gateway)` gives them, get their
    /// endpoints filled in again and no compile runs (see `refill`).
    ///
    /// `previous` must give, for every Gateway of the last
    /// [`Recompiled::Endpoints`] or [`Recompiled::Full`], the snapshot it
    /// returned (or one of equal content, such as the published copy; its
    /// `version` and `schema_version` are ignored). A Gateway it does not
    /// know makes this a full compile.
    ///
    /// # Guarantees
    ///
    /// - `Full` is what [`Compiler::compile`] returns for the same inputs.
    /// - `Endpoints` holds exactly the snapshots `Full` would hold, and every
    ///   status of `Full` would equal the last one returned, apart from
    ///   condition times.
    pub fn recompile(
        &mut self,
        resources: &Arc<Resources>,
        options: &CompileOptions,
        previous: impl Fn(&str) -> Option<Arc<Snapshot>>,
    ) -> Recompiled {
        if let Some(last) = &mut self.last
            && let Some(snapshots) = last.refill(resources, options, previous)
        {
            return Recompiled::Endpoints(snapshots);
        }
        // Routes whose compiled form and Gateway side are the previous
        // compile's keep their attachments (see `attach_memo`).
        let unchanged = self
            .last
            .as_ref()
            .is_some_and(|last| last.gateway_side_unchanged(resources, options));
        let compiled = compile_with(resources, options, &mut self.routes, unchanged);
        self.last = Some(LastCompile::new(resources, options, &compiled));
        Recompiled::Full(compiled)
    }

    /// Makes the next [`Compiler::recompile`] a full compile: for a caller
    /// that lost the last output (its task failed before publishing it).
    pub fn forget_view(&mut self) {
        self.last = None;
    }
}

/// `compile`, with `memos` from previous compiles; `gateway_side_unchanged`
/// when everything but routes and EndpointSlices is the same objects as in
/// the previous compile with these memos, and the options the same but for
/// `now`.
fn compile_with(
    resources: &Resources,
    options: &CompileOptions,
    memos: &mut Memos,
    gateway_side_unchanged: bool,
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
    let mut gateways: BTreeMap<&str, GatewayPlan> = BTreeMap::new();
    let mut listener_sets: Vec<(&str, SetPlan)> = Vec::new();
    for (key, g) in &resources.gateways {
        let class_name = g.spec.gateway_class_name.as_str();
        let Some(class) = classes.get(class_name) else {
            continue;
        };
        let mut plan = compile_gateway(resources, g, class_name, class, options, &stamp);
        let offset = options.listener_port_offset;
        let sets =
            merge_listener_sets(resources, g, &class.tls_defaults, offset, &stamp, &mut plan);
        listener_sets.extend(sets.into_iter().map(|s| (key.as_str(), s)));
        gateways.insert(key.as_str(), plan);
    }
    let reachable = Parents {
        gateways: gateways
            .iter()
            .filter_map(|(key, plan)| Some((key.split_once('/')?, (*key, plan))))
            .collect(),
        sets: listener_sets
            .iter()
            .filter(|(_, s)| s.not_allowed.is_none())
            .map(|(gateway, s)| (s.set.key(), *gateway))
            .collect(),
    };
    let routes = compile_routes(resources, &reachable, memos);
    // Policies are applied to the (possibly memoized) routes from here on,
    // rebuilt on every compile: see `auth_policies` for why.
    let auth = AuthPolicies::compile(resources);
    let limits = RateLimitPolicies::compile(resources);
    let policies = Policies {
        auth: &auth,
        limits: &limits,
    };
    let compiled_routes: Vec<Arc<CompiledRoute>> =
        routes.iter().map(|r| Arc::clone(&r.compiled)).collect();
    let inputs = AttachInputs {
        resources,
        options,
        stamp: &stamp,
        gateways: &gateways,
        reachable: &reachable,
        auth: &auth,
        limits: &limits,
        gateway_side_unchanged,
    };
    let Attachments {
        by_gateway: mut attachments,
        route_parents,
    } = attach_routes(&inputs, &routes, &compiled_routes, memos, &mut out);
    // Memos of routes that are gone (or no longer Tollgate's) go too.
    memos.http.retain_used();
    memos.grpc.retain_used();
    memos.statuses.retain_used();
    memos.attached.retain_used();
    let used: ServicesByGateway<'_> = attachments
        .iter()
        .map(|(key, found)| {
            let services = found
                .iter()
                .filter_map(|a| compiled_routes.get(a.route))
                .flat_map(|r| r.reads.iter())
                .map(|(ns, name)| (ns.as_str(), name.as_str()))
                .collect();
            (*key, services)
        })
        .collect();
    compile_backend_tls_status(resources, &used, &options.controller_name, &stamp, &mut out);
    let status_inputs = StatusInputs {
        resources,
        gateways: &gateways,
        route_parents: &route_parents,
        controller: &options.controller_name,
        stamp: &stamp,
    };
    compile_auth_status(&status_inputs, &auth, &mut out);
    compile_rate_limit_status(&status_inputs, &limits, &mut out);
    let endpoints = EndpointIndex::new(resources);
    let tls = compile_tls_routes(
        resources,
        &gateways,
        &options.controller_name,
        &stamp,
        &mut out,
    );
    for (key, plan) in &gateways {
        let found = attachments
            .get_mut(key)
            .map(Vec::as_mut_slice)
            .unwrap_or_default();
        let mut counts = attached_counts(plan, &*found);
        tls.add_counts(key, &mut counts);
        let mut status = plan.status(&counts);
        let sets = listener_sets.iter().filter(|(gateway, _)| gateway == key);
        let attached_sets = sets.clone().filter(|(_, s)| s.attached(plan)).count();
        let allows = resources.gateways.get(*key).is_some_and(|g| allows_any(g));
        if allows || sets.clone().next().is_some() {
            status.attached_listener_sets = Some(i32::try_from(attached_sets).unwrap_or(i32::MAX));
        }
        for (_, set) in sets {
            let ns = Some(set.set.namespace.as_str());
            let set_status = set.status(plan, &counts);
            push_status(&mut out, LISTENER_SET, ns, &set.set.name, &set_status);
        }
        push_status(
            &mut out,
            "Gateway",
            Some(&plan.namespace),
            &plan.name,
            &status,
        );
        if plan.not_programmed().is_none() {
            let mut snapshot = build_snapshot(
                plan,
                &compiled_routes,
                found,
                options.listener_port_offset,
                &policies,
            );
            tls.apply(plan, &mut snapshot);
            endpoints.fill(&mut snapshot);
            out.snapshots.insert(key.to_string(), snapshot);
        }
    }
    unserved::compile_unserved(resources, options, &gateways, &stamp, &mut out);
    out.statuses
        .sort_by(|a, b| (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name)));
    out
}

/// A compiled route of either kind with what attachment reads of it.
pub(crate) struct RouteEntry<'a> {
    pub(crate) meta: &'a ObjectMeta,
    /// `spec.parentRefs` (a GRPCRoute's as the HTTPRoute schema, which is
    /// the same; an HTTPRoute's borrowed, not copied, on every compile).
    pub(crate) parent_refs: Cow<'a, [HttpRouteParentRefs]>,
    pub(crate) compiled: Arc<CompiledRoute>,
}

/// Compiles the HTTPRoutes, then the GRPCRoutes, that name at least one of
/// Tollgate's Gateways, each kind in `namespace/name` order.
fn compile_routes<'a>(
    resources: &'a Resources,
    parents: &Parents<'_, '_>,
    memos: &mut Memos,
) -> Vec<RouteEntry<'a>> {
    let inputs = Inputs::new(resources);
    let ours = |meta: &ObjectMeta, refs: &[HttpRouteParentRefs]| {
        let ns = meta.namespace.as_deref().unwrap_or_default();
        refs.iter().any(|p| parents.find(ns, p).is_some())
    };
    let mut out = Vec::new();
    for (key, r) in &resources.http_routes {
        let refs = Cow::Borrowed(r.spec.parent_refs.as_deref().unwrap_or_default());
        if ours(&r.metadata, &refs) {
            out.push(RouteEntry {
                meta: &r.metadata,
                parent_refs: refs,
                compiled: memos.http.compile(&inputs, key, r, compile_http_route),
            });
        }
    }
    for (key, r) in &resources.grpc_routes {
        let refs: Vec<HttpRouteParentRefs> = r
            .spec
            .parent_refs
            .iter()
            .flatten()
            .map(parent_ref)
            .collect();
        if ours(&r.metadata, &refs) {
            out.push(RouteEntry {
                meta: &r.metadata,
                parent_refs: Cow::Owned(refs),
                compiled: memos.grpc.compile(&inputs, key, r, compile_grpc_route),
            });
        }
    }
    out
}

/// What a route's parentRef may name: a Tollgate Gateway, or a ListenerSet
/// attached to one (which routes reach through that Gateway's plan).
pub(crate) struct Parents<'g, 'k> {
    /// Tollgate's Gateways by their key `namespace/name` split in two:
    /// every route's every parentRef is looked up twice per compile, and
    /// this way without building a `namespace/name` string each time.
    gateways: BTreeMap<(&'k str, &'k str), (&'k str, &'g GatewayPlan)>,
    /// Allowed ListenerSets by `namespace/name`, to their Gateway's key.
    sets: BTreeMap<String, &'k str>,
}

impl<'g, 'k> Parents<'g, 'k> {
    /// The Tollgate Gateway a parentRef reaches, if it reaches one.
    pub(crate) fn find(
        &self,
        route_ns: &str,
        parent: &HttpRouteParentRefs,
    ) -> Option<(&'k str, &'g GatewayPlan)> {
        let group = parent.group.as_deref().unwrap_or(GATEWAY_GROUP);
        if group != GATEWAY_GROUP {
            return None;
        }
        let ns = parent.namespace.as_deref().unwrap_or(route_ns);
        match parent.kind.as_deref().unwrap_or("Gateway") {
            "Gateway" => self.gateways.get(&(ns, parent.name.as_str())).copied(),
            LISTENER_SET => {
                let gateway = *self.sets.get(&format!("{ns}/{}", parent.name))?;
                self.gateways.values().find(|(k, _)| *k == gateway).copied()
            }
            _ => None,
        }
    }
}

/// Routes attached per listener, each route counted once per listener.
///
/// Attachment records a route's attachments together, routes in order
/// (`route_attach`), so a route seen again on a listener is the one seen
/// last there: one counter per listener, no set of 10k routes.
fn attached_counts(plan: &GatewayPlan, attachments: &[Attachment]) -> Vec<i32> {
    let mut per_listener: Vec<(i32, Option<usize>)> = vec![(0, None); plan.listeners.len()];
    for a in attachments {
        if let Some((count, last)) = per_listener.get_mut(a.listener)
            && *last != Some(a.route)
        {
            debug_assert!(
                last.is_none_or(|l| l < a.route),
                "attachments in route order"
            );
            *count = count.saturating_add(1);
            *last = Some(a.route);
        }
    }
    per_listener.into_iter().map(|(count, _)| count).collect()
}
