//! Golden cases: `testdata/<case>.in.yaml` (a Gateway, the class's and
//! optionally the Gateway's own `kubernetes` settings) → `<case>.out.yaml`
//! (every generated object). `UPDATE_GOLDEN=1` rewrites the outputs;
//! review them in the diff.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use gateway_api::experimental::gateways::Gateway;
use k8s_openapi::api::apps::v1::Deployment;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use tollgate_crds::KubernetesConfig;
use tollgate_provision::{Desired, Env, desired, merge_configs, names};

/// One case's input.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Case {
    gateway: Gateway,
    #[serde(default)]
    class_config: Option<KubernetesConfig>,
    #[serde(default)]
    gateway_config: Option<KubernetesConfig>,
}

fn env() -> Env {
    Env {
        image: "ghcr.io/tollgate-dev/tollgate-dataplane:0.1.0".into(),
        controller_url: "https://tollgate-controller.tollgate-system.svc:9903".into(),
        otel: vec![
            ("OTEL_TRACES_SAMPLER_ARG".into(), "0.1".into()),
            (
                "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
                "https://collector:4317".into(),
            ),
            // The controller's path; data planes get the Secret's copy.
            (
                "OTEL_EXPORTER_OTLP_CERTIFICATE".into(),
                "/etc/otel/ca.pem".into(),
            ),
            // A token: read from the client Secret, never written here.
            (
                "OTEL_EXPORTER_OTLP_HEADERS".into(),
                "x-api-key=SECRET".into(),
            ),
        ],
        drain_timeout_seconds: 5,
    }
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn render(case: &Case) -> String {
    let config = merge_configs(case.class_config.as_ref(), case.gateway_config.as_ref()).unwrap();
    let objects = desired(&case.gateway, &config, &env()).unwrap();
    objects
        .iter()
        .map(|o| serde_yaml::to_string(o).unwrap())
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn golden_cases() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut cases: Vec<PathBuf> = std::fs::read_dir(testdata())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".in.yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 6, "golden cases are missing");
    let mut failed = Vec::new();
    for input in cases {
        let text = std::fs::read_to_string(&input).unwrap();
        let case: Case =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        // Settings the types do not know would be dropped silently: a
        // misspelt field must fail the case instead.
        let raw: serde_json::Value = serde_yaml::from_str(&text).unwrap();
        for (key, parsed) in [
            ("classConfig", &case.class_config),
            ("gatewayConfig", &case.gateway_config),
        ] {
            if let Some(parsed) = parsed {
                assert_eq!(
                    serde_json::to_value(parsed).unwrap(),
                    raw[key],
                    "{}: {key} has fields the types drop",
                    input.display()
                );
            }
        }
        let got = render(&case);
        let output = PathBuf::from(input.to_string_lossy().replace(".in.yaml", ".out.yaml"));
        if update {
            std::fs::write(&output, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&output).unwrap_or_default();
        if want != got {
            failed.push(format!(
                "{} differs (UPDATE_GOLDEN=1 to regenerate):\n{got}",
                output.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn gateway(yaml: &str) -> Gateway {
    serde_yaml::from_str(yaml).unwrap()
}

const GATEWAY: &str = "
metadata: {name: gw, namespace: apps, uid: 1234}
spec:
  gatewayClassName: tollgate
  listeners:
  - {name: http, port: 80, protocol: HTTP}
";

/// Every object is owned by the Gateway (controller, blocking deletion)
/// and carries the four contract labels.
#[test]
fn every_object_is_owned_and_labelled() {
    let objects = desired(&gateway(GATEWAY), &KubernetesConfig::default(), &env()).unwrap();
    let kinds: Vec<&str> = objects.iter().map(Desired::kind).collect();
    assert_eq!(
        kinds,
        [
            "Deployment",
            "Service",
            "ServiceAccount",
            "PodDisruptionBudget"
        ]
    );
    for object in objects {
        let value = serde_json::to_value(&object).unwrap();
        let meta = &value["metadata"];
        assert_eq!(meta["name"], "gw-tollgate");
        assert_eq!(meta["namespace"], "apps");
        let owner = &meta["ownerReferences"][0];
        assert_eq!(owner["kind"], "Gateway");
        assert_eq!(owner["uid"], "1234");
        assert_eq!(owner["controller"], true);
        assert_eq!(owner["blockOwnerDeletion"], true);
        for (k, v) in names::labels("gw", "tollgate") {
            assert_eq!(meta["labels"][&k], v.as_str(), "{k} on {}", value["kind"]);
        }
    }
}

/// A Gateway never stored has no uid to own objects by.
#[test]
fn a_gateway_without_uid_is_refused() {
    let mut gw = gateway(GATEWAY);
    gw.metadata.uid = None;
    assert!(desired(&gw, &KubernetesConfig::default(), &env()).is_err());
}

/// A patch that makes the Deployment invalid is an error, not a panic.
#[test]
fn a_breaking_patch_is_an_error() {
    let config: KubernetesConfig =
        serde_yaml::from_str("patches: {deployment: {spec: {replicas: not-a-number}}}").unwrap();
    let err = desired(&gateway(GATEWAY), &config, &env()).unwrap_err();
    assert!(err.to_string().contains("patches.deployment"), "{err}");
}

/// With an autoscaler, the Deployment leaves `replicas` to it.
#[test]
fn autoscaling_leaves_replicas_unset() {
    let config: KubernetesConfig =
        serde_yaml::from_str("autoscaling: {enabled: true}\ndeployment: {replicas: 5}").unwrap();
    let objects = desired(&gateway(GATEWAY), &config, &env()).unwrap();
    let Desired::Deployment(d) = &objects[0] else {
        panic!("first is the Deployment")
    };
    let d: &Deployment = d;
    assert_eq!(d.spec.as_ref().unwrap().replicas, None);
    assert_eq!(objects.last().unwrap().kind(), "HorizontalPodAutoscaler");
}
