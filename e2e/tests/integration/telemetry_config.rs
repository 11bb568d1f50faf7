//! What `GatewayConfig.spec.telemetry` changes, through the real binaries:
//! tracing turned off for one Gateway, response headers and credentials
//! recorded on spans, and the trace context a request mirror carries.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::service;
use crate::telemetry_support::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tollgate_e2e::otlp::{Receiver, Span, SpanKind};
use tollgate_e2e::{Echo, HttpClient, Proc, Reply};

/// The one span of `kind` among `spans`.
fn one(spans: &[Span], kind: SpanKind) -> Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.kind == kind).collect();
    assert_eq!(found.len(), 1, "one {kind:?} span wanted: {spans:#?}");
    found[0].clone()
}

/// `GET url` in a fresh client trace context, sampled or not.
pub(crate) async fn get_in_trace(
    client: &HttpClient,
    url: &str,
    sampled: bool,
) -> (ClientTrace, Reply) {
    let trace = ClientTrace::new();
    let header = trace.traceparent(sampled);
    let reply = send(client, url, &[("traceparent", &header)]).await;
    (trace, reply)
}

/// The access-log line (stdout JSON) of trace `trace_id`; waits up to 10 s.
async fn access_line(proc: &Proc, trace_id: &str) -> Value {
    let start = Instant::now();
    loop {
        let found = proc
            .log()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|v| v["log"] == "access" && v["trace_id"] == trace_id);
        if let Some(line) = found {
            return line;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no access-log line of trace {trace_id}:\n{}",
            proc.tail(30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A second Gateway `gw2` on 127.0.0.2 (same port) whose own GatewayConfig
/// `traced` turns tracing back on over the class's `enabled: false`, and a
/// route `/shop` on it to `echo`.
const TRACED_GW2: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw2, namespace: default}
spec:
  gatewayClassName: tollgate
  infrastructure:
    parametersRef: {group: tollgate.dev, kind: GatewayConfig, name: traced}
  addresses: [{type: IPAddress, value: 127.0.0.2}]
  listeners:
  - {name: http, port: 80, protocol: HTTP}
---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {name: traced, namespace: default}
spec:
  telemetry: {tracing: {enabled: true}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop2, namespace: default}
spec:
  parentRefs: [{name: gw2}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /shop}}]
    backendRefs: [{name: echo, port: 80}]
";

/// `tracing: {enabled: false}`: a sampled client context makes no span at
/// all (routed or 404), while the traced Gateway beside it, on the same
/// exporter, gets its spans out before and after. The gateway then takes
/// no part in the trace: the backend gets the client's `traceparent` and
/// `tracestate` untouched (no context is made for a request that came
/// without one), and the access-log line carries the client's trace id
/// without a span id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_disabled_makes_no_spans_and_passes_the_context_through() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{tracing: {enabled: false}, accessLog: {enabled: true}}";
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], settings)),
        ("routes.yaml", format!("{SHOP_ROUTES}{TRACED_GW2}")),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-untraced");
    let ctl = start("tracing-off", &manifests, &env).await;
    let client = HttpClient::http1();
    let off = ctl.gateway.clone();
    let on = format!("http://127.0.0.2:{}", ctl.port);

    // Each round: the untraced Gateway, routed and unrouted, then the
    // traced one. Spans leave in the order they end, so once the traced
    // request's spans are in, any span of the earlier ones would be too.
    let mut untraced = Vec::new();
    for round in 0..2 {
        let trace = ClientTrace::new();
        let traceparent = trace.traceparent(true);
        let context = [
            ("traceparent", traceparent.as_str()),
            ("tracestate", "vendor=opaque"),
        ];
        let reply = send(&client, &format!("{off}/shop/{round}"), &context).await;
        assert_eq!(reply.status, 200);
        let seen = reply.echo().unwrap();
        assert_eq!(
            seen.header("traceparent"),
            Some(traceparent.as_str()),
            "the client's context, not one of the gateway's: {seen:#?}"
        );
        assert_eq!(seen.header("tracestate"), Some("vendor=opaque"));
        let line = access_line(&ctl.proc, &trace.trace_id).await;
        assert_eq!(line["path"], format!("/shop/{round}"), "{line}");
        assert!(line.get("span_id").is_none(), "no span of its own: {line}");
        untraced.push(trace);

        let (missed, reply) = get_in_trace(&client, &format!("{off}/nowhere/{round}"), true).await;
        assert_eq!(reply.status, 404);
        untraced.push(missed);

        let (traced, reply) = get_in_trace(&client, &format!("{on}/shop/{round}"), true).await;
        assert_eq!(reply.status, 200);
        let spans = wait_trace(&receiver, &traced.trace_id, 2).await;
        let server = one(&spans, SpanKind::Server);
        assert_eq!(server.str_attr("tollgate.gateway"), Some("default/gw2"));
        let upstream = one(&spans, SpanKind::Client);
        assert_eq!(
            reply.echo().unwrap().header("traceparent"),
            Some(format!("00-{}-{}-01", traced.trace_id, upstream.span_id).as_str()),
            "the traced Gateway's own client span is the backend's parent"
        );
    }
    // Without a context from the client, none is made up.
    let reply = send(&client, &format!("{off}/shop/bare"), &[]).await;
    let seen = reply.echo().unwrap();
    assert_eq!(seen.header("traceparent"), None, "{seen:#?}");

    // Ten export rounds (OTEL_BSP_SCHEDULE_DELAY=100) more for stragglers.
    tokio::time::sleep(Duration::from_secs(1)).await;
    for trace in &untraced {
        let spans = spans_of(&receiver, &trace.trace_id);
        assert!(spans.is_empty(), "tracing is off for gw: {spans:#?}");
    }
    let spans = receiver.spans();
    let gateways: Vec<Option<&str>> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server)
        .map(|s| s.str_attr("tollgate.gateway"))
        .collect();
    assert_eq!(gateways, [Some("default/gw2"); 2], "{}", receiver.summary());
}

