//! The operator against the in-memory API server: the real controller
//! provisions each Gateway's data plane (Deployment, Service,
//! ServiceAccount, PodDisruptionBudget, autoscaler), owned by the Gateway;
//! undoes edits and deletions; updates Service ports in place; turns the
//! Gateway Programmed only once the Deployment is available (the test
//! plays the kubelet and the load balancer by writing their status); and
//! everything goes with the Gateway. With provisioning off nothing is made.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::{Proc, free_port, wait_http_ok};

const NS: Option<&str> = Some("default");
const PROGRAMMED: &str = "{.status.conditions[?(@.type==\"Programmed\")].message}";

/// GatewayClass `tollgate` and Gateway `gw` listening on `port`.
pub(crate) fn gateway(port: u16, extra: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tollgate}}
spec: {{controllerName: tollgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: tollgate
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
  - {{name: http, port: {port}, protocol: HTTP}}
{extra}"
    )
}

/// GatewayConfig `broken`: its patch makes the Deployment invalid, so
/// nothing of it may be applied, its typed `replicas: 5` included.
pub(crate) const BROKEN_CONFIG: &str = "---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {name: broken, namespace: default}
spec:
  kubernetes:
    deployment: {replicas: 5}
    patches: {deployment: {spec: {replicas: many}}}
";

/// Gateway `manifest` (from [`gateway`]) with its infrastructure pointed
/// at [`BROKEN_CONFIG`].
pub(crate) fn with_broken_config(manifest: &str) -> String {
    let infra = "  infrastructure:\n    parametersRef: {group: tollgate.dev, kind: GatewayConfig, name: broken}\n";
    manifest.replace("  addresses:", &format!("{infra}  addresses:"))
}

/// A controller in Kubernetes mode with `flags` (`--provision` or
/// `--no-provision`), its listener ports shifted by `offset`.
async fn controller(server: &ApiServer, flags: &[&str], offset: u16) -> (Proc, String) {
    controller_with_env(server, flags, offset, &[]).await
}

/// [`controller`] with the variables `extra` too.
pub(crate) async fn controller_with_env(
    server: &ApiServer,
    flags: &[&str],
    offset: u16,
    extra: &[(&str, &str)],
) -> (Proc, String) {
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let snapshots = format!("127.0.0.1:{}", free_port().unwrap());
    let offset = offset.to_string();
    let mut args = vec![
        "--admin-address",
        &admin,
        "--snapshot-address",
        &snapshots,
        "--listener-port-offset",
        &offset,
        "--lease-duration-seconds",
        "3",
        "--lease-renew-seconds",
        "1",
        "--report-grace-seconds",
        "1",
        "--dataplane-image",
        "example.com/tollgate-dataplane:test",
        "--snapshot-url",
        "https://tollgate-controller.$(POD_NAMESPACE).svc:9903",
    ];
    args.extend_from_slice(flags);
    let kubeconfig = server.kubeconfig().display().to_string();
    let mut vars = vec![
        ("KUBECONFIG", kubeconfig.as_str()),
        ("POD_NAME", "operator-0"),
        ("POD_NAMESPACE", "default"),
        ("OTEL_SERVICE_NAME", "tollgate-test"),
        ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ("RUST_LOG", "info"),
    ];
    vars.extend_from_slice(extra);
    let mut proc = Proc::spawn("tollgate-controller", args, vars).unwrap();
    if let Err(e) = wait_http_ok(&format!("http://{admin}/readyz"), Duration::from_secs(30)).await {
        proc.check_running().unwrap();
        panic!("controller not ready: {e}\n{}", proc.tail(40));
    }
    (proc, format!("https://{snapshots}"))
}

