//! Every HTTPRoute filter end to end through `proxy::handle`: header
//! modifiers, redirects, URL rewrites, mirrors, CORS and backend-level
//! filters.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use http::{Method, Request, StatusCode};
use std::time::Duration;
use tollgate_snapshot::*;

fn modifier(set: Vec<Header>, add: Vec<Header>, remove: &[&str]) -> HeaderModifier {
    HeaderModifier {
        set,
        add,
        remove: remove.iter().map(|s| s.to_string()).collect(),
    }
}

/// One rule with `filters` in front of `echo`, on manifest port `port`.
async fn filtered(echo: &Echo, port: u16, filters: Vec<Filter>) -> Gateway {
    let endpoint = echo.endpoint();
    Gateway::start(|bind| {
        snapshot(
            bind,
            port,
            vec![vhost("*", vec![prefix("/api", 0)])],
            vec![route("filtered", filters, vec![to(0, 1)])],
            vec![backend("echo", vec![endpoint])],
        )
    })
    .await
}

/// Request headers are set, added and removed before forwarding; response
/// headers after.
#[tokio::test]
async fn header_modifiers() {
    let echo = Echo::start("echo").await;
    let gateway = filtered(
        &echo,
        80,
        vec![
            Filter::RequestHeaderModifier(modifier(
                vec![header("x-set", "new")],
                vec![header("x-add", "b")],
                &["x-gone"],
            )),
            Filter::ResponseHeaderModifier(modifier(
                vec![header("x-backend", "hidden")],
                vec![header("x-resp", "1")],
                &["content-type"],
            )),
        ],
    )
    .await;
    let req = Request::get("/api")
        .header("host", "x")
        .header("x-set", "old")
        .header("x-add", "a")
        .header("x-gone", "1")
        .body(Default::default())
        .unwrap();
    let answer = gateway.send(req).await;
    assert_eq!(answer.headers["x-backend"], "hidden");
    assert_eq!(answer.headers["x-resp"], "1");
    assert!(!answer.headers.contains_key("content-type"));
    let seen = answer.echo();
    assert_eq!(seen["headers"]["x-set"], "new");
    assert_eq!(seen["headers"]["x-add"], "a, b");
    assert!(seen["headers"].get("x-gone").is_none());
}

fn redirect(
    scheme: Option<&str>,
    hostname: Option<&str>,
    port: Option<u16>,
    path: Option<PathModifier>,
    code: u16,
) -> Filter {
    Filter::RequestRedirect(Redirect {
        scheme: scheme.map(Into::into),
        hostname: hostname.map(Into::into),
        path,
        port,
        status_code: code,
    })
}

/// The gateway answers redirects itself; `Location` uses the listener's
/// manifest port (omitted when well known for the scheme).
#[tokio::test]
async fn redirects() {
    let echo = Echo::start("echo").await;
    let table = [
        (
            80,
            redirect(None, Some("new.example"), None, None, 301),
            301,
            "http://new.example/api/x?q=1",
        ),
        (
            8080,
            redirect(None, Some("new.example"), None, None, 302),
            302,
            "http://new.example:8080/api/x?q=1",
        ),
        (
            8080,
            redirect(Some("https"), None, None, None, 301),
            301,
            "https://host.example/api/x?q=1",
        ),
        (
            80,
            redirect(None, None, Some(9000), None, 307),
            307,
            "http://host.example:9000/api/x?q=1",
        ),
        (
            80,
            redirect(
                None,
                None,
                None,
                Some(PathModifier::ReplacePrefixMatch("/v2".into())),
                308,
            ),
            308,
            "http://host.example/v2/x?q=1",
        ),
    ];
    for (port, filter, status, location) in table {
        let gateway = filtered(&echo, port, vec![filter]).await;
        let answer = gateway.get("host.example:1234", "/api/x?q=1").await;
        assert_eq!(answer.status.as_u16(), status, "{location}");
        assert_eq!(answer.headers["location"], location);
        assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    }
    assert!(
        echo.received().is_empty(),
        "redirects never reach the backend"
    );
}

