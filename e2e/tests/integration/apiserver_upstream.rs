//! The controller and the examples against the upstream Gateway API CRDs
//! (standard channel), whose schemas carry the CEL rules and keyed lists
//! the CRDs generated from the Rust types lack.
//!
//! No package on crates.io, PyPI or npm ships those CRD files, and copies
//! of them may not be committed, so these tests are `#[ignore]`d: put the
//! `config/crd/standard/*.yaml` files of a kubernetes-sigs/gateway-api
//! v1.5+ release in `.tools/gateway-api/standard/` and run
//! `cargo nextest run -p tollgate-e2e --test integration --run-ignored only apiserver_upstream`.
//! Without them they fail, naming what is missing; they never pass empty.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support::{Answer, apply, call};
use crate::common::k8s::{self, kubectl, kubectl_path, start_kube_controller, wait_jsonpath};
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::{Echo, workspace_dir};

/// The upstream CRD documents, or a panic naming what to install.
fn upstream_crds() -> Vec<Value> {
    let dir = workspace_dir().join(".tools/gateway-api/standard");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}. No registry ships the upstream Gateway API CRDs: copy config/crd/standard/*.yaml \
             of a kubernetes-sigs/gateway-api v1.5+ release there",
            dir.display()
        )
    });
    let mut crds = Vec::new();
    for entry in entries {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        for doc in serde_yaml::Deserializer::from_str(&text) {
            let value: Value = serde::Deserialize::deserialize(doc).unwrap();
            if value["kind"] == "CustomResourceDefinition" {
                crds.push(value);
            }
        }
    }
    assert!(crds.len() >= 5, "too few CRDs in {}", dir.display());
    crds
}

/// A server with the upstream Gateway API CRDs and Tollgate's own.
async fn upstream_cluster() -> ApiServer {
    let crds = upstream_crds();
    let server = ApiServer::start().await.unwrap();
    for crd in crds {
        server.create(crd).unwrap();
    }
    let own = workspace_dir().join("crds/generated/tollgate.dev_gatewayconfigs.yaml");
    let own: Value = serde_yaml::from_str(&std::fs::read_to_string(own).unwrap()).unwrap();
    server.create(own).unwrap();
    server
}

async fn apply_route(server: &ApiServer, spec: Value) -> Answer {
    let route = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "bad", "namespace": "default"}, "spec": spec});
    let path = "/apis/gateway.networking.k8s.io/v1/namespaces/default/httproutes/bad";
    apply(server, path, "test", false, &route).await
}

/// The examples apply (kubectl, strict field validation) under the upstream
/// schemas; upstream CEL rules reject bad input; the rules this server
/// cannot evaluate are printed and bounded.
#[tokio::test]
#[ignore = "needs the upstream Gateway API CRDs in .tools/gateway-api/standard/"]
async fn upstream_crds_take_the_examples_and_reject_bad_input() {
    let server = upstream_cluster().await;
    kubectl_path();
    kubectl(
        &server,
        &["apply", "--server-side", "-f", "examples/quickstart/"],
    )
    .await;

    let relative = apply_route(
        &server,
        json!({"rules": [{"matches": [{"path": {"type": "PathPrefix", "value": "app"}}]}]}),
    )
    .await;
    assert_eq!(relative.code, 422, "{}", relative.body);
    assert!(
        relative.body["message"]
            .as_str()
            .unwrap()
            .contains("must be an absolute path"),
        "{}",
        relative.body
    );
    let both = json!({"rules": [{"filters": [
        {"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}},
        {"type": "URLRewrite", "urlRewrite": {"hostname": "x"}}]}]});
    assert_eq!(
        apply_route(&server, both).await.code,
        422,
        "redirect and rewrite together"
    );
    let hostname = apply_route(&server, json!({"hostnames": ["Not_A_Host"]})).await;
    assert_eq!(hostname.code, 422, "{}", hostname.body);
    let gateway = json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
        "metadata": {"name": "dup", "namespace": "default"}, "spec": {"gatewayClassName": "tollgate",
        "listeners": [{"name": "a", "port": 80, "protocol": "HTTP"}, {"name": "a", "port": 81, "protocol": "HTTP"}]}});
    let dup = call(
        &server,
        "POST",
        "/apis/gateway.networking.k8s.io/v1/namespaces/default/gateways",
        "application/json",
        Some(&gateway),
    )
    .await;
    assert_eq!(dup.code, 422, "listener names are unique: {}", dup.body);

    let unevaluable = server.unevaluable_rules();
    for rule in &unevaluable {
        eprintln!(
            "unevaluable: {} {} {:?}: {}",
            rule.resource, rule.path, rule.rule, rule.reason
        );
    }
    assert!(
        unevaluable.len() <= 4,
        "{} rules cannot be evaluated",
        unevaluable.len()
    );
}

/// The controller's status writes fit the upstream schemas: the quickstart
/// Gateway gets Programmed and its routes Accepted, with no write refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the upstream Gateway API CRDs in .tools/gateway-api/standard/"]
async fn controller_status_fits_the_upstream_schemas() {
    let server = upstream_cluster().await;
    kubectl_path();
    let (v1, v2) = (
        Echo::start("echo-v1").await.unwrap(),
        Echo::start("echo-v2").await.unwrap(),
    );
    let dir = workspace_dir().join("examples/quickstart");
    let mut manifests = String::new();
    for file in ["gateway.yaml", "backends.yaml", "routes.yaml"] {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        manifests.push_str(
            &text
                .replace("3001", &v1.port().to_string())
                .replace("3002", &v2.port().to_string()),
        );
        manifests.push_str("\n---\n");
    }
    k8s::apply(&server, &manifests).await;
    let _ctl = start_kube_controller(&server, "replica-a", true, 8080).await;
    let programmed = "{.status.conditions[?(@.type==\"Programmed\")].status}";
    wait_jsonpath(&server, &["gateway", "quickstart"], programmed, "True").await;
    let accepted = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}";
    wait_jsonpath(&server, &["httproute", "echo-split"], accepted, "True").await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let refused: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.is_write() && r.status >= 400 && !r.user_agent.starts_with("kubectl"))
        .collect();
    assert!(
        refused.is_empty(),
        "controller writes refused: {refused:#?}"
    );
}
