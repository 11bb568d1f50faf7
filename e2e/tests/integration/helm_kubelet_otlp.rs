//! From `helm install` with `telemetry.otlp.tls` to a collector behind
//! mutual TLS: the chart mounts the exporter's Secret into the controller,
//! the controller copies its files into the data plane's client Secret,
//! and both processes, started as the kubelet would start them (see
//! `common::kubelet`), export over TLS with the client certificate. The
//! collector's token comes from a Secret too, and reaches the data plane
//! through its client Secret, never through its Deployment.

#![allow(clippy::expect_used)]

use super::common::k8s::apply;
use super::common::kubelet::Pod;
use super::helm_kubelet::{LISTENER_PORT, deployment, manifests, run};
use super::helm_support::{NAMESPACE, RELEASE, helm_on, install_chart};
use base64::Engine as _;
use std::time::Duration;
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::otlp::{Receiver, SpanKind};
use tollgate_e2e::tls::Ca;
use tollgate_e2e::{Echo, HttpClient, free_port, log_dir};

/// The Secret the chart's `telemetry.otlp.tls.secretName` names, with the
/// layout of a cert-manager Certificate's.
fn exporter_secret(ca_pem: &str, chain_pem: &str, key_pem: &str) -> String {
    let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: otel-exporter-tls, namespace: {NAMESPACE}}}
type: kubernetes.io/tls
data:
  ca.crt: {}
  tls.crt: {}
  tls.key: {}
---
apiVersion: v1
kind: Secret
metadata: {{name: otel-exporter-token, namespace: {NAMESPACE}}}
data:
  headers: {}
",
        b64(ca_pem),
        b64(chain_pem),
        b64(key_pem),
        b64(&format!("x-collector-token={TOKEN}")),
    )
}

/// The collector's token, in the second Secret: the controller gets it
/// through `controller.extraEnv` (`secretKeyRef`), data planes through
/// their client Secret.
const TOKEN: &str = "tok-kubelet-4d1";

