//! OTLP export through an HTTP proxy (`HTTPS_PROXY` with credentials):
//! the collector's name resolves only at the proxy, as a hosted
//! collector's does from a cluster whose egress goes through one. Spans
//! and metrics arrive over both protocols, TLS to the collector inside a
//! `CONNECT` tunnel; a plain-HTTP collector's exports are forwarded by a
//! proxy that, like squid by default, tunnels only to port 443; a proxy
//! that refuses the credentials loses the telemetry visibly and slows no
//! request.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_config::get_in_trace;
use crate::telemetry_export_tls::{pem, pem_dir};
use crate::telemetry_support::*;
use std::time::{Duration, Instant};
use tollgate_e2e::otlp::{Protocol, Receiver, SpanKind};
use tollgate_e2e::tls::Ca;
use tollgate_e2e::{ConnectProxy, Echo, HttpClient};

/// The collector's name: only the proxy can resolve it.
const COLLECTOR: &str = "collector.test";

/// `Proxy-Authorization` for `gateway:s3cret`.
const BASIC: &str = "Basic Z2F0ZXdheTpzM2NyZXQ=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_through_a_proxy_over_grpc() {
    through_a_proxy("grpc", Protocol::Grpc).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_and_metrics_through_a_proxy_over_http_protobuf() {
    through_a_proxy("http/protobuf", Protocol::HttpProtobuf).await;
}

/// A TLS receiver for [`COLLECTOR`], a proxy that resolves that name and
/// requires [`BASIC`], and the exporter environment pointing at the
/// receiver by name through the proxy with `credentials`.
async fn collector_behind_proxy(
    protocol: &str,
    service: &str,
    credentials: &str,
) -> (Receiver, ConnectProxy, Vec<(String, String)>) {
    let ca = Ca::new("collector CA").unwrap();
    let receiver = Receiver::start_tls(&ca.leaf(&[COLLECTOR], &[]).unwrap(), None)
        .await
        .unwrap();
    let proxy = ConnectProxy::start(&[(COLLECTOR, "127.0.0.1")], Some(BASIC))
        .await
        .unwrap();
    let mut env = otel_env(&receiver, protocol, service);
    for (name, value) in &mut env {
        if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
            *value = value.replace("localhost", COLLECTOR);
        }
    }
    let ca_path = pem(&pem_dir(service), "ca.pem", &ca.pem());
    env.push(("OTEL_EXPORTER_OTLP_CERTIFICATE".into(), ca_path));
    // The lower-case form, as many images set it; NO_PROXY names others.
    env.push(("https_proxy".into(), proxy.url(Some(credentials))));
    env.push((
        "NO_PROXY".into(),
        "kubernetes.default.svc,10.0.0.0/8".into(),
    ));
    (receiver, proxy, env)
}

/// A traced request's spans and a request-duration point arrive at the
/// collector, every export connection a tunnel to the collector's name
/// with the proxy's credentials.
async fn through_a_proxy(name: &str, protocol: Protocol) {
    let service = format!("gw-proxy-{}", name.replace('/', "-"));
    let (receiver, proxy, env) = collector_behind_proxy(name, &service, "gateway:s3cret").await;
    let echo = Echo::start("echo").await.unwrap();
    let ctl = start(&service, &shop_manifests(&echo, "{}"), &env).await;

    let url = format!("{}/shop/proxied", ctl.gateway);
    let (trace, reply) = get_in_trace(&HttpClient::http1(), &url, true).await;
    assert_eq!(reply.status, 200);
    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    let server = spans.iter().find(|s| s.kind == SpanKind::Server).unwrap();
    assert_eq!(server.name, "GET /shop");
    assert_eq!(server.origin.protocol, protocol);
    wait_first_request(&receiver, &[("http.route", "/shop")]).await;

    let tunnels = proxy.tunnels();
    assert!(!tunnels.is_empty(), "the exports went through the proxy");
    let endpoint = env
        .iter()
        .find(|(name, _)| name == "OTEL_EXPORTER_OTLP_ENDPOINT")
        .map(|(_, url)| url.trim_start_matches("https://").trim_end_matches('/'));
    assert!(
        endpoint.is_some_and(|e| e.starts_with(COLLECTOR)),
        "{endpoint:?}"
    );
    for tunnel in &tunnels {
        assert_eq!(Some(tunnel.target.as_str()), endpoint, "{tunnels:#?}");
        assert_eq!(tunnel.authorization.as_deref(), Some(BASIC), "{tunnels:#?}");
        assert!(tunnel.opened, "{tunnels:#?}");
    }
}

