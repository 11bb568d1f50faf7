//! Table tests of the CORS filter; each doc comment states the rule.

use super::{Origin, decorate, preflight};
use http::{HeaderMap, Method, StatusCode};
use tollgate_snapshot::Cors;

fn cors(origins: &[&str], credentials: bool) -> Cors {
    Cors {
        allow_origins: origins.iter().map(|s| s.to_string()).collect(),
        allow_credentials: credentials,
        allow_methods: vec!["GET".into(), "OPTIONS".into()],
        allow_headers: vec!["x-header-1".into(), "x-header-2".into()],
        expose_headers: vec!["x-header-3".into(), "x-header-4".into()],
        max_age_seconds: 3600,
    }
}

/// Header name and value pairs.
type Headers = &'static [(&'static str, &'static str)];

fn headers(pairs: Headers) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs {
        h.append(*n, v.parse().unwrap());
    }
    h
}

fn get<'h>(h: &'h HeaderMap, name: &str) -> Option<&'h str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

const PREFLIGHT: &[(&str, &str)] = &[
    ("origin", "https://www.foo.com"),
    ("access-control-request-method", "GET"),
    ("access-control-request-headers", "x-header-1, x-header-2"),
];

/// An allowed origin's preflight is answered 204 with the origin echoed and
/// the configured methods, headers, exposed headers, max age and
/// credentials.
#[test]
fn preflight_from_an_allowed_origin() {
    let c = cors(&["https://www.foo.com", "https://*.bar.com"], true);
    for origin in [
        "https://www.foo.com",
        "https://www.bar.com",
        "https://xpto.www.bar.com",
    ] {
        let mut req = headers(PREFLIGHT);
        req.insert("origin", origin.parse().unwrap());
        let resp = preflight(&c, &Method::OPTIONS, &req).unwrap();
        let h = resp.headers();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert_eq!(get(h, "access-control-allow-origin"), Some(origin));
        assert_eq!(get(h, "access-control-allow-methods"), Some("GET, OPTIONS"));
        assert_eq!(
            get(h, "access-control-allow-headers"),
            Some("x-header-1, x-header-2")
        );
        assert_eq!(
            get(h, "access-control-expose-headers"),
            Some("x-header-3, x-header-4")
        );
        assert_eq!(get(h, "access-control-max-age"), Some("3600"));
        assert_eq!(get(h, "access-control-allow-credentials"), Some("true"));
        assert_eq!(get(h, "vary"), Some("Origin"));
    }
}

/// A disallowed origin's preflight is still answered, without CORS headers.
#[test]
fn preflight_from_a_disallowed_origin() {
    let c = cors(&["https://www.foo.com", "https://*.bar.com"], true);
    for origin in [
        "https://foobar.com",
        "http://www.foo.com",
        "https://bar.com",
        "https://www.foo.com:8443",
    ] {
        let mut req = headers(PREFLIGHT);
        req.insert("origin", origin.parse().unwrap());
        let resp = preflight(&c, &Method::OPTIONS, &req).unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert!(
            !resp
                .headers()
                .keys()
                .any(|k| k.as_str().starts_with("access-control-")),
            "{origin}"
        );
    }
}

/// Only an OPTIONS request with both `Origin` and
/// `Access-Control-Request-Method` is a preflight.
#[test]
fn what_is_a_preflight() {
    let c = cors(&["*"], false);
    assert!(preflight(&c, &Method::GET, &headers(PREFLIGHT)).is_none());
    assert!(preflight(&c, &Method::OPTIONS, &headers(&PREFLIGHT[..1])).is_none());
    assert!(preflight(&c, &Method::OPTIONS, &headers(&PREFLIGHT[1..])).is_none());
    assert!(preflight(&c, &Method::OPTIONS, &headers(PREFLIGHT)).is_some());
}

