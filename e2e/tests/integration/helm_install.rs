//! The real `helm install` and `helm upgrade` into the in-memory API
//! server: the release's objects exist, and an upgrade from the previous
//! chart upgrades Tollgate's CRDs while a Gateway API CRD the cluster
//! already had stays untouched.

#![allow(clippy::expect_used)]

use super::common::k8s::{kubectl, try_kubectl};
use super::helm_support::{NAMESPACE, RELEASE, chart_dir, helm_on, install_chart};
use serde_json::Value;
use std::path::{Path, PathBuf};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::log_dir;

/// `kubectl get ... -o json`, parsed.
async fn get(server: &ApiServer, what: &[&str]) -> Value {
    let mut args = vec!["get"];
    args.extend_from_slice(what);
    args.extend(["-o", "json"]);
    serde_json::from_str(&kubectl(server, &args).await).expect("kubectl prints JSON")
}

/// A test API server with the Gateway API CRDs, as most clusters have them.
async fn cluster_with_gateway_api() -> ApiServer {
    let server = ApiServer::start().await.expect("API server starts");
    kubectl(
        &server,
        &[
            "apply",
            "--server-side",
            "-f",
            "crds/generated/gateway-api/",
        ],
    )
    .await;
    server
}

/// `helm install` with default values creates the controller, its RBAC and
/// Service, Tollgate's CRDs, the default GatewayClass and its
/// GatewayConfig, and records the release.
#[tokio::test]
async fn helm_install_creates_the_release() {
    let server = cluster_with_gateway_api().await;
    install_chart(&server, &[]).await;

    let deployment = get(
        &server,
        &["deployment", "tollgate-controller", "-n", NAMESPACE],
    )
    .await;
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let after = |flag: &str| args.iter().position(|a| *a == flag).map(|i| args[i + 1]);
    assert_eq!(
        after("--snapshot-url"),
        Some("https://tollgate-controller.tollgate-system.svc:9903")
    );
    assert_eq!(after("--snapshot-address"), Some("0.0.0.0:9903"));
    assert_eq!(
        after("--dataplane-image"),
        Some("ghcr.io/tollgate-dev/tollgate-dataplane:0.1.0")
    );
    let service = get(
        &server,
        &["service", "tollgate-controller", "-n", NAMESPACE],
    )
    .await;
    assert_eq!(service["spec"]["ports"][0]["port"], 9903);
    for what in [
        ["serviceaccount", "tollgate-controller"],
        ["role", "tollgate-controller"],
        ["rolebinding", "tollgate-controller"],
        ["poddisruptionbudget", "tollgate-controller"],
        ["gatewayconfig", "tollgate"],
    ] {
        get(&server, &[what[0], what[1], "-n", NAMESPACE]).await;
    }
    let role = get(&server, &["clusterrole", "tollgate-controller"]).await;
    let rules = role["rules"].as_array().expect("rules");
    assert!(
        rules.iter().all(|r| !r.to_string().contains('*')),
        "no wildcard in {rules:?}"
    );
    get(&server, &["clusterrolebinding", "tollgate-controller"]).await;
    let class = get(&server, &["gatewayclass", "tollgate"]).await;
    assert_eq!(
        class["spec"]["controllerName"],
        "tollgate.dev/gateway-controller"
    );
    assert_eq!(class["spec"]["parametersRef"]["namespace"], NAMESPACE);
    let crd = get(&server, &["crd", "gatewayconfigs.tollgate.dev"]).await;
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(
        crd["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );

    // The release record, where Helm keeps it: a Secret in the namespace.
    let record = get(
        &server,
        &["secret", "sh.helm.release.v1.tollgate.v1", "-n", NAMESPACE],
    )
    .await;
    assert_eq!(record["type"], "helm.sh/release.v1");
    let status = helm_on(&server, &["status", RELEASE, "--namespace", NAMESPACE]).await;
    assert!(status.contains("STATUS: deployed"), "{status}");
}

/// Copies a folder recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let path = entry.expect("entry").path();
        let target = to.join(path.file_name().expect("file name"));
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).expect("copy file");
        }
    }
}

