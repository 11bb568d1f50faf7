//! The chart rendered offline by the real `helm`: lint, golden output for
//! the default values and three value sets, every object parsed into its
//! typed form with no unknown field, schema errors for bad values, and
//! `deploy/` kept current.

#![allow(clippy::expect_used)]

use super::helm_support::{
    NAMESPACE, RELEASE, chart_dir, documents, first_difference, helm, key, render, testdata,
    try_helm,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use tollgate_e2e::workspace_dir;

/// The value sets: the default values and three documented variations.
const CASES: &[&str] = &["default", "ha", "nodeport", "telemetry"];

fn values(case: &str) -> Vec<PathBuf> {
    if case == "default" {
        Vec::new()
    } else {
        vec![testdata(&format!("{case}.values.yaml"))]
    }
}

/// The rendering without its CRD documents (those are checked against
/// `crds/generated/` instead of being copied into every golden file).
fn without_crds(text: &str) -> String {
    text.split("\n---\n")
        .filter(|doc| !doc.contains("\nkind: CustomResourceDefinition\n"))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

/// `helm lint --strict` passes for every value set.
#[test]
fn chart_lints_with_every_value_set() {
    let chart = chart_dir().display().to_string();
    for case in CASES {
        let files: Vec<String> = values(case)
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let mut args = vec!["lint", "--strict", &chart, "--namespace", NAMESPACE];
        for f in &files {
            args.extend(["--values", f]);
        }
        let out = helm(&args);
        assert!(out.contains("0 chart(s) failed"), "{case}: {out}");
    }
}

/// Each value set renders exactly its golden file
/// (`e2e/testdata/helm/<case>.out.yaml`; `UPDATE_GOLDEN=1` rewrites them).
#[test]
fn rendering_matches_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut stale = Vec::new();
    for case in CASES {
        let got = without_crds(&render(&chart_dir(), &values(case), &[]));
        let path = testdata(&format!("{case}.out.yaml"));
        if update {
            std::fs::write(&path, &got).expect("write golden");
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            stale.push(format!("{}", path.display()));
        }
    }
    assert!(
        stale.is_empty(),
        "rendering differs from {stale:?}; review the change and rerun with UPDATE_GOLDEN=1"
    );
}

/// The CRDs the chart installs are the generated ones, byte for byte in
/// content, marked to be kept on uninstall.
#[test]
fn rendered_crds_are_the_generated_ones() {
    let rendered = documents(&render(&chart_dir(), &values("telemetry"), &[]));
    let crds: Vec<&Value> = rendered
        .iter()
        .filter(|d| d["kind"] == "CustomResourceDefinition")
        .collect();
    let generated = workspace_dir().join("crds/generated");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&generated)
        .expect("crds/generated")
        .chain(std::fs::read_dir(generated.join("gateway-api")).expect("gateway-api"))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert_eq!(
        crds.len(),
        files.len(),
        "one rendered CRD per generated file"
    );
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read CRD");
        let mut want = documents(&text).remove(0);
        let name = want["metadata"]["name"].clone();
        let got = crds
            .iter()
            .find(|c| c["metadata"]["name"] == name)
            .unwrap_or_else(|| panic!("{name} not rendered"));
        assert_eq!(
            got["metadata"]["annotations"]["helm.sh/resource-policy"], "keep",
            "{name}"
        );
        assert_eq!(
            got["metadata"]["labels"]["app.kubernetes.io/part-of"],
            "tollgate"
        );
        want["metadata"]["labels"] = got["metadata"]["labels"].clone();
        want["metadata"]["annotations"] = got["metadata"]["annotations"].clone();
        let diff = first_difference(got, &want);
        assert!(
            diff.is_none(),
            "{name} differs from {} at {diff:?}",
            file.display()
        );
    }
}

/// Deserialises `object` as `T` and serialises it back: equal JSON means
/// every field is one the type knows (an unknown or misplaced field would
/// be dropped and show as a difference).
fn round_trip<T: DeserializeOwned + Serialize>(object: &Value) -> Value {
    let typed: T = serde_json::from_value(object.clone())
        .unwrap_or_else(|e| panic!("{} does not parse: {e}", key(object)));
    serde_json::to_value(&typed).expect("serialises")
}

