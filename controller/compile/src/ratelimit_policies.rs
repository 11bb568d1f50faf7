//! RateLimitPolicy attachment (GEP-713): which limits apply to a route
//! rule.
//!
//! Targets and ties work as for AuthPolicy (`auth_policies.rs`): at each
//! target the oldest policy (then by name) wins and the others are
//! `Conflicted`. Unlike auth sections, the winners of every level apply
//! together — a Gateway-wide limit and a per-route limit are both
//! enforced — so a rule's limits are those of its rule, route, listener
//! and Gateway winners, in that order. The response headers setting is
//! that of the most specific winner that sets it.
//!
//! A policy that does not compile (a bad duration, CIDR or pattern) is
//! `Invalid` and its limits are left out: unlike an invalid AuthPolicy,
//! which refuses every request, a limit that cannot be read would
//! otherwise refuse traffic it was never meant to touch.
//!
//! Like AuthPolicies, this index is rebuilt on every compile and read when
//! the snapshot is assembled, after the route memo answered, so a memoized
//! route can never miss a limit that now applies.

use crate::auth_policies::{RuleAt, Target};
use crate::auth_refs::invalid;
use crate::auth_status::{PolicyFacts, StatusInputs, push_policy_status, route_policy_condition};
use crate::conditions::Problem;
use crate::conditions::Stamp;
use crate::duration::parse_duration_ms;
use crate::gateway::GatewayPlan;
use crate::httproute::CompiledRoute;
use crate::output::Compiled;
use crate::resources::Resources;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use std::collections::BTreeMap;
use tollgate_crds::{
    ConditionSpec, CostSpec, KeyPartSpec, LimitSpec, PolicyTargetRef, RateLimitPolicy,
};
use tollgate_snapshot::{
    Cost, KeyPart, LimitCondition, LimitHeader, RateLimit, RateLimitHeaders, RateLimitScope,
    RateLimits, StringMatch,
};

/// One RateLimitPolicy, compiled.
#[derive(Clone, Debug)]
pub(crate) struct CompiledLimits {
    /// `metadata.namespace`.
    pub(crate) namespace: String,
    /// `metadata.name`.
    pub(crate) name: String,
    /// `metadata.generation`.
    pub(crate) generation: Option<i64>,
    /// `spec.targetRefs`.
    pub(crate) targets: Vec<PolicyTargetRef>,
    /// The limits, each naming this policy as its source.
    pub(crate) limits: Vec<RateLimit>,
    /// Which responses carry the rate-limit headers, when it says.
    pub(crate) headers: Option<RateLimitHeaders>,
    /// Why the policy is invalid.
    pub(crate) problem: Option<Problem>,
}

/// Every RateLimitPolicy, compiled and indexed by target.
#[derive(Clone, Debug, Default)]
pub(crate) struct RateLimitPolicies {
    /// The policies, in `namespace/name` order.
    pub(crate) policies: Vec<CompiledLimits>,
    /// The policies of each target, winner first.
    pub(crate) by_target: BTreeMap<Target, Vec<usize>>,
}

impl RateLimitPolicies {
    /// Compiles every RateLimitPolicy of `resources`.
    pub(crate) fn compile(resources: &Resources) -> RateLimitPolicies {
        let policies: Vec<CompiledLimits> = resources
            .rate_limit_policies
            .values()
            .map(|p| compile_policy(p))
            .collect();
        let ranks: Vec<_> = resources
            .rate_limit_policies
            .values()
            .map(|p| crate::auth_policies::precedence(&p.metadata))
            .collect();
        let by_target = crate::auth_policies::index_targets(
            policies
                .iter()
                .map(|p| (p.namespace.as_str(), p.targets.as_slice())),
            &ranks,
        );
        RateLimitPolicies {
            policies,
            by_target,
        }
    }

    fn winner(&self, target: &Target) -> Option<&CompiledLimits> {
        self.policies.get(*self.by_target.get(target)?.first()?)
    }

    /// The policy that wins `target` over `policy`, when another does.
    pub(crate) fn conflicting(&self, target: &Target, policy: usize) -> Option<&CompiledLimits> {
        let first = *self.by_target.get(target)?.first()?;
        (first != policy)
            .then(|| self.policies.get(first))
            .flatten()
    }

