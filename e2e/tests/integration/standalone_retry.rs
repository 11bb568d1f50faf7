//! HTTPRoute retries through the real binaries: `tollgate-controller
//! --with-dataplane` on manifests, `tollgate-echo` failing on purpose
//! (`x-echo-fail`, counting attempts per `x-request-id`), `/metrics` and an
//! OTLP receiver showing each retry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_support::*;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use std::time::{Duration, Instant};
use tollgate_e2e::otlp::{Receiver, SpanKind};
use tollgate_e2e::prometheus::Scrape;
use tollgate_e2e::{Echo, HttpClient, Proc, Reply};

const RETRIES: &str = "tollgate_upstream_retries_total";

/// The rules under test, all on HTTPRoute `default/flaky`.
const ROUTES: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: flaky, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /retry}}]
    retry: {codes: [500, 503], attempts: 3, backoff: 10ms}
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /pair}}]
    retry: {attempts: 1, backoff: 1ms}
    backendRefs: [{name: pair, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /slow}}]
    retry: {codes: [503], attempts: 10, backoff: 10ms}
    timeouts: {request: 500ms, backendRequest: 150ms}
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /storm}}]
    retry: {codes: [503], attempts: 3, backoff: 1ms}
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /count}}]
    backendRefs: [{name: echo, port: 80}]
";

/// The base manifests with the GatewayConfig's `retry` set to `retry` (a
/// YAML flow mapping) and the access log on, `ROUTES`, and Service `pair`:
/// `echo` plus a port nothing listens on.
fn manifests(echo: &Echo, retry: &str) -> Vec<(&'static str, String)> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let telemetry = "{accessLog: {enabled: true}}";
    let base = base_with_telemetry(&[echo], telemetry);
    let with_retry = format!("  telemetry: {telemetry}\n  retry: {retry}\n");
    let base = base.replacen(&format!("  telemetry: {telemetry}\n"), &with_retry, 1);
    let pair = crate::common::service("pair", &[closed, echo.port()]);
    vec![
        ("base.yaml", base),
        ("routes.yaml", format!("{ROUTES}{pair}")),
    ]
}

/// `method path` through the gateway with `headers` and `body`.
async fn call(
    gateway: &str,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(format!("{gateway}{path}"));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let req = req.body(Full::new(Bytes::from(body))).unwrap();
    HttpClient::http1().send(req).await.unwrap()
}

/// `GET path` asking the echo to fail per `fail` for request `id`.
async fn fail(gateway: &str, path: &str, id: &str, fail: &str) -> Reply {
    let headers = [("x-request-id", id), ("x-echo-fail", fail)];
    call(gateway, Method::GET, path, &headers, Vec::new()).await
}

/// How many requests of `id` the echo has seen, read from one more that
/// goes to a rule without retries.
async fn seen(gateway: &str, id: &str) -> u32 {
    let reply = fail(gateway, "/count", id, "0").await;
    let attempt: u32 = reply.header("x-echo-attempt").unwrap().parse().unwrap();
    attempt - 1
}

fn attempt(reply: &Reply) -> Option<&str> {
    reply.header("x-echo-attempt")
}

