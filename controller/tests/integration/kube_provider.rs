//! The Kubernetes provider against the in-memory API server: a real kube-rs
//! client over HTTP, real watches, relists after 410 Gone and restarts.
//!
//! Every view the provider sends is recorded, so the tests can assert not
//! only where the provider converges but that no view on the way was
//! missing objects.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tollgate_compile::resources::Resources;
use tollgate_controller::provider::kube::{KubeProvider, KubeProviderConfig};
use tollgate_e2e::apiserver::ApiServer;

const WAIT: Duration = Duration::from_secs(30);
const GW: &str = "gateway.networking.k8s.io/v1";

/// A server with the Gateway API and Tollgate CRDs installed, except the
/// plurals in `skip`.
pub(crate) async fn server_with_crds(skip: &[&str]) -> ApiServer {
    let server = ApiServer::start().await.unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/generated");
    let mut files: Vec<_> = std::fs::read_dir(format!("{root}/gateway-api"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(format!("{root}/tollgate.dev_gatewayconfigs.yaml").into());
    files.push(format!("{root}/tollgate.dev_authpolicies.yaml").into());
    files.push(format!("{root}/tollgate.dev_ratelimitpolicies.yaml").into());
    for file in files {
        let crd: Value = serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let plural = crd.pointer("/spec/names/plural").unwrap().as_str().unwrap();
        if !skip.contains(&plural) {
            server.create(crd).unwrap();
        }
    }
    server
}

pub(crate) async fn client(server: &ApiServer) -> Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let options = KubeConfigOptions::default();
    let config = Config::from_custom_kubeconfig(kubeconfig, &options)
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

/// A running provider and every view it sent, oldest first.
pub(crate) struct Provider {
    rx: watch::Receiver<Option<Arc<Resources>>>,
    views: Arc<Mutex<Vec<Arc<Resources>>>>,
}

impl Provider {
    pub(crate) async fn start(server: &ApiServer) -> Provider {
        Provider::start_with(server, KubeProviderConfig::default()).await
    }

    async fn start_with(server: &ApiServer, config: KubeProviderConfig) -> Provider {
        let (tx, rx) = watch::channel(None);
        tokio::spawn(KubeProvider::new(client(server).await, config).run(tx));
        let views = Arc::new(Mutex::new(Vec::new()));
        let (mut record, sink) = (rx.clone(), Arc::clone(&views));
        tokio::spawn(async move {
            while record.changed().await.is_ok() {
                if let Some(view) = record.borrow_and_update().clone() {
                    sink.lock().unwrap().push(view);
                }
            }
        });
        Provider { rx, views }
    }

    /// The first view that satisfies `done`.
    pub(crate) async fn until(
        &mut self,
        what: &str,
        done: impl Fn(&Resources) -> bool,
    ) -> Arc<Resources> {
        let wait = self.rx.wait_for(|v| v.as_deref().is_some_and(&done));
        match tokio::time::timeout(WAIT, wait).await {
            Ok(Ok(view)) => view.clone().unwrap(),
            _ => panic!("no view with {what} within {WAIT:?}"),
        }
    }

    fn views(&self) -> Vec<Arc<Resources>> {
        self.views.lock().unwrap().clone()
    }

    /// Asserts that nothing is sent during a second (ten debounces).
    pub(crate) async fn assert_quiet(&mut self, after: &str) {
        self.rx.mark_unchanged();
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(
            !self.rx.has_changed().unwrap(),
            "a view was sent after {after}"
        );
    }
}

pub(crate) fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

pub(crate) fn gateway_class() -> Value {
    json!({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "tollgate"},
           "spec": {"controllerName": "tollgate.dev/gateway-controller"}})
}

pub(crate) fn gateway(ns: &str, name: &str, cert: Option<&str>) -> Value {
    let mut listener = json!({"name": "http", "port": 80, "protocol": "HTTP"});
    if let Some(cert) = cert {
        listener = json!({"name": "https", "port": 443, "protocol": "HTTPS",
                          "tls": {"mode": "Terminate", "certificateRefs": [{"name": cert}]}});
    }
    json!({"apiVersion": GW, "kind": "Gateway", "metadata": {"namespace": ns, "name": name},
           "spec": {"gatewayClassName": "tollgate", "listeners": [listener]}})
}

pub(crate) fn route(ns: &str, name: &str, host: &str) -> Value {
    json!({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"namespace": ns, "name": name},
           "spec": {"parentRefs": [{"name": "gw"}], "hostnames": [host],
                    "rules": [{"backendRefs": [{"name": "echo", "port": 80}]}]}})
}

