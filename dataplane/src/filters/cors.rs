//! The `CORS` filter (Gateway API v1.6, `HTTPCORSFilter`).
//!
//! A preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`)
//! is answered by the gateway itself; an actual cross-origin request is
//! forwarded and its response decorated. An origin that is not allowed gets
//! an answer without CORS headers, so the browser refuses it.
//!
//! Wildcards: `*` in `allowOrigins` allows every origin; `*` at the start of
//! an origin's host (`https://*.example.com`) covers any labels to its left.
//! A literal `*` is never sent together with
//! `Access-Control-Allow-Credentials: true`, which browsers refuse: the
//! request's origin, method or headers are echoed instead.

use http::header::{
    ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS,
    ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE,
    ACCESS_CONTROL_REQUEST_HEADERS, ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, COOKIE, ORIGIN,
    VARY,
};
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use tollgate_snapshot::Cors;

/// `Access-Control-Max-Age` when the filter sets none (the Gateway API default).
const DEFAULT_MAX_AGE_SECONDS: u32 = 5;

/// Answers a CORS preflight, or returns `None` when the request is not one
/// (the caller then routes it as usual).
///
/// The answer is always `204 No Content`; it carries the CORS headers only
/// when the origin is allowed.
pub fn preflight(c: &Cors, method: &Method, headers: &HeaderMap) -> Option<Response<()>> {
    if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    let origin = headers.get(ORIGIN)?;
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::NO_CONTENT;
    let out = response.headers_mut();
    add_vary_origin(out);
    let Some(allow_origin) = allowed_origin(c, origin, headers) else {
        return Some(response);
    };
    out.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if c.allow_credentials {
        out.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    let requested_method = headers.get(ACCESS_CONTROL_REQUEST_METHOD);
    if let Some(v) = list_or_echo(&c.allow_methods, c.allow_credentials, requested_method) {
        out.insert(ACCESS_CONTROL_ALLOW_METHODS, v);
    }
    let requested_headers = headers.get(ACCESS_CONTROL_REQUEST_HEADERS);
    if let Some(v) = list_or_echo(&c.allow_headers, c.allow_credentials, requested_headers) {
        out.insert(ACCESS_CONTROL_ALLOW_HEADERS, v);
    }
    if let Some(v) = list_or_echo(&c.expose_headers, c.allow_credentials, None) {
        out.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
    let max_age = match c.max_age_seconds {
        0 => DEFAULT_MAX_AGE_SECONDS,
        n => n,
    };
    out.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(max_age));
    Some(response)
}

/// Adds the CORS headers of an actual (non-preflight) cross-origin request
/// to its response; does nothing for a request without an allowed `Origin`
/// beyond `Vary: Origin`, which keeps caches from mixing the two answers.
pub fn decorate(c: &Cors, request_headers: &HeaderMap, response_headers: &mut HeaderMap) {
    add_vary_origin(response_headers);
    let Some(origin) = request_headers.get(ORIGIN) else {
        return;
    };
    let Some(allow_origin) = allowed_origin(c, origin, request_headers) else {
        return;
    };
    response_headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    if c.allow_credentials {
        response_headers.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
    if let Some(v) = list_or_echo(&c.expose_headers, c.allow_credentials, None) {
        response_headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, v);
    }
}

/// The `Access-Control-Allow-Origin` value for an allowed origin.
///
/// `*` is used only when every origin is allowed, credentials are off and
/// the request carries none (`Cookie`, `Authorization`): a browser refuses
/// `*` on a credentialed request even when the filter does not allow
/// credentials, and the echoed origin is always valid.
fn allowed_origin(c: &Cors, origin: &HeaderValue, request: &HeaderMap) -> Option<HeaderValue> {
    if c.allow_origins.iter().any(|o| o == "*") {
        let credentialed = request.contains_key(COOKIE) || request.contains_key(AUTHORIZATION);
        if !c.allow_credentials && !credentialed {
            return Some(HeaderValue::from_static("*"));
        }
        return Some(origin.clone());
    }
    let parsed = Origin::parse(origin.to_str().ok()?)?;
    c.allow_origins
        .iter()
        .filter_map(|p| Origin::parse(p))
        .any(|pattern| pattern.covers(&parsed))
        .then(|| origin.clone())
}

/// A configured list as a header value: joined with `, `, or for `*` the
/// request's own value (or `*` itself when credentials are off). `None`
/// when there is nothing to send.
fn list_or_echo(
    items: &[String],
    credentials: bool,
    requested: Option<&HeaderValue>,
) -> Option<HeaderValue> {
    if items.is_empty() {
        return None;
    }
    if items.iter().any(|i| i == "*") {
        return match requested.filter(|v| !v.is_empty()) {
            Some(v) => Some(v.clone()),
            None if !credentials => Some(HeaderValue::from_static("*")),
            None => None,
        };
    }
    HeaderValue::from_str(&items.join(", ")).ok()
}

/// Appends `Origin` to `Vary` unless it is already listed (or `Vary: *`).
fn add_vary_origin(headers: &mut HeaderMap) {
    let listed = headers.get_all(VARY).iter().any(|v| {
        v.to_str().is_ok_and(|s| {
            s.split(',')
                .map(str::trim)
                .any(|t| t == "*" || t.eq_ignore_ascii_case("origin"))
        })
    });
    if !listed {
        headers.append(VARY, HeaderValue::from_static("Origin"));
    }
}

/// An origin `scheme://host[:port]`, lowercase, with the scheme's default
/// port filled in.
#[derive(Debug, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: String,
    port: Option<u16>,
}

impl Origin {
    fn parse(s: &str) -> Option<Origin> {
        let (scheme, authority) = s.split_once("://")?;
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.is_empty() || authority.contains('/') {
            return None;
        }
        let (host, port) = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => (
                &authority[..i],
                Some(authority[i + 1..].parse::<u16>().ok()?),
            ),
            _ => (authority, None),
        };
        let scheme = scheme.to_ascii_lowercase();
        let port = port.or(match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        });
        Some(Origin {
            scheme,
            host: host.to_ascii_lowercase(),
            port,
        })
    }

    /// Whether this allowed-origin pattern covers `origin`: same scheme and
    /// port, and the same host or, for a leading `*`, any host ending in the
    /// rest of the pattern with at least one character in front.
    fn covers(&self, origin: &Origin) -> bool {
        if self.scheme != origin.scheme || self.port != origin.port {
            return false;
        }
        match self.host.strip_prefix('*') {
            Some(suffix) => origin.host.len() > suffix.len() && origin.host.ends_with(suffix),
            None => self.host == origin.host,
        }
    }
}

#[cfg(test)]
#[path = "cors_tests.rs"]
mod tests;