/// Wildcards: `*` is sent only without credentials; with credentials the
/// request's origin, method and headers are echoed, and a wildcard with
/// nothing to echo is left out. No credentials header when they are off.
#[test]
fn wildcards_and_credentials() {
    let mut c = cors(&["*"], false);
    c.allow_methods = vec!["*".into()];
    c.allow_headers = vec!["*".into()];
    c.expose_headers = vec!["*".into()];
    c.max_age_seconds = 0;
    let req = headers(&[
        ("origin", "https://foobar.com:12345"),
        ("access-control-request-method", "PUT"),
    ]);

    let resp = preflight(&c, &Method::OPTIONS, &req).unwrap();
    let h = resp.headers();
    assert_eq!(get(h, "access-control-allow-origin"), Some("*"));
    assert_eq!(get(h, "access-control-allow-methods"), Some("PUT"));
    assert_eq!(get(h, "access-control-allow-headers"), Some("*"));
    assert_eq!(get(h, "access-control-expose-headers"), Some("*"));
    assert_eq!(get(h, "access-control-max-age"), Some("5"), "API default");
    assert_eq!(get(h, "access-control-allow-credentials"), None);

    c.allow_credentials = true;
    let resp = preflight(&c, &Method::OPTIONS, &req).unwrap();
    let h = resp.headers();
    assert_eq!(
        get(h, "access-control-allow-origin"),
        Some("https://foobar.com:12345")
    );
    assert_eq!(get(h, "access-control-allow-methods"), Some("PUT"));
    assert_eq!(get(h, "access-control-allow-headers"), None);
    assert_eq!(get(h, "access-control-expose-headers"), None);
    assert_eq!(get(h, "access-control-allow-credentials"), Some("true"));
}

/// Actual requests get Allow-Origin, Allow-Credentials, Expose-Headers and
/// `Vary: Origin`; a credentialed request never gets `*`; a disallowed or
/// missing origin gets only `Vary`.
#[test]
fn decorate_actual_requests() {
    /// Filter, request headers, expected Allow-Origin and Allow-Credentials.
    type Case = (Cors, Headers, Option<&'static str>, Option<&'static str>);
    let cases: [Case; 5] = [
        (
            cors(&["https://www.foo.com"], true),
            &[("origin", "https://www.foo.com")],
            Some("https://www.foo.com"),
            Some("true"),
        ),
        (
            cors(&["https://www.foo.com"], true),
            &[("origin", "https://evil.com")],
            None,
            None,
        ),
        (
            cors(&["*"], false),
            &[("origin", "https://a.com")],
            Some("*"),
            None,
        ),
        (
            cors(&["*"], false),
            &[("origin", "https://a.com"), ("cookie", "a=b")],
            Some("https://a.com"),
            None,
        ),
        (cors(&["*"], false), &[], None, None),
    ];
    for (c, req, origin, credentials) in cases {
        let mut out = headers(&[("vary", "Accept-Encoding")]);
        decorate(&c, &headers(req), &mut out);
        assert_eq!(get(&out, "access-control-allow-origin"), origin, "{req:?}");
        assert_eq!(
            get(&out, "access-control-allow-credentials"),
            credentials,
            "{req:?}"
        );
        let vary: Vec<_> = out
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(vary, ["Accept-Encoding", "Origin"]);
        let exposed = get(&out, "access-control-expose-headers");
        assert_eq!(exposed.is_some(), origin.is_some(), "{req:?}");
    }
}

/// Origins compare scheme, host and port, with the scheme's default port
/// filled in; a leading `*` covers one or more labels.
#[test]
fn origin_patterns() {
    let cases = [
        ("https://example.com", "https://example.com:443", true),
        ("http://example.com:80", "http://example.com", true),
        ("https://example.com", "http://example.com", false),
        ("https://example.com:8443", "https://example.com", false),
        ("https://*.example.com", "https://a.b.example.com", true),
        ("https://*.example.com", "https://example.com", false),
        ("https://*", "https://anything.org", true),
        ("https://EXAMPLE.com", "https://example.COM", true),
        ("http://[::1]:8080", "http://[::1]:8080", true),
    ];
    for (pattern, origin, want) in cases {
        let (p, o) = (
            Origin::parse(pattern).unwrap(),
            Origin::parse(origin).unwrap(),
        );
        assert_eq!(p.covers(&o), want, "{pattern} vs {origin}");
    }
    assert_eq!(Origin::parse("null"), None);
    assert_eq!(Origin::parse("https://a.com/path"), None);
    assert_eq!(Origin::parse("https://a.com:99999"), None);
}
