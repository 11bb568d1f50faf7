//! Table tests of the router: each test's doc comment states the rule.

use super::{Found, RequestView, RouterError, SocketRouter};
use http::{HeaderMap, HeaderValue, Method};
use tollgate_snapshot::{
    HeaderMatch, HostMatch, Listener, PathMatch, QueryMatch, RouteMatch, Socket, StringMatch,
    VirtualHost,
};

pub(super) fn rm(route: usize, path: PathMatch) -> RouteMatch {
    RouteMatch {
        route,
        path,
        method: None,
        headers: vec![],
        query: vec![],
    }
}

pub(super) fn exact(p: &str) -> PathMatch {
    PathMatch::Exact(p.into())
}

pub(super) fn prefix(p: &str) -> PathMatch {
    PathMatch::Prefix(p.into())
}

pub(super) fn regex(p: &str) -> PathMatch {
    PathMatch::RegularExpression(p.into())
}

pub(super) fn vhost(host: &str, matches: Vec<RouteMatch>) -> VirtualHost {
    VirtualHost {
        hostname: HostMatch::parse(host),
        matches,
    }
}

pub(super) fn listener(host: &str, virtual_hosts: Vec<VirtualHost>) -> Listener {
    Listener {
        name: format!("gateway/default/gw/listener/{host}"),
        hostname: HostMatch::parse(host),
        virtual_hosts,
        tls: None,
        tls_routes: None,
    }
}

pub(super) fn socket(listeners: Vec<Listener>) -> Socket {
    Socket {
        address: "127.0.0.1".into(),
        bind_port: 8080,
        port: 80,
        listeners,
        proxy_protocol: false,
    }
}

/// A socket with one `*` listener holding one `*` virtual host.
fn one_vhost(matches: Vec<RouteMatch>) -> SocketRouter {
    SocketRouter::build(&socket(vec![listener("*", vec![vhost("*", matches)])])).unwrap()
}

/// A request: `method path?query` on `host` with `headers`.
struct Req {
    host: &'static str,
    method: Method,
    path: &'static str,
    query: Option<&'static str>,
    headers: HeaderMap,
}

fn get(host: &'static str, path: &'static str) -> Req {
    Req {
        host,
        method: Method::GET,
        path,
        query: None,
        headers: HeaderMap::new(),
    }
}

impl Req {
    fn find<'a>(&self, router: &'a SocketRouter) -> Option<Found<'a>> {
        router.find(&RequestView {
            host: self.host,
            path: self.path,
            query: self.query,
            method: &self.method,
            headers: &self.headers,
        })
    }

    fn route(&self, router: &SocketRouter) -> Option<usize> {
        self.find(router).map(|f| f.route)
    }
}

/// Exact beats prefix; a longer prefix (listed first) beats a shorter one;
/// prefixes match on element boundaries, ignore a trailing `/`, and `/`
/// matches everything.
#[test]
fn exact_then_longest_prefix() {
    let router = one_vhost(vec![
        rm(0, exact("/foo")),
        rm(1, prefix("/foo/bar/")),
        rm(2, prefix("/foo")),
        rm(3, prefix("/")),
    ]);
    let cases = [
        ("/foo", 0),
        ("/foo/", 2),
        ("/foo/bar", 1),
        ("/foo/bar/", 1),
        ("/foo/bar/baz", 1),
        ("/foo/barbaz", 2),
        ("/foobar", 3),
        ("/", 3),
        ("/other/deep/path", 3),
    ];
    for (path, want) in cases {
        assert_eq!(get("h", path).route(&router), Some(want), "{path}");
    }
}

