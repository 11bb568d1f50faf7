//! Metrics through the real binaries: `/metrics` on both admin ports of
//! `tollgate-controller --with-dataplane`, parsed strictly, and the same
//! instruments pushed over OTLP.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_support::*;
use std::sync::Arc;
use tollgate_e2e::otlp::Receiver;
use tollgate_e2e::prometheus::{MetricType, Scrape};
use tollgate_e2e::{Echo, HttpClient};

const SERVER: &str = "http_server_request_duration_seconds";
const CLIENT: &str = "http_client_request_duration_seconds";

const OK: [(&str, &str); 4] = [
    ("http_route", "/shop"),
    ("tollgate_route", "default/shop"),
    ("http_request_method", "GET"),
    ("http_response_status_code", "200"),
];
const NOT_FOUND: [(&str, &str); 3] = [
    ("error_type", "routing"),
    ("http_request_method", "GET"),
    ("http_response_status_code", "404"),
];
const NO_ENDPOINTS: [(&str, &str); 4] = [
    ("error_type", "no-endpoints"),
    ("http_route", "/empty"),
    ("tollgate_route", "default/shop"),
    ("http_response_status_code", "503"),
];

/// What the request counts of one scrape are.
fn counts(s: &Scrape) -> [f64; 4] {
    [
        histogram_count(s, SERVER, &OK),
        histogram_count(s, SERVER, &NOT_FOUND),
        histogram_count(s, SERVER, &NO_ENDPOINTS),
        histogram_total(s, CLIENT, &[("http_request_method", "GET")]),
    ]
}

/// Request durations count exactly the requests sent, labelled by route,
/// method and status, with `error_type` on gateway-made errors; upstream
/// attempts are counted on their own. Both admin ports serve them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_metrics_on_both_admin_ports() {
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let ctl = start("metrics", &manifests, &[]).await;
    let client = HttpClient::http1();
    let before = scrape(&ctl.dataplane_admin).await;
    let start = counts(&before);

    for i in 0..7 {
        let reply = send(&client, &format!("{}/shop/item/{i}", ctl.gateway), &[]).await;
        assert_eq!(reply.status, 200);
    }
    for i in 0..3 {
        let reply = send(&client, &format!("{}/nowhere/{i}", ctl.gateway), &[]).await;
        assert_eq!(reply.status, 404);
    }
    for _ in 0..2 {
        let reply = send(&client, &format!("{}/empty", ctl.gateway), &[]).await;
        assert_eq!(reply.status, 503);
    }
    let want = [
        start[0] + 7.0,
        start[1] + 3.0,
        start[2] + 2.0,
        start[3] + 7.0,
    ];
    let after = scrape_until(&ctl.dataplane_admin, "the 12 requests", |s| {
        counts(s) >= want
    })
    .await;
    assert_eq!(counts(&after), want, "exactly the requests sent");

    // The series carry the documented labels, and only values from config.
    let ok = after.histogram(SERVER, &OK).unwrap();
    assert_eq!(
        ok.labels.get("tollgate_gateway").map(String::as_str),
        Some("default/gw")
    );
    assert_eq!(
        ok.labels.get("url_scheme").map(String::as_str),
        Some("http")
    );
    assert_eq!(
        ok.labels
            .get("network_protocol_version")
            .map(String::as_str),
        Some("1.1")
    );
    assert!(!ok.labels.contains_key("error_type"), "{:?}", ok.labels);
    assert!(
        ok.buckets.iter().any(|(le, _)| *le == 0.005),
        "semconv buckets"
    );
    let missed = after.histogram(SERVER, &NOT_FOUND).unwrap();
    assert!(
        !missed.labels.contains_key("http_route"),
        "{:?}",
        missed.labels
    );
    let family = after.family(SERVER).unwrap();
    assert_eq!(family.kind, MetricType::Histogram);
    for upstream in after.histograms(CLIENT, &[]) {
        let backend = upstream
            .labels
            .get("tollgate_backend")
            .cloned()
            .unwrap_or_default();
        assert!(backend.contains("echo"), "{:?}", upstream.labels);
        assert_eq!(
            upstream
                .labels
                .get("http_response_status_code")
                .map(String::as_str),
            Some("200")
        );
    }
    assert!(
        after.value(
            "http_server_active_requests",
            &[("http_request_method", "GET")]
        ) == Some(0.0)
    );
    let sizes = histogram_total(&after, "http_server_response_body_size_bytes", &[]);
    assert!(sizes >= 12.0, "response sizes recorded: {sizes}");

    // Request body sizes count only requests with a declared body: the
    // GETs above declared none; two POSTs of 5 bytes each are two samples.
    const REQUEST_SIZE: &str = "http_server_request_body_size_bytes";
    let posts = [("http_request_method", "POST")];
    assert_eq!(histogram_total(&after, REQUEST_SIZE, &OK[..3]), 0.0);
    for _ in 0..2 {
        let post = http::Request::post(format!("{}/shop/cart", ctl.gateway))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(
                b"hello",
            )))
            .unwrap();
        assert_eq!(client.send(post).await.unwrap().status, 200);
    }
    let posted = scrape_until(&ctl.dataplane_admin, "the 2 POSTs", |s| {
        histogram_total(s, REQUEST_SIZE, &posts) >= 2.0
    })
    .await;
    assert_eq!(histogram_total(&posted, REQUEST_SIZE, &posts), 2.0);
    let sum: f64 = posted
        .histograms(REQUEST_SIZE, &posts)
        .iter()
        .filter_map(|h| h.sum)
        .sum();
    assert_eq!(sum, 10.0, "5 bytes each");
    assert_eq!(
        histogram_total(&posted, REQUEST_SIZE, &[("http_request_method", "GET")]),
        0.0,
        "no body, no sample"
    );

    // The controller's admin port serves the same process's metrics, with
    // the controller's own instruments.
    let controller = scrape_until(&ctl.admin, "the same counts", |s| counts(s) == want).await;
    assert!(controller.sum("tollgate_controller_objects", &[]) >= 4.0);
    assert!(
        controller
            .names()
            .contains("tollgate_controller_compile_duration_seconds_count")
    );
    assert!(
        after
            .names()
            .contains("tollgate_dataplane_snapshot_version")
    );
}

