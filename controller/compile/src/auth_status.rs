//! AuthPolicy status, one entry per ancestor as the Gateway API asks of
//! policies: the Gateway for Gateway and listener targets, the route's
//! parent Gateways (Tollgate's) for route and rule targets, and the target
//! itself when it does not exist.
//!
//! `Accepted` is True with reason `Accepted`, or False with `TargetNotFound`
//! (no such object, listener or rule), `Invalid` (a bad Secret, URI, CIDR
//! …), or `Conflicted` (an older policy holds the same target). Risky but
//! accepted settings (plain `http://` calls) add a `Warning` condition.
//! A route's effective policies are also named on the route's own parent
//! status ([`route_auth_condition`]), so `kubectl describe httproute` shows
//! what protects each rule.

use crate::auth_policies::{AuthPolicies, CompiledPolicy, RuleAt, Target};
use crate::conditions::{Problem, Stamp, reasons, types};
use crate::gateway::GatewayPlan;
use crate::httproute::CompiledRoute;
use crate::listeners::GATEWAY_GROUP;
use crate::output::{Compiled, push_status};
use crate::resources::Resources;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::collections::BTreeMap;
use tollgate_crds::{AncestorRef, AuthPolicyStatus, PolicyAncestorStatus};

/// The condition type of accepted-but-risky settings.
const WARNING: &str = "Warning";
/// The condition type naming a route's effective AuthPolicies.
const ROUTE_AUTH: &str = "tollgate.dev/AuthPolicies";

/// The Gateways (`namespace/name`) each HTTPRoute (`namespace/name`)
/// attached to, Tollgate's only.
pub(crate) type RouteParents<'a> = BTreeMap<String, Vec<&'a str>>;

/// What `compile_auth_status` reads besides the policies.
pub(crate) struct StatusInputs<'a> {
    pub(crate) resources: &'a Resources,
    pub(crate) gateways: &'a BTreeMap<&'a str, GatewayPlan>,
    pub(crate) route_parents: &'a RouteParents<'a>,
    pub(crate) controller: &'a str,
    pub(crate) stamp: &'a Stamp,
}

/// What the ancestor statuses of any policy kind depend on.
pub(crate) struct PolicyFacts<'a> {
    /// The kind, for messages (`AuthPolicy`).
    pub(crate) kind: &'static str,
    /// `metadata.namespace`.
    pub(crate) namespace: &'a str,
    /// `metadata.generation`.
    pub(crate) generation: Option<i64>,
    /// `spec.targetRefs`.
    pub(crate) targets: &'a [tollgate_crds::PolicyTargetRef],
    /// Why the policy is invalid.
    pub(crate) problem: Option<&'a Problem>,
    /// Accepted but risky settings (a `Warning` condition).
    pub(crate) warnings: &'a [String],
    /// The name of the policy that wins a target over this one, if any.
    pub(crate) conflict: &'a dyn Fn(&Target) -> Option<String>,
    /// The `Accepted` message for a target where the policy applies.
    pub(crate) accepted: &'a dyn Fn(&tollgate_crds::PolicyTargetRef) -> String,
}

/// Appends the status of every AuthPolicy that has an ancestor Tollgate
/// owns (or a missing target).
pub(crate) fn compile_auth_status(
    inputs: &StatusInputs<'_>,
    auth: &AuthPolicies,
    out: &mut Compiled,
) {
    for (index, policy) in auth.policies.iter().enumerate() {
        let conflict = |t: &Target| auth.conflicting(t, index).map(|w| w.name.clone());
        let accepted = |t: &tollgate_crds::PolicyTargetRef| accepted_message(policy, t);
        let facts = PolicyFacts {
            kind: "AuthPolicy",
            namespace: &policy.namespace,
            generation: policy.generation,
            targets: &policy.targets,
            problem: policy.problem.as_ref(),
            warnings: &policy.warnings,
            conflict: &conflict,
            accepted: &accepted,
        };
        push_policy_status(inputs, &facts, &policy.name, out);
    }
}

