//! WebSockets through the real binaries in standalone mode: messages of
//! every kind both ways, closes from either side, filters on the upgrade
//! request, refusals, and RFC 8441 extended CONNECT over HTTP/2.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::websocket::*;
use common::*;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tollgate_e2e::Echo;

/// `/ws...` to `echo-ws` with a header filter; `/plain...` to it without.
const ROUTES: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: ws, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /ws}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{name: x-added, value: by-gateway}]
        remove: [x-secret]
    backendRefs: [{name: echo-ws, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /status}}]
    backendRefs: [{name: echo-ws, port: 80}]
";

/// An echo backend and a controller serving [`ROUTES`], ready.
async fn serving(name: &str) -> (Echo, Controller) {
    let echo = Echo::start("echo-ws").await.unwrap();
    let dir = manifest_dir(name);
    write(&dir, "base.yaml", &base("gw", "127.0.0.1", &[&echo]));
    write(&dir, "routes.yaml", ROUTES);
    let ctl = start_controller(&dir, true).await;
    wait_status(
        &format!("{}/ws/ready", ctl.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;
    (echo, ctl)
}

/// Text, binary, a 4 MiB message and ping/pong cross the gateway both
/// ways; the client closes one WebSocket and the backend the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_round_trip_and_either_side_closes() {
    let (_echo, ctl) = serving("ws-messages").await;
    let (mut ws, hello) = ws_connect(ctl.port, "/ws/chat?room=7").await;
    assert_eq!(hello.path, "/ws/chat?room=7");
    assert_eq!(hello.method, "GET");
    assert_eq!(hello.proto, "HTTP/1.1");
    assert_eq!(hello.header("upgrade"), Some("websocket"));
    round_trip(&mut ws, Message::text("hello through the gateway")).await;
    round_trip(&mut ws, Message::binary(vec![0u8, 159, 146, 150, 255])).await;
    let large: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 253) as u8).collect();
    round_trip(&mut ws, Message::binary(large)).await;
    ws.send(Message::Ping(b"ping".to_vec().into()))
        .await
        .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Pong(data) => assert_eq!(&data[..], b"ping"),
        other => panic!("expected a pong, got {other:?}"),
    }
    // Closed by the client: the close handshake completes through the tunnel.
    ws.close(None).await.unwrap();
    assert!(ended(&mut ws).await);

    // Closed by the backend: its close frame reaches the client.
    let (mut ws, _) = ws_connect(ctl.port, "/ws/other").await;
    ws.send(Message::text("close")).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), 1000);
            assert_eq!(frame.reason.as_str(), "bye");
        }
        other => panic!("expected the backend's close, got {other:?}"),
    }
}

/// The upgrade request is routed and filtered like any request: the
/// rule's header modifier sets and removes headers the backend sees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_apply_to_the_upgrade_request() {
    let (_echo, ctl) = serving("ws-filters").await;
    let headers = [("x-secret", "hunter2"), ("x-added", "by-client")];
    let (mut ws, hello) = ws_open(ctl.port, "/ws/filtered", &headers)
        .await
        .unwrap_or_else(|r| panic!("refused: {}", r.status()));
    assert_eq!(hello.header("x-added"), Some("by-gateway"));
    assert_eq!(hello.header("x-secret"), None);
    assert_eq!(hello.header("x-forwarded-for"), Some("127.0.0.1"));
    round_trip(&mut ws, Message::text("filtered")).await;
}

/// A backend refusing the handshake is relayed as its answer; an upgrade
/// no route wants is answered 404 at once, not left hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_and_unrouted_upgrades_are_answered() {
    let (_echo, ctl) = serving("ws-refused").await;
    let refused = ws_open(ctl.port, "/status/403", &[]).await.err().unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("upgrade").is_none());
    let body = refused.body().clone().unwrap_or_default();
    let echoed: tollgate_e2e::echo::EchoResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(echoed.path, "/status/403");

    let unrouted = tokio::time::timeout(Duration::from_secs(5), ws_open(ctl.port, "/nowhere", &[]))
        .await
        .expect("an unrouted upgrade is answered, not left hanging")
        .err()
        .unwrap();
    assert_eq!(unrouted.status(), 404);
    assert_eq!(unrouted.headers()["x-tollgate-error"], "routing");
}

/// RFC 8441: a WebSocket over an HTTP/2 stream reaches the HTTP/1.1
/// backend as an ordinary upgrade; two share one connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_connect_over_http2() {
    let (_echo, ctl) = serving("ws-h2").await;
    let mut h2 = h2_connection(ctl.port).await;
    let (mut first, hello) = h2_ws_open(&mut h2, ctl.port, "/ws/h2").await.unwrap();
    assert_eq!(hello.method, "GET");
    assert_eq!(hello.proto, "HTTP/1.1");
    assert_eq!(hello.header("upgrade"), Some("websocket"));
    assert_eq!(hello.header("x-added"), Some("by-gateway"));
    let (mut second, _) = h2_ws_open(&mut h2, ctl.port, "/ws/h2-b").await.unwrap();
    round_trip(&mut first, Message::text("stream one")).await;
    round_trip(&mut second, Message::binary(vec![9u8; 300_000])).await;
    assert_eq!(
        h2_ws_open(&mut h2, ctl.port, "/status/403").await.err(),
        Some(403)
    );
    first.close(None).await.unwrap();
    assert!(ended(&mut first).await);
    round_trip(&mut second, Message::text("still open")).await;
}