/// Polls `check` on the object (or its absence) until it holds.
pub(crate) async fn wait_for(
    server: &ApiServer,
    api_version: &str,
    kind: &str,
    what: &str,
    check: impl Fn(Option<&Value>) -> bool,
) -> Option<Value> {
    let start = Instant::now();
    loop {
        let object = server.get(api_version, kind, NS, "gw-tollgate").ok();
        if check(object.as_ref()) {
            return object;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{kind} gw-tollgate: {what} did not happen; it is {object:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const KINDS: [(&str, &str); 4] = [
    ("apps/v1", "Deployment"),
    ("v1", "Service"),
    ("v1", "ServiceAccount"),
    ("policy/v1", "PodDisruptionBudget"),
];

/// The whole life of a provisioned Gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_provisions_repairs_and_removes_a_gateways_data_plane() {
    let server = cluster().await;
    apply(&server, &gateway(80, "")).await;
    let offset = free_port().unwrap() - 80;
    let (mut ctl, snapshots) = controller(&server, &["--provision"], offset).await;
    let uid = server
        .get("gateway.networking.k8s.io/v1", "Gateway", NS, "gw")
        .unwrap()["metadata"]["uid"]
        .clone();

    // Every object exists, labelled and owned by the Gateway.
    for (api_version, kind) in KINDS {
        let object = wait_for(&server, api_version, kind, "creation", |o| o.is_some())
            .await
            .unwrap();
        let meta = &object["metadata"];
        assert_eq!(meta["ownerReferences"][0]["uid"], uid, "{kind}");
        assert_eq!(meta["ownerReferences"][0]["controller"], true, "{kind}");
        assert_eq!(meta["labels"]["app.kubernetes.io/managed-by"], "tollgate");
        assert_eq!(
            meta["labels"]["gateway.networking.k8s.io/gateway-name"],
            "gw"
        );
        assert_eq!(
            meta["labels"]["gateway.networking.k8s.io/gateway-class-name"], "tollgate",
            "{kind}: the class tells this controller's data planes from another's"
        );
    }
    let deployment = server
        .get("apps/v1", "Deployment", NS, "gw-tollgate")
        .unwrap();
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "example.com/tollgate-dataplane:test");
    let env = container["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    assert_eq!(
        var("TOLLGATE_CONTROLLER").unwrap()["value"],
        "https://tollgate-controller.default.svc:9903",
        "the snapshot URL names the controller's namespace"
    );
    // The controller's export settings are handed over, its service
    // name is not: each binary names itself.
    assert_eq!(
        var("OTEL_RESOURCE_ATTRIBUTES").unwrap()["value"],
        "deployment.environment=test"
    );
    assert_eq!(var("OTEL_SERVICE_NAME"), None);
    let service = server.get("v1", "Service", NS, "gw-tollgate").unwrap();
    assert_eq!(service["spec"]["type"], "LoadBalancer");
    assert_eq!(service["spec"]["externalIPs"], json!(["127.0.0.1"]));
    let service_uid = service["metadata"]["uid"].clone();

    // A user's edit of an owned field is undone.
    let mut edited = deployment.clone();
    edited["spec"]["replicas"] = json!(7);
    edited["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let stored = server.replace(edited).unwrap();
    assert_eq!(stored["spec"]["replicas"], 7, "the edit was stored");
    wait_for(&server, "apps/v1", "Deployment", "replicas reverted", |o| {
        o.is_some_and(|o| o["spec"]["replicas"] == 2)
    })
    .await;

    // A deleted object comes back.
    server
        .delete("v1", "ServiceAccount", NS, "gw-tollgate")
        .unwrap();
    wait_for(&server, "v1", "ServiceAccount", "re-creation", |o| {
        o.is_some()
    })
    .await;

    // A listener change updates the Service's ports in place.
    apply(&server, &gateway(8080, "")).await;
    let service = wait_for(&server, "v1", "Service", "port 8080", |o| {
        o.is_some_and(|o| {
            o["spec"]["ports"].as_array().unwrap().len() == 1
                && o["spec"]["ports"][0]["port"] == 8080
        })
    })
    .await
    .unwrap();
    assert_eq!(
        service["metadata"]["uid"], service_uid,
        "the Service was replaced"
    );
    apply(&server, &gateway(80, "")).await;

    // A data plane reports its snapshot; Programmed still waits for the
    // Deployment.
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let tls_dir = client_certificate_dir(&server, "default", "gw").await;
    let tls_dir = tls_dir.display().to_string();
    let args = [
        "--controller",
        &snapshots,
        "--tls-dir",
        &tls_dir,
        "--gateway",
        "default/gw",
        "--admin-address",
        &admin,
    ];
    let _dataplane = Proc::spawn("tollgate-dataplane", args, [("POD_NAME", "dp-0")]).unwrap();
    wait_http_ok(&format!("http://{admin}/readyz"), Duration::from_secs(20))
        .await
        .unwrap();
    wait_jsonpath(
        &server,
        &["gateway", "gw"],
        PROGRAMMED,
        "waiting for the data plane Deployment to be available",
    )
    .await;

    // The kubelet makes the Deployment available; the load balancer gives
    // the Service an address.
    let mut deployment = server
        .get("apps/v1", "Deployment", NS, "gw-tollgate")
        .unwrap();
    deployment["status"] = json!({"replicas": 2, "availableReplicas": 2, "conditions": [
        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}]});
    server.replace_status(deployment).unwrap();
    let mut service = server.get("v1", "Service", NS, "gw-tollgate").unwrap();
    service["status"] = json!({"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}});
    server.replace_status(service).unwrap();
    wait_jsonpath(
        &server,
        &["gateway", "gw"],
        PROGRAMMED,
        "Gateway is programmed",
    )
    .await;
    wait_jsonpath(
        &server,
        &["gateway", "gw"],
        "{.status.addresses[*].value}",
        "203.0.113.10 127.0.0.1",
    )
    .await;

    // Deleting the Gateway deletes everything it owns: by garbage
    // collection alone (the controller is stopped first), so the owner
    // references are what does it.
    ctl.stop();
    kubectl(&server, &["delete", "gateway", "gw"]).await;
    for (api_version, kind) in KINDS {
        wait_for(&server, api_version, kind, "deletion", |o| o.is_none()).await;
    }
}

/// An autoscaler from the Gateway's own GatewayConfig is created, takes
/// the replica count, and is deleted when turned off again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_autoscaler_comes_and_goes_with_its_setting() {
    let server = cluster().await;
    let config = |enabled: bool| {
        format!(
            "---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {{name: gw-settings, namespace: default}}
spec:
  kubernetes:
    autoscaling: {{enabled: {enabled}, minReplicas: 3, maxReplicas: 6}}
"
        )
    };
    let infra = "  infrastructure:\n    parametersRef: {group: tollgate.dev, kind: GatewayConfig, name: gw-settings}\n";
    let with_ref = |enabled| {
        gateway(80, "").replace("  addresses:", &format!("{infra}  addresses:")) + &config(enabled)
    };
    apply(&server, &with_ref(true)).await;
    let offset = free_port().unwrap() - 80;
    let (mut ctl, _) = controller(&server, &["--provision"], offset).await;
    let hpa = "autoscaling/v2";
    let made = wait_for(&server, hpa, "HorizontalPodAutoscaler", "creation", |o| {
        o.is_some()
    })
    .await
    .unwrap();
    assert_eq!(made["spec"]["minReplicas"], 3);
    assert_eq!(made["spec"]["scaleTargetRef"]["name"], "gw-tollgate");
    let deployment = server
        .get("apps/v1", "Deployment", NS, "gw-tollgate")
        .unwrap();
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "{deployment:#?}"
    );

    apply(&server, &with_ref(false)).await;
    wait_for(&server, hpa, "HorizontalPodAutoscaler", "deletion", |o| {
        o.is_none()
    })
    .await;
    wait_for(&server, "apps/v1", "Deployment", "replicas back", |o| {
        o.is_some_and(|o| o["spec"]["replicas"] == 2)
    })
    .await;
    ctl.stop();
}

/// With provisioning off the Gateway is served as before and nothing is
/// created for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_provisioned_when_provisioning_is_off() {
    let server = cluster().await;
    apply(&server, &gateway(80, "")).await;
    let offset = free_port().unwrap() - 80;
    let (mut ctl, _) = controller(&server, &["--no-provision"], offset).await;
    wait_jsonpath(
        &server,
        &["gateway", "gw"],
        "{.status.conditions[?(@.type==\"Accepted\")].status}",
        "True",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (api_version, kind) in KINDS {
        assert!(
            server
                .list(api_version, kind, NS)
                .unwrap()
                .iter()
                .all(|o| { o["metadata"]["labels"]["app.kubernetes.io/managed-by"] != "tollgate" }),
            "{kind} was provisioned with provisioning off"
        );
    }
    ctl.stop();
}

/// The listeners of an accepted ListenerSet are exposed by the Service
/// too; a patch that breaks the Deployment is refused with a Warning
/// Event on the Gateway, and nothing of it is applied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_sets_are_exposed_and_a_broken_patch_is_an_event() {
    let server = cluster().await;
    let set = "---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: extra, namespace: default}
spec:
  parentRef: {name: gw}
  listeners:
  - {name: more, port: 9090, protocol: HTTP}
";
    let manifest = gateway(80, set).replace(
        "  addresses:",
        "  allowedListeners: {namespaces: {from: Same}}\n  addresses:",
    );
    apply(&server, &manifest).await;
    let offset = free_port().unwrap() - 80;
    let (mut ctl, _) = controller(&server, &["--provision"], offset).await;
    wait_for(&server, "v1", "Service", "the ListenerSet's port", |o| {
        o.is_some_and(|o| {
            let ports: Vec<&Value> = o["spec"]["ports"].as_array().unwrap().iter().collect();
            ports.iter().map(|p| p["port"].clone()).collect::<Vec<_>>() == [json!(80), json!(9090)]
        })
    })
    .await;

    // The config goes first and alone, and the Gateway refers to it only
    // once the controller has compiled with it: a Gateway whose
    // parametersRef is missing is rightly not Accepted, and its data plane
    // would go before the broken patch is ever seen.
    let compiles = || ctl.log().matches("compiled elapsed_ms").count();
    let before = compiles();
    apply(&server, BROKEN_CONFIG).await;
    let start = Instant::now();
    while compiles() == before {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the controller never compiled with the GatewayConfig"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    apply(&server, &with_broken_config(&manifest)).await;
    let start = Instant::now();
    loop {
        let events = server.list("events.k8s.io/v1", "Event", NS).unwrap();
        let found = events
            .iter()
            .find(|e| e["reason"] == "ProvisioningFailed" && e["regarding"]["name"] == "gw");
        if let Some(event) = found {
            assert_eq!(event["type"], "Warning");
            let note = event["note"].as_str().unwrap();
            assert!(note.contains("patches.deployment"), "{note}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no ProvisioningFailed Event: {events:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The typed replicas: 5 of the same config was not applied either.
    let deployment = server
        .get("apps/v1", "Deployment", NS, "gw-tollgate")
        .unwrap();
    assert_eq!(deployment["spec"]["replicas"], 2);
    ctl.stop();
}