pub(crate) fn service(ns: &str, name: &str, port: u16) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"namespace": ns, "name": name},
           "spec": {"ports": [{"port": port}]}})
}

pub(crate) fn endpoint_slice(ns: &str, service: &str) -> Value {
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"namespace": ns, "name": format!("{service}-1"),
                        "labels": {"kubernetes.io/service-name": service}},
           "addressType": "IPv4", "ports": [{"port": 8080}],
           "endpoints": [{"addresses": ["127.0.0.1"], "conditions": {"ready": true}}]})
}

pub(crate) fn secret(ns: &str, name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"namespace": ns, "name": name},
           "type": "Opaque", "data": {"k": value}})
}

/// The objects of a small working setup in namespace `app`.
pub(crate) fn setup(server: &ApiServer) {
    for object in [
        namespace("app"),
        gateway_class(),
        gateway("app", "gw", None),
        route("app", "r1", "one.example"),
        service("app", "echo", 80),
        endpoint_slice("app", "echo"),
    ] {
        server.create(object).unwrap();
    }
}

/// Whether a view holds everything `setup` created.
pub(crate) fn has_setup(r: &Resources) -> bool {
    r.namespaces.contains_key("app")
        && r.gateway_classes.contains_key("tollgate")
        && r.gateways.contains_key("app/gw")
        && r.http_routes.contains_key("app/r1")
        && r.services.contains_key("app/echo")
        && r.endpoint_slices.contains_key("app/echo-1")
}

fn port(r: &Resources, key: &str) -> i32 {
    r.services[key]
        .spec
        .as_ref()
        .unwrap()
        .ports
        .as_ref()
        .unwrap()[0]
        .port
}

fn hostnames(r: &Resources, key: &str) -> Vec<String> {
    r.http_routes[key]
        .spec
        .hostnames
        .clone()
        .unwrap_or_default()
}

/// The first view comes only after every kind is listed, so it already
/// holds every object; a kind whose CRD is missing (GRPCRoute) counts as
/// empty after a retry and fills in once the CRD is installed.
#[tokio::test]
async fn first_view_is_complete_and_a_missing_crd_does_not_block_it() {
    let server = server_with_crds(&["grpcroutes"]).await;
    setup(&server);
    let mut provider = Provider::start(&server).await;
    provider.until("the setup", has_setup).await;
    assert!(
        has_setup(&provider.views()[0]),
        "the first view was partial"
    );

    let crd = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crds/generated/gateway-api/gateway.networking.k8s.io_grpcroutes.yaml"
    ))
    .unwrap();
    server.create(serde_yaml::from_str(&crd).unwrap()).unwrap();
    server
        .create(json!({"apiVersion": GW, "kind": "GRPCRoute",
                       "metadata": {"namespace": "app", "name": "g"}, "spec": {}}))
        .unwrap();
    provider
        .until("the GRPCRoute", |r| r.grpc_routes.contains_key("app/g"))
        .await;
    assert!(provider.views().iter().all(|v| has_setup(v)));
}

