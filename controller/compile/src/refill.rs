//! Endpoint-only changes without a compile.
//!
//! EndpointSlices change far more often than anything else a compile reads
//! (every pod start, stop and readiness flip), and they reach its output in
//! one place only: the endpoints filled into each snapshot's backends when
//! the snapshot is assembled (`endpoints`). No route, attachment, backend
//! name or status reads them. So when a view differs from the last compiled
//! one only in its EndpointSlices, the last compile's snapshots with their
//! endpoints filled in again are exactly what a compile would produce, and
//! every status stays what it was. [`Compiler::recompile`] takes that path:
//! with 10k routes it replaces a compile of over 100 ms by a copy of each
//! snapshot and a lookup per backend.
//!
//! "Only EndpointSlices changed" is decided as the route memos decide
//! "unchanged" (`memo`): providers share unchanged objects between views, so
//! every other kind must hold the same keys with the same `Arc`s, and the
//! options may differ only in `now` (it stamps conditions, and the statuses
//! are kept anyway).
//!
//! [`Compiler::recompile`]: crate::Compiler::recompile

use crate::endpoints::EndpointIndex;
use crate::options::CompileOptions;
use crate::output::Compiled;
use crate::resources::Resources;
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_snapshot::Snapshot;

/// What [`Compiler::recompile`](crate::Compiler::recompile) produced.
#[derive(Clone, Debug, PartialEq)]
pub enum Recompiled {
    /// A compile ran: every snapshot and every status.
    Full(Compiled),
    /// Only EndpointSlices changed since the last compile: one snapshot per
    /// Gateway of the last compile, equal to what a compile would produce
    /// (`version` and `schema_version` unset). Every status is unchanged,
    /// so none is given.
    Endpoints(BTreeMap<String, Snapshot>),
}

/// What the last full compile of a `Compiler` read and produced, so the next
/// view can be compared with it.
#[derive(Debug)]
pub(crate) struct LastCompile {
    /// The newest view its output holds for (moved on by every refill).
    resources: Arc<Resources>,
    /// The options it ran with.
    options: CompileOptions,
    /// The Gateways it produced a snapshot for.
    gateways: Vec<String>,
}

impl LastCompile {
    /// Remembers a compile of `resources` with `options` that produced
    /// `compiled`.
    pub(crate) fn new(
        resources: &Arc<Resources>,
        options: &CompileOptions,
        compiled: &Compiled,
    ) -> LastCompile {
        LastCompile {
            resources: Arc::clone(resources),
            options: options.clone(),
            gateways: compiled.snapshots.keys().cloned().collect(),
        }
    }

    /// The snapshots a compile of `resources` would produce, when they and
    /// `options` differ from the last compile's only in EndpointSlices and
    /// `now`: `previous(gateway)` (the snapshot handed out for `gateway`
    /// since that compile) with its endpoints filled in from `resources`.
    /// `None` when a compile is needed, or `previous` lacks a snapshot.
    pub(crate) fn refill(
        &mut self,
        resources: &Arc<Resources>,
        options: &CompileOptions,
        previous: impl Fn(&str) -> Option<Arc<Snapshot>>,
    ) -> Option<BTreeMap<String, Snapshot>> {
        if !same_apart_from_now(&self.options, options)
            || !only_endpoints_changed(&self.resources, resources)
        {
            return None;
        }
        let endpoints = EndpointIndex::new(resources);
        let mut snapshots = BTreeMap::new();
        for gateway in &self.gateways {
            let published = previous(gateway)?;
            let mut snapshot = Snapshot::clone(&published);
            // Stamped by the publisher; a compile leaves them unset.
            snapshot.version = 0;
            snapshot.schema_version = String::new();
            endpoints.fill(&mut snapshot);
            snapshots.insert(gateway.clone(), snapshot);
        }
        self.resources = Arc::clone(resources);
        Some(snapshots)
    }
}

impl LastCompile {
    /// Whether `resources` and `options` differ from the last compile's
    /// (or refill's) at most in HTTPRoutes, GRPCRoutes, EndpointSlices and
    /// `now`: what the attach memo needs to reuse route outcomes.
    pub(crate) fn gateway_side_unchanged(
        &self,
        resources: &Resources,
        options: &CompileOptions,
    ) -> bool {
        same_apart_from_now(&self.options, options)
            && same_objects(&self.resources, resources, Routes::MayDiffer)
    }
}

/// Whether a comparison of views looks at HTTPRoutes and GRPCRoutes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Routes {
    /// They must be the same objects too.
    Same,
    /// They may differ.
    MayDiffer,
}

/// Whether `a` and `b` differ at most in `now`.
fn same_apart_from_now(a: &CompileOptions, b: &CompileOptions) -> bool {
    let CompileOptions {
        controller_name,
        bind_address,
        listener_port_offset,
        now: _,
        provisioned,
    } = b;
    a.controller_name == *controller_name
        && a.bind_address == *bind_address
        && a.listener_port_offset == *listener_port_offset
        && a.provisioned == *provisioned
}

/// Whether `after` holds the same objects as `before` in every kind but
/// EndpointSlices. The destructuring names every field, so a kind added to
/// [`Resources`] cannot be forgotten here.
fn only_endpoints_changed(before: &Resources, after: &Resources) -> bool {
    same_objects(before, after, Routes::Same)
}

/// Whether `after` holds the same objects as `before` in every kind but
/// EndpointSlices, and but the routes of `routes`.
fn same_objects(before: &Resources, after: &Resources, routes: Routes) -> bool {
    if std::ptr::eq(before, after) {
        return true;
    }
    let Resources {
        gateway_classes,
        gateways,
        listener_sets,
        http_routes,
        grpc_routes,
        tls_routes,
        reference_grants,
        backend_tls_policies,
        namespaces,
        services,
        endpoint_slices: _,
        secrets,
        config_maps,
        gateway_configs,
        auth_policies,
        rate_limit_policies,
        undecodable,
    } = after;
    same(&before.gateway_classes, gateway_classes)
        && same(&before.gateways, gateways)
        && same(&before.listener_sets, listener_sets)
        && (routes == Routes::MayDiffer
            || same(&before.http_routes, http_routes) && same(&before.grpc_routes, grpc_routes))
        && same(&before.tls_routes, tls_routes)
        && same(&before.reference_grants, reference_grants)
        && same(&before.backend_tls_policies, backend_tls_policies)
        && same(&before.namespaces, namespaces)
        && same(&before.services, services)
        && same(&before.secrets, secrets)
        && same(&before.config_maps, config_maps)
        && same(&before.gateway_configs, gateway_configs)
        && same(&before.auth_policies, auth_policies)
        && same(&before.rate_limit_policies, rate_limit_policies)
        && same(&before.undecodable, undecodable)
}

/// Whether `a` and `b` hold the same keys with the same shared objects.
fn same<K: PartialEq, T>(a: &BTreeMap<K, Arc<T>>, b: &BTreeMap<K, Arc<T>>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| Arc::ptr_eq(va, vb) && ka == kb)
}
