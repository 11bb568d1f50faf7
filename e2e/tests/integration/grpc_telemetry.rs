//! gRPC telemetry through the real binaries: server spans named and
//! attributed by the OpenTelemetry RPC conventions (`rpc.system`,
//! `rpc.service`, `rpc.method`, `rpc.grpc.status_code` from the trailers or
//! a trailers-only answer), the status code on request metrics, and the
//! gRPC status in the access log.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::grpc_support::{backends, grpc_service, is_gateway_answer};
use crate::telemetry_support::*;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tollgate_e2e::grpc::{EchoRequest, GrpcClient};
use tollgate_e2e::otlp::{Receiver, Span, SpanKind, StatusCode};
use tonic::Code;

const ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: rpc, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: tollgate.echo.v1.Echo}}]
    backendRefs: [{name: svc-echo, port: 9000}]
";

fn traced<T>(message: T, trace: &ClientTrace) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    let parent = trace.traceparent(true).parse().unwrap();
    request.metadata_mut().insert("traceparent", parent);
    request
}

fn server_span(spans: &[Span]) -> Span {
    spans
        .iter()
        .find(|s| s.kind == SpanKind::Server)
        .cloned()
        .unwrap_or_else(|| panic!("no server span: {spans:#?}"))
}

/// A unary success, a stream ending in a backend's FAILED_PRECONDITION
/// (trailers) and a gateway-made UNIMPLEMENTED (trailers-only) each get
/// their status code on the span, the metrics and the access log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_attributes_on_spans_metrics_and_logs() {
    let receiver = Receiver::start().await.unwrap();
    let b = backends(&["echo"]).await;
    let manifests = [
        (
            "base.yaml",
            base_with_telemetry(&[], "{accessLog: {enabled: true}}"),
        ),
        ("svc.yaml", grpc_service("svc-echo", &[b[0].port()])),
        ("route.yaml", ROUTE.to_string()),
    ];
    let env = otel_env(&receiver, "grpc", "gw-grpc-telemetry");
    let ctl = start("grpc-telemetry", &manifests, &env).await;
    let addr = SocketAddr::from(([127, 0, 0, 1], ctl.port));
    let mut c = GrpcClient::connect(addr, "rpc.example.com").await.unwrap();
    let start_wait = Instant::now();
    while c.say("ready?").await.is_err() {
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "never routed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let ok = ClientTrace::new();
    let message = EchoRequest {
        message: "hi".into(),
        ..EchoRequest::default()
    };
    c.unary("Say", traced(message, &ok)).await.unwrap();

    let failed = ClientTrace::new();
    let message = EchoRequest {
        count: 2,
        fail_code: Code::FailedPrecondition as i32,
        ..EchoRequest::default()
    };
    let mut stream = c
        .count(traced(message, &failed))
        .await
        .unwrap()
        .into_inner();
    while let Ok(Some(_)) = stream.message().await {}

    let unrouted = ClientTrace::new();
    let mut other = c.with_service("other.Service");
    let status = other
        .unary("Call", traced(EchoRequest::default(), &unrouted))
        .await
        .unwrap_err();
    assert!(is_gateway_answer(&status), "{status:?}");

    let rows = [
        (&ok, "tollgate.echo.v1.Echo/Say", 0, StatusCode::Unset),
        (&failed, "tollgate.echo.v1.Echo/Count", 9, StatusCode::Unset),
        (&unrouted, "other.Service/Call", 12, StatusCode::Error),
    ];
    for (trace, name, code, span_status) in rows {
        let spans = wait_trace(&receiver, &trace.trace_id, 1).await;
        let span = server_span(&spans);
        assert_eq!(span.name, name, "{span:#?}");
        assert_eq!(span.str_attr("rpc.system"), Some("grpc"));
        let (service, method) = name.split_once('/').unwrap();
        assert_eq!(span.str_attr("rpc.service"), Some(service));
        assert_eq!(span.str_attr("rpc.method"), Some(method));
        assert_eq!(
            span.int_attr("rpc.grpc.status_code"),
            Some(code),
            "{span:#?}"
        );
        assert_eq!(span.int_attr("http.response.status_code"), Some(200));
        assert_eq!(span.status, span_status, "{span:#?}");
    }

    let scrape = scrape_until(&ctl.dataplane_admin, "the gRPC calls", |s| {
        let count = |code: &str| {
            histogram_total(
                s,
                "http_server_request_duration_seconds",
                &[("rpc_system", "grpc"), ("rpc_grpc_status_code", code)],
            )
        };
        count("9") >= 1.0 && count("12") >= 1.0 && count("0") >= 2.0
    })
    .await;
    let unimplemented = scrape.histograms(
        "http_server_request_duration_seconds",
        &[("rpc_grpc_status_code", "12")],
    );
    let labels = &unimplemented[0].labels;
    assert_eq!(
        labels.get("error_type").map(String::as_str),
        Some("routing"),
        "{labels:?}"
    );

    let start_wait = Instant::now();
    let lines = loop {
        let lines: Vec<Value> = ctl
            .proc
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["log"] == "access")
            .collect();
        let has = |path: &str, code: u64| {
            lines
                .iter()
                .any(|l| l["path"] == path && l["grpc_status"] == code)
        };
        if has("/tollgate.echo.v1.Echo/Count", 9) && has("/other.Service/Call", 12) {
            break lines;
        }
        assert!(
            start_wait.elapsed() < Duration::from_secs(10),
            "{}",
            ctl.proc.tail(20)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        lines
            .iter()
            .any(|l| l["path"] == "/tollgate.echo.v1.Echo/Say" && l["grpc_status"] == 0)
    );
}
