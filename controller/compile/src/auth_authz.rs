//! The AuthPolicy sections that call out or decide: external auth, token
//! introspection and authorization rules, compiled into snapshot form.
//!
//! The Gateway API `ExternalAuth` filter of an HTTPRoute rule compiles here
//! too ([`compile_filter_ext_auth`]), into the same [`ExtAuth`] entry a
//! policy's `extAuth` makes, so the data plane has one external-auth call.

use crate::auth_refs::{PolicyRefs, invalid};
use crate::auth_sections::CALL_TIMEOUT_MS;
use crate::backends::BackendTarget;
use crate::cidr::parse_cidr;
use crate::conditions::{Problem, reasons};
use crate::duration::parse_duration_ms;
use crate::rule_context::RuleContext;
use gateway_api::experimental::httproutes::{
    HttpRouteRulesFiltersExternalAuth, HttpRouteRulesFiltersExternalAuthProtocol as Protocol,
};
use tollgate_crds::auth_calls::{ExtAuth as ExtAuthSpec, Introspection as IntrospectionSpec};
use tollgate_crds::authorization::{Authorization as AuthorizationSpec, AuthorizationAction};
use tollgate_snapshot::{
    Authorization, AuthzAction, AuthzRule, CallTarget, ClaimMatch, ExtAuth, ExtAuthProtocol,
    Introspection, JwtPrincipal, Redacted,
};

/// Default timeout of an external-auth call, as Envoy Gateway's.
const EXT_AUTH_TIMEOUT_MS: u64 = 10_000;
/// Default negative-cache lifetime of introspection answers, in seconds.
const NEGATIVE_CACHE_SECONDS: u64 = 10;
/// Default longest cache lifetime of an active answer without `exp`.
const MAX_CACHE_SECONDS: u64 = 300;

/// A policy's `extAuth`.
///
/// # Errors
///
/// Neither or both of `http` and `grpc`, a bad timeout, or a Service that
/// does not resolve.
pub(crate) fn compile_ext_auth(
    refs: &mut PolicyRefs<'_>,
    e: &ExtAuthSpec,
    source: &str,
) -> Result<ExtAuth, Problem> {
    let timeout_ms = match &e.timeout {
        Some(t) => {
            parse_duration_ms(t).map_err(|p| invalid(format!("extAuth.timeout: {}", p.message)))?
        }
        None => EXT_AUTH_TIMEOUT_MS,
    };
    let (protocol, target, headers_to_backend) = match (&e.http, &e.grpc) {
        (Some(http), None) => {
            let r = http
                .backend_refs
                .first()
                .ok_or_else(|| invalid("extAuth.http.backendRefs is empty"))?;
            let path = http.path.as_deref().unwrap_or_default();
            if !path.is_empty() && !path.starts_with('/') {
                return Err(invalid(format!(
                    "extAuth.http.path {path:?} does not start with /"
                )));
            }
            let target = refs.service_target("extAuth.http", r, path, timeout_ms)?;
            let headers = lowercase(http.headers_to_backend.as_deref());
            (ExtAuthProtocol::Http, target, headers)
        }
        (None, Some(grpc)) => {
            let r = grpc
                .backend_refs
                .first()
                .ok_or_else(|| invalid("extAuth.grpc.backendRefs is empty"))?;
            let target = refs.service_target("extAuth.grpc", r, "", timeout_ms)?;
            (ExtAuthProtocol::Grpc, target, Vec::new())
        }
        _ => return Err(invalid("extAuth: set exactly one of http and grpc")),
    };
    Ok(ExtAuth {
        target,
        protocol,
        headers_to_auth: lowercase(e.headers_to_ext_auth.as_deref()),
        headers_to_backend,
        fail_open: e.fail_open.unwrap_or(false),
        source: source.to_string(),
    })
}

/// Tollgate's `introspection` section.
///
/// # Errors
///
/// A bad URI or timeout, a missing client secret, an unresolved Service.
pub(crate) fn compile_introspection(
    refs: &mut PolicyRefs<'_>,
    i: &IntrospectionSpec,
) -> Result<Introspection, Problem> {
    let timeout_ms = match &i.timeout {
        Some(t) => parse_duration_ms(t)
            .map_err(|p| invalid(format!("introspection.timeout: {}", p.message)))?,
        None => CALL_TIMEOUT_MS,
    };
    let endpoint = refs.target(
        "introspection.uri",
        &i.uri,
        i.backend_refs.as_deref(),
        timeout_ms,
    )?;
    let secret = refs.secret_value(
        "introspection.clientSecret",
        &i.client_secret,
        "client-secret",
    )?;
    Ok(Introspection {
        endpoint,
        client_id: i.client_id.clone(),
        client_secret: Redacted::new(secret.trim()),
        extract_from: Vec::new(),
        negative_cache_seconds: i
            .negative_cache_seconds
            .map_or(NEGATIVE_CACHE_SECONDS, u64::from),
        max_cache_seconds: i.max_cache_seconds.map_or(MAX_CACHE_SECONDS, u64::from),
        fail_open: i.fail_open.unwrap_or(false),
    })
}