/// The `attempts` of the first `n` access-log lines, waiting for them.
async fn access_attempts(proc: &Proc, n: usize) -> Vec<u64> {
    let started = Instant::now();
    loop {
        let attempts: Vec<u64> = proc
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["log"] == "access")
            .filter_map(|v| v["attempts"].as_u64())
            .collect();
        if attempts.len() >= n {
            return attempts;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            proc.tail(30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn retries(s: &Scrape, reason: &str, outcome: &str) -> f64 {
    s.sum(
        RETRIES,
        &[
            ("tollgate_route", "default/flaky"),
            ("tollgate_retry_reason", reason),
            ("tollgate_retry_outcome", outcome),
        ],
    )
}

/// What each rule sends the backend, and what the client gets: listed
/// statuses retried until success or `attempts`, other statuses passed on,
/// a small body resent whole, a refused endpoint skipped, the request
/// timeout bounding every attempt; each retry a client span with its
/// resend count, and counted in `/metrics`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_as_the_route_says() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let budget = "{budgetPercent: 20, minRetriesPerSecond: 10, maxBufferedBodyBytes: 1024}";
    let env = otel_env(&receiver, "http/protobuf", "gw-retry");
    let ctl = start("retry", &manifests(&echo, budget), &env).await;
    let gw = ctl.gateway.as_str();

    // Two 503s, then success: three attempts reached the backend.
    let trace = ClientTrace::new();
    let traceparent = trace.traceparent(true);
    let headers = [
        ("x-request-id", "twice"),
        ("x-echo-fail", "2;503"),
        ("traceparent", traceparent.as_str()),
    ];
    let reply = call(gw, Method::GET, "/retry", &headers, Vec::new()).await;
    assert_eq!((reply.status.as_u16(), attempt(&reply)), (200, Some("3")));
    // More failures than attempts: the last failure, after 1 + 3 attempts.
    let reply = fail(gw, "/retry", "exhausted", "5;500").await;
    assert_eq!((reply.status.as_u16(), attempt(&reply)), (500, Some("4")));
    // A status not listed is not retried.
    let reply = fail(gw, "/retry", "unlisted", "1;502").await;
    assert_eq!((reply.status.as_u16(), attempt(&reply)), (502, Some("1")));

    // A POST with a small body is resent with the same body.
    let post = [("x-request-id", "small-post"), ("x-echo-fail", "1;503")];
    let reply = call(gw, Method::POST, "/retry", &post, vec![b'a'; 1000]).await;
    assert_eq!((reply.status.as_u16(), attempt(&reply)), (200, Some("2")));
    assert_eq!(reply.header("x-echo-same-body"), Some("true"));
    // One above maxBufferedBodyBytes is sent once.
    let post = [("x-request-id", "large-post"), ("x-echo-fail", "1;503")];
    let reply = call(gw, Method::POST, "/retry", &post, vec![b'a'; 1025]).await;
    assert_eq!((reply.status.as_u16(), attempt(&reply)), (503, Some("1")));

    // Half the endpoints refuse connections: every request still succeeds.
    for i in 0..4 {
        let reply = fail(gw, "/pair", &format!("pair-{i}"), "0").await;
        assert_eq!((reply.status.as_u16(), attempt(&reply)), (200, Some("1")));
    }

    // Every attempt outlasts backendRequest (150ms); request (500ms) ends
    // them all: a 504 in time, after a few attempts, not ten.
    let started = Instant::now();
    let reply = fail(gw, "/slow?delay=300ms", "slow", "always;503").await;
    let took = started.elapsed();
    assert_eq!(reply.status.as_u16(), 504);
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let slow = seen(gw, "slow").await;
    assert!((2..=4).contains(&slow), "{slow} attempts");

    // Each retry is a client span of the request, counting its resends.
    let spans = wait_trace(&receiver, &trace.trace_id, 4).await;
    let mut resends: Vec<Option<i64>> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client)
        .map(|s| s.int_attr("http.request.resend_count"))
        .collect();
    resends.sort_unstable();
    assert_eq!(resends, [None, Some(1), Some(2)], "{spans:#?}");
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert!(
        spans
            .iter()
            .filter(|s| s.kind == SpanKind::Client)
            .all(|c| c.is_child_of(server))
    );

    // The access log counts the attempts of each request.
    let attempts = access_attempts(&ctl.proc, 2).await;
    assert_eq!(attempts[..2], [3, 4]);

    // /metrics counts each decision by reason and outcome.
    let s = scrape_until(&ctl.dataplane_admin, "the retries", |s| {
        retries(s, "status", "retried") >= 6.0
    })
    .await;
    assert_eq!(retries(&s, "status", "retried"), 2.0 + 3.0 + 1.0);
    assert_eq!(retries(&s, "status", "attempts_exhausted"), 1.0);
    assert_eq!(retries(&s, "status", "body_not_replayable"), 1.0);
    // Round robin puts the closed port first for some of the four.
    let connect = retries(&s, "connect", "retried");
    assert!((1.0..=4.0).contains(&connect), "{connect}");
    assert!(retries(&s, "timeout", "retried") >= 1.0);
    assert_eq!(retries(&s, "timeout", "deadline"), 1.0);
    assert_eq!(retries(&s, "status", "budget_exhausted"), 0.0);
}

/// A backend that always fails: with a budget of 10% and no reserve, 40
/// requests make 4 retries, not 120, and every refused retry is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_stops_a_retry_storm() {
    let echo = Echo::start("echo").await.unwrap();
    let budget = "{budgetPercent: 10, budgetIntervalSeconds: 60, minRetriesPerSecond: 0}";
    let ctl = start("retry-storm", &manifests(&echo, budget), &[]).await;
    let gw = ctl.gateway.as_str();
    for _ in 0..40 {
        let reply = fail(gw, "/storm", "storm", "always;503").await;
        assert_eq!(reply.status.as_u16(), 503);
    }
    assert_eq!(seen(gw, "storm").await, 40 + 4);
    let s = scrape_until(&ctl.dataplane_admin, "the refused retries", |s| {
        retries(s, "status", "budget_exhausted") >= 40.0
    })
    .await;
    assert_eq!(retries(&s, "status", "retried"), 4.0);
    assert_eq!(retries(&s, "status", "budget_exhausted"), 40.0);
}
