//! Applying snapshots, readiness and shutdown: swaps never fail a request,
//! bad snapshots never replace a good one, removed sockets stop accepting,
//! and shutdown lets in-flight requests finish.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use server_support::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tollgate_dataplane::ApplyError;
use tollgate_snapshot::{PathMatch, Settings};

/// 20 swaps while two clients (HTTP/1.1 and HTTP/2) send continuously:
/// no request fails, and each new route serves as soon as `apply` returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_swaps_drop_nothing_and_take_effect_at_once() {
    let (a, b) = (echo("a").await, echo("b").await);
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/v1", b), ("/", a)]))
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut loops = Vec::new();
    for client in [h1_client(), h2_client()] {
        let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
        loops.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match get(&client, &format!("http://127.0.0.1:{port}/steady")).await {
                    Ok((200, body)) if body["name"] == "a" => {}
                    other => {
                        eprintln!("failed: {other:?}");
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                sent.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let client = h1_client();
    for v in 2..=21 {
        dp.apply(snapshot(v, port, &[(&format!("/v{v}"), b), ("/", a)]))
            .await
            .unwrap();
        let (_, new) = get(&client, &format!("http://127.0.0.1:{port}/v{v}"))
            .await
            .unwrap();
        assert_eq!(new["name"], "b", "new route /v{v} serves right after apply");
        let (_, old) = get(&client, &format!("http://127.0.0.1:{port}/v{}", v - 1))
            .await
            .unwrap();
        assert_eq!(old["name"], "a", "old route /v{} is gone", v - 1);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for l in loops {
        l.await.unwrap();
    }
    assert!(sent.load(Ordering::Relaxed) > 20);
    assert_eq!(failed.load(Ordering::Relaxed), 0);
    assert_eq!(dp.status().version, Some(21));
}

/// An invalid regex or a dangling index is refused, reported in status, and
/// the previous snapshot keeps serving.
#[tokio::test]
async fn a_bad_snapshot_is_rejected_and_the_old_one_keeps_serving() {
    let a = echo("a").await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", a)])).await.unwrap();
    let mut bad_regex = snapshot(2, port, &[("/", a)]);
    bad_regex.sockets[0].listeners[0].virtual_hosts[0].matches[0].path =
        PathMatch::RegularExpression("/(unclosed".into());
    let mut dangling = snapshot(3, port, &[("/", a)]);
    dangling.routes[0].backends[0].backend = Some(7);
    for bad in [bad_regex, dangling] {
        let version = bad.version;
        assert!(matches!(dp.apply(bad).await, Err(ApplyError::Build(_))));
        let status = dp.status();
        assert_eq!(status.version, Some(1));
        assert_eq!(
            status.last_rejected.as_ref().map(|r| r.version),
            Some(version)
        );
        let (code, body) = get(&h1_client(), &format!("http://127.0.0.1:{port}/x"))
            .await
            .unwrap();
        assert_eq!((code, body["name"].as_str()), (200, Some("a")));
    }
    dp.apply(snapshot(4, port, &[("/", a)])).await.unwrap();
    assert!(dp.status().last_rejected.is_none());
}

/// A socket that cannot be bound rejects the whole snapshot.
#[tokio::test]
async fn a_bind_failure_rejects_the_snapshot() {
    let a = echo("a").await;
    let port = free_port();
    let dp = dataplane();
    dp.apply(snapshot(1, port, &[("/", a)])).await.unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().port();
    let result = dp.apply(snapshot_on(2, &[port, busy], &[("/", a)])).await;
    assert!(matches!(result, Err(ApplyError::Bind { .. })), "{result:?}");
    let status = dp.status();
    assert_eq!(status.version, Some(1));
    assert_eq!(status.sockets, vec![format!("127.0.0.1:{port}")]);
    assert!(status.last_rejected.unwrap().error.contains("bind"));
    let (code, _) = get(&h1_client(), &format!("http://127.0.0.1:{port}/"))
        .await
        .unwrap();
    assert_eq!(code, 200);
}

#[tokio::test]
async fn a_snapshot_for_another_gateway_is_rejected() {
    let dp = dataplane();
    let mut other = snapshot(1, free_port(), &[]);
    other.gateway = "default/other".into();
    assert!(matches!(
        dp.apply(other).await,
        Err(ApplyError::WrongGateway { .. })
    ));
    assert!(!dp.status().ready);
}

/// A socket left out of the next snapshot stops accepting and its idle
/// keep-alive connections close; the sockets kept are not rebound.
#[tokio::test]
async fn a_removed_socket_stops_accepting() {
    let a = echo("a").await;
    let (keep, drop_port) = (free_port(), free_port());
    let dp = dataplane();
    dp.apply(snapshot_on(1, &[keep, drop_port], &[("/", a)]))
        .await
        .unwrap();
    let mut idle = tokio::net::TcpStream::connect(("127.0.0.1", drop_port))
        .await
        .unwrap();
    let kept = tokio::net::TcpStream::connect(("127.0.0.1", keep))
        .await
        .unwrap();
    dp.apply(snapshot_on(2, &[keep], &[("/", a)]))
        .await
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", drop_port))
            .await
            .is_err()
    );
    let (_, closed) = read_until_close(&mut idle, Duration::from_secs(5)).await;
    assert!(
        closed,
        "the idle connection on the removed socket is closed"
    );
    drop(kept);
    let (code, _) = get(&h1_client(), &format!("http://127.0.0.1:{keep}/"))
        .await
        .unwrap();
    assert_eq!(code, 200);
    assert_eq!(dp.status().sockets, vec![format!("127.0.0.1:{keep}")]);
}

/// `/readyz` is 503 before the first snapshot, 200 once it is applied and
/// bound, and 503 again as soon as shutdown begins.
#[tokio::test]
async fn readiness_follows_apply_and_shutdown() {
    let dp = dataplane();
    let admin = free_port();
    let server = tokio::spawn({
        let dp = dp.clone();
        async move {
            dp.serve_admin(
                ([127, 0, 0, 1], admin).into(),
                tollgate_telemetry::Telemetry::disabled(),
            )
            .await
        }
    });
    let client = h1_client();
    let url = format!("http://127.0.0.1:{admin}/readyz");
    let mut first = Err(String::new());
    for _ in 0..50 {
        first = get(&client, &url).await;
        if first.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(first.unwrap().0, 503);
    let a = echo("a").await;
    dp.apply(snapshot(7, free_port(), &[("/", a)]))
        .await
        .unwrap();
    assert_eq!(get(&client, &url).await.unwrap().0, 200);
    let (_, status) = get(&client, &format!("http://127.0.0.1:{admin}/status"))
        .await
        .unwrap();
    assert_eq!(
        (status["version"].as_u64(), status["ready"].as_bool()),
        (Some(7), Some(true))
    );
    let (_, summary) = get(&client, &format!("http://127.0.0.1:{admin}/snapshot"))
        .await
        .unwrap();
    assert_eq!(summary["counts"]["routes"], 1);
    dp.shutdown();
    assert!(!dp.status().ready);
    dp.closed().await;
    server.await.unwrap().unwrap();
}

/// Shutdown stops accepting at once but lets a slow in-flight request finish.
#[tokio::test]
async fn shutdown_drains_an_in_flight_request() {
    let (dp, port) = serving(Settings::default()).await;
    let slow = tokio::spawn(async move {
        let req = "GET /slow HTTP/1.1\r\nhost: x\r\nx-delay-ms: 500\r\n\r\n";
        raw(port, req.as_bytes()).await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    dp.shutdown();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
    );
    let (response, closed) = slow.await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"/slow\""));
    assert!(
        closed,
        "the drained keep-alive connection is closed after its request"
    );
    dp.closed().await;
}

/// A request still running when the drain timeout ends is cut off, and
/// `closed()` does not wait for it.
#[tokio::test]
async fn the_drain_timeout_bounds_shutdown() {
    let settings = Settings {
        drain_timeout_ms: 200,
        ..Settings::default()
    };
    let (dp, port) = serving(settings).await;
    let slow = tokio::spawn(async move {
        let req = "GET /slow HTTP/1.1\r\nhost: x\r\nx-delay-ms: 10000\r\n\r\n";
        raw(port, req.as_bytes()).await
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    dp.shutdown();
    tokio::time::timeout(Duration::from_secs(5), dp.closed())
        .await
        .unwrap();
    let (response, closed) = slow.await.unwrap();
    assert!(closed);
    assert!(response.is_empty(), "{response}");
}
