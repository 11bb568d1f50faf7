//! AuthPolicy attachment (GEP-713): which policies apply to a route rule,
//! and the effective [`AuthConfig`] they combine into.
//!
//! A policy targets a Gateway, a listener (Gateway + `sectionName`), an
//! HTTPRoute, or a named rule (HTTPRoute + `sectionName`). At each target
//! one policy wins — the oldest, then by name — and the others are
//! `Conflicted` there. For a rule, each section (`jwt`, `apiKeyAuth`, …)
//! is taken from the first of these that sets it:
//!
//! ```text
//!   Gateway overrides > listener overrides > rule > route > listener > Gateway
//! ```
//!
//! so the most specific level wins a section unless a Gateway (or
//! listener) policy overrides it. A winning policy that is invalid makes
//! the rule refuse every request (fail closed): dropping it would expose
//! the routes it was written to protect. So does an AuthPolicy the
//! provider could not decode: it ranks first at its targets (its age is
//! unknown) and is `Invalid` there.
//!
//! # Why the route memo can never serve a stale policy
//!
//! Policies are not part of what `compile_http_route` reads: the memo
//! (`memo.rs`) caches only the rules compiled from the route and its
//! backends. This index is built from scratch on every compile, and the
//! effective configuration of every rule is computed from it when the
//! snapshot is assembled (`snapshot.rs`), after the memo has answered. A
//! memoized route therefore cannot miss a policy that now applies, by
//! construction, with no list of policy inputs to keep in step.

use crate::auth_merge::{contributors, deny_all, merge};
use crate::auth_refs::{PolicyRefs, invalid};
use crate::auth_sections::compile_sections;
use crate::conditions::Problem;
use crate::listeners::GATEWAY_GROUP;
use crate::resources::Resources;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use std::collections::BTreeMap;
use tollgate_crds::{AuthPolicy, PolicyTargetRef};
use tollgate_snapshot::{AuthConfig, Backend};

/// One AuthPolicy, compiled.
#[derive(Clone, Debug)]
pub(crate) struct CompiledPolicy {
    /// `metadata.namespace`.
    pub(crate) namespace: String,
    /// `metadata.name`.
    pub(crate) name: String,
    /// `metadata.generation`.
    pub(crate) generation: Option<i64>,
    /// `authpolicy/<ns>/<name>`, as `AuthConfig::sources` names it.
    pub(crate) source: String,
    /// `spec.targetRefs`.
    pub(crate) targets: Vec<PolicyTargetRef>,
    /// The sections under `spec`.
    pub(crate) defaults: AuthConfig,
    /// The sections under `spec.overrides`.
    pub(crate) overrides: Option<AuthConfig>,
    /// Services the sections' calls go to (`CallTarget::backend`).
    pub(crate) backends: Vec<Backend>,
    /// Why the policy is invalid.
    pub(crate) problem: Option<Problem>,
    /// Accepted but risky settings.
    pub(crate) warnings: Vec<String>,
}

/// What a policy can attach to.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Target {
    /// A Gateway, `namespace/name`.
    Gateway(String),
    /// A listener of a Gateway: `namespace/name` and listener name.
    Listener(String, String),
    /// An HTTPRoute, `namespace/name`.
    Route(String),
    /// A named rule of an HTTPRoute.
    Rule(String, String),
}

impl Target {
    /// The target `r` of a policy in `ns` names, or why it names none.
    pub(crate) fn of(ns: &str, r: &PolicyTargetRef) -> Result<Target, Problem> {
        let key = format!("{ns}/{}", r.name);
        let section = r.section_name.clone();
        match (r.group.as_str(), r.kind.as_str(), section) {
            (GATEWAY_GROUP, "Gateway", None) => Ok(Target::Gateway(key)),
            (GATEWAY_GROUP, "Gateway", Some(s)) => Ok(Target::Listener(key, s)),
            (GATEWAY_GROUP, "HTTPRoute", None) => Ok(Target::Route(key)),
            (GATEWAY_GROUP, "HTTPRoute", Some(s)) => Ok(Target::Rule(key, s)),
            (GATEWAY_GROUP, "GRPCRoute", None) => Ok(Target::Route(format!("grpcroute:{key}"))),
            (GATEWAY_GROUP, "GRPCRoute", Some(s)) => {
                Ok(Target::Rule(format!("grpcroute:{key}"), s))
            }
            (group, kind, _) => Err(invalid(format!(
                "targetRef {group}/{kind} {}: only Gateways, HTTPRoutes and GRPCRoutes of {GATEWAY_GROUP} can be targeted",
                r.name
            ))),
        }
    }
}

/// Where a rule is served: the context its effective auth depends on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RuleAt<'a> {
    /// The Gateway, `namespace/name`.
    pub(crate) gateway: &'a str,
    /// The Gateway's own listener (`None` for a ListenerSet's).
    pub(crate) listener: Option<&'a str>,
    /// The HTTPRoute, `namespace/name`.
    pub(crate) route: &'a str,
    /// The rule's name, when it has one.
    pub(crate) rule: Option<&'a str>,
}

