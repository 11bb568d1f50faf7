//! HTTPRoute matches: conversion into snapshot [`RouteMatch`]es and the
//! Gateway API precedence order between them.
//!
//! Precedence (HTTPRoute `rules[].matches` API doc), within one virtual host:
//! the more specific route hostname first; then an `Exact` path, then a
//! `RegularExpression` path (longer pattern first; its rank is
//! implementation-specific), then a `PathPrefix` (more characters first);
//! then a match with a method; then more header matches; then more query
//! matches. Remaining ties go to the older route, then `namespace/name`
//! alphabetically, then rule order, then match order.

use crate::conditions::{Problem, reasons};
use crate::hostname::specificity;
use gateway_api::experimental::httproutes::{
    HttpRouteRulesMatches, HttpRouteRulesMatchesHeadersType as HeaderType,
    HttpRouteRulesMatchesMethod as Method, HttpRouteRulesMatchesPathType as PathType,
    HttpRouteRulesMatchesQueryParamsType as QueryType,
};
use k8s_openapi::jiff::Timestamp;
use std::cmp::{Ordering, Reverse};
use tollgate_snapshot::{
    HeaderMatch, HostMatch, PathMatch, QueryMatch, REGEX_MAX_PATTERN_LEN, REGEX_SIZE_LIMIT,
    RouteMatch, StringMatch, anchored_regex,
};

/// The match of a rule that names none: every path.
pub(crate) fn default_match() -> RouteMatch {
    RouteMatch {
        route: 0,
        path: PathMatch::Prefix("/".to_string()),
        method: None,
        headers: Vec::new(),
        query: Vec::new(),
    }
}

/// Converts one manifest match; `route` is left 0 for the snapshot builder.
///
/// # Errors
///
/// `UnsupportedValue` for a path that does not start with `/` or a regular
/// expression the data plane would refuse.
pub(crate) fn convert_match(m: &HttpRouteRulesMatches) -> Result<RouteMatch, Problem> {
    let mut out = default_match();
    if let Some(p) = &m.path {
        let value = p.value.clone().unwrap_or_else(|| "/".to_string());
        out.path = match p.r#type.clone().unwrap_or(PathType::PathPrefix) {
            PathType::Exact => PathMatch::Exact(absolute(value)?),
            PathType::PathPrefix => PathMatch::Prefix(absolute(value)?),
            PathType::RegularExpression => PathMatch::RegularExpression(check_regex(value)?),
        };
    }
    out.method = m.method.as_ref().map(|m| method_name(m).to_string());
    for h in m.headers.iter().flatten() {
        let name = h.name.to_ascii_lowercase();
        if out.headers.iter().any(|x| x.name == name) {
            continue; // the first entry for a name wins
        }
        let value = match h.r#type.clone().unwrap_or(HeaderType::Exact) {
            HeaderType::Exact => StringMatch::Exact(h.value.clone()),
            HeaderType::RegularExpression => {
                StringMatch::RegularExpression(check_regex(h.value.clone())?)
            }
        };
        out.headers.push(HeaderMatch { name, value });
    }
    for q in m.query_params.iter().flatten() {
        if out.query.iter().any(|x| x.name == q.name) {
            continue; // the first entry for a name wins
        }
        let value = match q.r#type.clone().unwrap_or(QueryType::Exact) {
            QueryType::Exact => StringMatch::Exact(q.value.clone()),
            QueryType::RegularExpression => {
                StringMatch::RegularExpression(check_regex(q.value.clone())?)
            }
        };
        out.query.push(QueryMatch {
            name: q.name.clone(),
            value,
        });
    }
    Ok(out)
}

/// Accepts a path match value as the Gateway API CRD validation does
/// (absolute; no `//`, dot segments, `#` or encoded `/`) and returns it in
/// the form the data plane compares against: normalized like a request
/// path, so `/%7Euser` matches a request for `/~user`.
fn absolute(path: String) -> Result<String, Problem> {
    let invalid = |why: &str| {
        Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            format!("path {path:?} {why}"),
        ))
    };
    if !path.starts_with('/') {
        return invalid("must start with /");
    }
    if path.contains("//") || path.contains('#') {
        return invalid("must not contain // or #");
    }
    if path
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return invalid("must not contain . or .. segments");
    }
    match tollgate_http_core::normalize::normalize_path(&path, false) {
        Ok(normal) => Ok(normal.into_owned()),
        Err(e) => invalid(&format!("is not a valid path: {e}")),
    }
}

