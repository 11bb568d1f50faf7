//! What compiling the rules of one route accumulates: the rule's backend
//! table, unresolved references, and the Services read.
//!
//! A leaf below `rules.rs` and `filters.rs`, which both add to it (a
//! `RequestMirror` filter references a backend like a `backendRef` does).

use crate::backends::{BackendTarget, Referrer, resolve_backend_from};
use crate::conditions::Problem;
use crate::listeners::GATEWAY_GROUP;
use crate::resources::Resources;
use tollgate_snapshot::Backend;

/// The route kinds whose rules compile into snapshot routes. A GRPCRoute
/// compiles through the HTTPRoute code (its matches become path matches);
/// the kind decides what ReferenceGrants must name, the snapshot names,
/// the listener kind it needs and the precedence between its matches.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum RouteKind {
    /// `HTTPRoute`.
    Http,
    /// `GRPCRoute`.
    Grpc,
}

impl RouteKind {
    /// The manifest kind, e.g. `HTTPRoute`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            RouteKind::Http => "HTTPRoute",
            RouteKind::Grpc => "GRPCRoute",
        }
    }

    /// The prefix of snapshot route names, e.g. `httproute`.
    pub(crate) fn prefix(self) -> &'static str {
        match self {
            RouteKind::Http => "httproute",
            RouteKind::Grpc => "grpcroute",
        }
    }
}

/// What compiling the rules of one route accumulates.
#[derive(Debug)]
pub(crate) struct RuleContext<'a> {
    resources: &'a Resources,
    kind: RouteKind,
    route_ns: &'a str,
    /// Backends referenced by the rule being compiled.
    pub(crate) backends: Vec<Backend>,
    /// Every unresolved reference of the route, in manifest order.
    pub(crate) ref_problems: Vec<Problem>,
    /// `(namespace, name)` of every Service resolution attempted, valid or
    /// not: what the route's compile result depends on besides the route.
    pub(crate) reads: Vec<(String, String)>,
}

impl<'a> RuleContext<'a> {
    /// A context for the rules of a route of `kind` in `route_ns`.
    pub(crate) fn new(resources: &'a Resources, kind: RouteKind, route_ns: &'a str) -> Self {
        RuleContext {
            resources,
            kind,
            route_ns,
            backends: Vec::new(),
            ref_problems: Vec::new(),
            reads: Vec::new(),
        }
    }

    /// The namespace of the route whose rules are compiled.
    pub(crate) fn route_ns(&self) -> &'a str {
        self.route_ns
    }

    /// The kind of the route whose rules are compiled.
    pub(crate) fn kind(&self) -> RouteKind {
        self.kind
    }

    /// Resolves `target` into the rule's backend table; `None` (and a
    /// recorded problem) when the reference is invalid.
    pub(crate) fn backend(&mut self, target: BackendTarget<'_>) -> Option<usize> {
        let ns = target.namespace.unwrap_or(self.route_ns);
        if !self.reads.iter().any(|(n, s)| n == ns && s == target.name) {
            self.reads.push((ns.to_string(), target.name.to_string()));
        }
        let from = Referrer {
            group: GATEWAY_GROUP,
            kind: self.kind.name(),
            namespace: self.route_ns,
        };
        match resolve_backend_from(self.resources, &from, target) {
            Ok(b) => Some(match self.backends.iter().position(|x| x.name == b.name) {
                Some(i) => i,
                None => {
                    self.backends.push(b);
                    self.backends.len() - 1
                }
            }),
            Err(p) => {
                self.ref_problems.push(p);
                None
            }
        }
    }
}
