//! `build_snapshot`: one programmed Gateway and the routes attached to it
//! become that Gateway's [`Snapshot`].
//!
//! Only programmed listeners are served. Each listener's virtual hosts are
//! the effective hostnames of its routes; every virtual host gets every rule
//! whose hostname covers it (an exact host also gets the rules of matching
//! wildcard and hostless routes, after its own by hostname specificity), so
//! the data plane picks one virtual host and never falls through. Rules,
//! backends and auth configurations are stored once per snapshot and
//! referenced by index.
//!
//! A rule's effective auth (its AuthPolicies merged, plus its
//! `ExternalAuth` filter) is decided here, per listener it is served on,
//! from the policy index built fresh on every compile: see
//! `auth_policies` for why this keeps the route memo correct. A rule served
//! with different auth on two listeners is stored once per auth.

use crate::auth_policies::{AuthPolicies, RuleAt, Winners};
use crate::gateway::GatewayPlan;
use crate::hostname::{covers, most_specific_first};
use crate::httproute::CompiledRoute;
use crate::listeners::bind_port;
use crate::matches::{Ranked, precedence};
use crate::ratelimit_policies::RateLimitPolicies;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tollgate_snapshot::{
    AuthConfig, Backend, Filter, HostMatch, Listener, RateLimits, Route, RouteMatch, Snapshot,
    Socket, VirtualHost,
};

mod auth_table;

/// A route attached to a listener of the Gateway.
#[derive(Clone, Debug)]
pub(crate) struct Attachment {
    /// Index into the compiled routes.
    pub(crate) route: usize,
    /// Index of the listener in the Gateway.
    pub(crate) listener: usize,
    /// The route's effective hostnames on that listener.
    pub(crate) hostnames: Vec<HostMatch>,
}

/// Builds the snapshot of `plan`, which must be programmed. Takes the
/// attachments' hostnames (the last use of them) instead of copying them.
pub(crate) fn build_snapshot(
    plan: &GatewayPlan,
    routes: &[Arc<CompiledRoute>],
    attachments: &mut [Attachment],
    port_offset: u16,
    policies: &Policies<'_>,
) -> Snapshot {
    let auth = policies.auth;
    let mut by_listener = by_listener(plan, attachments);
    let mut tables = Tables::default();
    // Each used route with its listeners, ascending: one sorted list
    // rather than a list per route.
    let mut used: Vec<(usize, usize)> = by_listener.iter().map(|&((l, r), _)| (r, l)).collect();
    used.sort_unstable();
    let gateway = plan.key();
    for pairs in used.chunk_by(|a, b| a.0 == b.0) {
        let r = pairs[0].0;
        let listeners = pairs.iter().map(|&(_, l)| l);
        let policy_key = routes[r].policy_key();
        for rule in &routes[r].rules {
            let global = tables.intern_backends(&rule.backends);
            let mut variants: Vec<StageIndexes> = Vec::new();
            for li in listeners.clone() {
                let at = RuleAt {
                    gateway: &gateway,
                    listener: plan
                        .listeners
                        .get(li)
                        .filter(|l| l.set.is_none())
                        .map(|l| l.name.as_str()),
                    route: &policy_key,
                    rule: rule.route.rule_name.as_deref(),
                };
                let index = (
                    tables.intern_auth(auth, &at, rule, &global),
                    tables.intern_limits(policies.limits, &at),
                );
                tables.rule_auth.insert((li, r, rule.index), index);
                if !variants.contains(&index) {
                    variants.push(index);
                }
            }
            for index in variants {
                tables.intern_rule((r, rule.index, index), &rule.route, &global);
            }
        }
    }
    let mut sockets_by_port: BTreeMap<u16, (u16, Vec<Listener>)> = BTreeMap::new();
    for (li, l) in plan.listeners.iter().enumerate() {
        let Some(bind) = bind_port(l.port, port_offset) else {
            continue;
        };
        if l.not_programmed().is_some() {
            continue;
        }
        let port = u16::try_from(l.port).unwrap_or(bind);
        let start = by_listener.partition_point(|((l, _), _)| *l < li);
        let end = by_listener.partition_point(|((l, _), _)| *l <= li);
        let attached: Vec<(usize, Vec<HostMatch>)> = by_listener[start..end]
            .iter_mut()
            .map(|((_, r), hosts)| {
                let mut hosts = std::mem::take(hosts);
                hosts.sort_by(most_specific_first);
                (*r, hosts)
            })
            .collect();
        let listener = Listener {
            name: l.snapshot_name(&plan.key()),
            hostname: l.hostname.clone(),
            virtual_hosts: virtual_hosts(routes, li, &attached, &tables),
            tls: l.tls.clone(),
            tls_routes: None,
        };
        sockets_by_port
            .entry(bind)
            .or_insert((port, Vec::new()))
            .1
            .push(listener);
    }
    for (_, listeners) in sockets_by_port.values_mut() {
        listeners.sort_by(|a, b| most_specific_first(&a.hostname, &b.hostname));
    }
    let mut sockets = Vec::new();
    // The last address takes the listeners rather than a copy: one
    // listener may carry every route's matches.
    let mut addresses = plan.addresses.iter().peekable();
    while let Some(address) = addresses.next() {
        let last = addresses.peek().is_none();
        for (bind, (port, listeners)) in &mut sockets_by_port {
            let listeners = if last {
                std::mem::take(listeners)
            } else {
                listeners.clone()
            };
            sockets.push(Socket {
                address: address.clone(),
                bind_port: *bind,
                port: *port,
                listeners,
                proxy_protocol: plan.proxy_protocol,
            });
        }
    }
    Snapshot {
        // Stamped by the publisher.
        schema_version: String::new(),
        version: 0,
        traceparent: None,
        gateway: plan.key(),
        settings: plan.settings.clone(),
        sockets,
        routes: tables.routes,
        backends: tables.backends,
        backend_client_certificate: plan.backend_client.clone().ok().flatten(),
        auth: tables.auth,
        rate_limits: tables.rate_limits,
    }
}