/// The given precedence order decides, whichever structure indexes a match:
/// a prefix listed before an exact match wins over it.
#[test]
fn order_decides_across_structures() {
    let router = one_vhost(vec![
        rm(0, prefix("/a")),
        rm(1, exact("/a/b")),
        rm(2, regex("/a/.*")),
    ]);
    assert_eq!(get("h", "/a/b").route(&router), Some(0));
    let router = one_vhost(vec![rm(0, regex("/a/[0-9]+")), rm(1, prefix("/a"))]);
    assert_eq!(get("h", "/a/42").route(&router), Some(0));
    assert_eq!(get("h", "/a/x").route(&router), Some(1));
}

/// A path regular expression must match the whole path.
#[test]
fn regex_is_anchored() {
    let router = one_vhost(vec![rm(0, regex("/v[0-9]+/items")), rm(1, regex("/x|/y"))]);
    let cases = [
        ("/v1/items", Some(0)),
        ("/v12/items", Some(0)),
        ("/v1/items/3", None),
        ("/api/v1/items", None),
        ("/x", Some(1)),
        ("/y", Some(1)),
        ("/xy", None),
    ];
    for (path, want) in cases {
        assert_eq!(get("h", path).route(&router), want, "{path}");
    }
}

/// The most specific listener hostname wins even when a wildcard listener
/// has a matching path: there is no fall-through to a less specific one.
#[test]
fn most_specific_listener_wins_without_fallthrough() {
    let router = SocketRouter::build(&socket(vec![
        listener(
            "api.example.com",
            vec![vhost("api.example.com", vec![rm(0, exact("/only"))])],
        ),
        listener(
            "*.example.com",
            vec![vhost("*.example.com", vec![rm(1, prefix("/"))])],
        ),
        listener("*", vec![vhost("*", vec![rm(2, prefix("/"))])]),
    ]))
    .unwrap();
    let cases = [
        ("api.example.com", "/only", Some((0, 0))),
        ("api.example.com", "/other", None),
        ("www.example.com", "/other", Some((1, 1))),
        ("example.com", "/other", Some((2, 2))),
        ("[::1]", "/", Some((2, 2))),
        ("API.Example.COM", "/only", Some((0, 0))),
        ("api.example.com.", "/only", Some((0, 0))),
    ];
    for (host, path, want) in cases {
        let got = get(host, path).find(&router).map(|f| (f.listener, f.route));
        assert_eq!(got, want, "{host}{path}");
    }
}

/// Inside a listener the virtual host is chosen the same way: exact, then
/// the longest wildcard suffix, then `*`; a host no virtual host covers
/// finds nothing.
#[test]
fn virtual_host_specificity() {
    let router = SocketRouter::build(&socket(vec![listener(
        "*.example.com",
        vec![
            vhost("*.example.com", vec![rm(0, prefix("/"))]),
            vhost("*.api.example.com", vec![rm(1, prefix("/"))]),
            vhost("a.api.example.com", vec![rm(2, prefix("/"))]),
        ],
    )]))
    .unwrap();
    let cases = [
        ("a.api.example.com", Some(2)),
        ("b.api.example.com", Some(1)),
        ("api.example.com", Some(0)),
        ("example.com", None),
    ];
    for (host, want) in cases {
        assert_eq!(get(host, "/").route(&router), want, "{host}");
    }
}

