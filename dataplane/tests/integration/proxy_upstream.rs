//! Load balancing, upstream protocols, connection reuse and proxy hygiene,
//! end to end through `proxy::handle`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use http::{Request, StatusCode};
use tollgate_snapshot::*;

/// A 90/10 split sends exactly 9 of every 10 requests to the first backend.
#[tokio::test]
async fn weighted_split_is_exact() {
    let (big, small) = (Echo::start("big").await, Echo::start("small").await);
    let (b, s) = (big.endpoint(), small.endpoint());
    let gateway = Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("split", vec![], vec![to(0, 90), to(1, 10)])],
            vec![backend("big", vec![b]), backend("small", vec![s])],
        )
    })
    .await;
    for window in 0..10 {
        let mut small_hits = 0;
        for _ in 0..10 {
            if gateway.get("x", "/").await.echo()["backend"] == "small" {
                small_hits += 1;
            }
        }
        assert_eq!(small_hits, 1, "window {window}");
    }
    assert_eq!(big.received().len(), 90);
    assert_eq!(small.received().len(), 10);
}

/// Endpoints of one backend take turns.
#[tokio::test]
async fn round_robin_across_endpoints() {
    let (one, two) = (Echo::start("one").await, Echo::start("two").await);
    let endpoints = vec![one.endpoint(), two.endpoint()];
    let gateway = Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("rr", vec![], vec![to(0, 1)])],
            vec![backend("pair", endpoints)],
        )
    })
    .await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            gateway.get("x", "/").await.echo()["backend"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ["one", "two", "one", "two"]);
}

/// An h2c backend is spoken to over HTTP/2 with prior knowledge.
#[tokio::test]
async fn h2c_upstream() {
    let echo = Echo::start("grpcish").await;
    let endpoint = echo.endpoint();
    let gateway = Gateway::start(|port| {
        let mut h2 = backend("grpcish", vec![endpoint]);
        h2.protocol = BackendProtocol::H2c;
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("h2", vec![], vec![to(0, 1)])],
            vec![h2],
        )
    })
    .await;
    let req = Request::post("/svc/Method?x=1")
        .header("host", "api.example")
        .body("hello".into())
        .unwrap();
    let answer = gateway.send(req).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = answer.echo();
    assert_eq!(seen["version"], "HTTP/2.0");
    assert_eq!(seen["path"], "/svc/Method?x=1");
    assert_eq!(seen["body"], "hello");
}

/// Sequential requests reuse one pooled upstream connection.
#[tokio::test]
async fn upstream_keep_alive_is_reused() {
    let echo = Echo::start("echo").await;
    let gateway = gateway_to(&echo).await;
    for _ in 0..5 {
        assert_eq!(gateway.get("x", "/").await.status, StatusCode::OK);
    }
    assert_eq!(echo.connections(), 1);
    let connections: Vec<_> = echo
        .received()
        .iter()
        .map(|r| r["connection"].clone())
        .collect();
    assert!(connections.iter().all(|c| *c == 1), "{connections:?}");
}

/// Hop-by-hop headers are dropped both ways; the upstream learns the client
/// from X-Forwarded-* and Forwarded, appended to what the client sent.
#[tokio::test]
async fn hop_by_hop_and_forwarding_headers() {
    let echo = Echo::start("echo").await;
    let gateway = gateway_to(&echo).await;
    let req = Request::get("/")
        .header("host", "app.example:8080")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("keep-alive", "timeout=5")
        .header("proxy-connection", "keep-alive")
        .header("te", "trailers")
        .header("x-forwarded-for", "203.0.113.9")
        .header("x-echo-hop", "1")
        .body(Default::default())
        .unwrap();
    let answer = gateway.send(req).await;
    let headers = &answer.echo()["headers"];
    for gone in [
        "x-private",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "transfer-encoding",
    ] {
        assert!(headers.get(gone).is_none(), "{gone} forwarded: {headers}");
    }
    assert_eq!(headers["te"], "trailers");
    assert_eq!(headers["host"], "app.example:8080");
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], "app.example:8080");
    assert_eq!(
        headers["forwarded"],
        "for=127.0.0.1;host=\"app.example:8080\";proto=http"
    );
    // The response's hop-by-hop headers stay behind too.
    assert!(!answer.headers.contains_key("x-hop-secret"));
    assert!(!answer.headers.contains_key("keep-alive"));
    assert_eq!(answer.headers["x-end-to-end"], "1");
}

/// The client-certificate details header is the gateway's alone: a copy a
/// client sends on a plain listener (no certificate at all) never reaches
/// the backend, whatever its case.
#[tokio::test]
async fn client_sent_certificate_details_are_removed() {
    let echo = Echo::start("echo").await;
    let gateway = gateway_to(&echo).await;
    let req = Request::get("/")
        .header("host", "app.example")
        .header(
            "X-Forwarded-Client-Cert",
            "Hash=forged;Subject=\"CN=admin\"",
        )
        .header("x-forwarded-client-cert", "URI=spiffe://forged")
        .body(Default::default())
        .unwrap();
    let answer = gateway.send(req).await;
    let headers = &answer.echo()["headers"];
    assert!(
        headers.get("x-forwarded-client-cert").is_none(),
        "forged details forwarded: {headers}"
    );
    assert_eq!(headers["host"], "app.example");
}
