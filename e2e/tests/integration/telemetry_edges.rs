//! Telemetry at the edges of a request's life: a backend's answer that
//! looks like the gateway's, a client that goes away while it is served,
//! a head refused before routing, and a failed upstream attempt's span.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_support::*;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tollgate_e2e::otlp::{Receiver, SpanKind, StatusCode};
use tollgate_e2e::prometheus::Scrape;
use tollgate_e2e::{Echo, HttpClient};

const SERVER: &str = "http_server_request_duration_seconds";
const CLIENT: &str = "http_client_request_duration_seconds";
const ACTIVE: &str = "http_server_active_requests";

/// `default/status` sends `/status/NNN` to `echo`, which answers NNN.
const STATUS_ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: status, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /status}}]
    backendRefs: [{name: echo, port: 80}]
";

/// The gateway's address without its scheme, for raw connections.
fn address(gateway: &str) -> &str {
    gateway.trim_start_matches("http://")
}

/// A backend's `x-tollgate-error` header is not the gateway's error: its
/// 503 is `error.type` 503 on the server span and in the metrics (not
/// `no-endpoints`), its 404 no error at all on the server side; the
/// attempt's client span fails with the status, and names the URL sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backends_error_header_is_not_the_gateways() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], "{}")),
        ("routes.yaml", STATUS_ROUTE.to_string()),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-edges-spoof");
    let ctl = start("edges-spoof", &manifests, &env).await;
    let client = HttpClient::http1();
    let route = [
        ("http_route", "/status"),
        ("tollgate_route", "default/status"),
    ];

    for (status, header) in [(503u16, "no-endpoints"), (404, "routing")] {
        let trace = ClientTrace::new();
        let traceparent = trace.traceparent(true);
        let set = format!("x-tollgate-error:{header}");
        let url = format!("{}/status/{status}", ctl.gateway);
        let headers = [
            ("traceparent", traceparent.as_str()),
            ("x-echo-set-header", set.as_str()),
        ];
        let reply = send(&client, &url, &headers).await;
        assert_eq!(reply.status, status);
        assert_eq!(reply.header("x-tollgate-error"), Some(header));

        let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
        let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
        let upstream = spans.iter().find(|s| s.kind == SpanKind::Client).unwrap();
        let expected = (status >= 500).then(|| status.to_string());
        assert_eq!(
            server.str_attr("error.type"),
            expected.as_deref(),
            "{server:#?}"
        );
        let server_status = if status >= 500 {
            StatusCode::Error
        } else {
            StatusCode::Unset
        };
        assert_eq!(server.status, server_status, "{server:#?}");
        // A client span fails on 4xx too, with the status as error.type.
        assert_eq!(upstream.status, StatusCode::Error, "{upstream:#?}");
        let code = status.to_string();
        assert_eq!(upstream.str_attr("error.type"), Some(code.as_str()));
        let full = format!("http://127.0.0.1:{}/status/{status}", echo.port());
        assert_eq!(upstream.str_attr("url.full"), Some(full.as_str()));
    }

    let scrape = scrape_until(&ctl.dataplane_admin, "both answers", |s| {
        server_count(s, &route, "503") >= 1.0 && server_count(s, &route, "404") >= 1.0
    })
    .await;
    let labels = |status: &str| {
        let mut all = route.to_vec();
        all.push(("http_response_status_code", status));
        scrape.histograms(SERVER, &all)
    };
    let five = labels("503");
    assert_eq!(five.len(), 1, "{five:#?}");
    assert_eq!(
        five[0].labels.get("error_type").map(String::as_str),
        Some("503")
    );
    let four = labels("404");
    assert_eq!(four.len(), 1, "{four:#?}");
    assert_eq!(four[0].labels.get("error_type"), None, "{four:#?}");
    let client_404 = scrape.histograms(CLIENT, &[("http_response_status_code", "404")]);
    assert_eq!(client_404.len(), 1, "{client_404:#?}");
    assert_eq!(
        client_404[0].labels.get("error_type").map(String::as_str),
        Some("404")
    );
}

/// The `_count` of the server durations of `route` with `status`.
fn server_count(scrape: &Scrape, route: &[(&str, &str)], status: &str) -> f64 {
    let mut labels = route.to_vec();
    labels.push(("http_response_status_code", status));
    histogram_total(scrape, SERVER, &labels)
}

