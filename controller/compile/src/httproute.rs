//! `compile_http_route`: an HTTPRoute's rules compiled once, then attached
//! to each Gateway its `parentRefs` name, with one route parent status per
//! parentRef. GRPCRoutes (`grpcroute.rs`) share everything here but the
//! conversion of their rules.
//!
//! Attachment follows the Gateway API: the parentRef's `sectionName` and
//! `port` select listeners (`NoMatchingParent`), the listeners'
//! `allowedRoutes` must admit the route's kind and namespace
//! (`NotAllowedByListeners`), and the route's hostnames must intersect the
//! listener's (`NoMatchingListenerHostname`). Invalid rules are dropped
//! (`PartiallyInvalid`, message "Dropped Rule…"); a route whose every rule
//! is invalid is not accepted.

use crate::conditions::{Problem, Stamp, reasons, types};
use crate::gateway::GatewayPlan;
use crate::hostname::effective_hostnames;
use crate::listeners::ListenerPlan;
use crate::listenerset::{in_scope, parent_scope};
use crate::resources::Resources;
use crate::rule_context::{RouteKind, RuleContext};
use crate::rules::{CompiledRule, compile_rule};
use crate::selector::{namespace_labels, selects};
use gateway_api::experimental::gateways::GatewayListenersAllowedRoutesNamespacesFrom as NamespacesFrom;
use gateway_api::experimental::httproutes::{
    HttpRoute, HttpRouteParentRefs, HttpRouteStatusParents, HttpRouteStatusParentsParentRef,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use std::borrow::Cow;
use tollgate_snapshot::{HostMatch, PER_MILLION};

/// An HTTPRoute or GRPCRoute with its rules compiled.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRoute {
    /// Which kind of route it is.
    pub(crate) kind: RouteKind,
    /// `namespace/name`.
    pub(crate) key: String,
    /// `metadata.namespace`.
    pub(crate) namespace: String,
    /// `metadata.creationTimestamp`, for precedence.
    pub(crate) created: Option<Timestamp>,
    /// `spec.hostnames`, lowercase.
    pub(crate) hostnames: Vec<HostMatch>,
    /// The valid rules.
    pub(crate) rules: Vec<CompiledRule>,
    /// Why rules were dropped: `(rule index, problem)`.
    pub(crate) dropped: Vec<(usize, Problem)>,
    /// Unresolved references.
    pub(crate) ref_problems: Vec<Problem>,
    /// `(namespace, name)` of every Service the rules referenced.
    pub(crate) reads: Vec<(String, String)>,
}

impl CompiledRoute {
    /// The key policies name this route by: `namespace/name` for an
    /// HTTPRoute, `grpcroute:namespace/name` for a GRPCRoute, so a policy
    /// targeting one kind never reaches a route of the other with the
    /// same name.
    pub(crate) fn policy_key(&self) -> Cow<'_, str> {
        match self.kind {
            RouteKind::Http => Cow::Borrowed(&self.key),
            RouteKind::Grpc => Cow::Owned(format!("grpcroute:{}", self.key)),
        }
    }
}

/// Compiles the rules of `route` (stored under `key`).
pub(crate) fn compile_http_route(
    resources: &Resources,
    key: &str,
    route: &HttpRoute,
) -> CompiledRoute {
    // The API default for absent rules is one rule matching every path.
    let default_rules = [Default::default()];
    let rules = route.spec.rules.as_deref().unwrap_or(&default_rules);
    let source = RouteSource {
        kind: RouteKind::Http,
        key,
        meta: &route.metadata,
        hostnames: route.spec.hostnames.as_deref().unwrap_or_default(),
    };
    compile_route_rules(resources, &source, rules, |ctx, i, rule| {
        (rule.name.as_deref(), compile_rule(ctx, key, i, rule))
    })
}

/// What the shared route compile reads of a route besides its rules.
pub(crate) struct RouteSource<'a> {
    /// The route's kind.
    pub(crate) kind: RouteKind,
    /// `namespace/name`.
    pub(crate) key: &'a str,
    /// Its metadata.
    pub(crate) meta: &'a ObjectMeta,
    /// `spec.hostnames`.
    pub(crate) hostnames: &'a [String],
}

