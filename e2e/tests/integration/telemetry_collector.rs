//! A collector that is slow or down never fails or delays a request: spans
//! and records wait in bounded queues, and what does not fit is dropped and
//! counted in `tollgate_telemetry_dropped_total`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_support::*;
use std::time::{Duration, Instant};
use tollgate_e2e::otlp::Receiver;
use tollgate_e2e::prometheus::MetricType;
use tollgate_e2e::{Echo, HttpClient};

/// A functional bound, not a benchmark: a request that waited on a 5 s
/// export would take 5 s.
const QUICK: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_then_dead_collector_over_http_protobuf() {
    slow_then_dead_collector("http/protobuf").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_then_dead_collector_over_grpc() {
    slow_then_dead_collector("grpc").await;
}

/// Sends `n` traced requests (every one answered, each quickly).
async fn quick_requests(client: &HttpClient, gateway: &str, what: &str, n: usize) {
    for i in 0..n {
        let trace = ClientTrace::new();
        let header = trace.traceparent(true);
        let started = Instant::now();
        let reply = send(
            client,
            &format!("{gateway}/shop/{what}/{i}"),
            &[("traceparent", &header)],
        )
        .await;
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{what} request {i}");
        assert!(took < QUICK, "{what} request {i} took {took:?}");
    }
}

async fn slow_then_dead_collector(protocol: &str) {
    let mut receiver = Receiver::start().await.unwrap();
    receiver.set_delay(Duration::from_secs(5));
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{accessLog: {enabled: true, otlp: true}}";
    let manifests = shop_manifests(&echo, settings);
    let mut env = otel_env(&receiver, protocol, "gw-slow-collector");
    env.push(("OTEL_BSP_MAX_QUEUE_SIZE".into(), "2".into()));
    env.push(("OTEL_BSP_MAX_EXPORT_BATCH_SIZE".into(), "2".into()));
    let name = format!("collector-{}", protocol.replace('/', "-"));
    let ctl = start(&name, &manifests, &env).await;
    let client = HttpClient::http1();

    // Slow: exports hang for 5 s; requests do not notice.
    quick_requests(&client, &ctl.gateway, "slow", 30).await;
    // Two spans a request through a queue of 2 behind a stuck export:
    // most are dropped, and counted.
    let dropped = scrape_until(&ctl.dataplane_admin, "dropped spans", |s| {
        s.sum("tollgate_telemetry_dropped_total", &[("signal", "traces")]) > 0.0
    })
    .await;
    let traces = dropped.sum("tollgate_telemetry_dropped_total", &[("signal", "traces")]);
    assert!(
        traces >= 30.0,
        "60 spans through a queue of 2: {traces} dropped"
    );
    assert!(traces <= 60.0, "{traces} dropped of 60");
    let family = dropped.family("tollgate_telemetry_dropped_total");
    assert_eq!(family.map(|f| f.kind), Some(MetricType::Counter));
    // The access log on stdout is not behind the collector.
    let lines = ctl
        .proc
        .log()
        .lines()
        .filter(|l| l.contains("\"log\":\"access\""))
        .count();
    assert_eq!(lines, 30, "every request logged on stdout");

    // Dead: connections refused; requests still do not notice.
    receiver.stop().await;
    quick_requests(&client, &ctl.gateway, "dead", 30).await;
    for path in ["/nowhere", "/empty"] {
        let started = Instant::now();
        let reply = send(&client, &format!("{}{path}", ctl.gateway), &[]).await;
        assert!(
            reply.status == 404 || reply.status == 503,
            "{path}: {}",
            reply.status
        );
        assert!(started.elapsed() < QUICK, "{path}");
    }
    let text = client.get(&format!("{}/metrics", ctl.admin)).await.unwrap();
    assert_eq!(text.status, 200);
}

/// Shutting down flushes telemetry within its bound even when the
/// collector never answers: SIGTERM to exit well within the harness's
/// grace period, not a SIGKILL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_is_bounded_with_a_stuck_collector() {
    let receiver = Receiver::start().await.unwrap();
    receiver.set_delay(Duration::from_secs(30));
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{accessLog: {enabled: true, otlp: true}}";
    let manifests = shop_manifests(&echo, settings);
    let env = otel_env(&receiver, "http/protobuf", "gw-stuck-collector");
    let mut ctl = start("collector-shutdown", &manifests, &env).await;
    let client = HttpClient::http1();
    quick_requests(&client, &ctl.gateway, "stuck", 5).await;
    // Let a metrics export start and hang.
    tokio::time::sleep(Duration::from_millis(700)).await;

    let started = Instant::now();
    ctl.proc.stop();
    let took = started.elapsed();
    // `Proc::stop` sends SIGKILL after 3 s: under that, the process left
    // by itself, once the 2 s flush bound ran out.
    let log = ctl.proc.log();
    assert!(
        took < Duration::from_secs(3),
        "exit took {took:?}\n{}",
        ctl.proc.tail(10)
    );
    assert!(log.contains("shutting down"));
    assert!(
        log.contains("telemetry not flushed in time"),
        "{}",
        ctl.proc.tail(10)
    );
}