/// An effective configuration, its call targets indexing `backends`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Effective {
    /// The merged sections.
    pub(crate) config: AuthConfig,
    /// Services of the calls.
    pub(crate) backends: Vec<Backend>,
}

/// Every AuthPolicy, compiled and indexed by target.
#[derive(Clone, Debug, Default)]
pub(crate) struct AuthPolicies {
    /// The policies, in `namespace/name` order.
    pub(crate) policies: Vec<CompiledPolicy>,
    /// The policies of each target, winner first.
    pub(crate) by_target: BTreeMap<Target, Vec<usize>>,
}

impl AuthPolicies {
    /// Compiles every AuthPolicy of `resources` and ranks those that share
    /// a target.
    pub(crate) fn compile(resources: &Resources) -> AuthPolicies {
        let mut policies: Vec<CompiledPolicy> = resources
            .auth_policies
            .values()
            .map(|p| compile_policy(resources, p))
            .collect();
        let mut ranks: Vec<_> = resources
            .auth_policies
            .values()
            .map(|p| precedence(&p.metadata))
            .collect();
        // Policies that do not decode still hold their targets, failing
        // closed (see `unreadable_policy`), ranked first.
        let unreadable = resources
            .undecodable
            .values()
            .filter(|u| u.kind == "AuthPolicy");
        for failure in unreadable {
            policies.push(unreadable_policy(failure));
            ranks.push((None, String::new()));
        }
        let by_target = index_targets(
            policies
                .iter()
                .map(|p| (p.namespace.as_str(), p.targets.as_slice())),
            &ranks,
        );
        AuthPolicies {
            policies,
            by_target,
        }
    }

    /// The winner at `target`, by index.
    fn winner(&self, target: Target) -> Option<usize> {
        self.by_target.get(&target)?.first().copied()
    }

    /// The policy that wins `target` over `policy`, when another does.
    pub(crate) fn conflicting(&self, target: &Target, policy: usize) -> Option<&CompiledPolicy> {
        let first = *self.by_target.get(target)?.first()?;
        (first != policy)
            .then(|| self.policies.get(first))
            .flatten()
    }

    /// The policies that win at each level around the rule `at`. Rules with
    /// equal winners have equal effective auth, so callers compute it once
    /// per [`Winners`] ([`Self::effective_of`]).
    pub(crate) fn winners(&self, at: &RuleAt<'_>) -> Winners {
        if self.by_target.is_empty() {
            return Winners::default();
        }
        let gateway = self.winner(Target::Gateway(at.gateway.to_string()));
        let listener = at
            .listener
            .and_then(|l| self.winner(Target::Listener(at.gateway.to_string(), l.to_string())));
        let route = self.winner(Target::Route(at.route.to_string()));
        let rule = at
            .rule
            .and_then(|r| self.winner(Target::Rule(at.route.to_string(), r.to_string())));
        Winners {
            rule,
            route,
            listener,
            gateway,
        }
    }

    /// The effective auth given the winners; `None` when no section is set.
    pub(crate) fn effective_of(&self, w: &Winners) -> Option<Effective> {
        let (winners, candidates) = match self.plan(w) {
            Plan::Nothing => return None,
            Plan::Broken(sources) => {
                return Some(Effective {
                    config: deny_all(sources),
                    backends: Vec::new(),
                });
            }
            Plan::Merge(winners, candidates) => (winners, candidates),
        };
        let merged = merge(&candidates);
        let mut config = merged.config;
        if config == AuthConfig::default() {
            return None;
        }
        config.sources = winners
            .iter()
            .filter(|p| merged.used.contains(&p.source))
            .map(|p| p.source.clone())
            .collect();
        Some(Effective {
            config,
            backends: merged.backends,
        })
    }

    /// The `sources` of [`Self::effective_of`], without merging (nothing
    /// is cloned), for status messages.
    pub(crate) fn sources_of(&self, w: &Winners) -> Vec<String> {
        match self.plan(w) {
            Plan::Nothing => Vec::new(),
            Plan::Broken(sources) => sources,
            Plan::Merge(winners, candidates) => {
                let used = contributors(&candidates);
                winners
                    .iter()
                    .filter(|p| used.contains(&p.source.as_str()))
                    .map(|p| p.source.clone())
                    .collect()
            }
        }
    }