    /// The limits of the rule `at`; `None` when none applies.
    pub(crate) fn effective(&self, at: &RuleAt<'_>) -> Option<RateLimits> {
        // Most gateways have no RateLimitPolicy: then no rule of 10k needs
        // the four target keys built to find out.
        if self.by_target.is_empty() {
            return None;
        }
        let gateway = self.winner(&Target::Gateway(at.gateway.to_string()));
        let listener = at
            .listener
            .and_then(|l| self.winner(&Target::Listener(at.gateway.to_string(), l.to_string())));
        let route = self.winner(&Target::Route(at.route.to_string()));
        let rule = at
            .rule
            .and_then(|r| self.winner(&Target::Rule(at.route.to_string(), r.to_string())));
        let winners: Vec<&CompiledLimits> = [rule, route, listener, gateway]
            .into_iter()
            .flatten()
            .filter(|p| p.problem.is_none())
            .collect();
        if winners.is_empty() {
            return None;
        }
        Some(RateLimits {
            limits: winners
                .iter()
                .flat_map(|p| p.limits.iter().cloned())
                .collect(),
            headers: winners.iter().find_map(|p| p.headers).unwrap_or_default(),
        })
    }

    /// The sources of the limits of the rule `at`, for the route's status.
    pub(crate) fn sources(&self, at: &RuleAt<'_>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for limit in self.effective(at).iter().flat_map(|e| &e.limits) {
            if !out.contains(&limit.source) {
                out.push(limit.source.clone());
            }
        }
        out
    }
}

fn compile_policy(policy: &RateLimitPolicy) -> CompiledLimits {
    let namespace = policy.metadata.namespace.clone().unwrap_or_default();
    let name = policy.metadata.name.clone().unwrap_or_default();
    let source = format!("ratelimitpolicy/{namespace}/{name}");
    let spec = &policy.spec;
    let compiled = (|| {
        let headers = match spec.headers.as_deref() {
            None => None,
            Some("Limited") => Some(RateLimitHeaders::Limited),
            Some("All") => Some(RateLimitHeaders::All),
            Some("Off") => Some(RateLimitHeaders::Off),
            Some(other) => return Err(invalid(format!("headers: unknown value {other:?}"))),
        };
        let fail_open = match spec.failure_mode.as_deref() {
            None | Some("FailOpen") => true,
            Some("FailClosed") => false,
            Some(other) => return Err(invalid(format!("failureMode: unknown value {other:?}"))),
        };
        let mut names = Vec::new();
        let mut limits = Vec::new();
        for l in &spec.limits {
            if names.contains(&l.name) {
                return Err(invalid(format!("limit {:?} is named twice", l.name)));
            }
            names.push(l.name.clone());
            limits.push(compile_limit(l, &source, fail_open)?);
        }
        Ok((limits, headers))
    })();
    let (limits, headers, problem) = match compiled {
        Ok((limits, headers)) => (limits, headers, None),
        Err(p) => (Vec::new(), None, Some(p)),
    };
    CompiledLimits {
        namespace,
        name,
        generation: policy.metadata.generation,
        targets: spec.target_refs.clone(),
        limits,
        headers,
        problem,
    }
}

fn compile_limit(l: &LimitSpec, source: &str, fail_open: bool) -> Result<RateLimit, Problem> {
    let at = |what: &str, p: Problem| invalid(format!("limit {:?}: {what}: {}", l.name, p.message));
    let interval_ms = parse_duration_ms(&l.interval).map_err(|p| at("interval", p))?;
    if interval_ms == 0 || l.requests == 0 {
        return Err(invalid(format!(
            "limit {:?}: requests and interval must be above 0",
            l.name
        )));
    }
    let scope = match l.scope.as_deref() {
        None | Some("Local") => RateLimitScope::Local,
        Some("Global") => RateLimitScope::Global,
        Some(other) => {
            return Err(invalid(format!(
                "limit {:?}: unknown scope {other:?}",
                l.name
            )));
        }
    };
    let key = l
        .key
        .iter()
        .flatten()
        .map(|p| {
            key_part(p).ok_or_else(|| {
                invalid(format!(
                    "limit {:?}: a key part must set exactly one field",
                    l.name
                ))
            })
        })
        .collect::<Result<_, _>>()?;
    let when = l
        .when
        .iter()
        .flatten()
        .map(|c| condition(c).map_err(|m| invalid(format!("limit {:?}: {m}", l.name))))
        .collect::<Result<_, _>>()?;
    let cost = cost(l.cost.as_ref()).map_err(|m| invalid(format!("limit {:?}: {m}", l.name)))?;
    Ok(RateLimit {
        name: l.name.clone(),
        source: source.to_string(),
        requests: l.requests,
        interval_ms,
        burst: l.burst.unwrap_or(0),
        scope,
        key,
        when,
        cost,
        shadow: l.shadow.unwrap_or(false),
        fail_open,
    })
}

