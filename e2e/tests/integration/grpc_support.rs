//! Support for the gRPC end-to-end tests: manifests for gRPC echo backends
//! and GRPCRoutes, a controller serving them, and clients through it.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use crate::common::{Controller, manifest_dir, start_controller, write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tollgate_e2e::grpc::{GrpcClient, GrpcEcho};
use tonic::{Code, Status};

/// The GatewayClass and a Gateway `gw` with one HTTP listener (manifest
/// port 80) for hostnames under `example.com`, admitting routes from every
/// namespace.
pub fn gateway() -> String {
    "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate}
spec: {controllerName: tollgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: tollgate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: \"*.example.com\", allowedRoutes: {namespaces: {from: All}}}
"
    .to_string()
}

/// A Service `name` (port 9000, `appProtocol: kubernetes.io/h2c`) whose
/// endpoints are 127.0.0.1 at `ports` (none: a Service without endpoints).
pub fn grpc_service(name: &str, ports: &[u16]) -> String {
    let endpoints: Vec<String> = ports
        .iter()
        .map(|p| {
            format!(
                "---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-{p}
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: grpc, port: {p}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
"
            )
        })
        .collect();
    format!(
        "---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: grpc, port: 9000, appProtocol: kubernetes.io/h2c}}]
{}",
        endpoints.concat()
    )
}

/// A GRPCRoute `name` on `gw` for `hosts`, with `rules` (YAML list items,
/// indented by four spaces).
pub fn grpc_route(name: &str, hosts: &[&str], rules: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{}]
  rules:
{rules}",
        hosts.join(", ")
    )
}

/// A controller (with its data plane) serving `files` from a fresh folder.
pub async fn serve<N: AsRef<str>>(test: &str, files: &[(N, String)]) -> (PathBuf, Controller) {
    let dir = manifest_dir(test);
    for (name, text) in files {
        write(&dir, name.as_ref(), text);
    }
    let ctl = start_controller(&dir, true).await;
    (dir, ctl)
}

/// Where the gateway's HTTP listener is.
pub fn gateway_addr(ctl: &Controller) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], ctl.port))
}

/// A client through the gateway for `host`.
pub async fn client(ctl: &Controller, host: &str) -> GrpcClient {
    GrpcClient::connect(gateway_addr(ctl), host).await.unwrap()
}

/// Calls `Say` on `service` for `host` until it is answered by a backend
/// (not the gateway's UNIMPLEMENTED for an unrouted call), so a test starts
/// once its routes are served.
pub async fn wait_routed(ctl: &Controller, host: &str, service: &str) {
    let start = Instant::now();
    loop {
        let mut c = client(ctl, host).await.with_service(service);
        match c.say("ready?").await {
            Ok(_) => return,
            Err(s) if !is_gateway_answer(&s) => return,
            Err(s) => assert!(
                start.elapsed() < Duration::from_secs(10),
                "{host} {service} never routed: {s:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether a failed call was answered by the gateway itself.
pub fn is_gateway_answer(status: &Status) -> bool {
    status.metadata().get("x-tollgate-error").is_some()
}

/// Asserts that `result` failed with `code`, answered by the gateway with
/// the error kind `kind`.
pub fn assert_gateway_status<T: std::fmt::Debug>(
    result: Result<T, Status>,
    code: Code,
    kind: &str,
) {
    let status = result.expect_err("the call should fail");
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(
        status
            .metadata()
            .get("x-tollgate-error")
            .and_then(|v| v.to_str().ok()),
        Some(kind),
        "{status:?}"
    );
}

/// Starts gRPC echo backends with `names`.
pub async fn backends(names: &[&str]) -> Vec<GrpcEcho> {
    let mut out = Vec::new();
    for name in names {
        out.push(GrpcEcho::start(name).await.unwrap());
    }
    out
}