/// `((listener, route), hostnames)` of every route on a programmed
/// listener, in `(listener, route)` order; a route attached twice through
/// two parentRefs has its hostnames merged, sorted and without repeats.
///
/// One sorted list rather than a map of sets: with 10k routes, a set per
/// route was most of the allocating (and freeing) of a snapshot build.
fn by_listener(
    plan: &GatewayPlan,
    attachments: &mut [Attachment],
) -> Vec<((usize, usize), Vec<HostMatch>)> {
    let mut found: Vec<((usize, usize), Vec<HostMatch>)> = attachments
        .iter_mut()
        .filter(|a| {
            plan.listeners
                .get(a.listener)
                .is_some_and(|l| l.not_programmed().is_none())
        })
        .map(|a| ((a.listener, a.route), std::mem::take(&mut a.hostnames)))
        .collect();
    found.sort_by_key(|(key, _)| *key);
    let mut merged: Vec<((usize, usize), Vec<HostMatch>)> = Vec::with_capacity(found.len());
    for (key, hosts) in found {
        match merged.last_mut() {
            Some((last, kept)) if *last == key => kept.extend(hosts),
            _ => merged.push((key, hosts)),
        }
    }
    for (_, hosts) in &mut merged {
        hosts.sort();
        hosts.dedup();
    }
    merged
}

/// The policies a snapshot's rules are served with, rebuilt every compile.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policies<'a> {
    /// AuthPolicies.
    pub(crate) auth: &'a AuthPolicies,
    /// RateLimitPolicies.
    pub(crate) limits: &'a RateLimitPolicies,
}

/// A rule's indexes into `Snapshot::auth` and `Snapshot::rate_limits`:
/// rules served with different policies on different listeners become
/// different snapshot routes.
type StageIndexes = (Option<usize>, Option<usize>);

/// The routes, backends and auth configurations of one snapshot, each
/// stored once.
#[derive(Debug, Default)]
struct Tables {
    routes: Vec<Route>,
    backends: Vec<Backend>,
    auth: Vec<AuthConfig>,
    rate_limits: Vec<RateLimits>,
    /// (compiled route, rule index, stage indexes) -> index in `routes`.
    /// The index maps are looked up once or twice per rule and match, so
    /// they hash with foldhash (randomly seeded, a few instructions per
    /// integer) rather than SipHash; their keys are indexes, not names.
    route_index: foldhash::HashMap<(usize, usize, StageIndexes), usize>,
    /// (listener, compiled route, rule index) -> the rule's stages there.
    rule_auth: foldhash::HashMap<(usize, usize, usize), StageIndexes>,
    /// Backend name -> index in `backends`.
    backend_index: HashMap<String, usize>,
    /// Serialised configuration -> index in `auth`.
    auth_index: HashMap<String, usize>,
    /// The auth of rules without an `ExternalAuth` filter, by the policies
    /// that win around them: a Gateway-wide policy over 10k rules is then
    /// merged and interned once, not 10k times.
    auth_by_winners: HashMap<Winners, Option<usize>>,
}

impl Tables {
    /// Interns `backends`, returning their indices in this snapshot.
    fn intern_backends(&mut self, backends: &[Backend]) -> Vec<usize> {
        backends.iter().map(|b| self.intern_backend(b)).collect()
    }

    /// Interns the limits of the rule served `at`; `None` when none apply.
    fn intern_limits(&mut self, limits: &RateLimitPolicies, at: &RuleAt<'_>) -> Option<usize> {
        let effective = limits.effective(at)?;
        match self.rate_limits.iter().position(|l| *l == effective) {
            Some(i) => Some(i),
            None => {
                self.rate_limits.push(effective);
                Some(self.rate_limits.len() - 1)
            }
        }
    }

    fn intern_rule(
        &mut self,
        key: (usize, usize, StageIndexes),
        compiled: &Route,
        global: &[usize],
    ) {
        let remap = |i: Option<usize>| i.and_then(|i| global.get(i).copied());
        let mut out = compiled.clone();
        (out.auth, out.rate_limit) = key.2;
        for b in &mut out.backends {
            b.backend = remap(b.backend);
        }
        for f in &mut out.filters {
            if let Filter::RequestMirror(m) = f {
                m.backend = remap(m.backend);
            }
        }
        self.route_index.insert(key, self.routes.len());
        self.routes.push(out);
    }

