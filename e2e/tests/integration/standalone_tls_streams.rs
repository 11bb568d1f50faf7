//! Long-lived streams on TLS listeners: a WebSocket over HTTP/1.1 and one
//! over an HTTP/2 stream (extended CONNECT), both through an HTTPS
//! listener, keep working across certificate rotations and route edits;
//! and `nghttp` gets HTTP/2 by ALPN.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::standalone_tls::{https, manifests, one_listener, wait_serving};

use common::tls::{Ca, ClientOptions, Leaf, client_config, connect, secret};
use common::websocket::{described, h2_ws_open, round_trip};
use common::*;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::client_async;
use tokio_tungstenite::tungstenite::Message;
use tollgate_e2e::Echo;

/// The folder's manifests with `leaf` as the listener's certificate, and a
/// second HTTPRoute at `/extra-<n>` so each edit changes the routes too.
fn edited(echo: &Echo, leaf: &Leaf, n: usize) -> String {
    let extra = format!(
        "{}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: extra, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /extra-{n}}}}}]
    backendRefs: [{{name: {svc}, port: 80}}]
",
        secret("web", leaf),
        svc = echo.service(),
    );
    manifests(&https("web", None, &["web"], ""), echo, &extra)
}

/// Waits until a new handshake is served `leaf`.
async fn wait_certificate(port: u16, ca: &Ca, leaf: &Leaf) {
    let config = client_config(ca, &ClientOptions::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(shaken) = connect(port, "example.com", config.clone()).await
            && shaken.leaf() == leaf.der
        {
            return;
        }
        assert!(Instant::now() < deadline, "new certificate never served");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_websockets_survive_rotation_and_route_edits() {
    let ca = Ca::new();
    let leaves = [ca.leaf(&["example.com"]), ca.leaf(&["example.com"])];
    let (echo, dir, ctl) = one_listener("tls-streams", &leaves[0]).await;
    wait_serving(&ctl, &ca, "example.com").await;

    // A WebSocket over HTTP/1.1 on TLS.
    let h1 = ClientOptions {
        alpn: vec!["http/1.1"],
        ..ClientOptions::default()
    };
    let shaken = connect(ctl.port, "example.com", client_config(&ca, &h1))
        .await
        .unwrap();
    let (mut ws1, response) = client_async("wss://example.com/h1", shaken.stream)
        .await
        .unwrap();
    assert_eq!(response.status(), 101);
    assert_eq!(described(&mut ws1).await.path, "/h1");

    // A WebSocket over an HTTP/2 stream on TLS (ALPN h2).
    let shaken = connect(
        ctl.port,
        "example.com",
        client_config(&ca, &ClientOptions::default()),
    )
    .await
    .unwrap();
    assert_eq!(shaken.alpn().as_deref(), Some(&b"h2"[..]));
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(shaken.stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let (mut ws2, hello) = h2_ws_open(&mut sender, ctl.port, "/h2").await.unwrap();
    assert_eq!(hello.path, "/h2");

    // 20 edits: the certificate alternates and the routes change each time.
    for n in 1..=20 {
        let leaf = &leaves[n % 2];
        write(&dir, "all.yaml", &edited(&echo, leaf, n));
        wait_certificate(ctl.port, &ca, leaf).await;
        round_trip(&mut ws1, Message::text(format!("h1 after edit {n}"))).await;
        round_trip(&mut ws2, Message::binary(vec![n as u8; 1024])).await;
    }
}

/// `nghttp` (nghttp2's client) negotiates HTTP/2 by ALPN on an HTTPS
/// listener and gets the backend's answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nghttp_gets_http2_over_tls() {
    common::tls::require_tool("nghttp", "nghttp2-client");
    let ca = Ca::new();
    let (_echo, _dir, ctl) = one_listener("tls-nghttp", &ca.leaf(&["example.com"])).await;
    wait_serving(&ctl, &ca, "example.com").await;
    // nghttp does not verify certificates; the point is the protocol.
    let out = Command::new("nghttp")
        .args([
            "-v",
            "-H",
            ":authority: example.com",
            &format!("https://127.0.0.1:{}/nghttp", ctl.port),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "nghttp failed: {text}");
    assert!(text.contains("The negotiated protocol: h2"), "{text}");
    assert!(text.contains(":status: 200"), "{text}");
    assert!(text.contains("\"path\": \"/nghttp\""), "{text}");
}