/// "The previous release" of the chart: version 0.0.9, whose GatewayConfig
/// CRD does not know `spec.idleTimeoutSeconds` yet.
fn previous_chart() -> PathBuf {
    let dir = log_dir().join(format!("chart-previous-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&chart_dir(), &dir);
    let chart_yaml = dir.join("Chart.yaml");
    let text = std::fs::read_to_string(&chart_yaml).expect("Chart.yaml");
    std::fs::write(
        &chart_yaml,
        text.replace("version: 0.1.0", "version: 0.0.9"),
    )
    .expect("write Chart.yaml");
    let crd_path = dir.join("files/crds/tollgate/tollgate.dev_gatewayconfigs.yaml");
    let text = std::fs::read_to_string(&crd_path).expect("CRD");
    let mut crd: Value = serde_yaml::from_str(&text).expect("CRD parses");
    let spec = crd
        .pointer_mut("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties")
        .and_then(Value::as_object_mut)
        .expect("spec properties");
    assert!(spec.remove("idleTimeoutSeconds").is_some());
    std::fs::write(&crd_path, serde_yaml::to_string(&crd).expect("YAML")).expect("write CRD");
    dir
}

/// `kubectl apply --server-side` (strict field validation, the default)
/// of a GatewayConfig with `idleTimeoutSeconds`: the field as stored, or
/// the server's refusal.
async fn apply_idle_timeout(server: &ApiServer) -> Result<Value, String> {
    let file = log_dir().join(format!("gatewayconfig-{}.yaml", server.addr().port()));
    std::fs::write(
        &file,
        "apiVersion: tollgate.dev/v1alpha1\nkind: GatewayConfig\n\
         metadata: {name: probe, namespace: default}\nspec: {idleTimeoutSeconds: 7}\n",
    )
    .expect("write manifest");
    let path = file.display().to_string();
    let (ok, _, stderr) = try_kubectl(server, &["apply", "--server-side", "-f", &path]).await;
    if !ok {
        return Err(stderr);
    }
    let object = get(server, &["gatewayconfig", "probe", "-n", "default"]).await;
    Ok(object["spec"]["idleTimeoutSeconds"].clone())
}

/// `helm upgrade` from the previous chart upgrades Tollgate's CRD (a field
/// it lacked is kept afterwards), installs the Gateway API CRDs the cluster
/// lacked, and never touches one the cluster already had.
#[tokio::test]
async fn helm_upgrade_from_previous_chart_upgrades_crds_and_spares_gateway_api() {
    let server = ApiServer::start().await.expect("API server starts");
    // The cluster's own Gateway CRD, installed by its administrator.
    kubectl(
        &server,
        &[
            "apply",
            "--server-side",
            "-f",
            "crds/generated/gateway-api/gateway.networking.k8s.io_gateways.yaml",
        ],
    )
    .await;
    kubectl(
        &server,
        &[
            "annotate",
            "crd",
            "gateways.gateway.networking.k8s.io",
            "example.com/installed-by=admin",
        ],
    )
    .await;
    let before = get(&server, &["crd", "gateways.gateway.networking.k8s.io"]).await;

    let previous = previous_chart().display().to_string();
    let with_api = [
        "--namespace",
        NAMESPACE,
        "--set",
        "gatewayAPI.installCRDs=true",
    ];
    let mut install = vec!["install", RELEASE, &previous, "--create-namespace"];
    install.extend(with_api);
    helm_on(&server, &install).await;
    let refused = apply_idle_timeout(&server)
        .await
        .expect_err("the old CRD refuses the field");
    assert!(
        refused.contains(r#"unknown field "spec.idleTimeoutSeconds""#),
        "{refused}"
    );
    let routes = get(&server, &["crd", "httproutes.gateway.networking.k8s.io"]).await;
    assert_eq!(
        routes["metadata"]["annotations"]["meta.helm.sh/release-name"],
        RELEASE
    );

    let current = chart_dir().display().to_string();
    let mut upgrade = vec!["upgrade", RELEASE, &current];
    upgrade.extend(with_api);
    helm_on(&server, &upgrade).await;
    assert_eq!(
        apply_idle_timeout(&server).await,
        Ok(Value::from(7)),
        "the upgraded CRD"
    );

    let after = get(&server, &["crd", "gateways.gateway.networking.k8s.io"]).await;
    assert_eq!(
        after["metadata"]["resourceVersion"], before["metadata"]["resourceVersion"],
        "the cluster's Gateway CRD was written"
    );
    assert_eq!(
        after["metadata"]["annotations"]["example.com/installed-by"],
        "admin"
    );
    assert!(after["metadata"]["annotations"]["meta.helm.sh/release-name"].is_null());
    let history = helm_on(&server, &["history", RELEASE, "--namespace", NAMESPACE]).await;
    assert!(
        history.contains("tollgate-0.0.9") && history.contains("tollgate-0.1.0"),
        "{history}"
    );
    // Uninstalling keeps every CRD (and so every user object).
    helm_on(&server, &["uninstall", RELEASE, "--namespace", NAMESPACE]).await;
    let (kept, _, _) = try_kubectl(&server, &["get", "crd", "gatewayconfigs.tollgate.dev"]).await;
    assert!(kept, "the GatewayConfig CRD was deleted on uninstall");
}
