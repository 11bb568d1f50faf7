//! Per-phase cost of one manifest change with many routes loaded (10k, or
//! `ROUTES`), in process and without the timing noise of the end-to-end
//! `tollgate-bench changes`: read, compile, publish (hash), `Runtime::build`
//! from the runtime serving, status update and freeing; first for route
//! additions, then for EndpointSlice flips (which the controller refills
//! without a compile; `FULL=1` compiles them, as before that existed).
//! Ignored by default; run in release:
//! `cargo nextest run --release -p tollgate-controller --run-ignored only pipeline_timing --no-capture`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tollgate_compile::{CompileOptions, Compiler, ObjectStatus, Recompiled};
use tollgate_controller::provider::file::FileProvider;
use tollgate_controller::publisher::Publisher;
use tollgate_controller::status::StatusStore;
use tollgate_dataplane::runtime::Runtime;
use tollgate_dataplane::upstream::Clients;

const BASE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate}
spec: {controllerName: tollgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: bench}
spec:
  gatewayClassName: tollgate
  addresses: [{type: IPAddress, value: 127.0.0.1}]
  listeners:
    - {name: http, protocol: HTTP, port: 8080, allowedRoutes: {namespaces: {from: Same}}}
---
apiVersion: v1
kind: Service
metadata: {name: backend, namespace: bench}
spec:
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 9000}]
";

/// The Service's EndpointSlice, with its one endpoint at `port`.
fn slice(port: u16) -> String {
    format!(
        "apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: backend-local
  namespace: bench
  labels: {{kubernetes.io/service-name: backend}}
addressType: IPv4
ports: [{{name: http, protocol: TCP, port: {port}}}]
endpoints:
  - addresses: [127.0.0.1]
    conditions: {{ready: true}}
"
    )
}

fn route(name: &str, path: &str) -> String {
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: bench}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
    - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
      backendRefs: [{{name: backend, port: 80}}]
"
    )
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1000.0
}

/// The controller's and the in-process data plane's state between changes.
struct Pipeline {
    provider: FileProvider,
    compiler: Compiler,
    options: CompileOptions,
    publisher: Publisher,
    store: StatusStore,
    clients: Clients,
    runtime: Runtime,
    /// The Gateway statuses of the last full compile.
    gateways: Vec<ObjectStatus>,
}

impl Pipeline {
    fn start(dir: &Path) -> Pipeline {
        let mut provider = FileProvider::new(dir);
        let (resources, errors) = provider.load();
        assert!(errors.is_empty(), "{errors:?}");
        let options = CompileOptions::default();
        // One compiler for the whole run, as the controller keeps one.
        let mut compiler = Compiler::default();
        let resources = Arc::new(resources);
        let Recompiled::Full(compiled) = compiler.recompile(&resources, &options, |_| None) else {
            panic!("the first compile is a full one");
        };
        let publisher = Publisher::default();
        let published = publisher.publish(compiled.snapshots);
        let store = StatusStore::default();
        let gateways = gateways(&compiled.statuses);
        store.update(compiled.statuses);
        let clients = Clients::new();
        let runtime = Runtime::build((*published[0]).clone(), &clients).unwrap();
        Pipeline {
            provider,
            compiler,
            options,
            publisher,
            store,
            clients,
            runtime,
            gateways,
        }
    }

    /// Times every phase of bringing the folder's current content to a
    /// new runtime, on one line.
    fn change(&mut self, label: &str) -> String {
        let mut line = format!("{label}:");
        let t = Instant::now();
        let (resources, _) = self.provider.load();
        write!(line, " load {:.1}", ms(t)).unwrap();
        let t = Instant::now();
        let resources = Arc::new(resources);
        let recompiled = if std::env::var_os("FULL").is_some() {
            Recompiled::Full(self.compiler.compile(&resources, &self.options))
        } else {
            let publisher = &self.publisher;
            self.compiler
                .recompile(&resources, &self.options, |g| publisher.current(g))
        };
        write!(line, " compile {:.1}", ms(t)).unwrap();
        // As the controller does: a refill leaves every status but the
        // Gateways' (Programmed follows the published snapshot) alone.
        let (snapshots, statuses) = match recompiled {
            Recompiled::Full(compiled) => {
                self.gateways = gateways(&compiled.statuses);
                (compiled.snapshots, compiled.statuses)
            }
            Recompiled::Endpoints(snapshots) => {
                write!(line, " (refill)").unwrap();
                (snapshots, Vec::new())
            }
        };
        let t = Instant::now();
        let published = self.publisher.publish(snapshots);
        write!(line, " publish {:.1}", ms(t)).unwrap();
        let snapshot = Arc::clone(&published[0]);
        let t = Instant::now();
        let runtime = Runtime::build_from(snapshot, &self.clients, &self.runtime).unwrap();
        write!(line, " build {:.1}", ms(t)).unwrap();
        let previous = std::mem::replace(&mut self.runtime, runtime);
        let t = Instant::now();
        drop(previous);
        write!(line, " drop-runtime {:.1}", ms(t)).unwrap();
        let kept = statuses.clone();
        let t = Instant::now();
        if statuses.is_empty() {
            self.store.update_kind("Gateway", self.gateways.clone());
        } else {
            self.store.update(statuses);
        }
        write!(line, " statuses {:.1}", ms(t)).unwrap();
        let t = Instant::now();
        drop(kept);
        drop(resources);
        write!(line, " drop {:.1}", ms(t)).unwrap();
        line
    }
}

/// The Gateway statuses among `all`.
fn gateways(all: &[ObjectStatus]) -> Vec<ObjectStatus> {
    all.iter()
        .filter(|s| s.kind == "Gateway")
        .cloned()
        .collect()
}

#[test]
#[ignore = "timing; run in release by hand"]
fn phases_of_one_change_with_10k_routes() {
    let n: usize = std::env::var("ROUTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("tollgate-timing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("base.yaml"), BASE).unwrap();
    std::fs::write(dir.join("slice.yaml"), slice(9000)).unwrap();
    let mut all = String::new();
    for i in 0..n {
        all.push_str(&route(&format!("r{i}"), &format!("/svc-{i}")));
    }
    std::fs::write(dir.join("routes.yaml"), all).unwrap();
    let changes: usize = std::env::var("CHANGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut pipeline = Pipeline::start(&dir);
    for k in 0..changes {
        std::fs::write(
            dir.join(format!("new-{k}.yaml")),
            route(&format!("new-{k}"), &format!("/new-{k}")),
        )
        .unwrap();
        println!("{}", pipeline.change("route"));
    }
    for k in 0..3 {
        std::fs::write(dir.join("slice.yaml"), slice(9001 + k)).unwrap();
        println!("{}", pipeline.change("endpoints"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