/// URLRewrite changes the Host and the matched prefix sent upstream; the
/// query is kept.
#[tokio::test]
async fn url_rewrite() {
    let echo = Echo::start("echo").await;
    let gateway = filtered(
        &echo,
        80,
        vec![Filter::UrlRewrite(UrlRewrite {
            hostname: Some("internal.example".into()),
            path: Some(PathModifier::ReplacePrefixMatch("/v2".into())),
        })],
    )
    .await;
    let seen = gateway
        .get("public.example", "/api/users?id=7")
        .await
        .echo();
    assert_eq!(seen["path"], "/v2/users?id=7");
    assert_eq!(seen["headers"]["host"], "internal.example");
    assert_eq!(seen["headers"]["x-forwarded-host"], "public.example");

    let full = filtered(
        &echo,
        80,
        vec![Filter::UrlRewrite(UrlRewrite {
            hostname: None,
            path: Some(PathModifier::ReplaceFullPath("/fixed".into())),
        })],
    )
    .await;
    let seen = full.get("public.example", "/api/users").await.echo();
    assert_eq!(seen["path"], "/fixed");
    assert_eq!(seen["headers"]["host"], "public.example");
}

/// A mirror gets a copy (method, headers, rewritten path, body) while the
/// main response does not wait for it, even when the mirror never answers.
#[tokio::test]
async fn mirror_is_fire_and_forget() {
    let main = Echo::start("main").await;
    let shadow = Echo::start_delayed("shadow", Duration::from_secs(3600)).await;
    let (m, s) = (main.endpoint(), shadow.endpoint());
    let gateway = Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/api", 0)])],
            vec![route(
                "mirrored",
                vec![
                    Filter::RequestHeaderModifier(modifier(
                        vec![header("x-tag", "t")],
                        vec![],
                        &[],
                    )),
                    Filter::RequestMirror(Mirror {
                        backend: Some(1),
                        numerator: 1,
                        denominator: 1,
                    }),
                    Filter::UrlRewrite(UrlRewrite {
                        hostname: None,
                        path: Some(PathModifier::ReplacePrefixMatch("/v2".into())),
                    }),
                ],
                vec![to(0, 1)],
            )],
            vec![backend("main", vec![m]), backend("shadow", vec![s])],
        )
    })
    .await;
    let req = Request::post("/api/items")
        .header("host", "x")
        .body("payload".into())
        .unwrap();
    // The shadow never answers; the main answer must still arrive.
    let answer = gateway.send(req).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.echo()["backend"], "main");
    let copy = &shadow.wait_for(1).await[0];
    assert_eq!(copy["method"], "POST");
    assert_eq!(copy["path"], "/v2/items");
    assert_eq!(copy["headers"]["x-tag"], "t");
    assert_eq!(copy["body"], "payload");
    assert_eq!(answer.echo()["body"], "payload");
}

/// A mirror share of 1/2 mirrors exactly every other request.
#[tokio::test]
async fn mirror_share() {
    let (main, shadow) = (Echo::start("main").await, Echo::start("shadow").await);
    let (m, s) = (main.endpoint(), shadow.endpoint());
    let gateway = Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route(
                "half",
                vec![Filter::RequestMirror(Mirror {
                    backend: Some(1),
                    numerator: 1,
                    denominator: 2,
                })],
                vec![to(0, 1)],
            )],
            vec![backend("main", vec![m]), backend("shadow", vec![s])],
        )
    })
    .await;
    for _ in 0..10 {
        assert_eq!(gateway.get("x", "/").await.status, StatusCode::OK);
    }
    shadow.wait_for(5).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(shadow.received().len(), 5);
}

fn cors() -> Filter {
    Filter::Cors(Cors {
        allow_origins: vec!["https://app.example".into()],
        allow_credentials: false,
        allow_methods: vec!["GET".into(), "PUT".into()],
        allow_headers: vec!["x-custom".into()],
        expose_headers: vec!["x-backend".into()],
        max_age_seconds: 600,
    })
}

