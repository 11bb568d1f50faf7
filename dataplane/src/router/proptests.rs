//! Property tests: the indexed router agrees with the naive linear one.
//!
//! Random route sets are drawn from small pools of hostnames, paths and
//! conditions so that overlaps (same prefix, exact versus prefix, competing
//! wildcards, failing conditions) are frequent.

use super::linear::LinearRouter;
use super::tests::{exact, listener, prefix, regex, rm, socket, vhost};
use super::{RequestView, SocketRouter};
use http::{HeaderMap, HeaderValue, Method};
use proptest::prelude::*;
use tollgate_snapshot::{HeaderMatch, PathMatch, QueryMatch, RouteMatch, Socket, StringMatch};

const HOST_PATTERNS: &[&str] = &[
    "*",
    "*.example.com",
    "*.a.example.com",
    "a.example.com",
    "example.com",
    "*.com",
    "other.org",
];
const HOSTS: &[&str] = &[
    "a.example.com",
    "b.example.com",
    "x.a.example.com",
    "example.com",
    "other.org",
    "[::1]",
];
const SEGMENTS: &[&str] = &["", "a", "b", "ab", "a.b"];
const REGEXES: &[&str] = &["/a.*", "/a/[ab]+", "/(a|b)/b/?", ".*b", "/"];
const QUERIES: &[&str] = &["q=1", "Q=1", "q=a%20b", "q=2&q=1", "", "x=1&q=12", "q"];

fn path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(SEGMENTS), 1..4),
        any::<bool>(),
    )
        .prop_map(|(segs, slash)| {
            let mut p = format!("/{}", segs.join("/"));
            if slash && !p.ends_with('/') {
                p.push('/');
            }
            p
        })
}

fn path_match() -> impl Strategy<Value = PathMatch> {
    prop_oneof![
        path().prop_map(|p| exact(&p)),
        path().prop_map(|p| prefix(&p)),
        prop::sample::select(REGEXES).prop_map(regex),
    ]
}

fn string_match() -> impl Strategy<Value = StringMatch> {
    prop_oneof![
        prop::sample::select(&["1", "a b", "12"][..]).prop_map(|v| StringMatch::Exact(v.into())),
        prop::sample::select(&["[12]", "[0-9]+"][..])
            .prop_map(|v| StringMatch::RegularExpression(v.into())),
    ]
}

fn route_match() -> impl Strategy<Value = RouteMatch> {
    let method = prop::option::of(prop::sample::select(&["GET", "POST"][..]));
    let header =
        (prop::sample::select(&["x-a", "x-b"][..]), string_match()).prop_map(|(n, value)| {
            HeaderMatch {
                name: n.into(),
                value,
            }
        });
    let query =
        (prop::sample::select(&["q", "Q"][..]), string_match()).prop_map(|(n, value)| QueryMatch {
            name: n.into(),
            value,
        });
    (
        0usize..1000,
        path_match(),
        method,
        prop::collection::vec(header, 0..2),
        prop::collection::vec(query, 0..2),
    )
        .prop_map(|(route, path, method, headers, query)| RouteMatch {
            method: method.map(String::from),
            headers,
            query,
            ..rm(route, path)
        })
}

fn socket_strategy() -> impl Strategy<Value = Socket> {
    let vhosts = prop::collection::vec(
        (
            prop::sample::select(HOST_PATTERNS),
            prop::collection::vec(route_match(), 0..12),
        )
            .prop_map(|(h, ms)| vhost(h, ms)),
        0..4,
    );
    let listeners = prop::collection::vec(
        (prop::sample::select(HOST_PATTERNS), vhosts).prop_map(|(h, vs)| listener(h, vs)),
        0..4,
    );
    listeners.prop_map(socket)
}

#[derive(Debug, Clone)]
struct Request {
    host: &'static str,
    path: String,
    query: Option<&'static str>,
    post: bool,
    headers: Vec<(&'static str, &'static str)>,
}

fn request() -> impl Strategy<Value = Request> {
    let header = (
        prop::sample::select(&["x-a", "x-b"][..]),
        prop::sample::select(&["1", "2", "3", "12"][..]),
    );
    (
        prop::sample::select(HOSTS),
        path(),
        prop::option::of(prop::sample::select(QUERIES)),
        any::<bool>(),
        prop::collection::vec(header, 0..3),
    )
        .prop_map(|(host, path, query, post, headers)| Request {
            host,
            path,
            query,
            post,
            headers,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// For any route set and request, the indexed router picks the same
    /// listener, route and matched prefix as testing every match in order.
    #[test]
    fn indexed_find_agrees_with_linear(s in socket_strategy(), reqs in prop::collection::vec(request(), 1..16)) {
        let indexed = SocketRouter::build(&s).unwrap();
        let linear = LinearRouter::build(&s).unwrap();
        for r in reqs {
            let mut headers = HeaderMap::new();
            for (n, v) in &r.headers {
                headers.append(*n, HeaderValue::from_static(v));
            }
            let method = if r.post { Method::POST } else { Method::GET };
            let view = RequestView {
                host: r.host,
                path: &r.path,
                query: r.query,
                method: &method,
                headers: &headers,
            };
            prop_assert_eq!(indexed.find(&view), linear.find(&view), "{:?}", r);
        }
    }
}
