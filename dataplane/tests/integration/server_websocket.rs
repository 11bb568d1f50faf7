//! WebSocket upgrades relayed to backends: HTTP/1.1 `Upgrade: websocket`
//! and HTTP/2 extended CONNECT, refusals, h2c backends, tunnels across
//! snapshot swaps, the tunnel idle timeout and shutdown drain.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use futures_util::{SinkExt, StreamExt};
use server_support::websocket::*;
use server_support::*;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tollgate_snapshot::{BackendProtocol, Settings};

/// A data plane on a free port whose `/` goes to a WebSocket echo backend.
async fn ws_serving(settings: Settings) -> (Dataplane, u16, std::net::SocketAddr) {
    let backend = ws_echo().await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings = settings;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    (dp, port, backend)
}

use tollgate_dataplane::Dataplane;

/// Text, binary, large and control messages cross an HTTP/1.1 upgrade
/// both ways; the backend saw the upgrade request with its path and the
/// forwarding headers; the tunnel is counted while open.
#[tokio::test]
async fn http1_websocket_round_trips() {
    let (dp, port, _) = ws_serving(Settings::default()).await;
    let (mut ws, hello) = ws_connect(port, "/chat?room=1").await;
    assert_eq!(hello["path"], "/chat?room=1");
    assert_eq!(hello["upgrade"], "websocket");
    assert_eq!(hello["x-forwarded-for"], "127.0.0.1");
    round_trip(&mut ws, Message::text("hello")).await;
    round_trip(&mut ws, Message::binary(vec![0u8, 1, 2, 255])).await;
    let large: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    round_trip(&mut ws, Message::binary(large)).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Pong(data) => assert_eq!(&data[..], b"are you there"),
        other => panic!("expected a pong, got {other:?}"),
    }
    assert_eq!(dp.status().connections.tunnels, 1);
    ws.close(None).await.unwrap();
    // The close handshake completes: the backend answers and closes, the
    // client closes its end, and the tunnel is gone.
    while let Some(Ok(_)) = ws.next().await {}
    drop(ws);
    wait_for(|| dp.status().connections.tunnels == 0).await;
}

/// The backend closing its WebSocket reaches the client as a close frame.
#[tokio::test]
async fn the_backend_can_close() {
    let (_dp, port, _) = ws_serving(Settings::default()).await;
    let (mut ws, _) = ws_connect(port, "/").await;
    ws.send(Message::text("close")).await.unwrap();
    match ws.next().await.unwrap().unwrap() {
        Message::Close(Some(frame)) => assert_eq!(frame.reason.as_str(), "bye"),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

/// A backend that refuses the upgrade has its answer relayed as a normal
/// response, and the connection stays usable for plain HTTP.
#[tokio::test]
async fn a_refused_upgrade_is_a_normal_response() {
    use http_body_util::{BodyExt, Empty};
    let (_dp, port, _) = ws_serving(Settings::default()).await;
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let io = hyper_util::rt::TokioIo::new(stream);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
    tokio::spawn(conn);
    let offer = http::Request::get("/refuse")
        .header("host", "a")
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(offer).await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(!response.headers().contains_key("upgrade"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"refused by backend");
    // The same connection carries the next request (which the
    // WebSocket-only backend cannot answer, so the gateway does).
    let plain = http::Request::get("/refuse")
        .header("host", "a")
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    sender.ready().await.unwrap();
    let next = sender.send_request(plain).await.unwrap();
    assert!(next.status().as_u16() >= 400, "{}", next.status());
}

/// No route: 404 at once, not a hang.
#[tokio::test]
async fn an_unrouted_upgrade_is_404() {
    let backend = ws_echo().await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/only", backend)]))
        .await
        .unwrap();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/elsewhere");
    let refused = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::client_async(url, stream),
    )
    .await
    .unwrap();
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 404);
            assert_eq!(response.headers()["x-tollgate-error"], "routing");
        }
        other => panic!("expected 404, got {other:?}"),
    }
}

