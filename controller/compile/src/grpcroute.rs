//! `compile_grpc_route`: a GRPCRoute expressed in the HTTPRoute model.
//!
//! A gRPC call is an HTTP/2 `POST` to `/<service>/<method>`, so a gRPC
//! method match is a path match: service and method `Exact` → path
//! `Exact /svc/method`; service only → path prefix `/svc`; method only, or
//! `RegularExpression` → a path regular expression. Header matches, the
//! filters GRPCRoute allows (header modifiers, mirrors, `ExtensionRef`)
//! and weighted backendRefs have the same schema as HTTPRoute's, so they go
//! through the HTTPRoute code unchanged (`rules.rs`, `filters.rs`), which
//! also drops a rule with an unsupported filter the way it does for
//! HTTPRoutes. What stays gRPC's own is the precedence between matches
//! ([`GrpcRank`]), the route name prefix, the `GRPCRoute` a ReferenceGrant
//! must name, and the snapshot's `grpc` flag, which makes the data plane
//! answer its own errors the gRPC way.

use crate::conditions::{Problem, reasons};
use crate::httproute::{CompiledRoute, RouteSource, compile_route_rules};
use crate::matches::{GrpcRank, check_regex, convert_match, default_match};
use crate::resources::Resources;
use crate::rule_context::{RouteKind, RuleContext};
use crate::rules::{CompiledRule, compile_rule_with};
use gateway_api::experimental::grpcroutes::{
    GrpcRoute, GrpcRouteParentRefs, GrpcRouteRules, GrpcRouteRulesMatches,
    GrpcRouteRulesMatchesMethod, GrpcRouteRulesMatchesMethodType as MethodType,
};
use gateway_api::experimental::httproutes::{
    HttpRouteParentRefs, HttpRouteRules, HttpRouteRulesMatches,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tollgate_snapshot::{PathMatch, RouteMatch};

/// Compiles the rules of GRPCRoute `route` (stored under `key`).
pub(crate) fn compile_grpc_route(
    resources: &Resources,
    key: &str,
    route: &GrpcRoute,
) -> CompiledRoute {
    // The API default for absent rules is one rule matching every call.
    let default_rules = [GrpcRouteRules::default()];
    let rules = route.spec.rules.as_deref().unwrap_or(&default_rules);
    let source = RouteSource {
        kind: RouteKind::Grpc,
        key,
        meta: &route.metadata,
        hostnames: route.spec.hostnames.as_deref().unwrap_or_default(),
    };
    compile_route_rules(resources, &source, rules, |ctx, i, rule| {
        (rule.name.as_deref(), compile_grpc_rule(ctx, key, i, rule))
    })
}

/// The parentRef as the HTTPRoute attachment code reads it (the schemas
/// are the same).
pub(crate) fn parent_ref(p: &GrpcRouteParentRefs) -> HttpRouteParentRefs {
    HttpRouteParentRefs {
        group: p.group.clone(),
        kind: p.kind.clone(),
        name: p.name.clone(),
        namespace: p.namespace.clone(),
        port: p.port,
        section_name: p.section_name.clone(),
    }
}

fn compile_grpc_rule(
    ctx: &mut RuleContext<'_>,
    key: &str,
    index: usize,
    rule: &GrpcRouteRules,
) -> Result<CompiledRule, Problem> {
    let (matches, ranks): (Vec<RouteMatch>, Vec<GrpcRank>) = match rule.matches.as_deref() {
        None | Some([]) => (vec![default_match()], vec![GrpcRank::default()]),
        Some(ms) => ms
            .iter()
            .map(convert_grpc_match)
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .unzip(),
    };
    let as_http = HttpRouteRules {
        name: rule.name.clone(),
        backend_refs: same_schema(&rule.backend_refs, "backendRefs")?,
        filters: same_schema(&rule.filters, "filters")?,
        ..HttpRouteRules::default()
    };
    let mut compiled = compile_rule_with(ctx, key, index, &as_http, matches)?;
    compiled.route.grpc = true;
    compiled.grpc_ranks = ranks;
    Ok(compiled)
}

/// `value` (a GRPCRoute field) read as the HTTPRoute field of the same
/// schema. GRPCRoute's filter and backendRef types are a subset of
/// HTTPRoute's, so this fails only on a type Tollgate's HTTPRoute types do
/// not know, which drops the rule rather than serving it half understood.
fn same_schema<T: Serialize, U: DeserializeOwned>(value: &T, field: &str) -> Result<U, Problem> {
    serde_json::to_value(value)
        .and_then(serde_json::from_value)
        .map_err(|e| Problem::new(reasons::UNSUPPORTED_VALUE, format!("{field}: {e}")))
}

/// One GRPCRoute match as a path match plus header matches, with what
/// its precedence ranks.
///
/// # Errors
///
/// `UnsupportedValue` for a method match naming neither service nor
/// method, a name the GRPCRoute CRD would refuse, or a regular expression
/// the data plane would refuse.
pub(crate) fn convert_grpc_match(
    m: &GrpcRouteRulesMatches,
) -> Result<(RouteMatch, GrpcRank), Problem> {
    // Header matches have HTTPRoute's schema and rules (lowercase names,
    // first entry of a name wins): convert them there.
    let headers = HttpRouteRulesMatches {
        headers: same_schema(&m.headers, "headers")?,
        ..HttpRouteRulesMatches::default()
    };
    let mut out = convert_match(&headers)?;
    let Some(method) = &m.method else {
        return Ok((out, GrpcRank::default()));
    };
    out.path = method_path(method)?;
    let rank = GrpcRank {
        service: method.service.as_deref().map_or(0, str::len),
        method: method.method.as_deref().map_or(0, str::len),
    };
    Ok((out, rank))
}

/// A path segment of a gRPC request: anything but `/`.
const ANY_SEGMENT: &str = "[^/]+";

fn method_path(m: &GrpcRouteRulesMatchesMethod) -> Result<PathMatch, Problem> {
    let (service, method) = (m.service.as_deref(), m.method.as_deref());
    if service.is_none() && method.is_none() {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            "a gRPC method match must name a service, a method, or both",
        ));
    }
    match m.r#type.clone().unwrap_or(MethodType::Exact) {
        MethodType::Exact => {
            if let Some(s) = service.filter(|s| !is_service_name(s)) {
                return Err(invalid_name("service", s));
            }
            if let Some(n) = method.filter(|n| !is_method_name(n)) {
                return Err(invalid_name("method", n));
            }
            Ok(match (service, method) {
                (Some(s), Some(n)) => PathMatch::Exact(format!("/{s}/{n}")),
                (Some(s), None) => PathMatch::Prefix(format!("/{s}")),
                (None, n) => PathMatch::RegularExpression(format!(
                    "/{ANY_SEGMENT}/{}",
                    regex::escape(n.unwrap_or_default())
                )),
            })
        }
        MethodType::RegularExpression => {
            let part = |p: Option<&str>| p.map_or(ANY_SEGMENT.to_string(), |p| format!("(?:{p})"));
            let pattern = format!("/{}/{}", part(service), part(method));
            check_regex(pattern).map(PathMatch::RegularExpression)
        }
    }
}

