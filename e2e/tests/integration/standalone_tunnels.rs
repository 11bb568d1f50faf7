//! WebSocket tunnels through the real binaries: they survive manifest
//! rewrites (even of their own route), idle out, drain on SIGTERM, and are
//! recorded once, when they end, with the bytes relayed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::telemetry_support::{
    ClientTrace, base_with_telemetry, env_refs, otel_env, scrape, scrape_until, wait_trace,
};

use common::websocket::*;
use common::*;
use rustix::process::{Pid, Signal, kill_process};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;
use tollgate_e2e::otlp::{Receiver, SpanKind};
use tollgate_e2e::{Echo, Proc};

/// `/ws` (unless `without_ws`) and `/v{version}` to `echo-ws`.
fn routes(version: usize, without_ws: bool) -> String {
    let ws = if without_ws {
        ""
    } else {
        "  - matches: [{path: {type: PathPrefix, value: /ws}}]\n    backendRefs: [{name: echo-ws, port: 80}]\n"
    };
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: tunnels, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{ws}  - matches: [{{path: {{type: Exact, value: /v{version}}}}}]
    backendRefs: [{{name: echo-ws, port: 80}}]
"
    )
}

/// A controller serving [`routes`] with a GatewayConfig whose spec has
/// `settings` lines (and the access log on).
async fn serving(name: &str, settings: &str) -> (Echo, std::path::PathBuf, Controller) {
    serving_with_env(name, settings, &[]).await
}

/// [`serving`] with extra environment variables for the controller.
async fn serving_with_env(
    name: &str,
    settings: &str,
    env: &[(String, String)],
) -> (Echo, std::path::PathBuf, Controller) {
    let echo = Echo::start("echo-ws").await.unwrap();
    let dir = manifest_dir(name);
    let mut base = base_with_telemetry(&[&echo], "{accessLog: {enabled: true}}");
    base.push_str(settings);
    write(&dir, "base.yaml", &base);
    write(&dir, "routes.yaml", &routes(0, false));
    let ctl = start_controller_with_env(&dir, true, &env_refs(env)).await;
    wait_status(&format!("{}/v0", ctl.gateway), 200, Duration::from_secs(10)).await;
    (echo, dir, ctl)
}

/// Two HTTP/1.1 tunnels and one over an HTTP/2 stream keep relaying
/// through 20 manifest rewrites, every other one removing their route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_survive_twenty_swaps() {
    let (_echo, dir, ctl) = serving("tunnel-swaps", "").await;
    let (mut a, _) = ws_connect(ctl.port, "/ws/a").await;
    let (mut b, _) = ws_connect(ctl.port, "/ws/b").await;
    let mut h2 = h2_connection(ctl.port).await;
    let (mut over_h2, _) = h2_ws_open(&mut h2, ctl.port, "/ws/h2").await.unwrap();
    for i in 1..=20 {
        write(&dir, "routes.yaml", &routes(i, i % 2 == 1));
        let url = format!("{}/v{i}", ctl.gateway);
        wait_status(&url, 200, Duration::from_secs(5)).await;
        for ws in [&mut a, &mut b] {
            round_trip(ws, Message::text(format!("after swap {i}"))).await;
        }
        round_trip(&mut over_h2, Message::text(format!("h2 after swap {i}"))).await;
    }
    let status = tollgate_e2e::get(&format!("{}/status", ctl.dataplane_admin))
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.body).unwrap();
    assert_eq!(
        status["default/gw"]["connections"]["tunnels"], 3,
        "{status:#}"
    );
}

/// A tunnel with no byte either way for `tunnelIdleTimeoutSeconds` is
/// closed; one that keeps talking is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tunnels_are_closed() {
    let (_echo, _dir, ctl) = serving("tunnel-idle", "  tunnelIdleTimeoutSeconds: 1\n").await;
    let (mut busy, _) = ws_connect(ctl.port, "/ws/busy").await;
    let (mut idle, _) = ws_connect(ctl.port, "/ws/idle").await;
    let opened = Instant::now();
    while opened.elapsed() < Duration::from_millis(2200) {
        round_trip(&mut busy, Message::text("keep-alive")).await;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let closed = tokio::time::timeout(Duration::from_secs(5), ended(&mut idle)).await;
    assert!(closed.unwrap(), "the idle tunnel delivered a message");
    round_trip(&mut busy, Message::text("still open")).await;
}

