//! Attaching every compiled route to the Gateways its parentRefs reach:
//! per route its parent statuses (policy conditions included) and, per
//! Gateway, the listeners and hostnames each route is served on.
//!
//! When the view's Gateway side is the one of the previous compile, a
//! route compiled to the same `Arc` as then takes its previous outcome
//! from the attach memo (`attach_memo`) instead; the outcome is the same
//! either way.

use crate::attach_memo::{Attached, ListenerHosts};
use crate::auth_policies::AuthPolicies;
use crate::auth_status::{RouteParents, route_auth_condition};
use crate::compiler::{Memos, Parents, RouteEntry};
use crate::conditions::Stamp;
use crate::gateway::GatewayPlan;
use crate::httproute::{CompiledRoute, ParentOutcome, attach};
use crate::kind_conflicts::{one_kind, settle_kind_conflicts};
use crate::options::CompileOptions;
use crate::output::{Compiled, ObjectStatus};
use crate::ratelimit_policies::{RateLimitPolicies, route_limits_condition};
use crate::resources::Resources;
use crate::snapshot::Attachment;
use gateway_api::experimental::httproutes::HttpRouteStatus;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What attachment reads besides the routes.
pub(crate) struct AttachInputs<'a, 'k> {
    pub(crate) resources: &'a Resources,
    pub(crate) options: &'a CompileOptions,
    pub(crate) stamp: &'a Stamp,
    pub(crate) gateways: &'a BTreeMap<&'k str, GatewayPlan>,
    pub(crate) reachable: &'a Parents<'a, 'k>,
    pub(crate) auth: &'a AuthPolicies,
    pub(crate) limits: &'a RateLimitPolicies,
    /// The Gateway side (everything but routes and EndpointSlices) is the
    /// same objects as in the previous compile with these memos.
    pub(crate) gateway_side_unchanged: bool,
}

/// What attaching every route gives the rest of the compile.
#[derive(Default)]
pub(crate) struct Attachments<'k> {
    /// Per Gateway key, the routes on its listeners.
    pub(crate) by_gateway: BTreeMap<&'k str, Vec<Attachment>>,
    /// Per route (policy key), the Gateways it reached; only filled when
    /// some policy exists, since only policy statuses read it.
    pub(crate) route_parents: RouteParents<'k>,
}

/// Attaches `routes` (`compiled[i]` is `routes[i].compiled`), pushing
/// each route's status to `out`.
pub(crate) fn attach_routes<'k>(
    inputs: &AttachInputs<'_, 'k>,
    routes: &[RouteEntry<'_>],
    compiled: &[Arc<CompiledRoute>],
    memos: &mut Memos,
    out: &mut Compiled,
) -> Attachments<'k> {
    let mut found = Attachments::default();
    // The kind conflict crosses routes; without it each route's outcome
    // is its own, and may be kept and reused.
    let memo_on = inputs.gateway_side_unchanged && one_kind(compiled);
    if !memo_on {
        memos.attached.clear();
    }
    if !one_kind(compiled) {
        let mut outcomes: Vec<_> = routes.iter().map(|r| attach_one(inputs, r)).collect();
        settle_kind_conflicts(compiled, &mut outcomes);
        for (i, (route, parents)) in routes.iter().zip(outcomes).enumerate() {
            finish(inputs, i, route, parents, memos, &mut found, out);
        }
        return found;
    }
    for (i, route) in routes.iter().enumerate() {
        if memo_on && reuse(inputs, i, route, memos, &mut found, out) {
            continue;
        }
        let parents = attach_one(inputs, route);
        let attached = finish(inputs, i, route, parents, memos, &mut found, out);
        memos.attached.insert(&route.compiled, attached);
    }
    found
}

/// The route's outcome on every Gateway its parentRefs reach.
fn attach_one<'k>(
    inputs: &AttachInputs<'_, 'k>,
    route: &RouteEntry<'_>,
) -> Vec<(&'k str, ParentOutcome)> {
    // The time is stamped here, not in the memoized rules, so a new
    // second does not make every route's rules new.
    let route_stamp = inputs.stamp.for_generation(route.meta.generation);
    let compiled = &route.compiled;
    let controller = &inputs.options.controller_name;
    route
        .parent_refs
        .iter()
        .filter_map(|parent| {
            let (key, plan) = inputs.reachable.find(&compiled.namespace, parent)?;
            let outcome = attach(
                inputs.resources,
                compiled,
                parent,
                plan,
                controller,
                &route_stamp,
            );
            Some((key, outcome))
        })
        .collect()
}