fn invalid_name(what: &str, value: &str) -> Problem {
    Problem::new(
        reasons::UNSUPPORTED_VALUE,
        format!("gRPC {what} {value:?} is not a valid {what} name"),
    )
}

/// A fully qualified protobuf service name (the GRPCRoute CRD's pattern
/// `^(?i)\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$`), checked here because
/// manifests from a folder see no CRD validation.
fn is_service_name(s: &str) -> bool {
    let s = s.strip_prefix('.').unwrap_or(s);
    !s.is_empty() && s.split('.').all(is_method_name)
}

/// A protobuf identifier (`^[A-Za-z_][A-Za-z_0-9]*$`).
fn is_method_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tollgate_snapshot::{HeaderMatch, StringMatch};

    fn grpc_match(json: serde_json::Value) -> Result<(RouteMatch, GrpcRank), Problem> {
        convert_grpc_match(&serde_json::from_value(json).unwrap())
    }

    /// Each row: a GRPCRoute method match and the path match it becomes.
    #[test]
    fn method_matches_become_path_matches() {
        use serde_json::json;
        let rows = [
            (
                json!({"service": "echo.Echo", "method": "Say"}),
                PathMatch::Exact("/echo.Echo/Say".into()),
            ),
            (
                json!({"service": "echo.Echo"}),
                PathMatch::Prefix("/echo.Echo".into()),
            ),
            (
                json!({"method": "Say"}),
                PathMatch::RegularExpression("/[^/]+/Say".into()),
            ),
            (
                json!({"type": "RegularExpression", "service": "echo\\..*", "method": "S(ay|ing)"}),
                PathMatch::RegularExpression("/(?:echo\\..*)/(?:S(ay|ing))".into()),
            ),
            (
                json!({"type": "RegularExpression", "method": "Get.*"}),
                PathMatch::RegularExpression("/[^/]+/(?:Get.*)".into()),
            ),
        ];
        for (method, want) in rows {
            let (m, _) = grpc_match(json!({ "method": method })).unwrap();
            assert_eq!(m.path, want, "{method}");
        }
    }

    /// Precedence counts the characters of service and method; a match
    /// without a method match ranks as matching every call.
    #[test]
    fn ranks_count_characters() {
        use serde_json::json;
        let (_, rank) =
            grpc_match(json!({"method": {"service": "a.B", "method": "Call"}})).unwrap();
        assert_eq!(
            rank,
            GrpcRank {
                service: 3,
                method: 4
            }
        );
        let (m, rank) =
            grpc_match(json!({"headers": [{"name": "X-Env", "value": "canary"}]})).unwrap();
        assert_eq!(rank, GrpcRank::default());
        assert_eq!(m.path, default_match().path);
        assert_eq!(
            m.headers,
            vec![HeaderMatch {
                name: "x-env".into(),
                value: StringMatch::Exact("canary".into())
            }]
        );
    }

    /// Names the CRD refuses, empty method matches and bad patterns are
    /// refused here too.
    #[test]
    fn invalid_matches_are_refused() {
        use serde_json::json;
        for bad in [
            json!({}),
            json!({"service": "echo/Echo"}),
            json!({"service": "echo..Echo"}),
            json!({"method": "1Say"}),
            json!({"type": "RegularExpression", "method": "("}),
        ] {
            assert!(grpc_match(json!({ "method": bad })).is_err(), "{bad}");
        }
        assert!(is_service_name(".pkg.Svc_1"));
    }
}