/// `responseHeaders` records what the backend answered as
/// `http.response.header.<name>`, unlisted headers not at all; the
/// credentials `Cookie` and `Set-Cookie` are recorded as `REDACTED` on the
/// span and the access-log line, and their values appear in neither,
/// while client and backend still get them whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_headers_and_redacted_cookies() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{requestHeaders: [Cookie, X-Tenant], \
                    responseHeaders: [X-Cache, Set-Cookie, X-Absent], \
                    accessLog: {enabled: true}}";
    let manifests = shop_manifests(&echo, settings);
    let env = otel_env(&receiver, "http/protobuf", "gw-headers");
    let ctl = start("recorded-headers", &manifests, &env).await;
    let client = HttpClient::http1();

    let trace = ClientTrace::new();
    let traceparent = trace.traceparent(true);
    let reply = send(
        &client,
        &format!("{}/shop/headers", ctl.gateway),
        &[
            ("traceparent", traceparent.as_str()),
            ("cookie", "sid=request-secret-1"),
            ("x-tenant", "acme"),
            (
                "x-echo-set-header",
                "X-Cache:HIT,Set-Cookie:sid=response-secret-2,X-Unlisted:no",
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    // Recording changes nothing that is sent.
    assert_eq!(reply.header("x-cache"), Some("HIT"));
    assert_eq!(reply.header("set-cookie"), Some("sid=response-secret-2"));
    let seen = reply.echo().unwrap();
    assert_eq!(seen.header("cookie"), Some("sid=request-secret-1"));

    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let server = one(&spans, SpanKind::Server);
    let recorded: BTreeMap<&str, Value> = server
        .attributes
        .iter()
        .filter(|(k, _)| {
            k.starts_with("http.request.header.") || k.starts_with("http.response.header.")
        })
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let want = BTreeMap::from([
        ("http.request.header.cookie", json!(["REDACTED"])),
        ("http.request.header.x-tenant", json!(["acme"])),
        ("http.response.header.set-cookie", json!(["REDACTED"])),
        ("http.response.header.x-cache", json!(["HIT"])),
    ]);
    assert_eq!(recorded, want, "{server:#?}");
    for secret in ["request-secret-1", "response-secret-2"] {
        assert!(
            !format!("{spans:?}").contains(secret),
            "{secret} in a span: {spans:#?}"
        );
    }

    // The log line records the same, as [name, value] pairs in the order
    // configured.
    let line = access_line(&ctl.proc, &trace.trace_id).await;
    assert_eq!(
        line["request_headers"],
        json!([["cookie", "REDACTED"], ["x-tenant", "acme"]]),
        "{line}"
    );
    assert_eq!(
        line["response_headers"],
        json!([["x-cache", "HIT"], ["set-cookie", "REDACTED"]]),
        "{line}"
    );
    assert!(!line.to_string().contains("secret"), "{line}");
}

/// A request line and its header fields by lowercase name.
type Head = (String, BTreeMap<String, String>);

/// A stand-in backend for a mirror target, whose answer the gateway drops,
/// so the echo backend could not report what it got: answers every request
/// `200` without a body and keeps its head (request line, then header lines
/// with lowercase names).
struct HeadRecorder {
    port: u16,
    heads: Arc<Mutex<Vec<Head>>>,
    task: tokio::task::JoinHandle<()>,
}

impl HeadRecorder {
    async fn start() -> HeadRecorder {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&heads);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = Arc::clone(&kept);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut read = BufReader::new(read);
                    // Keep-alive: head after head on one connection.
                    while let Some((line, head)) = read_head(&mut read).await {
                        let length = head.get("content-length").and_then(|l| l.parse().ok());
                        let mut body = vec![0; length.unwrap_or(0)];
                        if read.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        kept.lock().unwrap().push((line, head));
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                        if write.write_all(answer).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        HeadRecorder { port, heads, task }
    }

    /// The headers of the first request whose target starts with `path`;
    /// waits up to 10 s (a mirror is sent on its own task).
    async fn wait_for(&self, path: &str) -> BTreeMap<String, String> {
        let start = Instant::now();
        loop {
            let heads = self.heads.lock().unwrap().clone();
            let target = |line: &str| line.split(' ').nth(1).unwrap_or_default().to_string();
            if let Some((_, head)) = heads.iter().find(|(l, _)| target(l).starts_with(path)) {
                return head.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the mirror target never got {path}: {heads:#?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for HeadRecorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One request head from `read`, or `None` at the end of the connection.
async fn read_head<R: AsyncBufReadExt + Unpin>(read: &mut R) -> Option<Head> {
    let mut request_line = String::new();
    if read.read_line(&mut request_line).await.ok()? == 0 {
        return None;
    }
    let mut head = BTreeMap::new();
    loop {
        let mut line = String::new();
        if read.read_line(&mut line).await.ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            return Some((request_line.trim_end().to_string(), head));
        }
        let (name, value) = line.split_once(':')?;
        head.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
    }
}

/// A `RequestMirror` copy carries the server span as its parent, in the
/// client's trace, while the primary backend gets the client span; an
/// unsampled request's mirror and backend both get the server span's
/// unsampled context.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mirror_carries_the_server_span_as_parent() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let mirror = HeadRecorder::start().await;
    let routes = format!(
        "{SHOP_ROUTES}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: mirrored, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /mirrored}}}}]
    filters:
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: mirror, port: 80}}}}
    backendRefs: [{{name: echo, port: 80}}]
{}",
        service("mirror", &[mirror.port])
    );
    let manifests = [
        ("base.yaml", base_with_telemetry(&[&echo], "{}")),
        ("routes.yaml", routes),
    ];
    let env = otel_env(&receiver, "http/protobuf", "gw-mirror");
    let ctl = start("mirror-trace", &manifests, &env).await;
    let client = HttpClient::http1();

    let url = format!("{}/mirrored/sampled", ctl.gateway);
    let (sampled, reply) = get_in_trace(&client, &url, true).await;
    assert_eq!(reply.status, 200);
    let primary = reply.echo().unwrap();
    let copy = mirror.wait_for("/mirrored/sampled").await;
    let spans = wait_trace(&receiver, &sampled.trace_id, 2).await;
    let server = one(&spans, SpanKind::Server);
    let upstream = one(&spans, SpanKind::Client);
    assert_eq!(server.name, "GET /mirrored");
    let id = &sampled.trace_id;
    assert_eq!(
        copy.get("traceparent").map(String::as_str),
        Some(format!("00-{id}-{}-01", server.span_id).as_str()),
        "the mirror's parent is the server span {server:#?}"
    );
    assert_eq!(
        primary.header("traceparent"),
        Some(format!("00-{id}-{}-01", upstream.span_id).as_str()),
        "the backend's parent is the client span {upstream:#?}"
    );

    let url = format!("{}/mirrored/unsampled", ctl.gateway);
    let (unsampled, reply) = get_in_trace(&client, &url, false).await;
    let primary = reply.echo().unwrap();
    let copy = mirror.wait_for("/mirrored/unsampled").await;
    let parent = copy.get("traceparent").cloned().unwrap_or_default();
    let fields: Vec<&str> = parent.split('-').collect();
    assert_eq!(fields.len(), 4, "{copy:#?}");
    assert_eq!(fields[1], unsampled.trace_id, "the client's trace");
    assert_ne!(fields[2], unsampled.span_id, "the gateway's span");
    assert_eq!(fields[3], "00", "not sampled");
    assert_eq!(primary.header("traceparent"), Some(parent.as_str()));
}
