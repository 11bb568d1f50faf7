//! The separate `tollgate-dataplane` binary reports like the in-process one:
//! spans over OTLP, `/metrics` and `/log-level` on its own admin port, the
//! access log on its own standard output.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use crate::telemetry_support::*;
use http::Method;
use std::time::Duration;
use tollgate_e2e::otlp::{Receiver, SpanKind};
use tollgate_e2e::{Echo, HttpClient, Proc, free_port, wait_http_ok};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_data_plane_reports_through_its_own_ports() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let dir = manifest_dir("telemetry-separate");
    let settings = "{accessLog: {enabled: true}}";
    write(&dir, "base.yaml", &base_with_telemetry(&[&echo], settings));
    write(&dir, "routes.yaml", SHOP_ROUTES);
    // The controller exports nothing; only the data plane has OTEL_*.
    let ctl = start_controller(&dir, false).await;
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let env = otel_env(&receiver, "http/protobuf", "edge");
    let mut vars = env_refs(&env);
    vars.push(("RUST_LOG", "info"));
    let args = [
        "--controller",
        ctl.snapshots.as_str(),
        "--gateway",
        "default/gw",
        "--admin-address",
        admin.as_str(),
    ];
    let dp = Proc::spawn("tollgate-dataplane", args, vars).unwrap();
    let admin = format!("http://{admin}");
    if let Err(e) = wait_http_ok(&format!("{admin}/readyz"), Duration::from_secs(20)).await {
        panic!("data plane not ready: {e}\n{}", dp.tail(30));
    }
    let client = HttpClient::http1();

    let trace = ClientTrace::new();
    let header = trace.traceparent(true);
    let reply = send(
        &client,
        &format!("{}/shop/one", ctl.gateway),
        &[("traceparent", &header)],
    )
    .await;
    assert_eq!(reply.status, 200);

    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(server.name, "GET /shop");
    assert_eq!(server.origin.service_name(), Some("edge"));
    assert_eq!(server.origin.scope, "tollgate");
    assert_eq!(
        server.parent_span_id.as_deref(),
        Some(trace.span_id.as_str())
    );
    assert!(
        receiver
            .spans()
            .iter()
            .all(|s| s.origin.service_name() == Some("edge")),
        "the controller exports nothing"
    );

    let labels = [
        ("tollgate_route", "default/shop"),
        ("http_response_status_code", "200"),
    ];
    let page = scrape_until(&admin, "the request", |s| {
        histogram_count(s, "http_server_request_duration_seconds", &labels) == 1.0
    })
    .await;
    assert_eq!(
        page.value("tollgate_dataplane_snapshot_version", &[])
            .map(|v| v > 0.0),
        Some(true)
    );
    // The controller's port has its own process's metrics: no requests.
    let controller = scrape(&ctl.admin).await;
    assert_eq!(
        controller.count_series("http_server_request_duration_seconds"),
        0
    );

    let access = || {
        dp.log()
            .lines()
            .find(|l| l.starts_with("{\"log\":\"access\""))
            .map(str::to_string)
    };
    let started = std::time::Instant::now();
    while access().is_none() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let line = access().unwrap_or_else(|| panic!("no access line:\n{}", dp.tail(20)));
    let line: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["trace_id"], trace.trace_id.as_str());
    assert_eq!(line["path"], "/shop/one");

    for (filter, status) in [("debug", 200), ("warn,[", 400), ("info", 200)] {
        let req = http::Request::builder()
            .method(Method::PUT)
            .uri(format!("{admin}/log-level"))
            .body(http_body_util::Full::new(bytes::Bytes::from(filter)))
            .unwrap();
        let reply = client.send(req).await.unwrap();
        assert_eq!(reply.status, status, "{filter}: {}", reply.text());
    }
    let reply = client.get(&format!("{admin}/log-level")).await.unwrap();
    assert_eq!(reply.text().trim(), "info");
}
