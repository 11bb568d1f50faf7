//! Route matching time as the number of routes grows.
//!
//! Two layouts at 10, 1k, 10k and 100k routes:
//! - `many_hosts`: ten routes per exact hostname (distinct prefix paths,
//!   every fifth with a header match), plus a wildcard virtual host;
//! - `one_host`: every route in one `*` virtual host, so the path index alone
//!   has to keep the cost flat.
//!
//! Each layout is timed for a request that hits the last-added route and
//! one that hits a route in the middle.

#![allow(missing_docs)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{HeaderMap, HeaderValue, Method};
use std::hint::black_box;
use tollgate_dataplane::router::{RequestView, SocketRouter};
use tollgate_snapshot::{
    HeaderMatch, HostMatch, Listener, PathMatch, RouteMatch, Socket, StringMatch, VirtualHost,
};

const SIZES: [usize; 4] = [10, 1_000, 10_000, 100_000];
const PER_HOST: usize = 10;

fn route_match(i: usize) -> RouteMatch {
    let headers = if i % 5 == 4 {
        vec![HeaderMatch {
            name: "x-tenant".into(),
            value: StringMatch::Exact(format!("t{i}")),
        }]
    } else {
        vec![]
    };
    RouteMatch {
        route: i,
        path: PathMatch::Prefix(format!("/svc{i}/api")),
        method: None,
        headers,
        query: vec![],
    }
}

/// Orders matches the way the controller does: header matches first among
/// prefixes of the same length.
fn sorted(mut matches: Vec<RouteMatch>) -> Vec<RouteMatch> {
    matches.sort_by_key(|m| std::cmp::Reverse(m.headers.len()));
    matches
}

fn vhost(hostname: HostMatch, matches: Vec<RouteMatch>) -> VirtualHost {
    VirtualHost { hostname, matches }
}

fn socket(virtual_hosts: Vec<VirtualHost>) -> Socket {
    Socket {
        address: "0.0.0.0".into(),
        bind_port: 8080,
        port: 80,
        listeners: vec![Listener {
            tls: None,
            tls_routes: None,
            name: "gateway/default/gw/listener/http".into(),
            hostname: HostMatch::Any,
            virtual_hosts,
        }],
        proxy_protocol: false,
    }
}

fn host(i: usize) -> String {
    format!("h{}.example.com", i / PER_HOST)
}

fn many_hosts(n: usize) -> Socket {
    let mut vhosts: Vec<VirtualHost> = (0..n)
        .step_by(PER_HOST)
        .map(|first| {
            let matches = (first..(first + PER_HOST).min(n))
                .map(route_match)
                .collect();
            vhost(HostMatch::Exact(host(first)), sorted(matches))
        })
        .collect();
    let catch_all = RouteMatch {
        route: n,
        path: PathMatch::Prefix("/".into()),
        method: None,
        headers: vec![],
        query: vec![],
    };
    vhosts.push(vhost(
        HostMatch::Wildcard("example.com".into()),
        vec![catch_all],
    ));
    socket(vhosts)
}

fn one_host(n: usize) -> Socket {
    socket(vec![vhost(
        HostMatch::Any,
        sorted((0..n).map(route_match).collect()),
    )])
}

fn bench_layout(c: &mut Criterion, name: &str, build: fn(usize) -> Socket) {
    let mut group = c.benchmark_group(name);
    for n in SIZES {
        let router = match SocketRouter::build(&build(n)) {
            Ok(r) => r,
            Err(e) => panic!("router build failed: {e}"),
        };
        for (label, i) in [("last", n - 1), ("middle", n / 2)] {
            let host = host(i);
            let path = format!("/svc{i}/api/items/42");
            let mut headers = HeaderMap::new();
            headers.insert("user-agent", HeaderValue::from_static("bench"));
            headers.insert(
                "x-tenant",
                HeaderValue::from_str(&format!("t{i}")).unwrap_or(HeaderValue::from_static("t")),
            );
            let method = Method::GET;
            let request = RequestView {
                host: &host,
                path: &path,
                query: Some("page=2"),
                method: &method,
                headers: &headers,
            };
            assert_eq!(router.find(&request).map(|f| f.route), Some(i));
            group.bench_with_input(BenchmarkId::new(label, n), &request, |b, r| {
                b.iter(|| router.find(black_box(r)))
            });
        }
    }
    group.finish();
}

fn benches(c: &mut Criterion) {
    bench_layout(c, "router/many_hosts", many_hosts);
    bench_layout(c, "router/one_host", one_host);
}

criterion_group!(router, benches);
criterion_main!(router);
