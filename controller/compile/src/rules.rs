//! HTTPRoute rules: one manifest rule into a snapshot [`Route`] plus its
//! matches, or the [`Problem`] that makes Tollgate drop it.
//!
//! A rule is compiled once per route, independently of the Gateways it
//! attaches to; backend indices in the compiled [`Route`] point into the
//! rule's own `backends` table and are remapped when a snapshot interns
//! them. Invalid backend references do not invalidate the rule: they become
//! `None` backends and a `ResolvedRefs` problem.

use crate::auth_authz::compile_filter_ext_auth;
use crate::backends::BackendTarget;
use crate::conditions::{Problem, reasons};
use crate::duration::parse_duration_ms;
use crate::filters::{convert_backend_filter, convert_filter, type_name};
use crate::matches::{GrpcRank, convert_match, default_match};
use crate::retries::compile_retry;
use crate::rule_context::RuleContext;
use gateway_api::experimental::httproutes::{
    HttpRouteRules, HttpRouteRulesFilters, HttpRouteRulesFiltersType as FilterType,
    HttpRouteRulesTimeouts,
};
use tollgate_snapshot::{Backend, BackendRef, ExtAuth, PathMatch, Route, RouteMatch, Timeouts};

/// A valid rule, ready to be placed in snapshots.
#[derive(Clone, Debug)]
pub(crate) struct CompiledRule {
    /// Index of the rule in the route.
    pub(crate) index: usize,
    /// The rule, with backend indices into `backends`.
    pub(crate) route: Route,
    /// Its matches (`route` index left 0).
    pub(crate) matches: Vec<RouteMatch>,
    /// For a GRPCRoute rule, what GRPCRoute precedence ranks of each of
    /// `matches`; empty for an HTTPRoute rule.
    pub(crate) grpc_ranks: Vec<GrpcRank>,
    /// Backends the rule references.
    pub(crate) backends: Vec<Backend>,
    /// The rule's Gateway API `ExternalAuth` filter, its backend an index
    /// into `backends`; merged into the rule's effective auth when the
    /// snapshot is built, after any policy's `extAuth`.
    pub(crate) ext_auth: Option<ExtAuth>,
}

/// Compiles rule `index` of route `route_key` (`namespace/name`).
///
/// # Errors
///
/// The reason the rule must be dropped (`UnsupportedValue` or
/// `IncompatibleFilters`).
pub(crate) fn compile_rule(
    ctx: &mut RuleContext<'_>,
    route_key: &str,
    index: usize,
    rule: &HttpRouteRules,
) -> Result<CompiledRule, Problem> {
    let matches = match rule.matches.as_deref() {
        None | Some([]) => vec![default_match()],
        Some(ms) => ms.iter().map(convert_match).collect::<Result<_, _>>()?,
    };
    compile_rule_with(ctx, route_key, index, rule, matches)
}

