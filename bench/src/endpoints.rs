//! Endpoint churn in Kubernetes mode: how long an EndpointSlice change
//! takes to reach traffic while many routes are loaded.
//!
//! The controller runs against the in-memory Kubernetes API server (the one
//! the end-to-end tests use; the controller only sees a kubeconfig) with
//! `--with-dataplane`. N HTTPRoutes share one Service. The Service's
//! EndpointSlice is flipped between a port where nothing listens and the
//! benchmark backend; each flip is timed from the API write to the first
//! request that sees it (503 when the endpoint is dead, 200 when live). A
//! flip changes nothing but one endpoint, so this is the cost of a full
//! recompile and snapshot swap at N routes.

use crate::error::BenchError;
use crate::peers::Env;
use crate::probe;
use crate::procs::{Child, Launch, free_port};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;

/// How long one flip may take before the run fails.
const FLIP_TIMEOUT: Duration = Duration::from_secs(60);

/// Times `flips` EndpointSlice changes with `routes` routes loaded, the
/// first `settle` after the last route serves; returns each flip's
/// milliseconds.
///
/// # Errors
///
/// When the API server or controller does not start, or a flip is never seen.
pub fn run(
    env: &Env,
    backend: SocketAddr,
    routes: usize,
    flips: usize,
    settle: Duration,
) -> Result<Vec<f64>, BenchError> {
    let (_rt, server) = api_server()?;
    let dead = free_port()?;
    for object in objects(routes, backend.port()) {
        server
            .create(object)
            .map_err(|e| http_error("creating objects", e))?;
    }
    let gateway_port = free_port()?;
    let controller = start_controller(env, &server, gateway_port)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], gateway_port));
    let last = format!("/r{}", routes - 1);
    if !probe::wait_status(addr, &last, 200, FLIP_TIMEOUT) {
        return Err(controller.not_ready(FLIP_TIMEOUT));
    }
    std::thread::sleep(settle);
    let mut times = Vec::with_capacity(flips);
    for k in 0..flips {
        let (port, want) = if k % 2 == 0 {
            (dead, 503)
        } else {
            (backend.port(), 200)
        };
        let mut slice = server
            .get(
                "discovery.k8s.io/v1",
                "EndpointSlice",
                Some("default"),
                "echo-1",
            )
            .map_err(|e| http_error("reading the EndpointSlice", e))?;
        slice["ports"][0]["port"] = json!(port);
        let written = Instant::now();
        server
            .replace(slice)
            .map_err(|e| http_error("updating the EndpointSlice", e))?;
        if !probe::wait_status_every(addr, "/r0", want, FLIP_TIMEOUT, Duration::from_millis(1)) {
            return Err(controller.not_ready(FLIP_TIMEOUT));
        }
        times.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    drop(controller);
    drop(server);
    Ok(times)
}

/// The in-memory API server with every CRD installed, and the runtime it
/// runs on (the server stops when the runtime is dropped).
///
/// # Errors
///
/// When the runtime or the server does not start, or a CRD is refused.
pub(crate) fn api_server() -> Result<(tokio::runtime::Runtime, ApiServer), BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(BenchError::io("starting a runtime for the API server"))?;
    let server = rt
        .block_on(ApiServer::start())
        .map_err(|e| http_error("starting the API server", e))?;
    install_crds(&server)?;
    Ok((rt, server))
}

/// An API server call's error.
pub(crate) fn http_error(what: &str, e: impl std::fmt::Display) -> BenchError {
    BenchError::Http {
        what: what.to_string(),
        detail: e.to_string(),
    }
}

/// Creates every CRD under `crds/generated/` in the API server.
fn install_crds(server: &ApiServer) -> Result<(), BenchError> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crds/generated");
    let mut files = Vec::new();
    for dir in [root.join("gateway-api"), root.clone()] {
        let entries = std::fs::read_dir(&dir)
            .map_err(BenchError::io(format!("listing {}", dir.display())))?;
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "yaml") {
                files.push(entry.path());
            }
        }
    }
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(BenchError::io(format!("reading {}", file.display())))?;
        let crd: Value = serde_yaml::from_str(&text).map_err(|e| http_error("parsing a CRD", e))?;
        server
            .create(crd)
            .map_err(|e| http_error("creating a CRD", e))?;
    }
    Ok(())
}

/// The class, the Gateway, one Service with its slice, and `routes` routes.
pub(crate) fn objects(routes: usize, port: u16) -> Vec<Value> {
    let mut out = vec![
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
               "metadata": {"name": "tollgate"},
               "spec": {"controllerName": "tollgate.dev/gateway-controller"}}),
        json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
               "metadata": {"name": "gw", "namespace": "default"},
               "spec": {"gatewayClassName": "tollgate",
                        "addresses": [{"type": "IPAddress", "value": "127.0.0.1"}],
                        "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        json!({"apiVersion": "v1", "kind": "Service",
               "metadata": {"name": "echo", "namespace": "default"},
               "spec": {"ports": [{"name": "http", "port": 80}]}}),
        json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
               "metadata": {"name": "echo-1", "namespace": "default",
                            "labels": {"kubernetes.io/service-name": "echo"}},
               "addressType": "IPv4",
               "ports": [{"name": "http", "port": port}],
               "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]}),
    ];
    out.extend((0..routes).map(|i| route(&format!("r{i}"))));
    out
}

/// HTTPRoute `name` in `default`: prefix `/<name>` of Gateway `gw` to
/// Service `echo`.
pub(crate) fn route(name: &str) -> Value {
    json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"parentRefs": [{"name": "gw"}],
                 "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": format!("/{name}")}}],
                            "backendRefs": [{"name": "echo", "port": 80}]}]}
    })
}

fn start_controller(env: &Env, server: &ApiServer, gateway_port: u16) -> Result<Child, BenchError> {
    let work = env.dir("endpoints")?;
    let offset = gateway_port.saturating_sub(80).to_string();
    let ports = [free_port()?, free_port()?, free_port()?];
    let launch = Launch::new("tollgate-controller", env.bin("tollgate-controller"))
        .args(["--with-dataplane", "--listener-port-offset", &offset])
        .args(["--admin-address", &format!("127.0.0.1:{}", ports[0])])
        .args([
            "--dataplane-admin-address",
            &format!("127.0.0.1:{}", ports[1]),
        ])
        .args(["--snapshot-address", &format!("127.0.0.1:{}", ports[2])])
        .env("KUBECONFIG", &server.kubeconfig().display().to_string())
        .env("TOKIO_WORKER_THREADS", "1")
        .env(
            "RUST_LOG",
            &std::env::var("TOLLGATE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .cpu(0);
    Child::spawn(&launch, &work, env.pin)
}
