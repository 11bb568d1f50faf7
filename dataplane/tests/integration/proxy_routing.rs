//! Routing, request checks and the gateway's error answers, end to end
//! through `proxy::handle` on a real socket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use http::StatusCode;
use tollgate_snapshot::*;

/// `/admin` goes to the admin backend, everything else to the public one.
async fn admin_and_public() -> (Gateway, Echo, Echo) {
    let (admin, public) = (Echo::start("admin").await, Echo::start("public").await);
    let (a, p) = (admin.endpoint(), public.endpoint());
    let gateway = Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost(
                "app.example",
                vec![exact("/admin", 0), prefix("/", 1)],
            )],
            vec![
                route("admin", vec![], vec![to(0, 1)]),
                route("public", vec![], vec![to(1, 1)]),
            ],
            vec![backend("admin", vec![a]), backend("public", vec![p])],
        )
    })
    .await;
    (gateway, admin, public)
}

/// A request no route wants gets the gateway's own 404, plain text.
#[tokio::test]
async fn no_route_is_404_plain_text() {
    let (gateway, _admin, _public) = admin_and_public().await;
    let answer = gateway.get("other.example", "/y").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(answer.headers["x-tollgate-error"], "routing");
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(
        answer.text(),
        "404 Not Found: no route for host \"other.example\" path \"/y\"\n"
    );
}

/// The Host port and case do not matter for routing; the Host sent upstream
/// is the one received.
#[tokio::test]
async fn host_is_routed_without_port_and_case() {
    let (gateway, _admin, _public) = admin_and_public().await;
    let echo = gateway.get("APP.example:8080", "/x?b=1&a=2").await.echo();
    assert_eq!(echo["backend"], "public");
    assert_eq!(echo["path"], "/x?b=1&a=2");
    assert_eq!(echo["headers"]["host"], "APP.example:8080");
}

/// Dot segments and encoded unreserved characters are normalized before
/// routing, so they cannot dodge an `/admin` route; the upstream sees the
/// normalized path.
#[tokio::test]
async fn normalized_paths_route_as_admin() {
    let (gateway, _admin, _public) = admin_and_public().await;
    for path in ["/public/../admin", "/%61dmin", "/./admin"] {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n");
        let answer = gateway.raw(&raw).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{path}: {answer}");
        assert!(answer.contains(r#""backend":"admin""#), "{path}: {answer}");
        assert!(answer.contains(r#""path":"/admin""#), "{path}: {answer}");
    }
}

/// An encoded slash is refused with 400 unless the settings allow it.
#[tokio::test]
async fn encoded_slash_is_400() {
    let (gateway, admin, public) = admin_and_public().await;
    let answer = gateway.get("app.example", "/a%2Fb").await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.headers["x-tollgate-error"], "bad-request");
    assert!(admin.received().is_empty() && public.received().is_empty());
}

/// HTTP/1.1 without Host is 400; an absolute-form target's authority is
/// the host, and it becomes the Host sent upstream.
#[tokio::test]
async fn host_rules() {
    let (gateway, _admin, _public) = admin_and_public().await;
    let missing = gateway
        .raw("GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        .await;
    assert!(missing.starts_with("HTTP/1.1 400"), "{missing}");
    assert!(
        missing.contains("x-tollgate-error: bad-request"),
        "{missing}"
    );

    let twice = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n";
    assert!(gateway.raw(twice).await.starts_with("HTTP/1.1 400"));

    let absolute =
        "GET http://app.example/admin HTTP/1.1\r\nHost: wrong.example\r\nConnection: close\r\n\r\n";
    let answer = gateway.raw(absolute).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""backend":"admin""#), "{answer}");
    assert!(answer.contains(r#""host":"app.example""#), "{answer}");
}

/// A rule whose chosen backend reference is invalid answers 500; a backend
/// with no endpoints 503; a refused connection 503.
#[tokio::test]
async fn backend_failures() {
    let refused = refused_endpoint().await;
    let gateway = Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost(
                "*",
                vec![
                    prefix("/invalid", 0),
                    prefix("/empty", 1),
                    prefix("/refused", 2),
                    prefix("/none", 3),
                ],
            )],
            vec![
                route(
                    "invalid",
                    vec![],
                    vec![BackendRef {
                        backend: None,
                        weight: 1,
                        filters: vec![],
                    }],
                ),
                route("empty", vec![], vec![to(0, 1)]),
                route("refused", vec![], vec![to(1, 1)]),
                route("none", vec![], vec![to(0, 0)]),
            ],
            vec![backend("empty", vec![]), backend("refused", vec![refused])],
        )
    })
    .await;
    let table = [
        ("/invalid", 500, "no-backend"),
        ("/empty", 503, "no-endpoints"),
        ("/refused", 503, "upstream-connect"),
        ("/none", 500, "no-backend"),
    ];
    for (path, status, kind) in table {
        let answer = gateway.get("x", path).await;
        assert_eq!(answer.status.as_u16(), status, "{path}: {}", answer.text());
        assert_eq!(answer.headers["x-tollgate-error"], kind, "{path}");
        assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");
    }
}

/// A backend slower than `request_ms` or `backend_request_ms` gets 504.
#[tokio::test]
async fn slow_backend_is_504() {
    let echo = Echo::start("slow").await;
    let endpoint = echo.endpoint();
    let gateway = Gateway::start(|port| {
        let mut whole = route("whole", vec![], vec![to(0, 1)]);
        whole.timeouts.request_ms = Some(100);
        let mut per_try = route("try", vec![], vec![to(0, 1)]);
        per_try.timeouts.backend_request_ms = Some(100);
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/whole", 0), prefix("/try", 1)])],
            vec![whole, per_try],
            vec![backend("slow", vec![endpoint])],
        )
    })
    .await;
    for path in ["/whole", "/try"] {
        let mut req = get("x", path);
        req.headers_mut()
            .insert("x-echo-delay-ms", "3000".parse().unwrap());
        let answer = gateway.send(req).await;
        assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT, "{path}");
        assert_eq!(answer.headers["x-tollgate-error"], "upstream-timeout");
    }
    // A fast answer under the same timeouts passes.
    assert_eq!(gateway.get("x", "/whole").await.status, StatusCode::OK);
}

/// A snapshot with a dangling route index or a non-IP socket address is
/// refused by `Runtime::build`; the empty runtime binds nothing.
#[tokio::test]
async fn building_rejects_bad_snapshots() {
    use tollgate_dataplane::runtime::Runtime;
    use tollgate_dataplane::upstream::Clients;
    let mut bad = snapshot(
        8080,
        80,
        vec![vhost("*", vec![prefix("/", 3)])],
        vec![],
        vec![],
    );
    assert!(Runtime::build(bad.clone(), &Clients::new()).is_err());
    bad.sockets[0].listeners[0].virtual_hosts.clear();
    bad.sockets[0].address = "not-an-ip".into();
    assert!(Runtime::build(bad, &Clients::new()).is_err());
    let empty = Runtime::empty("default/gw");
    assert_eq!(empty.sockets().count(), 0);
    assert_eq!(empty.snapshot().gateway, "default/gw");
}
