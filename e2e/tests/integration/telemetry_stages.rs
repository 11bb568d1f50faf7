//! Spans of the request stages that call out: an external auth check and
//! the Redis round trip of a global rate limit are children of the
//! request's server span, and the auth service is sent the check span's
//! `traceparent`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::service;
use crate::telemetry_support::*;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tollgate_e2e::otlp::{Receiver, Span, SpanKind, StatusCode};
use tollgate_e2e::redis::RedisServer;
use tollgate_e2e::{Echo, HttpClient};

/// An auth service that answers every call 200 with `body` (JSON) and
/// keeps the heads it got.
async fn auth_stub(body: &'static str) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let kept = Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let kept = Arc::clone(&kept);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                kept.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).to_lowercase());
                let ok = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                     content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(ok.as_bytes()).await;
            });
        }
    });
    (port, heads)
}

/// A route behind an external auth check and a global rate limit.
const ROUTES: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: ExternalAuth
      externalAuth:
        protocol: HTTP
        backendRef: {name: authz, port: 80}
        http: {path: /check}
    backendRefs: [{name: echo, port: 80}]
---
apiVersion: tollgate.dev/v1alpha1
kind: RateLimitPolicy
metadata: {name: api, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: api}]
  limits:
  - name: per-client
    requests: 1000
    interval: 1m
    scope: Global
    key: [{clientIP: {}}]
";

/// The one span among `spans` whose `tollgate.call` is `call`.
fn call_span<'a>(spans: &'a [Span], call: &str) -> &'a Span {
    let found: Vec<&Span> = spans
        .iter()
        .filter(|s| s.str_attr("tollgate.call") == Some(call))
        .collect();
    assert_eq!(found.len(), 1, "one {call} span wanted: {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calling_stages_are_child_spans() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let redis = RedisServer::start().expect("redis-server (make test installs it)");
    let (auth_port, heads) = auth_stub("").await;
    let settings = format!(
        "{{}}\n  rateLimit:\n    redis: {{url: \"{}\"}}",
        redis.url()
    );
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], &settings)),
        ("authz.yaml", service("authz", &[auth_port])),
        ("routes.yaml", ROUTES.to_string()),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-stages");
    let ctl = start("stages", &manifests, &env).await;

    let trace = ClientTrace::new();
    let traceparent = trace.traceparent(true);
    let url = format!("{}/api/items", ctl.gateway);
    let reply = send(
        &HttpClient::http1(),
        &url,
        &[("traceparent", traceparent.as_str())],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    // Server, upstream attempt, auth check, Redis round trip.
    let spans = wait_trace(&receiver, &trace.trace_id, 4).await;
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();

    let check = call_span(&spans, "external-auth");
    assert!(check.is_child_of(server), "{check:#?}");
    assert_eq!(check.kind, SpanKind::Client);
    assert_eq!(check.name, "GET");
    assert_eq!(check.status, StatusCode::Unset, "{check:#?}");
    assert_eq!(check.int_attr("http.response.status_code"), Some(200));
    let full = check.str_attr("url.full").unwrap_or_default();
    assert!(full.ends_with("/check/api/items"), "url.full {full:?}");
    // The auth service was asked as a child of the check span.
    let seen = heads.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let sent = format!("traceparent: 00-{}-{}-01", trace.trace_id, check.span_id);
    assert!(seen[0].contains(&sent), "{sent} not in {}", seen[0]);

    let round_trip = call_span(&spans, "rate-limit");
    assert!(round_trip.is_child_of(server), "{round_trip:#?}");
    assert_eq!(round_trip.name, "EVALSHA");
    assert_eq!(round_trip.str_attr("db.system.name"), Some("redis"));
    assert_eq!(round_trip.status, StatusCode::Unset, "{round_trip:#?}");
    assert!(server.start_time_unix_nano <= check.start_time_unix_nano);
    assert!(round_trip.end_time_unix_nano <= server.end_time_unix_nano);

    // An unsampled request makes no stage spans (and its check goes on).
    let quiet = ClientTrace::new();
    let unsampled = quiet.traceparent(false);
    let reply = send(
        &HttpClient::http1(),
        &url,
        &[("traceparent", unsampled.as_str())],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(heads.lock().unwrap().len(), 2);
    assert!(spans_of(&receiver, &quiet.trace_id).is_empty());
}

/// A route whose AuthPolicy introspects bearer tokens at `uri`.
fn introspected(uri: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: intro, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /intro}}}}]
    backendRefs: [{{name: echo, port: 80}}]
---
apiVersion: v1
kind: Secret
metadata: {{name: idp-client, namespace: default}}
stringData: {{client-secret: s3cr3t}}
---
apiVersion: tollgate.dev/v1alpha1
kind: AuthPolicy
metadata: {{name: intro, namespace: default}}
spec:
  targetRefs: [{{group: gateway.networking.k8s.io, kind: HTTPRoute, name: intro}}]
  introspection:
    uri: {uri}
    clientID: gateway
    clientSecret: {{name: idp-client}}
"
    )
}

/// A token introspected for a sampled request is a child span of it (and
/// the identity provider gets that span's `traceparent`); the same token
/// answered from the cache makes no call and no span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_introspection_call_is_a_child_span() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let (idp_port, heads) = auth_stub(r#"{"active":true,"sub":"alice"}"#).await;
    let uri = format!("http://127.0.0.1:{idp_port}/introspect");
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], "{}")),
        ("routes.yaml", introspected(&uri)),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-introspection");
    let ctl = start("stages-introspection", &manifests, &env).await;
    let url = format!("{}/intro/me", ctl.gateway);
    let client = HttpClient::http1();

    let first = ClientTrace::new();
    let header = first.traceparent(true);
    let headers = [
        ("traceparent", header.as_str()),
        ("authorization", "Bearer tok-1"),
    ];
    let reply = send(&client, &url, &headers).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let spans = wait_trace(&receiver, &first.trace_id, 3).await;
    assert_eq!(spans.len(), 3, "{spans:#?}");
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    let call = call_span(&spans, "token-introspection");
    assert!(call.is_child_of(server), "{call:#?}");
    assert_eq!(call.name, "POST");
    assert_eq!(call.str_attr("url.full"), Some(uri.as_str()));
    assert_eq!(call.status, StatusCode::Unset, "{call:#?}");
    let seen = heads.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let sent = format!("traceparent: 00-{}-{}-01", first.trace_id, call.span_id);
    assert!(seen[0].contains(&sent), "{sent} not in {}", seen[0]);

    // The cached answer: server and upstream spans only.
    let second = ClientTrace::new();
    let header = second.traceparent(true);
    let headers = [
        ("traceparent", header.as_str()),
        ("authorization", "Bearer tok-1"),
    ];
    let reply = send(&client, &url, &headers).await;
    assert_eq!(reply.status, 200);
    let spans = wait_trace(&receiver, &second.trace_id, 2).await;
    assert_eq!(heads.lock().unwrap().len(), 1, "the cache answered");
    assert!(
        spans.iter().all(|s| s.str_attr("tollgate.call").is_none()),
        "{spans:#?}"
    );
}