/// Every object of every value set parses into its k8s-openapi (or
/// Gateway API, or Tollgate) type with no unknown field.
#[test]
fn every_rendered_object_is_typed_with_no_unknown_field() {
    let mut kinds = std::collections::BTreeSet::new();
    for case in CASES {
        for mut object in documents(&render(&chart_dir(), &values(case), &[])) {
            let kind = object["kind"].as_str().unwrap_or_default().to_string();
            let back = match kind.as_str() {
                "Deployment" => round_trip::<Deployment>(&object),
                "Service" => round_trip::<Service>(&object),
                "ServiceAccount" => round_trip::<ServiceAccount>(&object),
                "Namespace" => round_trip::<Namespace>(&object),
                "PodDisruptionBudget" => round_trip::<PodDisruptionBudget>(&object),
                "NetworkPolicy" => round_trip::<NetworkPolicy>(&object),
                "ClusterRole" => round_trip::<ClusterRole>(&object),
                "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(&object),
                "Role" => round_trip::<Role>(&object),
                "RoleBinding" => round_trip::<RoleBinding>(&object),
                "CustomResourceDefinition" => round_trip::<CustomResourceDefinition>(&object),
                "GatewayClass" => {
                    round_trip::<tollgate_crds::gateway::gatewayclasses::GatewayClass>(&object)
                }
                "GatewayConfig" => gateway_config(&mut object),
                // The Prometheus Operator's kind has no Rust type here: its
                // shape is checked field by field.
                "ServiceMonitor" => service_monitor(&object),
                "PodMonitor" => pod_monitor(&object),
                other => panic!(
                    "{case}: {} is a kind this test does not know ({other})",
                    key(&object)
                ),
            };
            let diff = first_difference(&back, &object);
            assert!(
                diff.is_none(),
                "{case}: {} has a field its type does not know at {diff:?}",
                key(&object)
            );
            kinds.insert(kind);
        }
    }
    for want in [
        "Deployment",
        "GatewayClass",
        "GatewayConfig",
        "NetworkPolicy",
        "ServiceMonitor",
        "PodMonitor",
    ] {
        assert!(kinds.contains(want), "no {want} rendered by any case");
    }
}

/// The GatewayConfig through Tollgate's type. `spec.kubernetes` (the
/// provisioned data plane's settings) is left out of the comparison only
/// while the generated CRD has no such section yet; once it has, the
/// section is checked like every other field.
fn gateway_config(object: &mut Value) -> Value {
    let crd = std::fs::read_to_string(
        workspace_dir().join("crds/generated/tollgate.dev_gatewayconfigs.yaml"),
    )
    .expect("GatewayConfig CRD");
    let crd = documents(&crd).remove(0);
    let known = crd
        .pointer("/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/kubernetes")
        .is_some();
    if !known && let Some(spec) = object["spec"].as_object_mut() {
        spec.remove("kubernetes");
    }
    round_trip::<tollgate_crds::GatewayConfig>(object)
}

/// The keys of a JSON object, in order (none for anything else).
fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .into_iter()
        .flat_map(|o| o.keys().cloned())
        .collect()
}

/// The ServiceMonitor, with only the fields of `monitoring.coreos.com/v1`
/// it is meant to have.
fn service_monitor(object: &Value) -> Value {
    assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(keys(object), ["apiVersion", "kind", "metadata", "spec"]);
    assert_eq!(keys(&object["spec"]), ["endpoints", "selector"]);
    for endpoint in object["spec"]["endpoints"].as_array().expect("endpoints") {
        assert_eq!(keys(endpoint), ["interval", "path", "port"]);
    }
    object.clone()
}

/// The PodMonitor of the data planes, with only the fields of
/// `monitoring.coreos.com/v1` it is meant to have, selecting what every
/// provisioned data-plane pod carries: its labels and its named admin port.
fn pod_monitor(object: &Value) -> Value {
    assert_eq!(object["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(keys(object), ["apiVersion", "kind", "metadata", "spec"]);
    let spec = &object["spec"];
    assert_eq!(
        keys(spec),
        ["namespaceSelector", "podMetricsEndpoints", "selector"]
    );
    assert_eq!(spec["namespaceSelector"], serde_json::json!({"any": true}));
    assert_eq!(keys(&spec["selector"]), ["matchExpressions", "matchLabels"]);
    let provisioned = tollgate_provision::names::labels("gw", "tollgate");
    for (label, value) in spec["selector"]["matchLabels"]
        .as_object()
        .expect("matchLabels")
    {
        assert_eq!(
            provisioned.get(label).map(String::as_str),
            value.as_str(),
            "{label}"
        );
    }
    for endpoint in spec["podMetricsEndpoints"].as_array().expect("endpoints") {
        assert_eq!(keys(endpoint), ["interval", "path", "port"]);
        assert_eq!(
            endpoint["port"], "admin",
            "the data plane's admin port name"
        );
        assert_eq!(endpoint["path"], "/metrics");
    }
    object.clone()
}

/// Whether `selector` (`matchLabels` and `In` expressions, what the
/// chart writes) selects a pod labelled `labels`.
fn selects(selector: &Value, labels: &BTreeMap<String, String>) -> bool {
    let label = |key: &str| labels.get(key).map(String::as_str);
    let plain = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(key, value)| label(key) == value.as_str());
    let expressions = selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| {
            assert_eq!(e["operator"], "In", "{e}");
            let values = e["values"].as_array().expect("values");
            let key = e["key"].as_str().expect("key");
            values.iter().any(|v| v.as_str() == label(key))
        });
    plain && expressions
}