fn key_part(p: &KeyPartSpec) -> Option<KeyPart> {
    let named = |n: &tollgate_crds::Named| n.name.clone();
    let parts = [
        p.client_ip.as_ref().map(|_| KeyPart::ClientIp),
        p.header.as_ref().map(|n| KeyPart::Header {
            name: named(n).to_ascii_lowercase(),
        }),
        p.query_param
            .as_ref()
            .map(|n| KeyPart::QueryParam { name: named(n) }),
        p.jwt_claim
            .as_ref()
            .map(|n| KeyPart::JwtClaim { name: named(n) }),
        p.consumer.as_ref().map(|_| KeyPart::Consumer),
        p.route.as_ref().map(|_| KeyPart::Route),
        p.path.as_ref().map(|_| KeyPart::Path),
        p.method.as_ref().map(|_| KeyPart::Method),
    ];
    let mut set = parts.into_iter().flatten();
    let first = set.next()?;
    set.next().is_none().then_some(first)
}

fn condition(c: &ConditionSpec) -> Result<LimitCondition, String> {
    let cidrs = c
        .client_cidrs
        .iter()
        .flatten()
        .map(|s| crate::cidr::parse_cidr(s).ok_or_else(|| format!("{s:?} is not a CIDR")))
        .collect::<Result<_, _>>()?;
    let headers = c
        .headers
        .iter()
        .flatten()
        .map(|h| {
            let value = match (h.match_type.as_deref(), &h.value) {
                (_, None) => None,
                (None | Some("Exact"), Some(v)) => Some(StringMatch::Exact(v.clone())),
                (Some("RegularExpression"), Some(v)) => {
                    regex::Regex::new(v).map_err(|e| format!("header {}: {e}", h.name))?;
                    Some(StringMatch::RegularExpression(v.clone()))
                }
                (Some(other), _) => {
                    return Err(format!("header {}: unknown type {other:?}", h.name));
                }
            };
            Ok(LimitHeader {
                name: h.name.to_ascii_lowercase(),
                value,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(LimitCondition {
        methods: c
            .methods
            .iter()
            .flatten()
            .map(|m| m.to_ascii_uppercase())
            .collect(),
        path_prefixes: c.paths.clone().unwrap_or_default(),
        headers,
        client_cidrs: cidrs,
        invert: c.invert.unwrap_or(false),
    })
}

fn cost(c: Option<&CostSpec>) -> Result<Cost, String> {
    let Some(c) = c else {
        return Ok(Cost::default());
    };
    match (&c.units, &c.request_header, &c.response_header) {
        (Some(units), None, None) => Ok(Cost::Constant { units: *units }),
        (None, Some(h), None) => Ok(Cost::RequestHeader {
            name: h.name.to_ascii_lowercase(),
            default: h.default.unwrap_or(1),
        }),
        (None, None, Some(h)) => Ok(Cost::ResponseHeader {
            name: h.name.to_ascii_lowercase(),
        }),
        _ => Err("cost must set exactly one of units, requestHeader, responseHeader".into()),
    }
}

/// Appends the status of every RateLimitPolicy, as for AuthPolicies
/// (`auth_status.rs`): `Accepted` per ancestor, or `TargetNotFound`,
/// `Invalid`, `Conflicted`.
pub(crate) fn compile_rate_limit_status(
    inputs: &StatusInputs<'_>,
    limits: &RateLimitPolicies,
    out: &mut Compiled,
) {
    for (index, policy) in limits.policies.iter().enumerate() {
        let conflict = |t: &Target| limits.conflicting(t, index).map(|w| w.name.clone());
        let accepted = |_: &PolicyTargetRef| {
            format!(
                "the policy applies: {}",
                policy
                    .limits
                    .iter()
                    .map(|l| format!("{} ({} per {} ms)", l.name, l.requests, l.interval_ms))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let facts = PolicyFacts {
            kind: "RateLimitPolicy",
            namespace: &policy.namespace,
            generation: policy.generation,
            targets: &policy.targets,
            problem: policy.problem.as_ref(),
            warnings: &[],
            conflict: &conflict,
            accepted: &accepted,
        };
        push_policy_status(inputs, &facts, &policy.name, out);
    }
}

/// The condition naming, per rule, the RateLimitPolicies that limit it on
/// this Gateway (`tollgate.dev/RateLimitPolicies` on the route's parent
/// status).
pub(crate) fn route_limits_condition(
    limits: &RateLimitPolicies,
    at: (&GatewayPlan, &[usize]),
    route: &CompiledRoute,
    stamp: &Stamp,
) -> Option<Condition> {
    if limits.by_target.is_empty() {
        return None;
    }
    let sources = |at: &RuleAt<'_>, _: &crate::rules::CompiledRule| limits.sources(at);
    route_policy_condition(ROUTE_LIMITS, at, route, stamp, &sources)
}

/// The condition type naming a route's effective RateLimitPolicies.
const ROUTE_LIMITS: &str = "tollgate.dev/RateLimitPolicies";