/// Creates, spec updates and deletes each reach a new view.
#[tokio::test]
async fn create_update_delete_flow_through() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    let mut provider = Provider::start(&server).await;
    provider.until("the setup", has_setup).await;

    server.create(route("app", "r2", "two.example")).unwrap();
    provider
        .until("r2", |r| r.http_routes.contains_key("app/r2"))
        .await;

    let mut changed = server.get(GW, "HTTPRoute", Some("app"), "r2").unwrap();
    changed["spec"]["hostnames"] = json!(["three.example"]);
    server.replace(changed).unwrap();
    provider
        .until("r2's new hostname", |r| {
            hostnames(r, "app/r2") == ["three.example"]
        })
        .await;

    let mut svc = server.get("v1", "Service", Some("app"), "echo").unwrap();
    svc["spec"]["ports"] = json!([{"port": 81}]);
    server.replace(svc).unwrap();
    provider
        .until("the new Service port", |r| port(r, "app/echo") == 81)
        .await;

    server.delete(GW, "HTTPRoute", Some("app"), "r2").unwrap();
    provider
        .until("r2 gone", |r| !r.http_routes.contains_key("app/r2"))
        .await;
    assert!(provider.views().iter().all(|v| has_setup(v)));
}

/// Writes that touch only `.status` or finalizers (what Tollgate's status
/// writer does) send nothing, for kinds with a generation and for Services
/// alike.
#[tokio::test]
async fn status_only_updates_send_nothing() {
    fn accepted_condition() -> Value {
        json!({"type": "Accepted", "status": "True", "reason": "Accepted", "message": "ok",
               "lastTransitionTime": "2025-01-01T00:00:00Z"})
    }
    let server = server_with_crds(&[]).await;
    setup(&server);
    let mut provider = Provider::start(&server).await;
    provider.until("the setup", has_setup).await;
    provider.assert_quiet("the first view").await;

    for (api_version, kind, name, status) in [
        (
            GW,
            "Gateway",
            "gw",
            json!({"conditions": [accepted_condition()]}),
        ),
        (GW, "HTTPRoute", "r1", json!({"parents": []})),
        (
            "v1",
            "Service",
            "echo",
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}),
        ),
    ] {
        let mut object = server.get(api_version, kind, Some("app"), name).unwrap();
        object["status"] = status;
        server.replace_status(object).unwrap();
    }
    let mut class = server.get(GW, "GatewayClass", None, "tollgate").unwrap();
    class["status"] = json!({"conditions": [accepted_condition()]});
    server.replace_status(class).unwrap();
    let mut class = server.get(GW, "GatewayClass", None, "tollgate").unwrap();
    class["metadata"]["finalizers"] = json!(["tollgate.dev/gateway-controller"]);
    server.replace(class).unwrap();
    provider.assert_quiet("status and finalizer writes").await;

    server.create(route("app", "r2", "two.example")).unwrap();
    provider
        .until("r2", |r| r.http_routes.contains_key("app/r2"))
        .await;
}

/// After the API server forgets old resourceVersions and drops every
/// watch, the provider relists and converges, and no view on the way
/// misses an object; a change made meanwhile arrives too.
#[tokio::test]
async fn relist_after_410_gone_keeps_every_object() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    let mut provider = Provider::start(&server).await;
    provider.until("the setup", has_setup).await;

    server.create(route("app", "r2", "two.example")).unwrap();
    server.expire_resource_versions();
    server.clear_requests();
    server.drop_watches();
    server.create(route("app", "r3", "three.example")).unwrap();
    provider
        .until("r2 and r3", |r| {
            r.http_routes.contains_key("app/r2") && r.http_routes.contains_key("app/r3")
        })
        .await;
    let relisted = server
        .requests()
        .iter()
        .any(|r| r.method == "GET" && !r.is_watch() && r.path.ends_with("/httproutes"));
    assert!(relisted, "HTTPRoutes were not listed again");
    assert!(provider.views().iter().all(|v| has_setup(v)));
}

/// A restarted API server (every connection closed) is a pause: the
/// provider reconnects, converges on changes made after the restart, and
/// never sends a view with objects missing.
#[tokio::test]
async fn api_server_restart_converges() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    let mut provider = Provider::start(&server).await;
    provider.until("the setup", has_setup).await;

    server.restart().await;
    server.create(route("app", "r2", "two.example")).unwrap();
    let mut svc = server.get("v1", "Service", Some("app"), "echo").unwrap();
    svc["spec"]["ports"] = json!([{"port": 81}]);
    server.replace(svc).unwrap();
    provider
        .until("r2 and the new Service port", |r| {
            r.http_routes.contains_key("app/r2") && port(r, "app/echo") == 81
        })
        .await;
    assert!(provider.views().iter().all(|v| has_setup(v)));
}