/// A proxy that refuses the exporter's credentials (407) gets no data to
/// the collector; requests are answered as fast as ever, and the loss
/// shows in `tollgate_telemetry_exports_total{result="failed"}`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_refuses_the_credentials_loses_the_spans_visibly() {
    let service = "gw-proxy-refused";
    let (receiver, proxy, env) =
        collector_behind_proxy("http/protobuf", service, "gateway:wrong").await;
    let echo = Echo::start("echo").await.unwrap();
    let ctl = start(service, &shop_manifests(&echo, "{}"), &env).await;
    let client = HttpClient::http1();
    for i in 0..10 {
        let started = Instant::now();
        let url = format!("{}/shop/refused/{i}", ctl.gateway);
        let (_, reply) = get_in_trace(&client, &url, true).await;
        assert_eq!(reply.status, 200, "request {i}");
        let took = started.elapsed();
        assert!(took < Duration::from_secs(1), "request {i} took {took:?}");
    }
    let failed = [("signal", "traces"), ("result", "failed")];
    scrape_until(&ctl.dataplane_admin, "failed span exports", |s| {
        s.sum("tollgate_telemetry_exports_total", &failed) > 0.0
    })
    .await;
    let tunnels = proxy.tunnels();
    assert!(
        tunnels
            .iter()
            .any(|t| !t.opened && t.authorization.is_some()),
        "the proxy refused the credentials: {tunnels:#?}"
    );
    assert!(tunnels.iter().all(|t| !t.opened), "{tunnels:#?}");
    assert!(receiver.spans().is_empty(), "{:#?}", receiver.spans());
}

/// A plain-HTTP collector behind a proxy that allows `CONNECT` only to
/// port 443, as squid does by default: the HTTP/protobuf exports go to it
/// as forwarded requests in absolute form, each with the credentials, and
/// the spans arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_collector_gets_forwarded_requests_not_tunnels() {
    let service = "gw-proxy-forwarded";
    let receiver = Receiver::start().await.unwrap();
    let proxy = ConnectProxy::start_with(&[(COLLECTOR, "127.0.0.1")], Some(BASIC), Some(&[443]))
        .await
        .unwrap();
    let mut env = otel_env(&receiver, "http/protobuf", service);
    for (name, value) in &mut env {
        if name == "OTEL_EXPORTER_OTLP_ENDPOINT" {
            *value = value
                .replace("localhost", COLLECTOR)
                .replace("127.0.0.1", COLLECTOR);
        }
    }
    env.push(("HTTP_PROXY".into(), proxy.url(Some("gateway:s3cret"))));
    let echo = Echo::start("echo").await.unwrap();
    let ctl = start(service, &shop_manifests(&echo, "{}"), &env).await;

    let url = format!("{}/shop/forwarded", ctl.gateway);
    let (trace, reply) = get_in_trace(&HttpClient::http1(), &url, true).await;
    assert_eq!(reply.status, 200);
    let spans = wait_trace(&receiver, &trace.trace_id, 2).await;
    assert!(spans.iter().any(|s| s.kind == SpanKind::Server));
    let requests = proxy.tunnels();
    assert!(!requests.is_empty(), "the exports went through the proxy");
    let collector = format!("http://{COLLECTOR}:{}/v1/", receiver.http_addr().port());
    for request in &requests {
        assert_eq!(request.method, "POST", "{requests:#?}");
        assert!(request.target.starts_with(&collector), "{requests:#?}");
        assert_eq!(
            request.authorization.as_deref(),
            Some(BASIC),
            "{requests:#?}"
        );
        assert!(request.opened, "{requests:#?}");
    }
}