/// Compiles rule `index` of route `route_key` with its `matches` already
/// converted: everything but the matches is shared by HTTPRoute rules and
/// the GRPCRoute rules `grpcroute.rs` expresses as HTTPRoute rules.
///
/// # Errors
///
/// As [`compile_rule`].
pub(crate) fn compile_rule_with(
    ctx: &mut RuleContext<'_>,
    route_key: &str,
    index: usize,
    rule: &HttpRouteRules,
    matches: Vec<RouteMatch>,
) -> Result<CompiledRule, Problem> {
    ctx.backends.clear();
    let backends = backend_refs(ctx, rule)?;
    let filters = rule.filters.as_deref().unwrap_or_default();
    check_filter_combination(filters, !backends.is_empty())?;
    check_prefix_rewrites(filters, &matches)?;
    // ExternalAuth is not a request filter but part of the rule's auth.
    let ext_auth = filters
        .iter()
        .filter(|f| f.r#type == FilterType::ExternalAuth)
        .map(|f| {
            let spec = f.external_auth.as_ref().ok_or_else(|| {
                Problem::new(
                    reasons::UNSUPPORTED_VALUE,
                    "filter type needs its externalAuth field",
                )
            })?;
            compile_filter_ext_auth(spec, ctx, route_key, index)
        })
        .next()
        .transpose()?;
    let filters = filters
        .iter()
        .filter(|f| f.r#type != FilterType::ExternalAuth)
        .map(|f| convert_filter(f, ctx))
        .collect::<Result<Vec<_>, _>>()?;
    let timeouts = rule
        .timeouts
        .as_ref()
        .map(timeouts)
        .transpose()?
        .unwrap_or_default();
    let retry = rule.retry.as_ref().map(compile_retry).transpose()?;
    Ok(CompiledRule {
        index,
        route: Route {
            name: format!("{}/{route_key}/rule/{index}", ctx.kind().prefix()),
            rule_name: rule.name.clone(),
            filters,
            backends,
            timeouts,
            retry,
            sampling_per_million: None,
            auth: None,
            rate_limit: None,
            grpc: false,
        },
        matches,
        grpc_ranks: Vec::new(),
        backends: std::mem::take(&mut ctx.backends),
        ext_auth,
    })
}

fn backend_refs(
    ctx: &mut RuleContext<'_>,
    rule: &HttpRouteRules,
) -> Result<Vec<BackendRef>, Problem> {
    let mut out = Vec::new();
    for r in rule.backend_refs.iter().flatten() {
        let weight = u32::try_from(r.weight.unwrap_or(1)).map_err(|_| {
            Problem::new(reasons::UNSUPPORTED_VALUE, "backendRef weight is negative")
        })?;
        let backend = ctx.backend(BackendTarget {
            group: r.group.as_deref(),
            kind: r.kind.as_deref(),
            name: &r.name,
            namespace: r.namespace.as_deref(),
            port: r.port,
        });
        let filters = r
            .filters
            .iter()
            .flatten()
            .map(|f| convert_backend_filter(f, ctx))
            .collect::<Result<Vec<_>, _>>()?;
        out.push(BackendRef {
            backend,
            weight,
            filters,
        });
    }
    Ok(out)
}

/// Filter combinations the Gateway API forbids: a redirect together with a
/// rewrite or with backendRefs (`IncompatibleFilters`), and a repeated
/// filter other than `RequestMirror`.
fn check_filter_combination(
    filters: &[HttpRouteRulesFilters],
    has_backends: bool,
) -> Result<(), Problem> {
    let count = |t: FilterType| filters.iter().filter(|f| f.r#type == t).count();
    let redirects = count(FilterType::RequestRedirect);
    if redirects > 0 && count(FilterType::UrlRewrite) > 0 {
        return Err(Problem::new(
            reasons::INCOMPATIBLE_FILTERS,
            "RequestRedirect and URLRewrite cannot be used in the same rule",
        ));
    }
    if redirects > 0 && has_backends {
        return Err(Problem::new(
            reasons::INCOMPATIBLE_FILTERS,
            "RequestRedirect cannot be used together with backendRefs",
        ));
    }
    for f in filters {
        let t = f.r#type.clone();
        if t != FilterType::RequestMirror && count(t.clone()) > 1 {
            return Err(Problem::new(
                reasons::UNSUPPORTED_VALUE,
                format!("filter {} is repeated", type_name(&t)),
            ));
        }
    }
    Ok(())
}

/// `ReplacePrefixMatch` replaces the matched prefix, so every match of the
/// rule must be a `PathPrefix` match.
fn check_prefix_rewrites(
    filters: &[HttpRouteRulesFilters],
    matches: &[RouteMatch],
) -> Result<(), Problem> {
    let uses_prefix = filters.iter().any(|f| {
        let redirect = f.request_redirect.as_ref().and_then(|r| r.path.as_ref());
        let rewrite = f.url_rewrite.as_ref().and_then(|r| r.path.as_ref());
        (f.r#type == FilterType::RequestRedirect
            && redirect.is_some_and(|p| p.replace_prefix_match.is_some()))
            || (f.r#type == FilterType::UrlRewrite
                && rewrite.is_some_and(|p| p.replace_prefix_match.is_some()))
    });
    let all_prefix = matches
        .iter()
        .all(|m| matches!(m.path, PathMatch::Prefix(_)));
    if uses_prefix && !all_prefix {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            "ReplacePrefixMatch requires every match of the rule to be a PathPrefix match",
        ));
    }
    Ok(())
}

/// Rule timeouts in milliseconds; a zero duration disables the timeout.
fn timeouts(t: &HttpRouteRulesTimeouts) -> Result<Timeouts, Problem> {
    let parse = |s: &Option<String>| {
        s.as_deref()
            .map(parse_duration_ms)
            .transpose()
            .map(|ms| ms.filter(|ms| *ms != 0))
    };
    let out = Timeouts {
        request_ms: parse(&t.request)?,
        backend_request_ms: parse(&t.backend_request)?,
    };
    if let (Some(req), Some(backend)) = (out.request_ms, out.backend_request_ms)
        && backend > req
    {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            "timeouts.backendRequest cannot be longer than timeouts.request",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A zero timeout disables it; backendRequest may not exceed request.
    #[test]
    fn timeouts_rules() {
        let t = |r: Option<&str>, b: Option<&str>| HttpRouteRulesTimeouts {
            request: r.map(Into::into),
            backend_request: b.map(Into::into),
        };
        assert_eq!(timeouts(&t(Some("0s"), None)), Ok(Timeouts::default()));
        assert_eq!(
            timeouts(&t(Some("10s"), Some("2s"))),
            Ok(Timeouts {
                request_ms: Some(10_000),
                backend_request_ms: Some(2_000)
            })
        );
        assert!(timeouts(&t(Some("1s"), Some("2s"))).is_err());
    }
}
