//! From `helm install` to traffic: the real helm installs the chart into
//! the in-memory API server; the test then plays the kubelet, starting the
//! controller from the Deployment the chart rendered and three data planes
//! from the Deployment the operator generated, both read back from the API
//! server; requests flow through each data plane to an echo backend, and
//! route changes applied with the real kubectl reach all three (the p50
//! and p99 from `kubectl apply` returning to all three serving the change
//! are printed).
//!
//! Processes run with their pod template's arguments and environment
//! verbatim (downward-API fields and `$(VAR)`s resolved as the kubelet
//! does, Secret volumes written as folders; see `common::kubelet`). The
//! only substitutions are the ones a pod's own network namespace and the
//! cluster's DNS make unnecessary, since every process here shares one
//! loopback:
//! - controller: `--admin-address` and `--snapshot-address` get free
//!   loopback ports, and `--snapshot-url` becomes
//!   `https://127.0.0.1:<port>` of a TCP balancer standing in for the
//!   chart's `tollgate-controller` Service (there is no cluster DNS for its
//!   `tollgate-controller.tollgate-system.svc` name, nor kube-proxy): like
//!   the Service it spreads connections over the ready replicas, so data
//!   planes land on either replica; the follower refuses them (503) until
//!   they reconnect to the leader, which takes their reports; `KUBECONFIG`
//!   points at the test API server, as the in-cluster service account
//!   would;
//! - data plane: `--admin-address` gets a free loopback port and
//!   `--listener-port-offset N` is added, so each replica binds the
//!   Gateway's port 80 at its own free port `80 + N`;
//! - mount paths (`/etc/tollgate/client`, `/var/lib/tollgate`, `/tmp`)
//!   are folders of the test.

#![allow(clippy::expect_used)]

use super::common::k8s::{apply, wait_jsonpath};
use super::common::kubelet::Pod;
use super::common::service;
use super::helm_support::{NAMESPACE, RELEASE, helm_on, install_chart};
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::balancer::Balancer;
use tollgate_e2e::{Echo, HttpClient, Proc, free_port, log_dir, wait_http_ok};

/// The Gateway's listener port, as written in its manifest.
pub(crate) const LISTENER_PORT: u16 = 80;
/// Route changes measured.
const CHANGES: usize = 20;
/// The cluster IP the test gives the data planes' Service, as the API
/// server's allocator would.
const CLUSTER_IP: &str = "10.96.0.42";
/// The request header the route sets; its value changes each step.
const HEADER: &str = "x-tollgate-generation";

/// The Gateway `gw` of the chart's default class, its echo backend's
/// Service, and an HTTPRoute that sets [`HEADER`] to `generation`.
pub(crate) fn manifests(echo: &Echo, generation: usize) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: tollgate
  listeners:
  - {{name: http, port: {LISTENER_PORT}, protocol: HTTP}}
{service}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: echo, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /}}}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{{name: {HEADER}, value: \"{generation}\"}}]
    backendRefs: [{{name: {name}, port: 80}}]
",
        service = service(echo.service(), &[echo.port()]),
        name = echo.service(),
    )
}

/// A started pod: its process and its admin base URL.
pub(crate) struct Running {
    pub(crate) proc: Proc,
    pub(crate) admin: String,
}