    fn intern_backend(&mut self, b: &Backend) -> usize {
        if let Some(&i) = self.backend_index.get(&b.name) {
            return i;
        }
        self.backends.push(b.clone());
        self.backend_index
            .insert(b.name.clone(), self.backends.len() - 1);
        self.backends.len() - 1
    }
}

/// The virtual hosts of one listener from its `(route, hostnames)`.
///
/// Each route is looked up through the host patterns that can cover a
/// virtual host (itself, its wildcard parents, `*`) rather than by testing
/// every route against every virtual host, so the cost follows the size of
/// the output, not hosts × routes.
fn virtual_hosts(
    routes: &[Arc<CompiledRoute>],
    listener: usize,
    attached: &[(usize, Vec<HostMatch>)],
    tables: &Tables,
) -> Vec<VirtualHost> {
    let mut by_host: HashMap<&HostMatch, Vec<usize>> = HashMap::new();
    for (i, (_, hosts)) in attached.iter().enumerate() {
        for h in hosts {
            by_host.entry(h).or_default().push(i);
        }
    }
    let mut hosts: Vec<HostMatch> = by_host.keys().map(|h| (*h).clone()).collect();
    hosts.sort_by(most_specific_first);
    hosts
        .into_iter()
        .map(|vhost| {
            let mut ranked: Vec<(Ranked<'_>, usize)> = Vec::new();
            let mut seen = vec![false; attached.len()];
            // Most specific pattern first, so a route with several covering
            // hostnames is ranked by its most specific one.
            for pattern in covering_patterns(&vhost) {
                let Some(entries) = by_host.get(&pattern) else {
                    continue;
                };
                for &i in entries {
                    if std::mem::replace(&mut seen[i], true) {
                        continue;
                    }
                    let (r, route_hosts) = &attached[i];
                    let Some(host) = route_hosts.iter().find(|h| **h == pattern) else {
                        continue;
                    };
                    rank_route(&routes[*r], (listener, *r), host, tables, &mut ranked);
                }
            }
            ranked.sort_by(|a, b| precedence(&a.0, &b.0));
            let matches = ranked
                .into_iter()
                .map(|(rank, global)| RouteMatch {
                    route: global,
                    ..rank.m.clone()
                })
                .collect();
            VirtualHost {
                hostname: vhost,
                matches,
            }
        })
        .collect()
}

/// Every host pattern that covers `vhost`, most specific first: itself,
/// then the wildcards of its parent domains (longest suffix first), then `*`.
fn covering_patterns(vhost: &HostMatch) -> Vec<HostMatch> {
    let mut out = vec![vhost.clone()];
    let name = match vhost {
        HostMatch::Exact(h) => Some(h.as_str()),
        // `*.a.b` is covered by `*.b`: the parents of `a.b`, not `a.b` itself.
        HostMatch::Wildcard(s) => Some(s.as_str()),
        HostMatch::Any => None,
    };
    if let Some(name) = name {
        let mut rest = name;
        while let Some((_, parent)) = rest.split_once('.') {
            if !parent.is_empty() {
                out.push(HostMatch::Wildcard(parent.to_string()));
            }
            rest = parent;
        }
    }
    if *vhost != HostMatch::Any {
        out.push(HostMatch::Any);
    }
    debug_assert!(out.iter().all(|p| covers(p, vhost)));
    out
}

/// Adds every match of `route`'s rules, ranked for precedence, to `ranked`.
fn rank_route<'a>(
    route: &'a CompiledRoute,
    (listener, r): (usize, usize),
    host: &'a HostMatch,
    tables: &Tables,
    ranked: &mut Vec<(Ranked<'a>, usize)>,
) {
    for rule in &route.rules {
        let stages = tables
            .rule_auth
            .get(&(listener, r, rule.index))
            .copied()
            .unwrap_or_default();
        let Some(&global) = tables.route_index.get(&(r, rule.index, stages)) else {
            continue;
        };
        for (index, m) in rule.matches.iter().enumerate() {
            let rank = Ranked {
                host,
                m,
                grpc: rule.grpc_ranks.get(index).copied(),
                created: route.created.as_ref(),
                route_key: &route.key,
                rule: rule.index,
                index,
            };
            ranked.push((rank, global));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The patterns that can cover a host, most specific first.
    #[test]
    fn covering_patterns_table() {
        let p = |s: &str| HostMatch::parse(s);
        let show = |v: Vec<HostMatch>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(
            show(covering_patterns(&p("a.b.example.com"))),
            [
                "a.b.example.com",
                "*.b.example.com",
                "*.example.com",
                "*.com",
                "*"
            ]
        );
        assert_eq!(
            show(covering_patterns(&p("*.b.example.com"))),
            ["*.b.example.com", "*.example.com", "*.com", "*"]
        );
        assert_eq!(show(covering_patterns(&p("*"))), ["*"]);
        assert_eq!(show(covering_patterns(&p("localhost"))), ["localhost", "*"]);
    }
}
