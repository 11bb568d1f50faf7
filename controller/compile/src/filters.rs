//! HTTPRoute filters: manifest filters into snapshot [`Filter`]s.
//!
//! Every core and extended filter is supported on rules (header modifiers,
//! redirect, rewrite, mirror, CORS); on backendRefs only the header
//! modifiers are. `ExternalAuth` is compiled apart, into the rule's auth
//! (`auth_authz`), never here. `ExtensionRef` is not supported: the rule
//! carrying it is dropped with `UnsupportedValue`, because serving it
//! without the filter would be wrong.

use crate::backends::BackendTarget;
use crate::conditions::{Problem, reasons};
use crate::rule_context::RuleContext;
use gateway_api::experimental::httproutes::{
    HttpRouteRulesBackendRefsFilters, HttpRouteRulesFilters, HttpRouteRulesFiltersCors,
    HttpRouteRulesFiltersRequestMirror, HttpRouteRulesFiltersRequestRedirect,
    HttpRouteRulesFiltersRequestRedirectPath, HttpRouteRulesFiltersRequestRedirectPathType,
    HttpRouteRulesFiltersRequestRedirectScheme, HttpRouteRulesFiltersType as FilterType,
    HttpRouteRulesFiltersUrlRewrite, HttpRouteRulesFiltersUrlRewritePath,
    HttpRouteRulesFiltersUrlRewritePathType,
};
use tollgate_snapshot::{
    Cors, Filter, Header, HeaderModifier, Mirror, PathModifier, Redirect, UrlRewrite,
};

/// Redirect status codes the Gateway API allows.
const REDIRECT_CODES: [u16; 5] = [301, 302, 303, 307, 308];

/// CORS `maxAge` when the manifest leaves it out (API default).
const CORS_DEFAULT_MAX_AGE: u32 = 5;

fn unsupported(message: impl Into<String>) -> Problem {
    Problem::new(reasons::UNSUPPORTED_VALUE, message)
}

fn missing(field: &str) -> Problem {
    unsupported(format!("filter type needs its {field} field"))
}

/// Converts a rule filter.
///
/// # Errors
///
/// `UnsupportedValue` for unsupported filter types and invalid values.
pub(crate) fn convert_filter(
    f: &HttpRouteRulesFilters,
    ctx: &mut RuleContext<'_>,
) -> Result<Filter, Problem> {
    match f.r#type {
        FilterType::RequestHeaderModifier => {
            let m = f
                .request_header_modifier
                .as_ref()
                .ok_or_else(|| missing("requestHeaderModifier"))?;
            Ok(Filter::RequestHeaderModifier(header_modifier(
                m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                m.remove.as_deref(),
            )))
        }
        FilterType::ResponseHeaderModifier => {
            let m = f
                .response_header_modifier
                .as_ref()
                .ok_or_else(|| missing("responseHeaderModifier"))?;
            Ok(Filter::ResponseHeaderModifier(header_modifier(
                m.set.iter().flatten().map(|h| (&h.name, &h.value)),
                m.add.iter().flatten().map(|h| (&h.name, &h.value)),
                m.remove.as_deref(),
            )))
        }
        FilterType::RequestRedirect => {
            let r = f
                .request_redirect
                .as_ref()
                .ok_or_else(|| missing("requestRedirect"))?;
            redirect(r).map(Filter::RequestRedirect)
        }
        FilterType::UrlRewrite => {
            let r = f
                .url_rewrite
                .as_ref()
                .ok_or_else(|| missing("urlRewrite"))?;
            rewrite(r).map(Filter::UrlRewrite)
        }
        FilterType::RequestMirror => {
            let m = f
                .request_mirror
                .as_ref()
                .ok_or_else(|| missing("requestMirror"))?;
            mirror(m, ctx).map(Filter::RequestMirror)
        }
        FilterType::Cors => {
            let c = f.cors.as_ref().ok_or_else(|| missing("cors"))?;
            cors(c).map(Filter::Cors)
        }
        FilterType::ExtensionRef => Err(unsupported("filter type ExtensionRef is not supported")),
        // Rules take ExternalAuth out before converting filters; anywhere
        // else (a backendRef) it is refused rather than silently dropped.
        FilterType::ExternalAuth => Err(unsupported(
            "filter type ExternalAuth is supported only on rules",
        )),
    }
}

/// Converts a backendRef filter; only the header modifiers are supported.
///
/// # Errors
///
/// `UnsupportedValue` for other filter types.
pub(crate) fn convert_backend_filter(
    f: &HttpRouteRulesBackendRefsFilters,
    ctx: &mut RuleContext<'_>,
) -> Result<Filter, Problem> {
    // The backendRef filter schema is the rule filter schema under another
    // generated name; going through JSON lets one converter serve both.
    let as_rule: HttpRouteRulesFilters =
        serde_json::to_value(f)
            .and_then(serde_json::from_value)
            .map_err(|e| unsupported(format!("backendRef filter is malformed: {e}")))?;
    match as_rule.r#type {
        FilterType::RequestHeaderModifier | FilterType::ResponseHeaderModifier => {
            convert_filter(&as_rule, ctx)
        }
        other => Err(unsupported(format!(
            "filter type {} is not supported on backendRefs",
            type_name(&other)
        ))),
    }
}

/// The manifest name of a filter type.
pub(crate) fn type_name(t: &FilterType) -> &'static str {
    match t {
        FilterType::RequestHeaderModifier => "RequestHeaderModifier",
        FilterType::ResponseHeaderModifier => "ResponseHeaderModifier",
        FilterType::RequestMirror => "RequestMirror",
        FilterType::RequestRedirect => "RequestRedirect",
        FilterType::UrlRewrite => "URLRewrite",
        FilterType::ExtensionRef => "ExtensionRef",
        FilterType::Cors => "CORS",
        FilterType::ExternalAuth => "ExternalAuth",
    }
}