/// The PodMonitor selects the data planes of this release's GatewayClasses
/// and no others: the chart's class by default, else those listed, long
/// names by the shortened label value the controller writes for them.
#[test]
fn the_pod_monitor_selects_only_its_classes() {
    use tollgate_provision::names::labels;
    let selector = |extra: &[&str]| {
        let mut args = vec!["--set", "podMonitor.enabled=true"];
        args.extend_from_slice(extra);
        let monitor = documents(&render(&chart_dir(), &[], &args))
            .into_iter()
            .find(|o| o["kind"] == "PodMonitor")
            .expect("a PodMonitor");
        monitor["spec"]["selector"].clone()
    };
    let default = selector(&[]);
    assert!(selects(&default, &labels("gw", "tollgate")));
    assert!(!selects(&default, &labels("gw", "other")));
    let renamed = selector(&["--set", "gatewayClass.name=edge"]);
    assert!(selects(&renamed, &labels("gw", "edge")));
    assert!(!selects(&renamed, &labels("gw", "tollgate")));
    let long = "c".repeat(80);
    let listed = format!("podMonitor.gatewayClasses={{internal,{long}}}");
    let listed = selector(&["--set", &listed]);
    for class in ["internal", long.as_str()] {
        assert!(selects(&listed, &labels("gw", class)), "{class}");
    }
    assert!(!selects(&listed, &labels("gw", "tollgate")));
    // A pod that is not a data plane is not selected, whatever its class.
    let mut other = labels("gw", "tollgate");
    other.insert("app.kubernetes.io/name".into(), "something-else".into());
    assert!(!selects(&default, &other));
}

/// A bad value fails `helm template` and `helm lint` with the schema's
/// message naming the value.
#[test]
fn bad_values_fail_with_the_schema_message() {
    let chart = chart_dir().display().to_string();
    let cases = [
        (
            "controller.replicas=two",
            "at '/controller/replicas': got string, want integer",
        ),
        (
            "gatewayClass.kubernetes.service.type=Ingress",
            "at '/gatewayClass/kubernetes/service/type': value must be one of 'LoadBalancer', 'NodePort', 'ClusterIP'",
        ),
        (
            "controller.replica=2",
            "at '/controller': additional properties 'replica' not allowed",
        ),
        (
            "telemetry.samplingRatio=2",
            "at '/telemetry/samplingRatio': maximum: got 2, want 1",
        ),
        (
            "telemetry.otlp.protocol=udp",
            "at '/telemetry/otlp/protocol': value must be one of 'grpc', 'http/protobuf'",
        ),
    ];
    for (set, message) in cases {
        for verb in ["template", "lint"] {
            let mut args = vec![verb];
            if verb == "template" {
                args.push(RELEASE);
            }
            args.extend([chart.as_str(), "--set", set]);
            let (ok, stdout, stderr) = try_helm(&args);
            assert!(!ok, "helm {verb} --set {set} succeeded");
            let out = format!("{stdout}{stderr}");
            assert!(
                out.contains(message),
                "helm {verb} --set {set}: want {message:?} in:\n{out}"
            );
        }
    }
}

/// `deploy/` and the chart's copy of the CRDs are what `make chart` makes.
#[test]
fn deploy_manifests_are_current() {
    let root = workspace_dir();
    let header =
        "# Generated by `make chart` from charts/tollgate (default values); do not edit.\n";
    let crds = format!(
        "{header}{}",
        render(
            &chart_dir(),
            &[],
            &["--show-only", "templates/crds/tollgate.yaml"]
        )
    );
    let main = format!(
        "{header}# Apply deploy/crds.yaml first: the GatewayConfig below needs its CRD.\n\
         ---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}\n{}",
        render(&chart_dir(), &[], &["--set", "crds.install=false"])
    );
    for (file, want) in [("deploy/crds.yaml", crds), ("deploy/tollgate.yaml", main)] {
        let got = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(got == want, "{file} is stale: run `make chart`");
    }
    for (from, to) in [
        ("crds/generated", "charts/tollgate/files/crds/tollgate"),
        (
            "crds/generated/gateway-api",
            "charts/tollgate/files/crds/gateway-api",
        ),
    ] {
        let list = |dir: &str| -> Vec<(String, String)> {
            let mut out: Vec<(String, String)> = std::fs::read_dir(root.join(dir))
                .expect("folder")
                .map(|e| e.expect("entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .map(|p| {
                    let name = p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned();
                    (name, std::fs::read_to_string(&p).expect("read"))
                })
                .collect();
            out.sort();
            out
        };
        assert!(
            list(from) == list(to),
            "{to} differs from {from}: run `make chart`"
        );
    }
}