/// Preflights are answered by the gateway; actual requests are forwarded
/// and their responses decorated.
#[tokio::test]
async fn cors_preflight_and_decorate() {
    let echo = Echo::start("echo").await;
    let gateway = filtered(&echo, 80, vec![cors()]).await;
    let preflight = Request::builder()
        .method(Method::OPTIONS)
        .uri("/api")
        .header("host", "x")
        .header("origin", "https://app.example")
        .header("access-control-request-method", "PUT")
        .body(Default::default())
        .unwrap();
    let answer = gateway.send(preflight).await;
    assert!(answer.status.is_success(), "{}", answer.status);
    assert_eq!(
        answer.headers["access-control-allow-origin"],
        "https://app.example"
    );
    assert!(
        echo.received().is_empty(),
        "preflights never reach the backend"
    );

    let actual = Request::get("/api")
        .header("host", "x")
        .header("origin", "https://app.example")
        .body(Default::default())
        .unwrap();
    let answer = gateway.send(actual).await;
    assert_eq!(answer.echo()["backend"], "echo");
    assert_eq!(
        answer.headers["access-control-allow-origin"],
        "https://app.example"
    );
}

/// Filters on a backend reference apply only when that backend is chosen.
#[tokio::test]
async fn backend_level_filters() {
    let (a, b) = (Echo::start("a").await, Echo::start("b").await);
    let (ea, eb) = (a.endpoint(), b.endpoint());
    let gateway = Gateway::start(|port| {
        let mut to_a = to(0, 1);
        to_a.filters = vec![
            Filter::RequestHeaderModifier(modifier(vec![header("x-via", "a")], vec![], &[])),
            Filter::ResponseHeaderModifier(modifier(vec![header("x-chosen", "a")], vec![], &[])),
        ];
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("split", vec![], vec![to_a, to(1, 1)])],
            vec![backend("a", vec![ea]), backend("b", vec![eb])],
        )
    })
    .await;
    let first = gateway.get("x", "/").await;
    let second = gateway.get("x", "/").await;
    assert_eq!(first.echo()["backend"], "a");
    assert_eq!(first.echo()["headers"]["x-via"], "a");
    assert_eq!(first.headers["x-chosen"], "a");
    assert_eq!(second.echo()["backend"], "b");
    assert!(second.echo()["headers"].get("x-via").is_none());
    assert!(!second.headers.contains_key("x-chosen"));
}

/// A header the client names in `Connection` is gone before routing and
/// filters: routing cannot match on what the backend never receives, and
/// the client cannot take away a header a filter adds. The same holds for
/// a header the backend names in its `Connection` and a response filter.
#[tokio::test]
async fn connection_named_headers_are_gone_before_routing_and_filters() {
    let (canary, stable) = (Echo::start("canary").await, Echo::start("stable").await);
    let (ec, es) = (canary.endpoint(), stable.endpoint());
    let gateway = Gateway::start(|port| {
        let mut to_canary = prefix("/", 0);
        to_canary.headers = vec![HeaderMatch {
            name: "x-env".into(),
            value: StringMatch::Exact("canary".into()),
        }];
        let filters = vec![
            Filter::RequestHeaderModifier(modifier(vec![header("x-user", "gw")], vec![], &[])),
            Filter::ResponseHeaderModifier(modifier(
                vec![header("x-hop-secret", "gw")],
                vec![],
                &[],
            )),
        ];
        snapshot(
            port,
            80,
            vec![vhost("*", vec![to_canary, prefix("/", 1)])],
            vec![
                route("canary", filters.clone(), vec![to(0, 1)]),
                route("stable", filters, vec![to(1, 1)]),
            ],
            vec![backend("canary", vec![ec]), backend("stable", vec![es])],
        )
    })
    .await;
    let req = Request::get("/")
        .header("host", "x")
        .header("connection", "x-env, x-user")
        .header("x-env", "canary")
        .header("x-echo-hop", "1")
        .body(Default::default())
        .unwrap();
    let answer = gateway.send(req).await;
    let seen = answer.echo();
    assert_eq!(seen["backend"], "stable", "routed on a removed header");
    assert!(seen["headers"].get("x-env").is_none(), "{seen}");
    assert_eq!(
        seen["headers"]["x-user"], "gw",
        "the filter's header arrives"
    );
    // The backend named x-hop-secret in its Connection; the response
    // filter's value is what the client gets.
    assert_eq!(answer.headers["x-hop-secret"], "gw");
    assert!(canary.received().is_empty());
}