fn header_modifier<'a>(
    set: impl Iterator<Item = (&'a String, &'a String)>,
    add: impl Iterator<Item = (&'a String, &'a String)>,
    remove: Option<&[String]>,
) -> HeaderModifier {
    let header = |(n, v): (&String, &String)| Header {
        name: n.to_ascii_lowercase(),
        value: v.clone(),
    };
    HeaderModifier {
        set: set.map(header).collect(),
        add: add.map(header).collect(),
        remove: remove
            .unwrap_or_default()
            .iter()
            .map(|n| n.to_ascii_lowercase())
            .collect(),
    }
}

fn port(p: Option<i32>) -> Result<Option<u16>, Problem> {
    p.map(|p| {
        u16::try_from(p)
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| unsupported(format!("port {p} is out of range")))
    })
    .transpose()
}

fn redirect(r: &HttpRouteRulesFiltersRequestRedirect) -> Result<Redirect, Problem> {
    let code = r.status_code.unwrap_or(302);
    let status_code = u16::try_from(code)
        .ok()
        .filter(|c| REDIRECT_CODES.contains(c))
        .ok_or_else(|| {
            unsupported(format!(
                "redirect statusCode {code} is not one of 301, 302, 303, 307, 308"
            ))
        })?;
    Ok(Redirect {
        scheme: r.scheme.as_ref().map(|s| {
            match s {
                HttpRouteRulesFiltersRequestRedirectScheme::Http => "http",
                HttpRouteRulesFiltersRequestRedirectScheme::Https => "https",
            }
            .to_string()
        }),
        hostname: r.hostname.clone(),
        path: r.path.as_ref().map(redirect_path).transpose()?,
        port: port(r.port)?,
        status_code,
    })
}

fn redirect_path(p: &HttpRouteRulesFiltersRequestRedirectPath) -> Result<PathModifier, Problem> {
    match p.r#type {
        HttpRouteRulesFiltersRequestRedirectPathType::ReplaceFullPath => p
            .replace_full_path
            .clone()
            .map(PathModifier::ReplaceFullPath)
            .ok_or_else(|| missing("replaceFullPath")),
        HttpRouteRulesFiltersRequestRedirectPathType::ReplacePrefixMatch => p
            .replace_prefix_match
            .clone()
            .map(PathModifier::ReplacePrefixMatch)
            .ok_or_else(|| missing("replacePrefixMatch")),
    }
}

fn rewrite(r: &HttpRouteRulesFiltersUrlRewrite) -> Result<UrlRewrite, Problem> {
    Ok(UrlRewrite {
        hostname: r.hostname.clone(),
        path: r.path.as_ref().map(rewrite_path).transpose()?,
    })
}

fn rewrite_path(p: &HttpRouteRulesFiltersUrlRewritePath) -> Result<PathModifier, Problem> {
    match p.r#type {
        HttpRouteRulesFiltersUrlRewritePathType::ReplaceFullPath => p
            .replace_full_path
            .clone()
            .map(PathModifier::ReplaceFullPath)
            .ok_or_else(|| missing("replaceFullPath")),
        HttpRouteRulesFiltersUrlRewritePathType::ReplacePrefixMatch => p
            .replace_prefix_match
            .clone()
            .map(PathModifier::ReplacePrefixMatch)
            .ok_or_else(|| missing("replacePrefixMatch")),
    }
}

/// `percent: N` is N/100; `fraction` defaults its denominator to 100;
/// neither mirrors every request.
fn mirror(
    m: &HttpRouteRulesFiltersRequestMirror,
    ctx: &mut RuleContext<'_>,
) -> Result<Mirror, Problem> {
    let (numerator, denominator) = match (&m.percent, &m.fraction) {
        (Some(_), Some(_)) => return Err(unsupported("mirror sets both percent and fraction")),
        (Some(p), None) => (*p, 100),
        (None, Some(f)) => (f.numerator, f.denominator.unwrap_or(100)),
        (None, None) => (100, 100),
    };
    let share = u32::try_from(numerator)
        .ok()
        .zip(u32::try_from(denominator).ok())
        .filter(|(n, d)| *d > 0 && n <= d)
        .ok_or_else(|| {
            unsupported(format!(
                "mirror fraction {numerator}/{denominator} is not within 0..=1"
            ))
        })?;
    let r = &m.backend_ref;
    let backend = ctx.backend(BackendTarget {
        group: r.group.as_deref(),
        kind: r.kind.as_deref(),
        name: &r.name,
        namespace: r.namespace.as_deref(),
        port: r.port,
    });
    Ok(Mirror {
        backend,
        numerator: share.0,
        denominator: share.1,
    })
}

fn cors(c: &HttpRouteRulesFiltersCors) -> Result<Cors, Problem> {
    let max_age = match c.max_age {
        None => CORS_DEFAULT_MAX_AGE,
        Some(a) => {
            u32::try_from(a).map_err(|_| unsupported(format!("CORS maxAge {a} is negative")))?
        }
    };
    Ok(Cors {
        allow_origins: c.allow_origins.clone().unwrap_or_default(),
        allow_credentials: c.allow_credentials.unwrap_or(false),
        allow_methods: c.allow_methods.clone().unwrap_or_default(),
        allow_headers: c.allow_headers.clone().unwrap_or_default(),
        expose_headers: c.expose_headers.clone().unwrap_or_default(),
        max_age_seconds: max_age,
    })
}