/// Accepts `pattern` only if the data plane will build it: within
/// [`REGEX_MAX_PATTERN_LEN`] and compiling, anchored, under
/// [`REGEX_SIZE_LIMIT`].
pub(crate) fn check_regex(pattern: String) -> Result<String, Problem> {
    if pattern.len() > REGEX_MAX_PATTERN_LEN {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            format!("regular expression is longer than {REGEX_MAX_PATTERN_LEN} bytes"),
        ));
    }
    regex::RegexBuilder::new(&anchored_regex(&pattern))
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let last = text.lines().last().unwrap_or_default().trim();
            let first = last.strip_prefix("error: ").unwrap_or(last).to_string();
            Problem::new(
                reasons::UNSUPPORTED_VALUE,
                format!("invalid regular expression {pattern:?}: {first}"),
            )
        })?;
    Ok(pattern)
}

fn method_name(m: &Method) -> &'static str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Delete => "DELETE",
        Method::Connect => "CONNECT",
        Method::Options => "OPTIONS",
        Method::Trace => "TRACE",
        Method::Patch => "PATCH",
    }
}

/// What GRPCRoute precedence looks at in a gRPC method match, besides its
/// header matches: the characters of its service and of its method (of
/// the pattern, for a regular expression; 0 when the match leaves it out).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct GrpcRank {
    /// Characters in the service.
    pub(crate) service: usize,
    /// Characters in the method.
    pub(crate) method: usize,
}

/// Everything precedence looks at for one match in one virtual host.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ranked<'a> {
    /// The route hostname that brought the match into the virtual host.
    pub(crate) host: &'a HostMatch,
    /// The match.
    pub(crate) m: &'a RouteMatch,
    /// The gRPC method match it was made from (GRPCRoutes only).
    pub(crate) grpc: Option<GrpcRank>,
    /// The route's `creationTimestamp`.
    pub(crate) created: Option<&'a Timestamp>,
    /// The route's `namespace/name`.
    pub(crate) route_key: &'a str,
    /// Rule index in the route.
    pub(crate) rule: usize,
    /// Match index in the rule.
    pub(crate) index: usize,
}

fn path_rank(p: &PathMatch) -> (u8, Reverse<usize>) {
    match p {
        PathMatch::Exact(v) => (0, Reverse(v.len())),
        PathMatch::RegularExpression(v) => (1, Reverse(v.len())),
        PathMatch::Prefix(v) => (2, Reverse(v.len())),
    }
}

/// Orders two matches: `Less` means `a` is tried first.
pub(crate) fn precedence(a: &Ranked<'_>, b: &Ranked<'_>) -> Ordering {
    specificity(b.host)
        .cmp(&specificity(a.host))
        .then_with(|| match (a.grpc, b.grpc) {
            (None, None) => path_rank(&a.m.path)
                .cmp(&path_rank(&b.m.path))
                .then_with(|| b.m.method.is_some().cmp(&a.m.method.is_some()))
                .then_with(|| b.m.headers.len().cmp(&a.m.headers.len()))
                .then_with(|| b.m.query.len().cmp(&a.m.query.len())),
            (Some(x), Some(y)) => y
                .service
                .cmp(&x.service)
                .then_with(|| y.method.cmp(&x.method))
                .then_with(|| b.m.headers.len().cmp(&a.m.headers.len())),
            // The two kinds never share a hostname on a listener (the
            // route conflict rule), so this only keeps the order total.
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
        })
        .then_with(|| match (a.created, b.created) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        })
        .then_with(|| a.route_key.cmp(b.route_key))
        .then_with(|| a.rule.cmp(&b.rule))
        .then_with(|| a.index.cmp(&b.index))
}

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;