    /// What the winners make: nothing, a deny-all (an invalid winner), or
    /// the candidates to merge, in precedence order.
    fn plan(&self, w: &Winners) -> Plan<'_> {
        let policy = |i: Option<usize>| i.and_then(|i| self.policies.get(i));
        let (gateway, listener) = (policy(w.gateway), policy(w.listener));
        // Most specific first: the order of `sources`.
        let winners: Vec<&CompiledPolicy> = [policy(w.rule), policy(w.route), listener, gateway]
            .into_iter()
            .flatten()
            .collect();
        if winners.is_empty() {
            return Plan::Nothing;
        }
        let broken: Vec<String> = winners
            .iter()
            .filter(|p| p.problem.is_some())
            .map(|p| p.source.clone())
            .collect();
        if !broken.is_empty() {
            return Plan::Broken(broken);
        }
        let overrides = [gateway, listener]
            .into_iter()
            .flatten()
            .filter_map(|p| p.overrides.as_ref().map(|o| (p, o)));
        let defaults = winners.iter().map(|p| (*p, &p.defaults));
        let candidates = overrides.chain(defaults).collect();
        Plan::Merge(winners, candidates)
    }
}

/// See [`AuthPolicies::plan`].
enum Plan<'a> {
    Nothing,
    Broken(Vec<String>),
    /// The winners, most specific first, and the merge candidates.
    Merge(
        Vec<&'a CompiledPolicy>,
        Vec<(&'a CompiledPolicy, &'a AuthConfig)>,
    ),
}

/// The winning policy (index) at each level around one rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Winners {
    /// At the named rule.
    pub(crate) rule: Option<usize>,
    /// At the route.
    pub(crate) route: Option<usize>,
    /// At the Gateway's listener.
    pub(crate) listener: Option<usize>,
    /// At the Gateway.
    pub(crate) gateway: Option<usize>,
}

impl Winners {
    /// Whether no policy applies.
    pub(crate) fn is_none(&self) -> bool {
        *self == Winners::default()
    }
}

/// A policy's rank at a shared target (GEP-713): older first, then by name.
pub(crate) type Rank = (Option<i128>, String);

/// The GEP-713 order of a policy: older first, then by name.
pub(crate) fn precedence(meta: &ObjectMeta) -> Rank {
    let created = meta
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_nanosecond());
    (created, meta.name.clone().unwrap_or_default())
}

/// The policies (by index) of each target their `targetRefs` name, winner
/// first by `ranks`; shared by every policy kind.
pub(crate) fn index_targets<'a>(
    policies: impl Iterator<Item = (&'a str, &'a [PolicyTargetRef])>,
    ranks: &[Rank],
) -> BTreeMap<Target, Vec<usize>> {
    let mut by_target: BTreeMap<Target, Vec<usize>> = BTreeMap::new();
    for (index, (namespace, targets)) in policies.enumerate() {
        for t in targets {
            if let Ok(target) = Target::of(namespace, t) {
                let list = by_target.entry(target).or_default();
                if !list.contains(&index) {
                    list.push(index);
                }
            }
        }
    }
    for list in by_target.values_mut() {
        list.sort_by(|a, b| ranks.get(*a).cmp(&ranks.get(*b)));
    }
    by_target
}

/// A policy that did not decode: its targets, and why it is invalid.
fn unreadable_policy(failure: &crate::resources::Undecodable) -> CompiledPolicy {
    let namespace = failure.namespace.clone().unwrap_or_default();
    CompiledPolicy {
        source: format!("authpolicy/{namespace}/{}", failure.name),
        name: failure.name.clone(),
        generation: failure.generation,
        targets: failure
            .target_refs
            .iter()
            .filter_map(|t| serde_json::from_value(t.clone()).ok())
            .collect(),
        defaults: AuthConfig::default(),
        overrides: None,
        backends: Vec::new(),
        problem: Some(invalid(format!(
            "Tollgate cannot read this AuthPolicy: {}",
            failure.error
        ))),
        warnings: Vec::new(),
        namespace,
    }
}

/// Compiles one policy's sections and references.
fn compile_policy(resources: &Resources, policy: &AuthPolicy) -> CompiledPolicy {
    let namespace = policy.metadata.namespace.clone().unwrap_or_default();
    let name = policy.metadata.name.clone().unwrap_or_default();
    let source = format!("authpolicy/{namespace}/{name}");
    let mut refs = PolicyRefs::new(resources, &namespace);
    let spec = &policy.spec;
    let compiled = refs
        .load_ca(spec.ca_certificate_refs.as_deref().unwrap_or_default())
        .and_then(|()| {
            let defaults = compile_sections(&mut refs, &spec.sections, &source)?;
            let overrides = spec
                .overrides
                .as_ref()
                .map(|o| compile_sections(&mut refs, o, &source))
                .transpose()?;
            Ok((defaults, overrides))
        });
    let (defaults, overrides, problem) = match compiled {
        Ok((d, o)) => (d, o, None),
        Err(p) => (AuthConfig::default(), None, Some(p)),
    };
    // A targetRef of a kind that cannot be targeted is reported on that
    // ancestor alone (`auth_status`); the policy still applies elsewhere.
    CompiledPolicy {
        generation: policy.metadata.generation,
        targets: spec.target_refs.clone(),
        defaults,
        overrides,
        backends: refs.backends,
        problem,
        warnings: refs.warnings,
        source,
        namespace,
        name,
    }
}

#[cfg(test)]
mod tests;
