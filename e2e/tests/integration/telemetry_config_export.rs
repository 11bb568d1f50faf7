//! The standard `OTEL_*` export settings through the real binaries: every
//! signal over each protocol, with `OTEL_RESOURCE_ATTRIBUTES` on what is
//! exported and `OTEL_EXPORTER_OTLP_HEADERS` on every export request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_config::get_in_trace;
use crate::telemetry_support::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;
use tollgate_e2e::otlp::{Origin, Protocol, Receiver, SpanKind};
use tollgate_e2e::{Echo, HttpClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signal_over_grpc_with_resource_and_headers() {
    every_signal("grpc", Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_signal_over_http_protobuf_with_resource_and_headers() {
    every_signal("http/protobuf", Protocol::HttpProtobuf).await;
}

/// Asserts that `origin` came over `protocol` from `service` with the
/// attributes of `OTEL_RESOURCE_ATTRIBUTES`.
fn assert_origin(what: &str, origin: &Origin, protocol: Protocol, service: &str) {
    assert_eq!(origin.protocol, protocol, "{what}: {origin:#?}");
    assert_eq!(origin.service_name(), Some(service), "{what}: {origin:#?}");
    for (key, value) in [("deployment.environment", "e2e"), ("team", "edge")] {
        assert_eq!(
            origin.resource.get(key),
            Some(&json!(value)),
            "{what}: resource attribute {key} from OTEL_RESOURCE_ATTRIBUTES: {origin:#?}"
        );
    }
}

/// One traced request with an OTLP access-log record: its spans, its log
/// record and the request-duration metric all arrive over `name`, each
/// carrying the resource attributes, and every export request carries the
/// configured headers (a percent-encoded value decoded).
async fn every_signal(name: &str, protocol: Protocol) {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{accessLog: {enabled: true, otlp: true}}";
    let manifests = shop_manifests(&echo, settings);
    let service = format!("gw-export-{}", name.replace('/', "-"));
    let mut env = otel_env(&receiver, name, &service);
    env.push((
        "OTEL_RESOURCE_ATTRIBUTES".into(),
        "deployment.environment=e2e,team=edge".into(),
    ));
    env.push((
        "OTEL_EXPORTER_OTLP_HEADERS".into(),
        "x-collector-token=abc,x-collector-tenant=team%20a".into(),
    ));
    let ctl = start(&service, &manifests, &env).await;
    let client = HttpClient::http1();

    let url = format!("{}/shop/export", ctl.gateway);
    let (trace, reply) = get_in_trace(&client, &url, true).await;
    assert_eq!(reply.status, 200);

    // Traces.
    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let kinds: BTreeSet<String> = spans.iter().map(|s| format!("{:?}", s.kind)).collect();
    assert_eq!(kinds, BTreeSet::from(["Client".into(), "Server".into()]));
    for span in &spans {
        assert_origin(
            &format!("span {}", span.name),
            &span.origin,
            protocol,
            &service,
        );
    }
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(server.name, "GET /shop");

    // Logs: the access-log record of the request, in its trace.
    let record = receiver
        .wait_until(
            "the access-log record of the request",
            Duration::from_secs(15),
            |r| {
                r.logs()
                    .into_iter()
                    .find(|l| l.trace_id.as_deref() == Some(trace.trace_id.as_str()))
            },
        )
        .await;
    assert_origin("the access-log record", &record.origin, protocol, &service);
    assert_eq!(record.origin.scope, "tollgate.access");
    assert_eq!(record.span_id.as_deref(), Some(server.span_id.as_str()));
    assert_eq!(record.str_attr("url.path"), Some("/shop/export"));
    assert_eq!(record.str_attr("tollgate.route"), Some("default/shop"));
    let body: Value = serde_json::from_str(record.body_str().unwrap_or_default())
        .unwrap_or_else(|e| panic!("the body is the JSON line: {e}: {record:#?}"));
    assert_eq!(body["path"], "/shop/export", "{body}");
    assert_eq!(body["status"], 200, "{body}");

    // Metrics: the request in the server duration histogram.
    let labels = [
        ("http.route", "/shop"),
        ("tollgate.route", "default/shop"),
        ("http.request.method", "GET"),
    ];
    let point = wait_first_request(&receiver, &labels).await;
    assert_origin(
        "http.server.request.duration",
        &point.origin,
        protocol,
        &service,
    );
    assert_eq!(point.unit, "s");
    assert_eq!(
        point.attributes.get("http.response.status_code"),
        Some(&json!(200))
    );

    // Every export request of every signal carried the headers.
    let exports = receiver.exports();
    let signals: BTreeSet<&str> = exports.iter().map(|e| e.payload.signal()).collect();
    assert_eq!(signals, BTreeSet::from(["logs", "metrics", "traces"]));
    for export in &exports {
        let header = |n: &str| export.headers.get(n).map(String::as_str);
        let what = format!(
            "a {} export over {:?}",
            export.payload.signal(),
            export.protocol
        );
        assert_eq!(export.protocol, protocol, "{what}");
        assert_eq!(
            header("x-collector-token"),
            Some("abc"),
            "{what}: {:#?}",
            export.headers
        );
        assert_eq!(
            header("x-collector-tenant"),
            Some("team a"),
            "{what}: the value percent-decoded: {:#?}",
            export.headers
        );
    }
}