/// Appends the status of one policy of any kind: one entry per ancestor
/// Tollgate owns (or a missing target); nothing when it has none.
pub(crate) fn push_policy_status(
    inputs: &StatusInputs<'_>,
    facts: &PolicyFacts<'_>,
    name: &str,
    out: &mut Compiled,
) {
    let stamp = inputs.stamp.for_generation(facts.generation);
    let mut ancestors: Vec<PolicyAncestorStatus> = Vec::new();
    for t in facts.targets {
        for (ancestor, problem) in ancestors_of(inputs, facts, t) {
            let accepted = match &problem {
                Some(p) => stamp.condition(types::ACCEPTED, false, p.reason, &p.message),
                None => stamp.condition(
                    types::ACCEPTED,
                    true,
                    reasons::ACCEPTED,
                    (facts.accepted)(t),
                ),
            };
            let mut conditions = vec![accepted];
            if problem.is_none() && !facts.warnings.is_empty() {
                conditions.push(stamp.condition(
                    WARNING,
                    true,
                    "PlainHttp",
                    facts.warnings.join("; "),
                ));
            }
            let entry = PolicyAncestorStatus {
                ancestor_ref: ancestor,
                controller_name: inputs.controller.to_string(),
                conditions,
            };
            match ancestors
                .iter_mut()
                .find(|a| a.ancestor_ref == entry.ancestor_ref)
            {
                // One entry per ancestor: a refusal outranks acceptance.
                Some(existing) if problem.is_some() && is_accepted(existing) => *existing = entry,
                Some(_) => {}
                None => ancestors.push(entry),
            }
        }
    }
    if !ancestors.is_empty() {
        let status = AuthPolicyStatus { ancestors };
        push_status(out, facts.kind, Some(facts.namespace), name, &status);
    }
}

fn is_accepted(a: &PolicyAncestorStatus) -> bool {
    a.conditions.first().is_some_and(|c| c.status == "True")
}

fn accepted_message(policy: &CompiledPolicy, t: &tollgate_crds::PolicyTargetRef) -> String {
    let route_target = t.kind == "HTTPRoute";
    if route_target && policy.overrides.is_some() {
        "the policy applies; spec.overrides is ignored because only Gateway and listener policies override".into()
    } else {
        "the policy applies".into()
    }
}

/// The ancestors one targetRef reaches, each with the reason the policy is
/// not accepted there (`None`: accepted).
fn ancestors_of(
    inputs: &StatusInputs<'_>,
    facts: &PolicyFacts<'_>,
    t: &tollgate_crds::PolicyTargetRef,
) -> Vec<(AncestorRef, Option<Problem>)> {
    let ns = facts.namespace;
    let own = |kind: &str, section: Option<String>| AncestorRef {
        group: Some(t.group.clone()),
        kind: Some(kind.to_string()),
        name: t.name.clone(),
        namespace: Some(ns.to_string()),
        section_name: section,
    };
    let target = match Target::of(ns, t) {
        Ok(target) => target,
        Err(p) => return vec![(own(&t.kind, t.section_name.clone()), Some(p))],
    };
    let verdict = |extra: Option<Problem>| {
        extra
            .or_else(|| facts.problem.cloned())
            .or_else(|| conflict(facts, &target))
    };
    match &target {
        Target::Gateway(key) | Target::Listener(key, _) => {
            let section = t.section_name.clone();
            if !inputs.resources.gateways.contains_key(key) {
                return vec![(
                    own("Gateway", section),
                    Some(not_found(&format!("Gateway {key} does not exist"))),
                )];
            }
            let Some(plan) = inputs.gateways.get(key.as_str()) else {
                return Vec::new(); // another controller's Gateway
            };
            let missing = section
                .as_ref()
                .filter(|s| !has_listener(plan, s))
                .map(|s| not_found(&format!("Gateway {key} has no listener {s}")));
            vec![(gateway_ref(key, section), verdict(missing))]
        }
        Target::Route(key) | Target::Rule(key, _) => {
            let Some(route) = inputs.resources.http_routes.get(key) else {
                return vec![(
                    own("HTTPRoute", t.section_name.clone()),
                    Some(not_found(&format!("HTTPRoute {key} does not exist"))),
                )];
            };
            let missing = t.section_name.as_ref().filter(|s| {
                !route
                    .spec
                    .rules
                    .iter()
                    .flatten()
                    .any(|r| r.name.as_ref() == Some(*s))
            });
            let missing =
                missing.map(|s| not_found(&format!("HTTPRoute {key} has no rule named {s}")));
            inputs
                .route_parents
                .get(key)
                .into_iter()
                .flatten()
                .map(|g| (gateway_ref(g, None), verdict(missing.clone())))
                .collect()
        }
    }
}