/// Compiles every rule of a route with `compile_one` (which returns the
/// rule's `name` and the compiled rule or why it is dropped), collecting
/// dropped rules, reference problems and the Services read.
pub(crate) fn compile_route_rules<R>(
    resources: &Resources,
    source: &RouteSource<'_>,
    rules: &[R],
    mut compile_one: impl for<'r> FnMut(
        &mut RuleContext<'_>,
        usize,
        &'r R,
    ) -> (Option<&'r str>, Result<CompiledRule, Problem>),
) -> CompiledRoute {
    let namespace = source.meta.namespace.clone().unwrap_or_default();
    let mut ctx = RuleContext::new(resources, source.kind, &namespace);
    let mut compiled_rules = Vec::new();
    let mut dropped = Vec::new();
    let sampling = sampling_per_million(source.meta);
    for (i, rule) in rules.iter().enumerate() {
        let (name, compiled) = compile_one(&mut ctx, i, rule);
        let compiled = sampling
            .clone()
            .and_then(|sampling| Ok((compiled?, sampling)));
        match compiled {
            Ok((mut r, sampling)) => {
                r.route.sampling_per_million = sampling;
                compiled_rules.push(r);
            }
            Err(p) => {
                let named = name.map(|n| format!(" ({n})")).unwrap_or_default();
                dropped.push((
                    i,
                    Problem::new(p.reason, format!("rule {i}{named}: {}", p.message)),
                ));
            }
        }
    }
    CompiledRoute {
        kind: source.kind,
        key: source.key.to_string(),
        namespace: namespace.clone(),
        created: source.meta.creation_timestamp.as_ref().map(|t| t.0),
        hostnames: source
            .hostnames
            .iter()
            .map(|h| HostMatch::parse(h))
            .collect(),
        rules: compiled_rules,
        dropped,
        ref_problems: ctx.ref_problems,
        reads: ctx.reads,
    }
}

/// The annotation that sets a route's share of sampled traces.
pub(crate) const SAMPLING_ANNOTATION: &str = "tollgate.dev/tracing-sampling-ratio";

/// The route's sampling ratio in parts per million, from
/// [`SAMPLING_ANNOTATION`] (`None` when absent).
///
/// # Errors
///
/// A value that is not a number from 0 to 1: every rule is dropped with
/// `UnsupportedValue`, so the mistake shows instead of silently sampling
/// at another rate.
fn sampling_per_million(meta: &ObjectMeta) -> Result<Option<u32>, Problem> {
    let Some(value) = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(SAMPLING_ANNOTATION))
    else {
        return Ok(None);
    };
    match value.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => {
            Ok(Some((ratio * f64::from(PER_MILLION)).round() as u32))
        }
        _ => Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            format!("annotation {SAMPLING_ANNOTATION}: {value:?} is not a number from 0 to 1"),
        )),
    }
}

/// Where a route attached on one Gateway, and the parent status saying so.
#[derive(Clone, Debug)]
pub(crate) struct ParentOutcome {
    /// `(listener index, effective hostnames)` for each listener attached.
    pub(crate) attachments: Vec<(usize, Vec<HostMatch>)>,
    /// The route's status for this parentRef.
    pub(crate) status: HttpRouteStatusParents,
}

/// Attaches `route` to `gateway` through `parent`.
pub(crate) fn attach(
    resources: &Resources,
    route: &CompiledRoute,
    parent: &HttpRouteParentRefs,
    gateway: &GatewayPlan,
    controller_name: &str,
    stamp: &Stamp,
) -> ParentOutcome {
    let attached = select_listeners(resources, route, parent, gateway);
    let attachments = match &attached {
        Ok(a) if !route.rules.is_empty() => a.clone(),
        _ => Vec::new(),
    };
    let mut conditions = vec![accepted_condition(route, stamp, attached.err())];
    conditions.push(resolved_condition(&route.ref_problems, stamp));
    if !route.rules.is_empty() && !route.dropped.is_empty() && !attachments.is_empty() {
        let dropped: Vec<&str> = route
            .dropped
            .iter()
            .map(|(_, p)| p.message.as_str())
            .collect();
        conditions.push(stamp.condition(
            types::PARTIALLY_INVALID,
            true,
            reasons::UNSUPPORTED_VALUE,
            format!("Dropped Rule(s): {}", dropped.join("; ")),
        ));
    }
    ParentOutcome {
        attachments,
        status: HttpRouteStatusParents {
            conditions,
            controller_name: controller_name.to_string(),
            parent_ref: HttpRouteStatusParentsParentRef {
                group: parent.group.clone(),
                kind: parent.kind.clone(),
                name: parent.name.clone(),
                namespace: parent.namespace.clone(),
                port: parent.port,
                section_name: parent.section_name.clone(),
            },
        },
    }
}