/// An h2c backend cannot take an HTTP/1.1 upgrade: 502 `upgrade-unsupported`.
#[tokio::test]
async fn an_h2c_backend_refuses_upgrades_with_502() {
    let backend = ws_echo().await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.backends[0].protocol = BackendProtocol::H2c;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/");
    match tokio_tungstenite::client_async(url, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 502);
            assert_eq!(
                response.headers()["x-tollgate-error"],
                "upgrade-unsupported"
            );
        }
        other => panic!("expected 502, got {other:?}"),
    }
}

/// RFC 8441: a WebSocket over an HTTP/2 extended CONNECT stream reaches an
/// HTTP/1.1 backend as an ordinary upgrade, next to plain requests on the
/// same connection.
#[tokio::test]
async fn http2_extended_connect_round_trips() {
    let (dp, port, _) = ws_serving(Settings::default()).await;
    let mut h2 = h2_connection(port).await;
    let (mut ws, hello) = h2_ws_connect(&mut h2, port, "/over-h2").await.unwrap();
    assert_eq!(hello["path"], "/over-h2");
    assert_eq!(hello["upgrade"], "websocket");
    assert_eq!(hello["sec-websocket-version"], "13");
    round_trip(&mut ws, Message::text("over h2")).await;
    round_trip(&mut ws, Message::binary(vec![7u8; 200_000])).await;
    let (mut second, _) = h2_ws_connect(&mut h2, port, "/second").await.unwrap();
    round_trip(&mut second, Message::text("two streams")).await;
    assert_eq!(dp.status().connections.tunnels, 2);
    assert_eq!(
        h2_ws_connect(&mut h2, port, "/refuse").await.err(),
        Some(403)
    );
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    round_trip(&mut second, Message::text("still here")).await;
}

/// An extended CONNECT for a protocol other than `websocket` is refused
/// (400), never sent to a backend.
#[tokio::test]
async fn other_extended_connect_protocols_are_refused() {
    use http_body_util::Empty;
    let (_dp, port, _) = ws_serving(Settings::default()).await;
    let mut h2 = h2_connection(port).await;
    let request = http::Request::connect(format!("http://127.0.0.1:{port}/x"))
        .version(http::Version::HTTP_2)
        .extension(hyper::ext::Protocol::from_static("webtransport"))
        .body(Empty::new())
        .unwrap();
    h2.ready().await.unwrap();
    let response = h2.send_request(request).await.unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["x-tollgate-error"], "bad-request");
}

/// Polls `done` every few milliseconds for up to 5 s.
pub(crate) async fn wait_for(done: impl Fn() -> bool) {
    for _ in 0..500 {
        if done() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition not reached within 5 s");
}

/// A WebSocket to a backend under a BackendTLSPolicy goes over verified
/// TLS (`kubernetes.io/wss`): the upgrade dials its own TLS connection.
#[tokio::test]
async fn websocket_to_a_tls_backend() {
    use std::sync::Arc;
    use tollgate_e2e::tls::{Ca, server_config};
    let ca = Ca::new("backend ca").unwrap();
    let leaf = ca.leaf(&["ws.example.com"], &[]).unwrap();
    let config = server_config(&leaf, &["http/1.1"], None).unwrap();
    let backend = wss_echo(tokio_rustls::TlsAcceptor::from(Arc::new(config))).await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.backends[0].tls = Some(tollgate_snapshot::BackendTls {
        hostname: "ws.example.com".into(),
        ca_certificates: vec![ca.pem()],
        policy: "backendtlspolicy/default/ws".into(),
        ..Default::default()
    });
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let (mut ws, hello) = ws_connect(port, "/secure").await;
    assert_eq!(hello["path"], "/secure");
    round_trip(&mut ws, Message::text("over tls")).await;
    ws.close(None).await.unwrap();
}
