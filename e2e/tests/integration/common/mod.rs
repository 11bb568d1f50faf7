//! Support for the standalone end-to-end tests: manifests written to a
//! temporary folder and the real `tollgate-controller` serving them.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod k8s;
pub mod kubelet;
pub mod tls;
pub mod websocket;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tollgate_e2e::{Echo, HttpClient, Proc, free_port, log_dir, wait_http_ok};

/// The listener port the test manifests use; the controller adds an offset.
pub const MANIFEST_PORT: u16 = 80;

/// A fresh folder for one test's manifests.
pub fn manifest_dir(name: &str) -> PathBuf {
    let dir = log_dir().join(format!("manifests-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a file atomically (write then rename), as editors and
/// `kubectl`-style tools do, so the controller never reads half a file.
pub fn write(dir: &Path, name: &str, text: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// The GatewayClass, a Gateway `gw` with one HTTP listener bound to
/// `address`, and a Service + EndpointSlice for each echo backend.
pub fn base(gateway: &str, address: &str, backends: &[&Echo]) -> String {
    let mut out = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tollgate}}
spec: {{controllerName: tollgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: {gateway}, namespace: default}}
spec:
  gatewayClassName: tollgate
  addresses: [{{type: IPAddress, value: {address}}}]
  listeners:
  - {{name: http, port: {MANIFEST_PORT}, protocol: HTTP, allowedRoutes: {{namespaces: {{from: All}}}}}}
"
    );
    for echo in backends {
        out.push_str(&service(echo.service(), &[echo.port()]));
    }
    out
}

/// HTTPRoute `default/r` on `gw` sending everything to `backend`, and
/// tagging every answer with `x-edit: {edit}`: which edit a data plane
/// serves shows in each response.
pub fn tagged_route(backend: &str, edit: usize) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - backendRefs: [{{name: {backend}, port: 80}}]
    filters:
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{set: [{{name: x-edit, value: \"{edit}\"}}]}}
"
    )
}

/// A Service `name` (port 80) whose EndpointSlice lists 127.0.0.1 at `ports`
/// (one endpoint per port is not expressible, so each port gets its own slice).
pub fn service(name: &str, ports: &[u16]) -> String {
    let mut out = format!(
        "---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: http, port: 80, targetPort: 3000}}]
"
    );
    for (i, port) in ports.iter().enumerate() {
        out.push_str(&format!(
            "---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{i}
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: http, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"
        ));
    }
    out
}

/// A running controller and the addresses it serves.
pub struct Controller {
    pub proc: Proc,
    /// Base URL of the Gateway listener (`http://127.0.0.1:<port>`).
    pub gateway: String,
    /// The real port the manifest port is bound at.
    pub port: u16,
    /// Controller admin base URL.
    pub admin: String,
    /// Data-plane admin base URL (with `--with-dataplane`).
    pub dataplane_admin: String,
    /// Snapshot stream base URL.
    pub snapshots: String,
}

/// Starts `tollgate-controller --manifests dir` (with `--with-dataplane`
/// when `with_dataplane`) on free ports and waits until it is ready.
pub async fn start_controller(dir: &Path, with_dataplane: bool) -> Controller {
    start_controller_with_env(dir, with_dataplane, &[]).await
}

/// [`start_controller`] with extra environment variables (`OTEL_*`, or
/// `RUST_LOG`, which defaults to `info`).
pub async fn start_controller_with_env(
    dir: &Path,
    with_dataplane: bool,
    env: &[(&str, &str)],
) -> Controller {
    let port = loop {
        let p = free_port().unwrap();
        // Room for manifest port 443 too (HTTPS tests).
        if p > MANIFEST_PORT && p < 65_000 {
            break p;
        }
    };
    let offset = (port - MANIFEST_PORT).to_string();
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let dataplane_admin = format!("127.0.0.1:{}", free_port().unwrap());
    let snapshots = format!("127.0.0.1:{}", free_port().unwrap());
    let mut args = vec![
        "--manifests".to_string(),
        dir.display().to_string(),
        "--listener-port-offset".into(),
        offset,
        "--admin-address".into(),
        admin.clone(),
        "--dataplane-admin-address".into(),
        dataplane_admin.clone(),
        "--snapshot-address".into(),
        snapshots.clone(),
    ];
    if with_dataplane {
        args.push("--with-dataplane".into());
    }
    let mut vars = vec![("RUST_LOG", "info")];
    vars.extend_from_slice(env);
    let mut proc = Proc::spawn("tollgate-controller", args, vars).unwrap();
    let ready = if with_dataplane {
        format!("http://{dataplane_admin}/readyz")
    } else {
        format!("http://{admin}/readyz")
    };
    if let Err(e) = wait_http_ok(&ready, Duration::from_secs(30)).await {
        proc.check_running().unwrap();
        panic!("controller not ready: {e}\n{}", proc.tail(40));
    }
    Controller {
        proc,
        gateway: format!("http://127.0.0.1:{port}"),
        port,
        admin: format!("http://{admin}"),
        dataplane_admin: format!("http://{dataplane_admin}"),
        snapshots: format!("http://{snapshots}"),
    }
}

/// Polls `url` until it answers `status`, returning how long that took.
pub async fn wait_status(url: &str, status: u16, timeout: Duration) -> Duration {
    let client = HttpClient::http1();
    let start = Instant::now();
    loop {
        if let Ok(r) = client.get(url).await
            && r.status.as_u16() == status
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < timeout,
            "{url} did not answer {status} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The controller's `/status` entry for one object.
pub async fn object_status(admin: &str, kind: &str, name: &str) -> serde_json::Value {
    let reply = HttpClient::http1()
        .get(&format!("{admin}/status"))
        .await
        .unwrap();
    let all: Vec<serde_json::Value> = serde_json::from_slice(&reply.body).unwrap();
    all.into_iter()
        .find(|o| o["kind"] == kind && o["name"] == name)
        .unwrap_or(serde_json::Value::Null)
}

/// The condition of `type_` in a conditions array.
pub fn condition<'a>(conditions: &'a serde_json::Value, type_: &str) -> &'a serde_json::Value {
    conditions
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == type_))
        .unwrap_or(&serde_json::Value::Null)
}

/// Polls the controller's `/status` until `kind/name` has a top-level
/// condition `type_` with `status`; returns the whole entry.
pub async fn wait_condition(
    admin: &str,
    kind: &str,
    name: &str,
    type_: &str,
    status: &str,
) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let entry = object_status(admin, kind, name).await;
        if condition(&entry["status"]["conditions"], type_)["status"] == status {
            return entry;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{kind} {name} never had {type_}={status}: {entry:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