fn not_found(message: &str) -> Problem {
    Problem::new(reasons::TARGET_NOT_FOUND, message)
}

fn conflict(facts: &PolicyFacts<'_>, target: &Target) -> Option<Problem> {
    (facts.conflict)(target).map(|winner| {
        Problem::new(
            reasons::CONFLICTED,
            format!(
                "{} {winner} targets the same {} and takes precedence (older, or as old and first by name)",
                facts.kind,
                match target {
                    Target::Gateway(_) => "Gateway",
                    Target::Listener(..) => "listener",
                    Target::Route(_) => "HTTPRoute",
                    Target::Rule(..) => "rule",
                }
            ),
        )
    })
}

fn has_listener(plan: &GatewayPlan, name: &str) -> bool {
    plan.listeners
        .iter()
        .any(|l| l.set.is_none() && l.name == name)
}

fn gateway_ref(key: &str, section: Option<String>) -> AncestorRef {
    let (ns, name) = key.split_once('/').unwrap_or(("", key));
    AncestorRef {
        group: Some(GATEWAY_GROUP.to_string()),
        kind: Some("Gateway".to_string()),
        name: name.to_string(),
        namespace: Some(ns.to_string()),
        section_name: section,
    }
}

/// A condition on a route's parent status naming, per rule, the policies
/// (and `ExternalAuth` filter) that make up its auth on this Gateway;
/// `None` when nothing applies.
pub(crate) fn route_auth_condition(
    auth: &AuthPolicies,
    plan: &GatewayPlan,
    listeners: &[usize],
    route: &CompiledRoute,
    stamp: &Stamp,
) -> Option<Condition> {
    // Without AuthPolicies and ExternalAuth filters nothing can apply; the
    // per-rule lookups below would build every rule's target keys to say so.
    if auth.by_target.is_empty() && route.rules.iter().all(|r| r.ext_auth.is_none()) {
        return None;
    }
    let sources = |at: &RuleAt<'_>, rule: &crate::rules::CompiledRule| {
        let mut sources = auth.sources_of(&auth.winners(at));
        sources.extend(rule.ext_auth.iter().map(|x| x.source.clone()));
        sources
    };
    route_policy_condition(ROUTE_AUTH, (plan, listeners), route, stamp, &sources)
}

/// A condition of type `kind` on a route's parent status naming, per rule,
/// the policies `sources` finds for it on this Gateway; `None` when
/// nothing applies.
pub(crate) fn route_policy_condition(
    kind: &str,
    (plan, listeners): (&GatewayPlan, &[usize]),
    route: &CompiledRoute,
    stamp: &Stamp,
    sources: &dyn Fn(&RuleAt<'_>, &crate::rules::CompiledRule) -> Vec<String>,
) -> Option<Condition> {
    let gateway = plan.key();
    let policy_key = route.policy_key();
    let mut parts = Vec::new();
    for rule in &route.rules {
        let mut lists: Vec<Vec<String>> = Vec::new();
        for l in listeners.iter().filter_map(|i| plan.listeners.get(*i)) {
            let at = RuleAt {
                gateway: &gateway,
                listener: l.set.is_none().then_some(l.name.as_str()),
                route: &policy_key,
                rule: rule.route.rule_name.as_deref(),
            };
            let sources = sources(&at, rule);
            if !sources.is_empty() && !lists.contains(&sources) {
                lists.push(sources);
            }
        }
        if lists.is_empty() {
            continue;
        }
        let named = rule
            .route
            .rule_name
            .as_ref()
            .map(|n| format!(" ({n})"))
            .unwrap_or_default();
        let lists: Vec<String> = lists.iter().map(|l| l.join(", ")).collect();
        parts.push(format!("rule {}{named}: {}", rule.index, lists.join(" | ")));
    }
    (!parts.is_empty()).then(|| stamp.condition(kind, true, "Applied", parts.join("; ")))
}