/// Only referenced Secrets are fetched in full: 200 unrelated Secrets cost
/// no GET and never appear; a change to the referenced one is fetched once
/// and sent; an unrelated change sends nothing; an unreferenced Secret is
/// dropped from the view.
#[tokio::test]
async fn only_referenced_secrets_are_fetched() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    for i in 0..200 {
        server
            .create(secret("app", &format!("unrelated-{i}"), "eA=="))
            .unwrap();
    }
    server.create(secret("app", "cert", "MQ==")).unwrap();
    server.create(gateway("app", "tls", Some("cert"))).unwrap();
    let mut provider = Provider::start(&server).await;
    let view = provider
        .until("the secret", |r| r.secrets.contains_key("app/cert"))
        .await;
    assert_eq!(view.secrets.keys().collect::<Vec<_>>(), ["app/cert"]);
    let secret_gets = |server: &ApiServer| {
        let gets = server.requests().into_iter();
        gets.filter(|r| r.method == "GET" && r.path.contains("/secrets/"))
            .count()
    };
    assert_eq!(secret_gets(&server), 1);

    let mut cert = server.get("v1", "Secret", Some("app"), "cert").unwrap();
    cert["data"]["k"] = json!("Mg==");
    server.replace(cert).unwrap();
    let data = |r: &Resources| r.secrets.get("app/cert").and_then(|s| s.data.clone());
    provider
        .until("the new secret data", |r| {
            data(r).is_some_and(|d| d["k"].0 == b"2".to_vec())
        })
        .await;
    assert_eq!(secret_gets(&server), 2);

    let mut other = server
        .get("v1", "Secret", Some("app"), "unrelated-7")
        .unwrap();
    other["data"]["k"] = json!("eQ==");
    server.replace(other).unwrap();
    provider.assert_quiet("an unrelated Secret changed").await;
    assert_eq!(secret_gets(&server), 2);

    server.delete(GW, "Gateway", Some("app"), "tls").unwrap();
    provider
        .until("the secret dropped", |r| r.secrets.is_empty())
        .await;
}

/// The provider stops (and stops watching) once nobody receives its views.
#[tokio::test]
async fn run_ends_when_the_receivers_are_gone() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    let (tx, mut rx) = watch::channel(None);
    let provider = KubeProvider::new(client(&server).await, KubeProviderConfig::default());
    let task = tokio::spawn(provider.run(tx));
    tokio::time::timeout(WAIT, rx.wait_for(|v| v.is_some()))
        .await
        .unwrap()
        .unwrap();
    drop(rx);
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

/// Limited to a list of namespaces, the provider sees namespaced objects
/// only there (GatewayClasses and Namespaces everywhere), and an empty
/// namespace on the list does not hold back the first view.
#[tokio::test]
async fn limited_to_namespaces() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    server.create(namespace("other")).unwrap();
    server.create(route("other", "r9", "nine.example")).unwrap();
    let namespaces = ["app".to_string(), "empty".to_string()].into();
    let config = KubeProviderConfig {
        namespaces: Some(namespaces),
        ..KubeProviderConfig::default()
    };
    let mut provider = Provider::start_with(&server, config).await;
    let view = provider.until("the setup", has_setup).await;
    assert!(view.namespaces.contains_key("other"));
    assert!(!view.http_routes.contains_key("other/r9"));

    server
        .create(route("other", "r8", "eight.example"))
        .unwrap();
    server.create(route("app", "r2", "two.example")).unwrap();
    let view = provider
        .until("r2", |r| r.http_routes.contains_key("app/r2"))
        .await;
    assert_eq!(
        view.http_routes.keys().collect::<Vec<_>>(),
        ["app/r1", "app/r2"]
    );
}
