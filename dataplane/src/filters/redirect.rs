//! `RequestRedirect`: the `Location` the gateway answers with.
//!
//! Follows the Gateway API rules for the port: an explicit port wins; else a
//! configured scheme implies its well-known port; else the listener's port
//! (as written in the manifest, not the bound one). A port that is the
//! well-known one for the resulting scheme is left out of `Location`.

use super::rewrite::rewrite_path;
use tollgate_snapshot::Redirect;

/// What a redirect needs to know about the request.
#[derive(Debug, Clone, Copy)]
pub struct RedirectInput<'a> {
    /// The request's scheme, `http` or `https`.
    pub scheme: &'a str,
    /// The request's host, without port.
    pub host: &'a str,
    /// The listener's port as written in the manifest.
    pub listener_port: u16,
    /// The normalized request path.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    /// The `PathPrefix` value the router matched, for `ReplacePrefixMatch`.
    pub matched_prefix: Option<&'a str>,
}

/// The well-known port of a scheme, if it has one.
fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme.to_ascii_lowercase().as_str() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The absolute `Location` URL for a redirect; the request's query string
/// is kept.
pub fn redirect_location(r: &Redirect, input: &RedirectInput<'_>) -> String {
    let scheme = r.scheme.as_deref().unwrap_or(input.scheme);
    let host = r.hostname.as_deref().unwrap_or(input.host);
    let port = r
        .port
        .or_else(|| r.scheme.as_deref().and_then(well_known_port))
        .unwrap_or(input.listener_port);
    let path = match &r.path {
        Some(m) => rewrite_path(m, input.path, input.matched_prefix),
        None => input.path.to_string(),
    };
    let mut location = format!("{scheme}://");
    // An IPv6 literal needs brackets in a URL authority.
    if host.contains(':') && !host.starts_with('[') {
        location.push('[');
        location.push_str(host);
        location.push(']');
    } else {
        location.push_str(host);
    }
    if well_known_port(scheme) != Some(port) {
        location.push(':');
        location.push_str(&port.to_string());
    }
    location.push_str(&path);
    if let Some(q) = input.query.filter(|q| !q.is_empty()) {
        location.push('?');
        location.push_str(q);
    }
    location
}

#[cfg(test)]
mod tests {
    use super::{RedirectInput, redirect_location};
    use tollgate_snapshot::{PathModifier, Redirect};

    fn redirect(scheme: Option<&str>, hostname: Option<&str>, port: Option<u16>) -> Redirect {
        Redirect {
            scheme: scheme.map(String::from),
            hostname: hostname.map(String::from),
            path: None,
            port,
            status_code: 302,
        }
    }

    fn input(scheme: &'static str, listener_port: u16) -> RedirectInput<'static> {
        RedirectInput {
            scheme,
            host: "example.com",
            listener_port,
            path: "/a/b",
            query: None,
            matched_prefix: None,
        }
    }

    /// Port rules: an explicit port wins; a configured scheme implies its
    /// well-known port; otherwise the listener's port; a well-known port of
    /// the resulting scheme is omitted.
    #[test]
    fn port_and_scheme_rules() {
        let cases = [
            (
                redirect(None, None, None),
                input("http", 80),
                "http://example.com/a/b",
            ),
            (
                redirect(None, None, None),
                input("http", 8080),
                "http://example.com:8080/a/b",
            ),
            (
                redirect(None, None, None),
                input("https", 443),
                "https://example.com/a/b",
            ),
            (
                redirect(None, None, None),
                input("https", 8443),
                "https://example.com:8443/a/b",
            ),
            (
                redirect(Some("https"), None, None),
                input("http", 8080),
                "https://example.com/a/b",
            ),
            (
                redirect(Some("http"), None, None),
                input("https", 8443),
                "http://example.com/a/b",
            ),
            (
                redirect(Some("https"), None, Some(8443)),
                input("http", 80),
                "https://example.com:8443/a/b",
            ),
            (
                redirect(Some("https"), None, Some(443)),
                input("http", 80),
                "https://example.com/a/b",
            ),
            (
                redirect(None, None, Some(443)),
                input("http", 80),
                "http://example.com:443/a/b",
            ),
            (
                redirect(None, Some("other.org"), None),
                input("http", 80),
                "http://other.org/a/b",
            ),
            (
                redirect(None, Some("::1"), None),
                input("http", 8080),
                "http://[::1]:8080/a/b",
            ),
        ];
        for (r, i, want) in cases {
            assert_eq!(redirect_location(&r, &i), want, "{r:?}");
        }
    }

    /// The path changes as a rewrite would, and the query is kept.
    #[test]
    fn path_and_query() {
        let mut r = redirect(None, None, None);
        r.path = Some(PathModifier::ReplacePrefixMatch("/new".into()));
        let i = RedirectInput {
            query: Some("x=1&y=%20"),
            matched_prefix: Some("/a"),
            ..input("http", 80)
        };
        assert_eq!(
            redirect_location(&r, &i),
            "http://example.com/new/b?x=1&y=%20"
        );
        r.path = Some(PathModifier::ReplaceFullPath("/full".into()));
        assert_eq!(
            redirect_location(&r, &i),
            "http://example.com/full?x=1&y=%20"
        );
        let empty_query = RedirectInput {
            query: Some(""),
            ..input("http", 80)
        };
        assert_eq!(
            redirect_location(&redirect(None, None, None), &empty_query),
            "http://example.com/a/b"
        );
    }
}
