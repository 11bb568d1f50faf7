//! The gateway's own answers to gRPC calls are gRPC answers: HTTP 200,
//! trailers-only, with `grpc-status`, `grpc-message` and
//! `x-tollgate-error`. A client's `grpc-timeout` bounds the call at the
//! gateway.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::grpc_support::*;
use std::time::{Duration, Instant};
use tollgate_e2e::grpc::EchoRequest;
use tollgate_e2e::{HttpClient, free_port};
use tonic::Code;

/// No route → UNIMPLEMENTED, a Service without endpoints and an endpoint
/// that refuses connections → UNAVAILABLE, a `grpc-timeout` shorter than
/// the backend → DEADLINE_EXCEEDED; a plain HTTP request to a GRPCRoute
/// rule gets the same gRPC-shaped answer, since the route is gRPC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_answers_are_grpc_statuses() {
    let b = backends(&["slow"]).await;
    let closed = free_port().unwrap();
    let rules = "  - matches: [{method: {service: empty.E}}]
    backendRefs: [{name: svc-empty, port: 9000}]
  - matches: [{method: {service: closed.C}}]
    backendRefs: [{name: svc-closed, port: 9000}]
  - backendRefs: [{name: svc-slow, port: 9000}]
";
    let files = [
        ("gateway.yaml", gateway()),
        ("empty.yaml", grpc_service("svc-empty", &[])),
        ("closed.yaml", grpc_service("svc-closed", &[closed])),
        ("slow.yaml", grpc_service("svc-slow", &[b[0].port()])),
        (
            "route.yaml",
            grpc_route("errors", &["e.example.com"], rules),
        ),
    ];
    let (_dir, ctl) = serve("grpc-errors", &files).await;
    wait_routed(&ctl, "e.example.com", "tollgate.echo.v1.Echo").await;
    let c = client(&ctl, "e.example.com").await;

    let mut unrouted = client(&ctl, "nothing.example.com").await;
    assert_gateway_status(unrouted.say("x").await, Code::Unimplemented, "routing");
    let mut empty = c.with_service("empty.E");
    assert_gateway_status(empty.say("x").await, Code::Unavailable, "no-endpoints");
    let mut refused = c.with_service("closed.C");
    assert_gateway_status(
        refused.say("x").await,
        Code::Unavailable,
        "upstream-connect",
    );

    // grpc-timeout 200 ms against a backend that takes 3 s.
    let mut slow = c.clone();
    let mut request = tonic::Request::new(EchoRequest {
        message: "late".into(),
        delay_ms: 3000,
        ..EchoRequest::default()
    });
    request.set_timeout(Duration::from_millis(200));
    let start = Instant::now();
    let result = slow.unary("Say", request).await;
    let took = start.elapsed();
    assert_gateway_status(result, Code::DeadlineExceeded, "upstream-timeout");
    assert!(took < Duration::from_secs(2), "the deadline took {took:?}");
    // A generous deadline lets the call through.
    let mut request = tonic::Request::new(EchoRequest {
        message: "in time".into(),
        delay_ms: 50,
        ..EchoRequest::default()
    });
    request.set_timeout(Duration::from_secs(5));
    let reply = slow.unary("Say", request).await.unwrap().into_inner();
    assert_eq!(reply.message, "in time");
    assert!(
        reply.metadata.contains_key("grpc-timeout"),
        "{:?}",
        reply.metadata
    );

    // Not a gRPC request, but routed to a GRPCRoute rule: a gRPC answer.
    let url = format!("http://127.0.0.1:{}/empty.E/Say", ctl.port);
    let reply = HttpClient::http1()
        .request(http::Method::POST, &url, &[("host", "e.example.com")])
        .await
        .unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("grpc-status"), Some("14"));
    assert_eq!(reply.header("x-tollgate-error"), Some("no-endpoints"));
    assert!(reply.body.is_empty());
}