/// SIGTERM: open tunnels keep relaying for `drainTimeoutSeconds`, then are
/// closed and the process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_tunnels() {
    let (_echo, _dir, mut ctl) = serving("tunnel-drain", "  drainTimeoutSeconds: 1\n").await;
    let (mut ws, _) = ws_connect(ctl.port, "/ws/drain").await;
    let mut h2 = h2_connection(ctl.port).await;
    let (mut over_h2, _) = h2_ws_open(&mut h2, ctl.port, "/ws/h2").await.unwrap();
    let pid = Pid::from_raw(ctl.proc.pid() as i32).unwrap();
    let signalled = Instant::now();
    kill_process(pid, Signal::TERM).unwrap();
    round_trip(&mut ws, Message::text("while draining")).await;
    round_trip(&mut over_h2, Message::text("while draining")).await;
    assert!(ended(&mut ws).await);
    assert!(ended(&mut over_h2).await);
    let closed_after = signalled.elapsed();
    wait_exit(&mut ctl.proc);
    assert!(
        closed_after >= Duration::from_millis(900),
        "tunnel closed {closed_after:?} after SIGTERM, before the drain timeout"
    );
}

/// Waits up to 10 s for `proc` to exit.
fn wait_exit(proc: &mut Proc) {
    let start = Instant::now();
    while proc.check_running().is_ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A WebSocket is one server span and one access-log line with status
/// 101, written when the tunnel ends, with the bytes relayed each way;
/// `/metrics` counts it in `tollgate_dataplane_tunnels` while it is open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_is_one_record_when_it_ends() {
    let receiver = Receiver::start().await.unwrap();
    let env = otel_env(&receiver, "grpc", "gw-tunnels");
    let (_echo, _dir, ctl) = serving_with_env("tunnel-telemetry", "", &env).await;
    let admin = ctl.dataplane_admin.clone();
    let trace = ClientTrace::new();
    let traceparent = trace.traceparent(true);
    let (mut ws, _) = ws_open(ctl.port, "/ws/logged", &[("traceparent", &traceparent)])
        .await
        .unwrap_or_else(|r| panic!("refused: {}", r.status()));
    let opened = Instant::now();
    round_trip(&mut ws, Message::text("0123456789")).await;
    let open = scrape(&admin).await;
    assert_eq!(open.value("tollgate_dataplane_tunnels", &[]), Some(1.0));
    assert!(
        access_lines(&ctl.proc, "/ws/logged").is_empty(),
        "logged before the end"
    );
    // Long enough for the span to show it covers the tunnel, not the switch.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws.close(None).await.unwrap();
    assert!(ended(&mut ws).await);
    drop(ws);
    let open_for = opened.elapsed();
    scrape_until(&admin, "no open tunnel", |s| {
        s.value("tollgate_dataplane_tunnels", &[]) == Some(0.0)
    })
    .await;
    let start = Instant::now();
    let lines = loop {
        let lines = access_lines(&ctl.proc, "/ws/logged");
        if !lines.is_empty() || start.elapsed() > Duration::from_secs(10) {
            break lines;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(line["status"], 101);
    // Up: the client's frames (masked text, close); down: the backend's
    // description, the echo and its close.
    let (up, down) = (
        line["bytes_in"].as_u64().unwrap(),
        line["bytes_out"].as_u64().unwrap(),
    );
    assert!(up >= 16 + 6, "bytes_in {up}");
    assert!(down >= 100, "bytes_out {down}");

    // The server span and the upstream attempt's client span.
    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let servers: Vec<_> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .collect();
    assert_eq!(servers.len(), 1, "{spans:#?}");
    let server = servers[0];
    assert_eq!(server.int_attr("http.response.status_code"), Some(101));
    let lasted = server.end_time_unix_nano - server.start_time_unix_nano;
    assert!(
        Duration::from_nanos(lasted) >= open_for.saturating_sub(Duration::from_millis(50)),
        "span of {lasted} ns for a tunnel open {open_for:?}"
    );
}

/// The access-log lines of `path` written so far.
fn access_lines(proc: &Proc, path: &str) -> Vec<serde_json::Value> {
    proc.log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["log"] == "access" && v["path"] == path)
        .collect()
}
