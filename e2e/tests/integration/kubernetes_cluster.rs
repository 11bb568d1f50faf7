//! Tollgate against a Kubernetes API server, configured with the real
//! `kubectl`: traffic follows what is applied, status is written back, and
//! nothing is lost when the API server restarts or watches expire.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tollgate_e2e::{Echo, HttpClient, workspace_dir};

/// The quickstart with its EndpointSlices pointing at `v1` and `v2`.
fn quickstart(v1: &Echo, v2: &Echo) -> String {
    let dir = workspace_dir().join("examples/quickstart");
    let mut out = String::new();
    for file in ["gateway.yaml", "backends.yaml", "routes.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        out.push_str(
            &text
                .replace("3001", &v1.port().to_string())
                .replace("3002", &v2.port().to_string()),
        );
        out.push_str("\n---\n");
    }
    out
}

fn route(name: &str, ns: &str, path: &str, backend: &str, backend_ns: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: {ns}}}
spec:
  parentRefs: [{{name: gw, namespace: default}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: {backend}, namespace: {backend_ns}, port: 80}}]
"
    )
}

/// `kubectl apply` of the quickstart: traffic flows through the data plane,
/// and `kubectl get` shows the Gateway programmed and the routes accepted.
/// Once converged, a steady cluster sees no more status writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applied_quickstart_serves_and_reports_status() {
    let (v1, v2) = (
        Echo::start("echo-v1").await.unwrap(),
        Echo::start("echo-v2").await.unwrap(),
    );
    let server = cluster().await;
    apply(&server, &quickstart(&v1, &v2)).await;
    let ctl = start_kube_controller(&server, "replica-a", true, 8080).await;
    wait_status(&format!("{}/", ctl.gateway), 200, Duration::from_secs(10)).await;

    let client = HttpClient::http1();
    let mut v2_count = 0;
    for _ in 0..20 {
        let r = client.get(&format!("{}/", ctl.gateway)).await.unwrap();
        if r.echo().unwrap().service == "echo-v2" {
            v2_count += 1;
        }
    }
    assert_eq!(v2_count, 2, "a 90/10 split over 20 requests");
    let redirect = client.get(&format!("{}/old", ctl.gateway)).await.unwrap();
    assert_eq!(redirect.status, 301);

    let programmed = "{.status.conditions[?(@.type==\"Programmed\")].status}";
    wait_jsonpath(&server, &["gateway", "quickstart"], programmed, "True").await;
    let accepted = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}";
    wait_jsonpath(&server, &["httproute", "echo-split"], accepted, "True").await;
    let table = kubectl(&server, &["get", "gateways,httproutes", "-A"]).await;
    assert!(
        table.contains("quickstart") && table.contains("echo-split"),
        "{table}"
    );

    // Converged: a steady cluster gets no status writes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = status_writes(&server).len();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = status_writes(&server);
    assert_eq!(
        after.len(),
        before,
        "status writes after convergence: {:?}",
        &after[before..]
    );
}

/// Route updates and deletes change traffic; a cross-namespace backend
/// needs a ReferenceGrant (500 and RefNotPermitted until it exists).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traffic_follows_route_changes_and_reference_grants() {
    let (a, b) = (
        Echo::start("echo-a").await.unwrap(),
        Echo::start("echo-b").await.unwrap(),
    );
    let server = cluster().await;
    apply(
        &server,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: other}\n",
    )
    .await;
    apply(&server, &base("gw", "127.0.0.1", &[&a])).await;
    apply(
        &server,
        &service(b.service(), &[b.port()]).replace("namespace: default", "namespace: other"),
    )
    .await;
    apply(&server, &route("r", "default", "/app", "echo-a", "default")).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    let client = HttpClient::http1();
    let app = format!("{}/app", ctl.gateway);
    wait_status(&app, 200, Duration::from_secs(10)).await;
    assert_eq!(
        client.get(&app).await.unwrap().echo().unwrap().service,
        "echo-a"
    );

    // Update: the same route now sends /app elsewhere... in another namespace, without a grant.
    apply(&server, &route("r", "default", "/app", "echo-b", "other")).await;
    wait_status(&app, 500, Duration::from_secs(5)).await;
    let resolved = "{.status.parents[0].conditions[?(@.type==\"ResolvedRefs\")].reason}";
    wait_jsonpath(&server, &["httproute", "r"], resolved, "RefNotPermitted").await;

    apply(
        &server,
        "apiVersion: gateway.networking.k8s.io/v1
kind: ReferenceGrant
metadata: {name: allow-default, namespace: other}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: default}]
  to: [{group: '', kind: Service}]
",
    )
    .await;
    wait_status(&app, 200, Duration::from_secs(5)).await;
    assert_eq!(
        client.get(&app).await.unwrap().echo().unwrap().service,
        "echo-b"
    );
    wait_jsonpath(&server, &["httproute", "r"], resolved, "ResolvedRefs").await;

    kubectl(&server, &["delete", "httproute", "r"]).await;
    wait_status(&app, 404, Duration::from_secs(5)).await;
}

/// The API server restarts and then expires every watch while a client
/// sends requests: no request fails, and the controller relists and
/// converges (a route created afterwards serves).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_server_restart_and_expired_watches_lose_nothing() {
    let a = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&a])).await;
    apply(&server, &route("r", "default", "/app", "echo-a", "default")).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    let app = format!("{}/app", ctl.gateway);
    wait_status(&app, 200, Duration::from_secs(10)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let load = {
        let (stop, ok, failed, url) = (stop.clone(), ok.clone(), failed.clone(), app.clone());
        tokio::spawn(async move {
            let client = HttpClient::http1();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).await {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };
    server.restart().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // A write the controller has not seen, then history compacted and
    // watches dropped: resuming from its last version gets 410 Gone.
    apply(
        &server,
        &route("later", "default", "/later", "echo-a", "default"),
    )
    .await;
    server.expire_resource_versions();
    server.drop_watches();
    wait_status(
        &format!("{}/later", ctl.gateway),
        200,
        Duration::from_secs(15),
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "{failed} requests failed ({ok} succeeded)");
    assert!(ok > 10);
}