/// A client that closes its connection while its request waits on a slow
/// backend: the request leaves the in-flight count and is recorded, with
/// `error.type` `client-closed` and no status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_its_client_abandons_is_recorded() {
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let ctl = start("edges-abandoned", &manifests, &[]).await;
    let closed = [("error_type", "client-closed"), ("http_route", "/shop")];
    let before = histogram_total(&scrape(&ctl.dataplane_admin).await, SERVER, &closed);

    let mut conn = TcpStream::connect(address(&ctl.gateway)).await.unwrap();
    let head = "GET /shop/slow?delay=5s HTTP/1.1\r\nhost: example.com\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    scrape_until(&ctl.dataplane_admin, "the slow request in flight", |s| {
        s.sum(ACTIVE, &[]) >= 1.0
    })
    .await;
    drop(conn);

    let after = scrape_until(&ctl.dataplane_admin, "the abandoned request", |s| {
        histogram_total(s, SERVER, &closed) > before
    })
    .await;
    assert_eq!(histogram_total(&after, SERVER, &closed), before + 1.0);
    let series = after.histograms(SERVER, &closed);
    assert!(
        series
            .iter()
            .all(|h| !h.labels.contains_key("http_response_status_code")),
        "{series:#?}"
    );
    assert_eq!(after.sum(ACTIVE, &[]), 0.0, "in flight after the close");
}

/// A head refused before routing (`Content-Length` and
/// `Transfer-Encoding` both) is a
/// 400 the metrics count, as the gateway's `bad-request`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_head_is_counted() {
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let ctl = start("edges-refused", &manifests, &[]).await;
    let refused = [
        ("error_type", "bad-request"),
        ("http_response_status_code", "400"),
    ];
    let before = histogram_total(&scrape(&ctl.dataplane_admin).await, SERVER, &refused);

    let mut conn = TcpStream::connect(address(&ctl.gateway)).await.unwrap();
    let head = "POST /shop HTTP/1.1\r\nhost: example.com\r\ncontent-length: 2\r\n\
                transfer-encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n";
    conn.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut answer);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("x-tollgate-error: bad-request"), "{answer}");

    scrape_until(&ctl.dataplane_admin, "the refused head", |s| {
        histogram_total(s, SERVER, &refused) == before + 1.0
    })
    .await;
}

/// `tracing.sampler: TraceIdRatio` on a Gateway decides by the trace id
/// alone: a client's sampled `traceparent` is not followed at ratio 0,
/// while a route of the same Gateway at ratio 1 is traced (with the
/// Gateway's kind).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateways_sampler_kind_ignores_the_clients_decision() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{tracing: {sampler: TraceIdRatio, samplingRatio: 0}}";
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], settings)),
        (
            "routes.yaml",
            format!("{SHOP_ROUTES}{ALWAYS_SAMPLED_ROUTE}"),
        ),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-edges-sampler");
    let ctl = start("edges-sampler", &manifests, &env).await;
    let client = HttpClient::http1();

    let ignored = ClientTrace::new();
    let header = ignored.traceparent(true);
    let url = format!("{}/shop/x", ctl.gateway);
    let reply = send(&client, &url, &[("traceparent", header.as_str())]).await;
    assert_eq!(reply.status, 200);
    // The backend still hears of the trace, as unsampled.
    let seen = reply.echo().unwrap();
    let upstream = seen.header("traceparent").unwrap_or_default();
    assert!(
        upstream.starts_with(&format!("00-{}-", ignored.trace_id)) && upstream.ends_with("-00"),
        "{upstream}"
    );

    let traced = ClientTrace::new();
    let header = traced.traceparent(false);
    let url = format!("{}/always/y", ctl.gateway);
    let reply = send(&client, &url, &[("traceparent", header.as_str())]).await;
    assert_eq!(reply.status, 200);
    // Sampled although the client said not: the route's ratio, by id.
    wait_trace(&receiver, &traced.trace_id, 2).await;
    assert!(
        spans_of(&receiver, &ignored.trace_id).is_empty(),
        "the client's decision was followed"
    );
}