fn accepted_condition(route: &CompiledRoute, s: &Stamp, problem: Option<Problem>) -> Condition {
    if let Some(p) = problem {
        return s.condition(types::ACCEPTED, false, p.reason, p.message);
    }
    match route.dropped.first() {
        Some((_, first)) if route.rules.is_empty() => {
            let all: Vec<&str> = route
                .dropped
                .iter()
                .map(|(_, p)| p.message.as_str())
                .collect();
            s.condition(
                types::ACCEPTED,
                false,
                first.reason,
                format!("all rules are invalid: {}", all.join("; ")),
            )
        }
        _ => s.condition(
            types::ACCEPTED,
            true,
            reasons::ACCEPTED,
            "route is accepted",
        ),
    }
}

/// A route's `ResolvedRefs`: true, or false with the first problem's
/// reason and every problem's message. HTTPRoutes and TLSRoutes share it.
pub(crate) fn resolved_condition(problems: &[Problem], s: &Stamp) -> Condition {
    match problems.first() {
        None => s.condition(
            types::RESOLVED_REFS,
            true,
            reasons::RESOLVED_REFS,
            "all references are resolved",
        ),
        Some(first) => {
            let all: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
            s.condition(types::RESOLVED_REFS, false, first.reason, all.join("; "))
        }
    }
}

/// The listeners `parent` selects that admit `route`, with the effective
/// hostnames on each; or why there are none.
fn select_listeners(
    resources: &Resources,
    route: &CompiledRoute,
    parent: &HttpRouteParentRefs,
    gateway: &GatewayPlan,
) -> Result<Vec<(usize, Vec<HostMatch>)>, Problem> {
    let scope = parent_scope(parent, &route.namespace);
    let named: Vec<(usize, &ListenerPlan)> = gateway
        .listeners
        .iter()
        .enumerate()
        .filter(|(_, l)| in_scope(l, scope.as_deref()))
        .filter(|(_, l)| parent.section_name.as_ref().is_none_or(|s| *s == l.name))
        .filter(|(_, l)| parent.port.is_none_or(|p| p == l.port))
        .collect();
    if named.is_empty() {
        return Err(Problem::new(
            reasons::NO_MATCHING_PARENT,
            "no listener of the Gateway matches the parentRef's sectionName and port",
        ));
    }
    let kind = route.kind.name();
    let by_kind: Vec<(usize, &ListenerPlan)> = named
        .into_iter()
        .filter(|(_, l)| l.supports(kind))
        .collect();
    if by_kind.is_empty() {
        return Err(Problem::new(
            reasons::NOT_ALLOWED_BY_LISTENERS,
            format!("no selected listener accepts {kind}s"),
        ));
    }
    let allowed: Vec<(usize, &ListenerPlan)> = by_kind
        .into_iter()
        .filter(|(_, l)| namespace_allowed(resources, l, &gateway.namespace, &route.namespace))
        .collect();
    if allowed.is_empty() {
        return Err(Problem::new(
            reasons::NOT_ALLOWED_BY_LISTENERS,
            format!(
                "no selected listener allows {kind}s from namespace {}",
                route.namespace
            ),
        ));
    }
    let attached: Vec<(usize, Vec<HostMatch>)> = allowed
        .into_iter()
        .map(|(i, l)| (i, effective_hostnames(&l.hostname, &route.hostnames)))
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

/// `allowedRoutes.namespaces`: `Same` (the default), `All`, or `Selector`
/// on the labels of the route's namespace `route_ns`.
pub(crate) fn namespace_allowed(
    resources: &Resources,
    listener: &ListenerPlan,
    gateway_ns: &str,
    route_ns: &str,
) -> bool {
    let from = listener.namespaces.as_ref().and_then(|n| n.from.clone());
    match from.unwrap_or(NamespacesFrom::Same) {
        NamespacesFrom::Same => {
            // A ListenerSet's listener allows its own namespace's routes.
            let owner = listener
                .set
                .as_ref()
                .map_or(gateway_ns, |s| s.namespace.as_str());
            route_ns == owner
        }
        NamespacesFrom::All => true,
        NamespacesFrom::Selector => listener
            .namespaces
            .as_ref()
            .and_then(|n| n.selector.as_ref())
            .is_some_and(|s| selects(s, &namespace_labels(resources, route_ns))),
    }
}