/// 10,000 distinct paths under one PathPrefix route (and 200 unrouted
/// ones) add no series: labels come from configuration, never the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distinct_paths_add_no_series() {
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let ctl = start("cardinality", &manifests, &[]).await;
    let client = HttpClient::http1();
    // Every label combination this test makes, once.
    assert_eq!(
        send(&client, &format!("{}/shop/first", ctl.gateway), &[])
            .await
            .status,
        200
    );
    assert_eq!(
        send(&client, &format!("{}/first", ctl.gateway), &[])
            .await
            .status,
        404
    );
    let before = scrape_until(&ctl.dataplane_admin, "the first requests", |s| {
        histogram_count(s, SERVER, &OK) == 1.0 && histogram_count(s, SERVER, &NOT_FOUND) == 1.0
    })
    .await;

    let gateway = Arc::new(ctl.gateway.clone());
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (client, gateway) = (client.clone(), Arc::clone(&gateway));
            tokio::spawn(async move {
                for i in (t..10_000).step_by(8) {
                    let url = format!("{gateway}/shop/p{i}/x{}", i * 7919);
                    assert_eq!(send(&client, &url, &[]).await.status, 200, "{url}");
                }
                for i in (t..200).step_by(8) {
                    let url = format!("{gateway}/unrouted-{i}");
                    assert_eq!(send(&client, &url, &[]).await.status, 404, "{url}");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let after = scrape_until(&ctl.dataplane_admin, "all 10,201 requests", |s| {
        histogram_count(s, SERVER, &OK) == 10_001.0
            && histogram_count(s, SERVER, &NOT_FOUND) == 201.0
    })
    .await;
    for prefix in ["http_", "tollgate_"] {
        assert_eq!(
            before.count_series(prefix),
            after.count_series(prefix),
            "series starting {prefix}"
        );
    }
    assert_eq!(before.samples().len(), after.samples().len());
}

/// With `OTEL_METRIC_EXPORT_INTERVAL=500` the same instruments reach the
/// collector: the data plane's under semantic-convention names and
/// attributes, the controller's too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pushed_over_otlp() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let env = otel_env(&receiver, "grpc", "gw-metrics");
    let ctl = start("otlp-metrics", &manifests, &env).await;
    let client = HttpClient::http1();
    for i in 0..3 {
        assert_eq!(
            send(&client, &format!("{}/shop/{i}", ctl.gateway), &[])
                .await
                .status,
            200
        );
    }
    let labels = [
        ("http.route", "/shop"),
        ("tollgate.route", "default/shop"),
        ("http.request.method", "GET"),
        ("tollgate.gateway", "default/gw"),
    ];
    let point = receiver
        .wait_until(
            "3 requests in http.server.request.duration",
            std::time::Duration::from_secs(15),
            |r| {
                r.latest_metric("http.server.request.duration", &labels)
                    .filter(|p| p.value.as_histogram().is_some_and(|h| h.count == 3))
            },
        )
        .await;
    assert_eq!(point.unit, "s");
    assert_eq!(point.origin.service_name(), Some("gw-metrics"));
    assert_eq!(
        point.attributes.get("http.response.status_code"),
        Some(&serde_json::json!(200))
    );
    let objects = receiver
        .wait_for_metric(
            "tollgate.controller.objects",
            &[("kind", "HTTPRoute")],
            std::time::Duration::from_secs(10),
        )
        .await;
    assert_eq!(objects.value.as_f64(), Some(1.0), "{objects:?}");
}