/// A candidate whose method, header or query conditions fail is skipped for
/// the next one in precedence order.
#[test]
fn conditions_filter_candidates() {
    let mut by_method = rm(0, prefix("/"));
    by_method.method = Some("POST".into());
    let mut by_header = rm(1, prefix("/"));
    by_header.headers = vec![HeaderMatch {
        name: "x-version".into(),
        value: StringMatch::RegularExpression("v[12]".into()),
    }];
    let mut by_query = rm(2, prefix("/"));
    by_query.query = vec![QueryMatch {
        name: "Tier".into(),
        value: StringMatch::Exact("gold plus".into()),
    }];
    let router = one_vhost(vec![by_method, by_header, by_query, rm(3, prefix("/"))]);

    let mut post = get("h", "/");
    post.method = Method::POST;
    assert_eq!(post.route(&router), Some(0));

    let header = |v: &'static str| {
        let mut r = get("h", "/");
        r.headers.append("X-Version", HeaderValue::from_static(v));
        r
    };
    assert_eq!(header("v2").route(&router), Some(1));
    assert_eq!(
        header("v22").route(&router),
        Some(3),
        "header regex is anchored"
    );
    let mut first_value_counts = header("v3");
    first_value_counts
        .headers
        .append("x-version", HeaderValue::from_static("v1"));
    assert_eq!(
        first_value_counts.route(&router),
        Some(3),
        "first value only"
    );

    let query = |q: &'static str| {
        let mut r = get("h", "/");
        r.query = Some(q);
        r
    };
    let cases = [
        ("Tier=gold%20plus", Some(2)),
        ("a=1&%54ier=gold%20plus", Some(2)),
        ("Tier=gold%20plus&Tier=silver", Some(2)),
        ("Tier=silver&Tier=gold%20plus", Some(3)),
        ("tier=gold%20plus", Some(3)),
        ("Tier=gold+plus", Some(3)),
        ("Tier", Some(3)),
    ];
    for (q, want) in cases {
        assert_eq!(query(q).route(&router), want, "{q}");
    }
}

/// `matched_prefix` is the `PathPrefix` value as written, and `None` for
/// exact and regex matches.
#[test]
fn reports_the_matched_prefix() {
    let router = one_vhost(vec![
        rm(0, exact("/e")),
        rm(1, prefix("/api/")),
        rm(2, regex("/r.*")),
    ]);
    let prefix_of = |p: &'static str| get("h", p).find(&router).and_then(|f| f.matched_prefix);
    assert_eq!(prefix_of("/api/x"), Some("/api/"));
    assert_eq!(prefix_of("/e"), None);
    assert_eq!(prefix_of("/rx"), None);
}

/// `path_template` is the value of the match that held, as written: what
/// telemetry reports as `http.route`, never the request's own path.
#[test]
fn reports_the_path_template() {
    let router = one_vhost(vec![
        rm(0, exact("/e")),
        rm(1, prefix("/api/")),
        rm(2, regex("/r.*")),
    ]);
    let template = |p: &'static str| {
        get("h", p)
            .find(&router)
            .map(|f| f.path_template.to_string())
    };
    assert_eq!(template("/api/users/42").as_deref(), Some("/api/"));
    assert_eq!(template("/e").as_deref(), Some("/e"));
    assert_eq!(template("/rxyz").as_deref(), Some("/r.*"));
}

/// No listeners, or no match in the chosen virtual host, finds nothing.
#[test]
fn nothing_found() {
    let empty = SocketRouter::build(&socket(vec![])).unwrap();
    assert_eq!(get("h", "/").find(&empty), None);
    let router = one_vhost(vec![rm(0, exact("/a"))]);
    assert_eq!(get("h", "/b").find(&router), None);
}

/// A regular expression that does not compile, is too long, or is too large
/// refuses the whole socket.
#[test]
fn bad_regexes_are_refused() {
    let long = "a".repeat(tollgate_snapshot::REGEX_MAX_PATTERN_LEN + 1);
    let huge = "\\w{1000}\\w{1000}\\w{1000}";
    for pattern in ["(", long.as_str(), huge] {
        let s = socket(vec![listener(
            "*",
            vec![vhost("*", vec![rm(0, regex(pattern))])],
        )]);
        assert!(matches!(
            SocketRouter::build(&s),
            Err(RouterError::Regex { .. })
        ));
        let mut m = rm(0, prefix("/"));
        m.headers = vec![HeaderMatch {
            name: "x".into(),
            value: StringMatch::RegularExpression(pattern.into()),
        }];
        let s = socket(vec![listener("*", vec![vhost("*", vec![m])])]);
        assert!(SocketRouter::build(&s).is_err());
    }
}