/// `controller.extraEnv`: the export headers from the token's Secret.
const HEADERS_FROM_SECRET: &str = r#"controller.extraEnv=[{"name":"OTEL_EXPORTER_OTLP_HEADERS","valueFrom":{"secretKeyRef":{"name":"otel-exporter-token","key":"headers"}}}]"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_and_data_plane_export_to_a_mutual_tls_collector() {
    let collector_ca = Ca::new("collector CA").expect("CA");
    let exporter_ca = Ca::new("exporter CA").expect("CA");
    let exporter = exporter_ca.client("tollgate", 9).expect("client cert");
    let leaf = collector_ca.leaf(&["localhost"], &[]).expect("leaf");
    let receiver = Receiver::start_tls(&leaf, Some(&exporter_ca))
        .await
        .expect("receiver");

    let server = ApiServer::start().await.expect("API server starts");
    let endpoint = format!("telemetry.otlp.endpoint={}", receiver.http_endpoint());
    install_chart(
        &server,
        &[
            "--set",
            "gatewayAPI.installCRDs=true",
            "--set",
            "controller.replicas=1",
            "--set",
            "gatewayClass.kubernetes.deployment.replicas=1",
            "--set",
            &endpoint,
            "--set",
            "telemetry.otlp.protocol=http/protobuf",
            "--set",
            "telemetry.otlp.tls.secretName=otel-exporter-tls",
            "--set",
            "telemetry.otlp.tls.clientCertificate=true",
            "--set-json",
            HEADERS_FROM_SECRET,
        ],
    )
    .await;
    let secret = exporter_secret(&collector_ca.pem(), &exporter.chain_pem, &exporter.key_pem);
    apply(&server, &secret).await;

    // The controller, from the chart's Deployment, with the Secret mounted.
    let root = log_dir().join(format!("kubelet-otlp-{}", server.addr().port()));
    let rendered = deployment(&server, NAMESPACE, "tollgate-controller", |_| true).await;
    let mut pod = Pod::from_template(&server, &rendered, "controller", "ctl-otlp-0", &root).await;
    let ca_file = pod
        .var("OTEL_EXPORTER_OTLP_CERTIFICATE")
        .expect("the chart sets the CA variable");
    assert!(
        ca_file.ends_with("/otlp-tls/ca.crt"),
        "the mounted Secret's file: {ca_file}"
    );
    let admin = format!("127.0.0.1:{}", free_port().expect("port"));
    let snapshots = format!("127.0.0.1:{}", free_port().expect("port"));
    pod.set_flag("--admin-address", &admin);
    pod.set_flag("--snapshot-address", &snapshots);
    pod.set_flag("--snapshot-url", &format!("https://{snapshots}"));
    let kubeconfig = server.kubeconfig().display().to_string();
    // Quick exports, for the test's sake; data planes inherit them.
    let extra = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500"),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
    ];
    let mut controller = run("tollgate-controller", &pod, &admin, &extra).await;

    // The data plane, from the operator's Deployment.
    let echo = Echo::start("echo").await.expect("echo backend");
    apply(&server, &manifests(&echo, 0)).await;
    let generated = deployment(&server, "default", "gw-tollgate", |d| {
        d["spec"]["replicas"] == 1
    })
    .await;
    let mut pod = Pod::from_template(&server, &generated, "dataplane", "gw-otlp-0", &root).await;
    let client = pod
        .mounts
        .iter()
        .find(|(p, _)| p == "/etc/tollgate/client")
        .map(|(_, dir)| dir.clone())
        .expect("the client Secret is mounted");
    for (var, file, text) in [
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "otlp-ca.crt",
            collector_ca.pem(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            "otlp-client.crt",
            exporter.chain_pem.clone(),
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            "otlp-client.key",
            exporter.key_pem.clone(),
        ),
    ] {
        let path = client.join(file);
        assert_eq!(pod.var(var), path.to_str(), "{var}");
        let copied = std::fs::read_to_string(&path).expect("the copied file");
        assert_eq!(copied, text, "{file} is the controller's file");
    }
    let admin = format!("127.0.0.1:{}", free_port().expect("port"));
    pod.set_flag("--admin-address", &admin);
    let port = loop {
        let p = free_port().expect("port");
        if p > LISTENER_PORT {
            break p;
        }
    };
    let offset = (port - LISTENER_PORT).to_string();
    pod.args.extend(["--listener-port-offset".into(), offset]);
    let mut dataplane = run("tollgate-dataplane", &pod, &admin, &[]).await;

    // A request through the data plane: its spans reach the collector.
    let url = format!("http://127.0.0.1:{port}/otlp");
    let client = HttpClient::http1();
    let start = std::time::Instant::now();
    let trace_id = loop {
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let parent = format!("00-{trace}-00f067aa0ba902b7-01");
        let reply = client
            .request(http::Method::GET, &url, &[("traceparent", parent.as_str())])
            .await;
        if reply.is_ok_and(|r| r.status == 200) {
            break trace;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the data plane never served the route"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let server_span = receiver
        .wait_until(
            "the data plane's server span",
            Duration::from_secs(15),
            |r| {
                r.spans()
                    .into_iter()
                    .find(|s| s.trace_id == trace_id && s.kind == SpanKind::Server)
            },
        )
        .await;
    assert_eq!(
        server_span.origin.service_name(),
        Some("tollgate-dataplane")
    );
    // Each pod names itself (its replicas' series stay apart in a
    // backend), from the downward API the Deployment asks for.
    let resource = |origin: &tollgate_e2e::otlp::Origin, key: &str| {
        origin
            .resource
            .get(key)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let dataplane_origin = &server_span.origin;
    for key in ["service.instance.id", "k8s.pod.name"] {
        assert_eq!(
            resource(dataplane_origin, key).as_deref(),
            Some("gw-otlp-0"),
            "{key}"
        );
    }
    assert!(resource(dataplane_origin, "k8s.namespace.name").is_some_and(|n| !n.is_empty()));
    // And the controller's metrics do too.
    let point = receiver
        .wait_until("a metric of the controller", Duration::from_secs(15), |r| {
            r.metrics()
                .into_iter()
                .find(|p| p.origin.service_name() == Some("tollgate-controller"))
        })
        .await;
    assert_eq!(
        resource(&point.origin, "k8s.pod.name").as_deref(),
        Some("ctl-otlp-0")
    );
    assert_eq!(
        resource(&point.origin, "k8s.namespace.name").as_deref(),
        Some(NAMESPACE)
    );
    assert_eq!(
        receiver.refused_handshakes(),
        0,
        "every exporter was trusted"
    );
    // Both processes sent the token; the data plane's Deployment never
    // held it.
    for export in receiver.exports() {
        assert_eq!(
            export.headers.get("x-collector-token").map(String::as_str),
            Some(TOKEN),
            "a {} export: {:#?}",
            export.payload.signal(),
            export.headers
        );
    }
    assert!(!generated.to_string().contains(TOKEN), "{generated:#}");

    controller.proc.check_running().expect("controller running");
    dataplane.proc.check_running().expect("data plane running");
    helm_on(&server, &["uninstall", RELEASE, "--namespace", NAMESPACE]).await;
}
