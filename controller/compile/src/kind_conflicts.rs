//! The HTTPRoute/GRPCRoute conflict: one listener, one hostname, one kind.
//!
//! The Gateway API (`GRPCRouteSpec.hostnames`): when a route of one kind
//! attaches to a listener where a route of the other kind is attached and
//! their hostnames intersect, exactly one of the two is accepted: the
//! older (creation timestamp), then the first by `namespace/name`. The
//! precedence rules of the two kinds are not comparable, so merging them
//! on one hostname would route by accident.
//!
//! Tollgate settles this per listener, after attachment and before the
//! snapshot: routes are visited oldest first, and one is kept on the
//! listener unless a kept route of the other kind shares a hostname with
//! it. A route that loses every listener of a parentRef gets
//! `Accepted: False` (reason `Conflicted`) on that parent naming the
//! winner; one that keeps some listeners stays accepted there.

use crate::conditions::{reasons, types};
use crate::hostname::intersect;
use crate::httproute::{CompiledRoute, ParentOutcome};
use crate::rule_context::RouteKind;
use k8s_openapi::jiff::Timestamp;
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_snapshot::HostMatch;

/// Every parent outcome of one route: `(gateway key, outcome)`.
pub(crate) type RouteOutcomes<'k> = Vec<(&'k str, ParentOutcome)>;

/// Whether `routes` are all of one kind, so that no conflict can arise.
pub(crate) fn one_kind(routes: &[Arc<CompiledRoute>]) -> bool {
    routes.iter().all(|r| r.kind == RouteKind::Http)
        || routes.iter().all(|r| r.kind == RouteKind::Grpc)
}

/// Removes the attachments that lose the conflict from `outcomes`
/// (indexed like `routes`) and marks parents left with none.
pub(crate) fn settle_kind_conflicts(
    routes: &[Arc<CompiledRoute>],
    outcomes: &mut [RouteOutcomes<'_>],
) {
    // A conflict needs both kinds; most gateways carry one, and then the
    // claims below (a map entry per route) would only be built to be skipped.
    if one_kind(routes) {
        return;
    }
    // (gateway, listener) -> route -> its effective hostnames there.
    let mut claims: BTreeMap<(&str, usize), BTreeMap<usize, Vec<&HostMatch>>> = BTreeMap::new();
    for (r, parents) in outcomes.iter().enumerate() {
        for (gateway, outcome) in parents {
            for (listener, hosts) in &outcome.attachments {
                let found = claims.entry((*gateway, *listener)).or_default();
                found.entry(r).or_default().extend(hosts);
            }
        }
    }
    // (route, gateway, listener) -> the route that won it.
    let mut lost: BTreeMap<(usize, String, usize), usize> = BTreeMap::new();
    for ((gateway, listener), by_route) in &claims {
        let mut order: Vec<usize> = by_route.keys().copied().collect();
        let kinds = order.iter().map(|&r| routes[r].kind);
        if kinds.clone().min() == kinds.max() {
            continue;
        }
        order.sort_by(|&a, &b| age(&routes[a]).cmp(&age(&routes[b])));
        let mut kept: Vec<usize> = Vec::new();
        for r in order {
            let winner = kept.iter().copied().find(|&k| {
                routes[k].kind != routes[r].kind && shares_host(&by_route[&k], &by_route[&r])
            });
            match winner {
                Some(w) => {
                    lost.insert((r, gateway.to_string(), *listener), w);
                }
                None => kept.push(r),
            }
        }
    }
    if lost.is_empty() {
        return;
    }
    for (r, parents) in outcomes.iter_mut().enumerate() {
        for (gateway, outcome) in parents.iter_mut() {
            if outcome.attachments.is_empty() {
                continue;
            }
            let mut winner = None;
            outcome.attachments.retain(|(listener, _)| {
                match lost.get(&(r, gateway.to_string(), *listener)) {
                    Some(&w) => {
                        winner = Some(w);
                        false
                    }
                    None => true,
                }
            });
            if let (true, Some(w)) = (outcome.attachments.is_empty(), winner) {
                reject(outcome, &routes[w]);
            }
        }
    }
}

/// Older first, then `namespace/name`; the kind only breaks a tie between
/// an HTTPRoute and a GRPCRoute of one name made in the same second.
fn age(route: &CompiledRoute) -> (bool, Option<&Timestamp>, &str, RouteKind) {
    // A route without a creation timestamp sorts after every dated one.
    (
        route.created.is_none(),
        route.created.as_ref(),
        route.key.as_str(),
        route.kind,
    )
}

fn shares_host(a: &[&HostMatch], b: &[&HostMatch]) -> bool {
    a.iter()
        .any(|x| b.iter().any(|y| intersect(x, y).is_some()))
}

/// Turns the parent's `Accepted` condition to `False`, keeping its stamp.
fn reject(outcome: &mut ParentOutcome, winner: &CompiledRoute) {
    let Some(accepted) = outcome
        .status
        .conditions
        .iter_mut()
        .find(|c| c.type_ == types::ACCEPTED)
    else {
        return;
    };
    accepted.status = "False".to_string();
    accepted.reason = reasons::CONFLICTED.to_string();
    accepted.message = format!(
        "{} {} takes precedence on every selected listener (older, or first by namespace/name), and an HTTPRoute and a GRPCRoute may not share a hostname on one listener",
        winner.kind.name(),
        winner.key,
    );
    outcome
        .status
        .conditions
        .retain(|c| c.type_ != types::PARTIALLY_INVALID);
}
