//! A naive router: every listener, virtual host and match tested in turn.
//!
//! It states the routing rules in the plainest form, with no index, so the
//! property tests can check the indexed [`super::SocketRouter`] against it on
//! random route sets. It is never used to serve traffic.

use super::conditions::{Conditions, compile_regex};
use super::error::RouterError;
use super::request::{Found, RequestView};
use regex::Regex;
use std::sync::Arc;
use tollgate_snapshot::{HostMatch, PathMatch, Socket};

/// Whether `path` starts with `prefix` element by element (a trailing `/` in
/// the prefix is ignored; `/` matches every path).
pub(crate) fn prefix_matches(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    path.strip_prefix(p)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// How specific a hostname pattern is when it matches: exact beats wildcard,
/// a longer wildcard suffix beats a shorter one, and `*` comes last.
pub(crate) fn host_rank(pattern: &HostMatch, host: &str) -> Option<(u8, usize)> {
    if !pattern.matches(host) {
        return None;
    }
    Some(match pattern {
        HostMatch::Exact(h) => (2, h.len()),
        HostMatch::Wildcard(s) => (1, s.len()),
        HostMatch::Any => (0, 0),
    })
}

/// The index of the most specific pattern matching `host`; the first on ties.
fn best_host<'h>(patterns: impl Iterator<Item = &'h HostMatch>, host: &str) -> Option<usize> {
    let mut best: Option<(usize, (u8, usize))> = None;
    for (i, p) in patterns.enumerate() {
        if let Some(rank) = host_rank(p, host)
            && best.is_none_or(|(_, b)| rank > b)
        {
            best = Some((i, rank));
        }
    }
    best.map(|(i, _)| i)
}

#[derive(Debug)]
enum PathTest {
    Exact(Arc<str>),
    Prefix(Arc<str>),
    /// The compiled pattern, and the pattern as written.
    Regex(Regex, Arc<str>),
}

#[derive(Debug)]
struct LinearMatch {
    route: usize,
    path: PathTest,
    conditions: Conditions,
}

#[derive(Debug)]
struct LinearVhost {
    hostname: HostMatch,
    matches: Vec<LinearMatch>,
}

#[derive(Debug)]
struct LinearListener {
    hostname: HostMatch,
    vhosts: Vec<LinearVhost>,
}

/// The naive router of one socket.
#[derive(Debug)]
pub(crate) struct LinearRouter {
    listeners: Vec<LinearListener>,
}

impl LinearRouter {
    /// Compiles every match of the socket, keeping their order.
    pub(crate) fn build(socket: &Socket) -> Result<Self, RouterError> {
        let mut listeners = Vec::new();
        for l in &socket.listeners {
            let mut vhosts = Vec::new();
            for v in &l.virtual_hosts {
                let mut matches = Vec::new();
                for m in &v.matches {
                    let path = match &m.path {
                        PathMatch::Exact(p) => PathTest::Exact(Arc::from(p.as_str())),
                        PathMatch::Prefix(p) => PathTest::Prefix(Arc::from(p.as_str())),
                        PathMatch::RegularExpression(p) => {
                            PathTest::Regex(compile_regex(&l.name, p)?, Arc::from(p.as_str()))
                        }
                    };
                    let conditions = Conditions::compile(&l.name, m)?;
                    matches.push(LinearMatch {
                        route: m.route,
                        path,
                        conditions,
                    });
                }
                vhosts.push(LinearVhost {
                    hostname: v.hostname.clone(),
                    matches,
                });
            }
            listeners.push(LinearListener {
                hostname: l.hostname.clone(),
                vhosts,
            });
        }
        Ok(LinearRouter { listeners })
    }

    /// Finds the route by testing everything in order.
    pub(crate) fn find<'a>(&'a self, request: &RequestView<'_>) -> Option<Found<'a>> {
        let li = best_host(self.listeners.iter().map(|l| &l.hostname), request.host)?;
        let listener = &self.listeners[li];
        let vi = best_host(listener.vhosts.iter().map(|v| &v.hostname), request.host)?;
        listener.vhosts[vi].matches.iter().find_map(|m| {
            let (matched_prefix, path_template) = match &m.path {
                PathTest::Exact(p) if &**p == request.path => (None, p),
                PathTest::Prefix(p) if prefix_matches(p, request.path) => (Some(&**p), p),
                PathTest::Regex(r, p) if r.is_match(request.path) => (None, p),
                _ => return None,
            };
            m.conditions
                .hold(request.method, request.headers, request.query)
                .then_some(Found {
                    listener: li,
                    route: m.route,
                    matched_prefix,
                    path_template,
                })
        })
    }
}
