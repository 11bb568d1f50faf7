//! Shared by the telemetry tests: a Gateway whose class names a
//! GatewayConfig with telemetry settings, the `OTEL_*` environment that
//! points the controller at a test OTLP receiver, client trace contexts,
//! and `/metrics` scrapes.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use http::Method;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};
use tollgate_e2e::otlp::{MetricPoint, Receiver, Span};
use tollgate_e2e::prometheus::{Scrape, parse};
use tollgate_e2e::{Echo, HttpClient, Reply};

/// The spans of a configuration change (the controller's compile, its
/// publication per Gateway, each data plane's apply), beside the
/// requests' spans.
pub const CHANGE_SPANS: [&str; 3] = ["compile", "publish", "apply snapshot"];

/// The routes most telemetry tests use: `default/shop` sends `/shop...` to
/// `echo`, `/empty...` to a Service without endpoints.
pub const SHOP_ROUTES: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: shop, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /shop}}]
    backendRefs: [{name: echo, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /empty}}]
    backendRefs: [{name: no-endpoints, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: no-endpoints, namespace: default}
spec:
  ports: [{name: http, port: 80}]
";

/// The manifests most telemetry tests run: the base with `telemetry`
/// settings for `echo`, and [`SHOP_ROUTES`].
pub fn shop_manifests(echo: &Echo, telemetry: &str) -> [(&'static str, String); 2] {
    [
        ("base.yaml", base_with_telemetry(&[echo], telemetry)),
        ("routes.yaml", SHOP_ROUTES.to_string()),
    ]
}

/// A route `always` for `/always` that samples every trace (the route's
/// ratio annotation at 1), whatever its Gateway says.
pub const ALWAYS_SAMPLED_ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: always
  namespace: default
  annotations: {tollgate.dev/tracing-sampling-ratio: '1'}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /always}}]
    backendRefs: [{name: echo, port: 80}]
";

/// The GatewayClass/Gateway of [`base`] with the class naming GatewayConfig
/// `default/telemetry` whose `spec.telemetry` is `telemetry` (a YAML flow
/// mapping, e.g. `{recordQuery: true}`), plus Services for `backends`.
pub fn base_with_telemetry(backends: &[&Echo], telemetry: &str) -> String {
    let plain = base("gw", "127.0.0.1", backends);
    let class = "spec: {controllerName: tollgate.dev/gateway-controller}";
    assert!(plain.contains(class), "base() changed its GatewayClass");
    let with_ref = "spec:
  controllerName: tollgate.dev/gateway-controller
  parametersRef: {group: tollgate.dev, kind: GatewayConfig, name: telemetry, namespace: default}";
    format!(
        "{}---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {{name: telemetry, namespace: default}}
spec:
  telemetry: {telemetry}
",
        plain.replacen(class, with_ref, 1)
    )
}

/// The environment that exports every signal to `receiver` over `protocol`
/// (`grpc` or `http/protobuf`), spans every 100 ms, metrics every 500 ms.
pub fn otel_env(receiver: &Receiver, protocol: &str, service: &str) -> Vec<(String, String)> {
    let endpoint = if protocol == "grpc" {
        receiver.grpc_endpoint()
    } else {
        receiver.http_endpoint()
    };
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", protocol),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ("OTEL_SERVICE_NAME", service),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Borrows an owned environment for [`start_controller_with_env`].
pub fn env_refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Starts `tollgate-controller --with-dataplane` on `manifests` (written
/// to a fresh folder named after `name`) with `env`.
pub async fn start(
    name: &str,
    manifests: &[(&str, String)],
    env: &[(String, String)],
) -> Controller {
    let dir = manifest_dir(name);
    for (file, text) in manifests {
        write(&dir, file, text);
    }
    start_controller_with_env(&dir, true, &env_refs(env)).await
}

/// A client trace context: fresh, distinct trace and span ids.
#[derive(Clone, Debug)]
pub struct ClientTrace {
    pub trace_id: String,
    pub span_id: String,
}

impl ClientTrace {
    /// New ids, distinct from every other `ClientTrace` of the process.
    pub fn new() -> ClientTrace {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        ClientTrace {
            trace_id: format!("{nanos:016x}{:08x}{n:08x}", std::process::id()),
            span_id: format!("{:016x}", 0xa000_0000_0000_0000u64 | n),
        }
    }

    /// The `traceparent` of this context, sampled or not.
    pub fn traceparent(&self, sampled: bool) -> String {
        let flags = if sampled { "01" } else { "00" };
        format!("00-{}-{}-{flags}", self.trace_id, self.span_id)
    }
}

/// `method url` with `headers`; panics when the exchange fails.
pub async fn send(client: &HttpClient, url: &str, headers: &[(&str, &str)]) -> Reply {
    client
        .request(Method::GET, url, headers)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

/// Every span of trace `trace_id` received so far.
pub fn spans_of(receiver: &Receiver, trace_id: &str) -> Vec<Span> {
    receiver
        .spans()
        .into_iter()
        .filter(|s| s.trace_id == trace_id)
        .collect()
}

/// Waits until `n` spans of trace `trace_id` arrived; returns them.
pub async fn wait_trace(receiver: &Receiver, trace_id: &str, n: usize) -> Vec<Span> {
    receiver
        .wait_until(
            &format!("{n} spans of trace {trace_id}"),
            Duration::from_secs(15),
            |r| {
                let spans = spans_of(r, trace_id);
                (spans.len() >= n).then_some(spans)
            },
        )
        .await
}

/// The `http.server.request.duration` point with `labels` once it counts
/// exactly one request (the test's first).
pub async fn wait_first_request(receiver: &Receiver, labels: &[(&str, &str)]) -> MetricPoint {
    receiver
        .wait_until(
            "the request in http.server.request.duration",
            Duration::from_secs(15),
            |r| {
                r.latest_metric("http.server.request.duration", labels)
                    .filter(|p| p.value.as_histogram().is_some_and(|h| h.count == 1))
            },
        )
        .await
}

/// `/metrics` of `admin`, parsed strictly.
pub async fn scrape(admin: &str) -> Scrape {
    let reply = HttpClient::http1()
        .get(&format!("{admin}/metrics"))
        .await
        .unwrap();
    assert_eq!(reply.status, 200, "{admin}/metrics");
    let text = reply.text();
    parse(&text).unwrap_or_else(|e| panic!("{admin}/metrics does not parse: {e}\n{text}"))
}

/// Scrapes `admin` until `done` holds (metrics are recorded when a
/// response's last byte leaves, which can be just after the client has
/// it); panics after 10 s. Returns the scrape that satisfied it.
pub async fn scrape_until(admin: &str, what: &str, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let start = Instant::now();
    loop {
        let scrape = scrape(admin).await;
        if done(&scrape) {
            return scrape;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{admin}/metrics never showed {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `_count` of the one series of histogram `name` with `labels` (0
/// when there is none yet).
pub fn histogram_count(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let all = scrape.histograms(name, labels);
    assert!(
        all.len() <= 1,
        "{name}{labels:?} matches {} series",
        all.len()
    );
    all.first().and_then(|h| h.count).unwrap_or(0.0)
}

/// The `_count`s of every series of histogram `name` with `labels`, added.
pub fn histogram_total(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .histograms(name, labels)
        .iter()
        .filter_map(|h| h.count)
        .sum()
}