/// The `authorization` section: rules in order, default `Deny`.
///
/// # Errors
///
/// A CIDR that does not parse or a path that does not start with `/`:
/// a rule the data plane would read differently must not be guessed at.
pub(crate) fn compile_authorization(a: &AuthorizationSpec) -> Result<Authorization, Problem> {
    let mut rules = Vec::new();
    for (i, r) in a.rules.iter().flatten().enumerate() {
        let principal = r.principal.clone().unwrap_or_default();
        let operation = r.operation.clone().unwrap_or_default();
        let client_cidrs = principal
            .client_cidrs
            .iter()
            .flatten()
            .map(|c| {
                parse_cidr(c).ok_or_else(|| {
                    invalid(format!(
                        "authorization.rules[{i}].principal.clientCIDRs: {c:?} is not a CIDR"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let path_prefixes = operation.paths.clone().unwrap_or_default();
        if let Some(p) = path_prefixes.iter().find(|p| !p.starts_with('/')) {
            return Err(invalid(format!(
                "authorization.rules[{i}].operation.paths: {p:?} does not start with /"
            )));
        }
        rules.push(AuthzRule {
            name: r.name.clone(),
            action: action(r.action),
            jwt: principal.jwt.map(|j| JwtPrincipal {
                provider: j.provider,
                scopes: j.scopes.unwrap_or_default(),
                claims: j
                    .claims
                    .into_iter()
                    .flatten()
                    .map(|c| ClaimMatch {
                        name: c.name,
                        values: c.values,
                    })
                    .collect(),
            }),
            consumers: principal.consumers.unwrap_or_default(),
            client_cidrs,
            methods: operation
                .methods
                .iter()
                .flatten()
                .map(|m| m.to_ascii_uppercase())
                .collect(),
            path_prefixes,
        });
    }
    Ok(Authorization {
        default_action: action(a.default_action.unwrap_or_default()),
        rules,
    })
}

fn action(a: AuthorizationAction) -> AuthzAction {
    match a {
        AuthorizationAction::Allow => AuthzAction::Allow,
        AuthorizationAction::Deny => AuthzAction::Deny,
    }
}

fn lowercase(names: Option<&[String]>) -> Vec<String> {
    names
        .unwrap_or_default()
        .iter()
        .map(|n| n.to_ascii_lowercase())
        .collect()
}

/// The Gateway API `ExternalAuth` filter of rule `index` of route
/// `route_key`: its Service resolves through the rule's backend table (so
/// the route memo records the read), and it always fails closed, as the
/// spec requires.
///
/// With HTTP, `Authorization` is always sent (the spec's always-sent
/// headers; method, path and host are part of the call itself) plus
/// `allowedHeaders`; with gRPC, no list means every header.
///
/// # Errors
///
/// `UnsupportedValue` for a body forward (not supported), a path that
/// does not start with `/`, or a Service that does not resolve (also a
/// `ResolvedRefs` problem): the rule is then dropped, since serving it
/// without its authentication would fail open.
pub(crate) fn compile_filter_ext_auth(
    f: &HttpRouteRulesFiltersExternalAuth,
    ctx: &mut RuleContext<'_>,
    route_key: &str,
    index: usize,
) -> Result<ExtAuth, Problem> {
    if f.forward_body
        .as_ref()
        .and_then(|b| b.max_size)
        .is_some_and(|m| m > 0)
    {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            "ExternalAuth forwardBody is not supported",
        ));
    }
    let r = &f.backend_ref;
    let backend = ctx.backend(BackendTarget {
        group: r.group.as_deref(),
        kind: r.kind.as_deref(),
        name: &r.name,
        namespace: r.namespace.as_deref(),
        port: r.port,
    });
    let Some(backend) = backend else {
        return Err(Problem::new(
            reasons::UNSUPPORTED_VALUE,
            format!(
                "ExternalAuth backendRef to {} does not resolve, so the rule is not served (external auth fails closed)",
                r.name
            ),
        ));
    };
    let tls = ctx.backends.get(backend).is_some_and(|b| b.tls.is_some());
    let (protocol, path, headers_to_auth, headers_to_backend) = match f.protocol {
        Protocol::Http => {
            let http = f.http.clone().unwrap_or_default();
            let path = http.path.unwrap_or_default();
            if !path.is_empty() && !path.starts_with('/') {
                return Err(Problem::new(
                    reasons::UNSUPPORTED_VALUE,
                    format!("ExternalAuth http.path {path:?} does not start with /"),
                ));
            }
            let mut to_auth = vec!["authorization".to_string()];
            for h in lowercase(http.allowed_headers.as_deref()) {
                if !to_auth.contains(&h) {
                    to_auth.push(h);
                }
            }
            let to_backend = lowercase(http.allowed_response_headers.as_deref());
            (ExtAuthProtocol::Http, path, to_auth, to_backend)
        }
        Protocol::Grpc => {
            let grpc = f.grpc.clone().unwrap_or_default();
            (
                ExtAuthProtocol::Grpc,
                String::new(),
                lowercase(grpc.allowed_headers.as_deref()),
                Vec::new(),
            )
        }
    };
    let ns = r.namespace.as_deref().unwrap_or(ctx.route_ns());
    let scheme = if tls { "https" } else { "http" };
    Ok(ExtAuth {
        target: CallTarget {
            uri: format!(
                "{scheme}://{}.{ns}:{}{path}",
                r.name,
                r.port.unwrap_or_default()
            ),
            backend: Some(backend),
            ca_pem: None,
            timeout_ms: EXT_AUTH_TIMEOUT_MS,
        },
        protocol,
        headers_to_auth,
        headers_to_backend,
        fail_open: false,
        source: format!("httproute/{route_key}/rule/{index}"),
    })
}
