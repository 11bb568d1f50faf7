//! GRPCRoute routing end to end: tonic clients through the standalone
//! gateway to tonic echo backends over h2c. Every method match type,
//! GRPCRoute precedence, hostname intersection with the listener, the
//! HTTPRoute/GRPCRoute hostname conflict, header filters, mirrors and
//! weighted backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::object_status;
use crate::grpc_support::*;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tollgate_e2e::grpc::EchoRequest;
use tonic::Code;

/// Each method match type picks its rule, and where several match the
/// GRPCRoute precedence decides: more service characters, then method
/// characters, then more header matches. A call no rule matches is the
/// gateway's UNIMPLEMENTED; a route hostname outside the listener's
/// (`*.example.com`) is not served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn match_types_and_precedence() {
    let names = ["exact", "service", "method", "regex", "headers"];
    let b = backends(&names).await;
    let mut files = vec![("gateway.yaml".to_string(), gateway())];
    for (name, echo) in names.iter().zip(&b) {
        let service = format!("svc-{name}");
        files.push((
            format!("{service}.yaml"),
            grpc_service(&service, &[echo.port()]),
        ));
    }
    let rules = "  - matches: [{method: {service: tollgate.echo.v1.Echo, method: Say}}]
    backendRefs: [{name: svc-exact, port: 9000}]
  - matches: [{method: {service: tollgate.echo.v1.Echo}}]
    backendRefs: [{name: svc-service, port: 9000}]
  - matches: [{method: {method: Say}}]
    backendRefs: [{name: svc-method, port: 9000}]
  - matches: [{method: {type: RegularExpression, service: \"re\\\\..*\", method: \"S.*\"}}]
    backendRefs: [{name: svc-regex, port: 9000}]
  - matches:
    - method: {service: tollgate.echo.v1.Echo, method: Say}
      headers: [{name: x-env, value: canary}]
    backendRefs: [{name: svc-headers, port: 9000}]
";
    let route = grpc_route("matches", &["grpc.example.com", "grpc.example.org"], rules);
    files.push(("route.yaml".to_string(), route));
    let (_dir, ctl) = serve("grpc-matches", &files).await;
    wait_routed(&ctl, "grpc.example.com", "tollgate.echo.v1.Echo").await;

    let c = client(&ctl, "grpc.example.com").await;
    let cases: [(&str, &str, Option<&str>, &str); 7] = [
        ("tollgate.echo.v1.Echo", "Say", None, "exact"),
        ("tollgate.echo.v1.Echo", "Say", Some("canary"), "headers"),
        ("tollgate.echo.v1.Echo", "Say", Some("other"), "exact"),
        ("tollgate.echo.v1.Echo", "Count", None, "service"),
        ("other.Service", "Say", None, "method"),
        ("re.Anything", "Sing", None, "regex"),
        ("re.Anything", "Say", None, "regex"),
    ];
    for (service, method, env, want) in cases {
        let mut request = tonic::Request::new(EchoRequest {
            message: "hi".into(),
            count: 1,
            ..EchoRequest::default()
        });
        if let Some(env) = env {
            request.metadata_mut().insert("x-env", env.parse().unwrap());
        }
        let mut c = c.with_service(service);
        let backend = if method == "Count" {
            let mut stream = c.count(request).await.unwrap().into_inner();
            stream.message().await.unwrap().unwrap().backend
        } else {
            let reply = c.unary(method, request).await;
            let reply = reply.unwrap_or_else(|s| panic!("/{service}/{method}: {s:?}"));
            assert_eq!(reply.get_ref().path, format!("/{service}/{method}"));
            reply.into_inner().backend
        };
        assert_eq!(backend, want, "/{service}/{method} x-env={env:?}");
    }
    // No rule matches: the gateway answers UNIMPLEMENTED.
    let mut other = c.with_service("other.Service");
    let unmatched = other.unary("Nope", tonic::Request::new(EchoRequest::default()));
    assert_gateway_status(unmatched.await, Code::Unimplemented, "routing");
    // grpc.example.org does not intersect the listener's *.example.com.
    let mut org = client(&ctl, "grpc.example.org").await;
    assert_gateway_status(org.say("hi").await, Code::Unimplemented, "routing");
    let status = object_status(&ctl.admin, "GRPCRoute", "matches").await;
    let accepted = &status["status"]["parents"][0]["conditions"][0];
    assert_eq!(accepted["status"], "True", "{status:#}");
}

/// An HTTPRoute and a GRPCRoute whose hostnames intersect on the
/// listener: the older route is accepted there and the other is not
/// (Conflicted, naming the winner), so none of its hostnames are served;
/// a GRPCRoute on a hostname of its own is served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn httproute_and_grpcroute_conflict_on_a_hostname() {
    let b = backends(&["grpc"]).await;
    let http_route = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web, namespace: default, creationTimestamp: \"2024-01-01T00:00:00Z\"}
spec:
  parentRefs: [{name: gw}]
  hostnames: [shared.example.com]
  rules:
  - backendRefs: [{name: svc-grpc, port: 9000}]
";
    let rules = "  - backendRefs: [{name: svc-grpc, port: 9000}]\n";
    let late = grpc_route("late", &["shared.example.com", "late.example.com"], rules).replace(
        "metadata: {name: late, namespace: default}",
        "metadata: {name: late, namespace: default, creationTimestamp: \"2025-01-01T00:00:00Z\"}",
    );
    let files = [
        ("gateway.yaml", gateway()),
        ("svc.yaml", grpc_service("svc-grpc", &[b[0].port()])),
        ("http.yaml", http_route.to_string()),
        ("late.yaml", late),
        ("own.yaml", grpc_route("own", &["own.example.com"], rules)),
    ];
    let (_dir, ctl) = serve("grpc-conflict", &files).await;
    wait_routed(&ctl, "own.example.com", "tollgate.echo.v1.Echo").await;
    let mut own = client(&ctl, "own.example.com").await;
    assert_eq!(own.say("hi").await.unwrap().backend, "grpc");

    let status = object_status(&ctl.admin, "GRPCRoute", "late").await;
    let accepted = &status["status"]["parents"][0]["conditions"][0];
    assert_eq!(accepted["status"], "False", "{status:#}");
    assert_eq!(accepted["reason"], "Conflicted", "{status:#}");
    let message = accepted["message"].as_str().unwrap_or_default();
    assert!(message.contains("HTTPRoute default/web"), "{message}");
    let web = object_status(&ctl.admin, "HTTPRoute", "web").await;
    assert_eq!(
        web["status"]["parents"][0]["conditions"][0]["status"],
        "True"
    );
    // The rejected route serves none of its hostnames.
    let mut late = client(&ctl, "late.example.com").await;
    assert_gateway_status(late.say("hi").await, Code::Unimplemented, "routing");
}

/// Request and response header modifiers apply to gRPC calls (metadata),
/// a mirror gets a copy of each call, and backendRefs split calls by weight
/// (500 calls, 4:1).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_mirrors_and_weights() {
    let b = backends(&["main", "canary", "shadow"]).await;
    let rules = "  - matches: [{method: {service: filters.F}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {set: [{name: x-route, value: grpc}], remove: [x-secret]}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {add: [{name: x-served-by, value: tollgate}]}
    - type: RequestMirror
      requestMirror: {backendRef: {name: svc-shadow, port: 9000}}
    backendRefs: [{name: svc-main, port: 9000}]
  - matches: [{method: {service: weights.W}}]
    backendRefs:
    - {name: svc-main, port: 9000, weight: 4}
    - {name: svc-canary, port: 9000, weight: 1}
";
    let files = [
        ("gateway.yaml", gateway()),
        ("main.yaml", grpc_service("svc-main", &[b[0].port()])),
        ("canary.yaml", grpc_service("svc-canary", &[b[1].port()])),
        ("shadow.yaml", grpc_service("svc-shadow", &[b[2].port()])),
        (
            "route.yaml",
            grpc_route("filters", &["f.example.com"], rules),
        ),
    ];
    let (_dir, ctl) = serve("grpc-filters", &files).await;
    wait_routed(&ctl, "f.example.com", "filters.F").await;
    wait_routed(&ctl, "f.example.com", "weights.W").await;

    let mut c = client(&ctl, "f.example.com")
        .await
        .with_service("filters.F");
    let shadow_before = b[2].calls();
    let mut request = tonic::Request::new(EchoRequest {
        message: "filtered".into(),
        ..EchoRequest::default()
    });
    request
        .metadata_mut()
        .insert("x-secret", "hunter2".parse().unwrap());
    let reply = c.unary("Say", request).await.unwrap();
    assert_eq!(reply.metadata().get("x-served-by").unwrap(), "tollgate");
    let reply = reply.into_inner();
    assert_eq!(reply.backend, "main");
    assert_eq!(
        reply.metadata.get("x-route").map(String::as_str),
        Some("grpc")
    );
    assert!(
        !reply.metadata.contains_key("x-secret"),
        "{:?}",
        reply.metadata
    );
    let start = Instant::now();
    while b[2].calls() == shadow_before {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the mirror got no call"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let mut w = client(&ctl, "f.example.com")
        .await
        .with_service("weights.W");
    let mut seen: HashMap<String, u32> = HashMap::new();
    for i in 0..500 {
        let reply = w.say(&i.to_string()).await.unwrap();
        *seen.entry(reply.backend).or_default() += 1;
    }
    let main = seen.get("main").copied().unwrap_or(0);
    let canary = seen.get("canary").copied().unwrap_or(0);
    assert_eq!(main + canary, 500, "{seen:?}");
    // 4:1 is 400:100; allow 5% of the calls either way.
    assert!((375..=425).contains(&main), "{seen:?}");
}