/// Adds the policy conditions to the route's `parents`, records its
/// attachments in `found` and its status in `out`; returns all of it for
/// the attach memo.
fn finish<'k>(
    inputs: &AttachInputs<'_, 'k>,
    i: usize,
    route: &RouteEntry<'_>,
    parents: Vec<(&'k str, ParentOutcome)>,
    memos: &mut Memos,
    found: &mut Attachments<'k>,
    out: &mut Compiled,
) -> Attached {
    let compiled = &route.compiled;
    let route_stamp = inputs.stamp.for_generation(route.meta.generation);
    let mut statuses = Vec::with_capacity(parents.len());
    let mut kept = Vec::with_capacity(parents.len());
    for (key, mut outcome) in parents {
        if let Some(plan) = inputs.gateways.get(key) {
            let listeners: Vec<usize> = outcome.attachments.iter().map(|(l, _)| *l).collect();
            let at = (plan, listeners.as_slice());
            let conditions = [
                route_auth_condition(inputs.auth, plan, &listeners, compiled, &route_stamp),
                route_limits_condition(inputs.limits, at, compiled, &route_stamp),
            ];
            outcome
                .status
                .conditions
                .extend(conditions.into_iter().flatten());
        }
        record(inputs, i, compiled, key, &outcome.attachments, found);
        kept.push((key.to_string(), outcome.attachments));
        statuses.push(outcome.status);
    }
    let status = HttpRouteStatus { parents: statuses };
    let status = memos.statuses.shared(compiled.kind, &compiled.key, status);
    out.statuses.push(route_status(route, Arc::clone(&status)));
    Attached {
        parents: kept,
        status,
    }
}

/// Records route `i`'s previous outcome when the attach memo has one for
/// it; whether it did.
fn reuse<'k>(
    inputs: &AttachInputs<'_, 'k>,
    i: usize,
    route: &RouteEntry<'_>,
    memos: &mut Memos,
    found: &mut Attachments<'k>,
    out: &mut Compiled,
) -> bool {
    let compiled = &route.compiled;
    let Some(attached) = memos.attached.get(compiled) else {
        return false;
    };
    let key_of = |key: &str| inputs.gateways.get_key_value(key).map(|(k, _)| *k);
    // Both hold while the Gateway side is unchanged; if not, attach anew.
    if !attached
        .parents
        .iter()
        .all(|(key, _)| key_of(key).is_some())
        || !memos.statuses.keep(compiled.kind, &compiled.key)
    {
        return false;
    }
    for (key, listeners) in &attached.parents {
        if let Some(key) = key_of(key) {
            record(inputs, i, compiled, key, listeners, found);
        }
    }
    out.statuses
        .push(route_status(route, Arc::clone(&attached.status)));
    true
}

/// Notes that route `i` reached Gateway `key` on `listeners`.
fn record<'k>(
    inputs: &AttachInputs<'_, 'k>,
    i: usize,
    compiled: &CompiledRoute,
    key: &'k str,
    listeners: &ListenerHosts,
    found: &mut Attachments<'k>,
) {
    if !inputs.auth.policies.is_empty() || !inputs.limits.policies.is_empty() {
        let parents_of = found
            .route_parents
            .entry(compiled.policy_key().into_owned())
            .or_default();
        if !parents_of.contains(&key) {
            parents_of.push(key);
        }
    }
    let attachments = found.by_gateway.entry(key).or_default();
    attachments.extend(listeners.iter().map(|(listener, hostnames)| Attachment {
        route: i,
        listener: *listener,
        hostnames: hostnames.clone(),
    }));
}

/// The route's status as compile outputs it.
fn route_status(route: &RouteEntry<'_>, status: Arc<serde_json::Value>) -> ObjectStatus {
    ObjectStatus {
        kind: route.compiled.kind.name().to_string(),
        namespace: Some(route.compiled.namespace.clone()),
        name: route.meta.name.as_deref().unwrap_or_default().to_string(),
        status,
    }
}
