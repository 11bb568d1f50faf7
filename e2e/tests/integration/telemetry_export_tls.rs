//! OTLP export to a collector behind TLS: an `https://` endpoint verified
//! against `OTEL_EXPORTER_OTLP_CERTIFICATE`, with a client certificate
//! from `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`/`_CLIENT_KEY`, gzipped as
//! `OTEL_EXPORTER_OTLP_COMPRESSION` asks, over both protocols; a collector
//! whose certificate is not trusted gets nothing and slows nothing; a
//! certificate file that cannot be read stops the start.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::manifest_dir;
use crate::telemetry_config::get_in_trace;
use crate::telemetry_support::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tollgate_e2e::otlp::{Protocol, Receiver, SpanKind};
use tollgate_e2e::tls::{Ca, Leaf};
use tollgate_e2e::{Echo, HttpClient, bin_path};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_over_grpc_with_mutual_tls() {
    over_mutual_tls("grpc", Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_over_http_protobuf_with_mutual_tls() {
    over_mutual_tls("http/protobuf", Protocol::HttpProtobuf).await;
}

/// A fresh folder for one test's PEM files.
pub(crate) fn pem_dir(name: &str) -> PathBuf {
    let dir = manifest_dir(&format!("{name}-pem"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes `text` to `dir/file` and gives back the path.
pub(crate) fn pem(dir: &Path, file: &str, text: &str) -> String {
    let path = dir.join(file);
    std::fs::write(&path, text).unwrap();
    path.to_string_lossy().into_owned()
}

/// The server certificate of a TLS receiver, issued for `localhost`.
fn collector_leaf(ca: &Ca) -> Leaf {
    ca.leaf(&["localhost"], &[]).unwrap()
}

/// The environment pointing `protocol`'s exporters at `receiver` (an
/// `https://localhost` endpoint) and trusting `ca_path`.
fn tls_env(
    receiver: &Receiver,
    protocol: &str,
    service: &str,
    ca_path: &str,
) -> Vec<(String, String)> {
    let mut env = otel_env(receiver, protocol, service);
    env.push(("OTEL_EXPORTER_OTLP_CERTIFICATE".into(), ca_path.into()));
    env
}

/// A traced request's spans and its request-duration point arrive over
/// TLS, gzipped, the collector having checked the exporter's client
/// certificate; no handshake was refused.
async fn over_mutual_tls(name: &str, protocol: Protocol) {
    let server_ca = Ca::new("collector CA").unwrap();
    let client_ca = Ca::new("exporter CA").unwrap();
    let exporter = client_ca.client("gateway", 7).unwrap();
    let receiver = Receiver::start_tls(&collector_leaf(&server_ca), Some(&client_ca))
        .await
        .unwrap();
    assert!(
        receiver.http_endpoint().starts_with("https://localhost:"),
        "{}",
        receiver.http_endpoint()
    );
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let service = format!("gw-tls-{}", name.replace('/', "-"));
    let dir = pem_dir(&service);
    let ca_path = pem(&dir, "ca.pem", &server_ca.pem());
    let mut env = tls_env(&receiver, name, &service, &ca_path);
    let chain = pem(&dir, "client.pem", &exporter.chain_pem);
    let key = pem(&dir, "client-key.pem", &exporter.key_pem);
    env.push(("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE".into(), chain));
    env.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY".into(), key));
    env.push(("OTEL_EXPORTER_OTLP_COMPRESSION".into(), "gzip".into()));
    let ctl = start(&service, &manifests, &env).await;
    let client = HttpClient::http1();

    let url = format!("{}/shop/tls", ctl.gateway);
    let (trace, reply) = get_in_trace(&client, &url, true).await;
    assert_eq!(reply.status, 200);

    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(server.name, "GET /shop");
    assert_eq!(server.origin.protocol, protocol);
    assert_eq!(server.origin.service_name(), Some(service.as_str()));
    let point = wait_first_request(&receiver, &[("http.route", "/shop")]).await;
    assert_eq!(point.origin.protocol, protocol);
    assert_eq!(
        receiver.refused_handshakes(),
        0,
        "every export connection presented the client certificate"
    );
    let encoding = match protocol {
        Protocol::Grpc => "grpc-encoding",
        Protocol::HttpProtobuf => "content-encoding",
    };
    for export in receiver.exports() {
        assert_eq!(
            export.headers.get(encoding).map(String::as_str),
            Some("gzip"),
            "a {} export: {:#?}",
            export.payload.signal(),
            export.headers
        );
    }
}

/// A collector whose certificate the exporter does not trust gets no
/// data: the handshakes fail (the receiver counts them), requests are
/// answered as quickly as ever, and the loss shows in
/// `tollgate_telemetry_exports_total{result="failed"}` and one warning.
/// Then the CA file is renewed in place (the right CA written over it, as
/// the kubelet updates a mounted Secret): without a restart the exporter
/// is rebuilt from it, the spans arrive, and the log says it recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_collector_gets_nothing_until_the_ca_file_is_renewed() {
    let real_ca = Ca::new("collector CA").unwrap();
    let other_ca = Ca::new("someone else's CA").unwrap();
    let receiver = Receiver::start_tls(&collector_leaf(&real_ca), None)
        .await
        .unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let dir = pem_dir("gw-tls-untrusted");
    let wrong = pem(&dir, "other-ca.pem", &other_ca.pem());
    let env = tls_env(&receiver, "http/protobuf", "gw-tls-untrusted", &wrong);
    let ctl = start("gw-tls-untrusted", &manifests, &env).await;
    let client = HttpClient::http1();

    for i in 0..20 {
        let started = Instant::now();
        let url = format!("{}/shop/untrusted/{i}", ctl.gateway);
        let (_, reply) = get_in_trace(&client, &url, true).await;
        assert_eq!(reply.status, 200, "request {i}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "request {i} took {took:?}");
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while receiver.refused_handshakes() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        receiver.refused_handshakes() > 0,
        "the exporter tried the collector and refused its certificate"
    );
    assert!(
        receiver.spans().is_empty(),
        "no span reached an untrusted collector: {:#?}",
        receiver.spans()
    );
    // The loss is visible: counted, and logged once for the outage.
    let failed = [("signal", "traces"), ("result", "failed")];
    let scrape = scrape_until(&ctl.dataplane_admin, "failed span exports", |s| {
        s.sum("tollgate_telemetry_exports_total", &failed) > 0.0
    })
    .await;
    let ok = [("signal", "traces"), ("result", "ok")];
    assert_eq!(scrape.sum("tollgate_telemetry_exports_total", &ok), 0.0);
    let log = ctl.proc.log();
    let warnings = log
        .lines()
        .filter(|l| l.contains("OTLP export failed") && l.contains("traces"))
        .count();
    assert_eq!(warnings, 1, "one warning per outage:\n{log}");

    // The CA file renewed in place: the same gateway now trusts it.
    let renewed = pem(&dir, "other-ca.pem", &real_ca.pem());
    assert_eq!(renewed, wrong);
    let start = Instant::now();
    let mut sent = Vec::new();
    let trace_id = loop {
        let url = format!("{}/shop/renewed", ctl.gateway);
        let (trace, reply) = get_in_trace(&client, &url, true).await;
        assert_eq!(reply.status, 200);
        sent.push(trace.trace_id);
        let spans = receiver.spans();
        if let Some(span) = spans.iter().find(|s| sent.contains(&s.trace_id)) {
            break span.trace_id.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the renewed CA was never used\n{}",
            ctl.proc.tail(20)
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    wait_trace(&receiver, &trace_id, 2).await;
    let scrape = scrape_until(&ctl.dataplane_admin, "a span export", |s| {
        s.sum("tollgate_telemetry_exports_total", &ok) > 0.0
    })
    .await;
    assert!(scrape.sum("tollgate_telemetry_exports_total", &failed) > 0.0);
    let log = ctl.proc.log();
    assert!(log.contains("exporter rebuilt"), "{log}");
    assert!(log.contains("OTLP export recovered"), "{log}");
}

/// A certificate file that cannot be read stops the data plane at start,
/// with the variable's name in the error, instead of running without the
/// telemetry it was configured for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_certificate_stops_the_start() {
    let binary = bin_path("tollgate-dataplane").unwrap();
    let dir = pem_dir("gw-tls-missing");
    let missing = dir.join("absent.pem");
    // The snapshot file is never read: telemetry is set up first.
    let child = tokio::process::Command::new(binary)
        .arg("--snapshot-file")
        .arg(dir.join("snapshot.json"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "https://localhost:4318")
        .env("OTEL_EXPORTER_OTLP_CERTIFICATE", &missing)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("the data plane exits at once")
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it must not start: {stderr}");
    assert!(
        stderr.contains("OTEL_EXPORTER_OTLP_CERTIFICATE")
            && stderr.contains(&missing.to_string_lossy().into_owned()),
        "the error names the variable and the file: {stderr}"
    );
}
