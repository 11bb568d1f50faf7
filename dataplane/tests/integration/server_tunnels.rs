//! What ends a WebSocket tunnel and what does not: snapshot swaps and
//! route removal never do; the tunnel idle timeout and shutdown drain do.

#![allow(clippy::unwrap_used)]

use crate::server_support;
use crate::server_websocket::wait_for;

use futures_util::StreamExt;
use server_support::websocket::*;
use server_support::*;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tollgate_snapshot::Settings;

/// Tunnels opened over HTTP/1.1 and over an HTTP/2 stream keep relaying
/// through 20 snapshot swaps, including ones that remove their route; new
/// upgrades follow the new routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaps_and_route_removal_never_close_tunnels() {
    let (ws_backend, plain) = (ws_echo().await, echo("plain").await);
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/ws", ws_backend), ("/", plain)]))
        .await
        .unwrap();
    let (mut h1, _) = ws_connect(port, "/ws/h1").await;
    let mut h2 = h2_connection(port).await;
    let (mut over_h2, _) = h2_ws_connect(&mut h2, port, "/ws/h2").await.unwrap();
    for v in 2..=21 {
        // Odd versions drop the WebSocket route altogether.
        let routes: &[(&str, _)] = if v % 2 == 1 {
            &[("/", plain)]
        } else {
            &[("/ws", ws_backend), ("/", plain)]
        };
        dp.apply(snapshot(v, port, routes)).await.unwrap();
        round_trip(&mut h1, Message::text(format!("h1 after v{v}"))).await;
        round_trip(&mut over_h2, Message::text(format!("h2 after v{v}"))).await;
    }
    assert_eq!(dp.status().version, Some(21));
    assert_eq!(dp.status().connections.tunnels, 2);
    // v21 has no WebSocket route: a new upgrade goes to the plain backend,
    // which answers it as an ordinary request.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/ws/new");
    match tokio_tungstenite::client_async(url, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 200);
        }
        other => panic!("expected the plain backend's 200, got {other:?}"),
    }
}

/// A tunnel with no byte either way for the tunnel idle timeout is
/// closed; one that keeps talking is not.
#[tokio::test]
async fn idle_tunnels_are_closed() {
    let settings = Settings {
        tunnel_idle_timeout_ms: Some(400),
        ..Settings::default()
    };
    let backend = ws_echo().await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings = settings;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();

    let (mut busy, _) = ws_connect(port, "/busy").await;
    let (mut idle, _) = ws_connect(port, "/idle").await;
    let opened = Instant::now();
    // The busy one talks every 100 ms, past twice the idle timeout.
    for i in 0..9 {
        round_trip(&mut busy, Message::text(format!("{i}"))).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The idle one has been closed under it by now: its stream ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), idle.next()).await;
    match ended.unwrap() {
        None | Some(Err(_)) => {}
        Some(Ok(other)) => panic!("expected the idle tunnel closed, got {other:?}"),
    }
    assert!(opened.elapsed() >= Duration::from_millis(400));
    round_trip(&mut busy, Message::text("still open")).await;
    wait_for(|| dp.status().connections.tunnels == 1).await;
}

/// Shutdown lets open tunnels carry on for the drain timeout, then closes
/// them, and the data plane reports closed.
#[tokio::test]
async fn shutdown_drains_tunnels() {
    let settings = Settings {
        drain_timeout_ms: 500,
        ..Settings::default()
    };
    let backend = ws_echo().await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings = settings;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let (mut h1, _) = ws_connect(port, "/h1").await;
    let mut h2 = h2_connection(port).await;
    let (mut over_h2, _) = h2_ws_connect(&mut h2, port, "/h2").await.unwrap();

    let started = Instant::now();
    dp.shutdown();
    // Still relaying while draining.
    round_trip(&mut h1, Message::text("draining")).await;
    round_trip(&mut over_h2, Message::text("draining")).await;
    tokio::time::timeout(Duration::from_secs(5), dp.closed())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(500), "closed after {took:?}");
    // Closed under them: each stream ends or reports the reset.
    assert!(!matches!(h1.next().await, Some(Ok(Message::Text(_)))));
    assert!(!matches!(over_h2.next().await, Some(Ok(Message::Text(_)))));
    assert_eq!(dp.status().connections.tunnels, 0);
}

/// The rule's request timeout bounds the wait for the backend's `101`
/// (504 when it never comes), never the tunnel after it.
#[tokio::test]
async fn the_request_timeout_ends_at_the_switch() {
    let backend = ws_echo().await;
    // A backend that accepts connections and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/silent", silent_addr), ("/", backend)]);
    for route in &mut snap.routes {
        route.timeouts.request_ms = Some(200);
    }
    let dp = dataplane();
    dp.apply(snap).await.unwrap();

    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let url = format!("ws://127.0.0.1:{port}/silent");
    match tokio_tungstenite::client_async(url, stream).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 504);
            assert_eq!(response.headers()["x-tollgate-error"], "upstream-timeout");
        }
        other => panic!("expected 504, got {other:?}"),
    }

    let (mut ws, _) = ws_connect(port, "/chat").await;
    // Time passing is what is tested: twice the request timeout.
    tokio::time::sleep(Duration::from_millis(400)).await;
    round_trip(&mut ws, Message::text("after the request timeout")).await;
}

/// The connection idle timeout is for connections between requests: a
/// quiet tunnel outlives it, over HTTP/1.1 and on an HTTP/2 connection.
#[tokio::test]
async fn the_connection_idle_timeout_spares_tunnels() {
    let settings = Settings {
        idle_timeout_ms: 200,
        ..Settings::default()
    };
    let backend = ws_echo().await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings = settings;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let (mut h1, _) = ws_connect(port, "/h1").await;
    let mut h2 = h2_connection(port).await;
    let (mut over_h2, _) = h2_ws_connect(&mut h2, port, "/h2").await.unwrap();
    // Time passing is what is tested: three connection idle timeouts.
    tokio::time::sleep(Duration::from_millis(600)).await;
    round_trip(&mut h1, Message::text("still here")).await;
    round_trip(&mut over_h2, Message::text("still here")).await;
}