/// The Deployment `ns/name` once `check` holds for it.
pub(crate) async fn deployment(
    server: &ApiServer,
    ns: &str,
    name: &str,
    check: fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        if let Ok(d) = server.get("apps/v1", "Deployment", Some(ns), name)
            && check(&d)
        {
            return d;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "Deployment {ns}/{name} not as expected: {:#?}",
            server.get("apps/v1", "Deployment", Some(ns), name).ok()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts `binary` as `pod` and waits for its `/readyz`.
pub(crate) async fn run(
    binary: &str,
    pod: &Pod,
    admin: &str,
    extra_env: &[(&str, &str)],
) -> Running {
    let mut env: Vec<(String, String)> = pod.env.clone();
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let mut proc = Proc::spawn(binary, &pod.args, env).expect("process starts");
    let admin = format!("http://{admin}");
    if let Err(e) = wait_http_ok(&format!("{admin}/readyz"), Duration::from_secs(30)).await {
        proc.check_running().expect("still running");
        panic!("{} not ready: {e}\n{}", pod.name, proc.tail(40));
    }
    Running { proc, admin }
}

/// The controller replicas of the chart's Deployment, behind `service`.
async fn start_controllers(
    server: &ApiServer,
    root: &std::path::Path,
    service: &Balancer,
) -> Vec<Running> {
    let rendered = deployment(server, NAMESPACE, "tollgate-controller", |_| true).await;
    let replicas = rendered["spec"]["replicas"].as_u64().expect("replicas");
    assert_eq!(replicas, 2, "the chart's default");
    let kubeconfig = server.kubeconfig().display().to_string();
    let mut controllers = Vec::new();
    for i in 0..replicas {
        let name = format!("tollgate-controller-kubelet-{i}");
        let mut pod = Pod::from_template(server, &rendered, "controller", &name, root).await;
        assert_eq!(pod.var("POD_NAMESPACE"), Some(NAMESPACE));
        let admin = format!("127.0.0.1:{}", free_port().expect("port"));
        let snapshots = format!("127.0.0.1:{}", free_port().expect("port"));
        pod.set_flag("--admin-address", &admin);
        pod.set_flag("--snapshot-address", &snapshots);
        pod.set_flag("--snapshot-url", &format!("https://{}", service.addr()));
        let extra = [("KUBECONFIG", kubeconfig.as_str())];
        controllers.push(run("tollgate-controller", &pod, &admin, &extra).await);
        let addr = |a: &str| a.parse().expect("a socket address");
        service.add(addr(&snapshots), addr(&admin));
    }
    controllers
}

/// The data planes of the operator's Deployment `default/gw-tollgate`,
/// one per replica; returns them with their listener base URLs.
async fn start_dataplanes(server: &ApiServer, root: &std::path::Path) -> Vec<(Running, String)> {
    let generated = deployment(server, "default", "gw-tollgate", |d| {
        d["spec"]["replicas"] == 3
    })
    .await;
    let mut dataplanes = Vec::new();
    let mut ports = Vec::new();
    for i in 0..3 {
        let name = format!("gw-tollgate-kubelet-{i}");
        let mut pod = Pod::from_template(server, &generated, "dataplane", &name, root).await;
        let client = &pod.mounts.iter().find(|(p, _)| p == "/etc/tollgate/client");
        let client = client.expect("the client Secret is mounted").1.clone();
        assert_eq!(pod.flag("--tls-dir"), Some(client.to_str().expect("path")));
        assert!(client.join("tls.key").is_file(), "the Secret's key file");
        let controller = pod.var("TOLLGATE_CONTROLLER").expect("controller URL");
        assert_eq!(pod.flag("--controller"), Some(controller));
        let admin = format!("127.0.0.1:{}", free_port().expect("port"));
        pod.set_flag("--admin-address", &admin);
        let port = loop {
            let p = free_port().expect("port");
            if p > LISTENER_PORT && !ports.contains(&p) {
                break p;
            }
        };
        ports.push(port);
        let offset = (port - LISTENER_PORT).to_string();
        pod.args.extend(["--listener-port-offset".into(), offset]);
        let running = run("tollgate-dataplane", &pod, &admin, &[]).await;
        dataplanes.push((running, format!("http://127.0.0.1:{port}")));
    }
    dataplanes
}

/// Polls `url` until the echo backend answers with [`HEADER`] `want`.
async fn wait_generation(url: &str, want: &str, timeout: Duration) {
    let client = HttpClient::http1();
    let start = Instant::now();
    let mut last;
    loop {
        match client.get(url).await {
            Ok(reply) if reply.status == 200 => {
                let echo = reply.echo().expect("an echo reply");
                let seen = echo
                    .headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(HEADER));
                let seen = seen.map(|(_, v)| v.join(",")).unwrap_or_default();
                if seen == want {
                    return;
                }
                last = format!("{HEADER}: {seen:?}");
            }
            Ok(reply) => last = format!("status {}", reply.status),
            Err(e) => last = e.to_string(),
        }
        assert!(
            start.elapsed() < timeout,
            "{url} never forwarded {HEADER}: {want} within {timeout:?}; last: {last}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `q` quantile of sorted `durations`.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The whole path: `helm install`, the controller from the chart's
/// Deployment, three data planes from the operator's, traffic through each,
/// the Gateway programmed with the Service's address, route changes
/// reaching all three.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_then_the_kubelet_runs_controller_and_data_planes() {
    let server = ApiServer::start().await.expect("API server starts");
    install_chart(
        &server,
        &[
            "--set",
            "gatewayAPI.installCRDs=true",
            "--set",
            "gatewayClass.kubernetes.deployment.replicas=3",
        ],
    )
    .await;
    let status = helm_on(&server, &["status", RELEASE, "--namespace", NAMESPACE]).await;
    assert!(status.contains("STATUS: deployed"), "{status}");

    let root = log_dir().join(format!("kubelet-{}", server.addr().port()));
    let service = Balancer::start().await.expect("the controller Service");
    let mut controllers = start_controllers(&server, &root, &service).await;
    // Both replicas ready behind the Service before data planes connect.
    let start = Instant::now();
    while service.picks().len() < 2 || !service.picks().iter().all(|(a, _)| service.is_ready(*a)) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "controllers never ready behind the Service"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let echo = Echo::start("echo").await.expect("echo backend");
    apply(&server, &manifests(&echo, 0)).await;
    let mut dataplanes = start_dataplanes(&server, &root).await;
    for (_, url) in &dataplanes {
        wait_generation(url, "0", Duration::from_secs(15)).await;
    }

    // The data planes follow both replicas, as through the Service.
    let picks = service.picks();
    assert!(
        picks.iter().all(|(_, n)| *n > 0),
        "connections per replica: {picks:?}"
    );

    // The kubelet and the deployment controller make the Deployment
    // available; the API server's allocator gives the Service its IP.
    let mut generated = deployment(&server, "default", "gw-tollgate", |_| true).await;
    generated["status"] = json!({"replicas": 3, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
    server.replace_status(generated).expect("Deployment status");
    let mut svc = server
        .get("v1", "Service", Some("default"), "gw-tollgate")
        .expect("the operator's Service");
    if svc["spec"]["clusterIP"]
        .as_str()
        .unwrap_or_default()
        .is_empty()
    {
        svc["spec"]["clusterIP"] = json!(CLUSTER_IP);
        svc["spec"]["clusterIPs"] = json!([CLUSTER_IP]);
        server.replace(svc).expect("Service cluster IP");
    }
    let programmed = "{.status.conditions[?(@.type==\"Programmed\")].status}";
    wait_jsonpath(&server, &["gateway", "gw"], programmed, "True").await;
    let ip = server.get("v1", "Service", Some("default"), "gw-tollgate");
    let ip = ip.expect("Service")["spec"]["clusterIP"].clone();
    let ip = ip.as_str().expect("a cluster IP").to_string();
    wait_jsonpath(
        &server,
        &["gateway", "gw"],
        "{.status.addresses[*].value}",
        &ip,
    )
    .await;

    // Route changes: from kubectl apply returning to all three serving it.
    let mut took = Vec::new();
    for generation in 1..=CHANGES {
        apply(&server, &manifests(&echo, generation)).await;
        let start = Instant::now();
        let want = generation.to_string();
        let polls = dataplanes
            .iter()
            .map(|(_, url)| wait_generation(url, &want, Duration::from_secs(15)));
        futures_util::future::join_all(polls).await;
        took.push(start.elapsed());
    }
    took.sort();
    let (p50, p99) = (quantile(&took, 0.5), quantile(&took, 0.99));
    println!(
        "route change to 3 data planes over {CHANGES} kubectl applies: p50 {p50:?}, p99 {p99:?}, max {:?}",
        took[took.len() - 1]
    );
    assert!(p99 < Duration::from_secs(15), "p99 {p99:?}");

    // Every process is still the one started: none exited on the way.
    for running in controllers
        .iter_mut()
        .chain(dataplanes.iter_mut().map(|(r, _)| r))
    {
        running.proc.check_running().expect("still running");
        wait_http_ok(&format!("{}/readyz", running.admin), Duration::from_secs(1))
            .await
            .expect("still ready");
    }
    helm_on(&server, &["uninstall", RELEASE, "--namespace", NAMESPACE]).await;
}
