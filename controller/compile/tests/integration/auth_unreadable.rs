//! An AuthPolicy the Kubernetes provider could not decode still closes the
//! routes it targets: the route refuses every request (deny all) and the
//! policy's status says it is Invalid and why.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may unwrap

use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tollgate_compile::resources::{Resources, Undecodable};
use tollgate_compile::{CompileOptions, compile};
use tollgate_snapshot::AuthzAction;

const SETUP: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate}
spec: {controllerName: tollgate.dev/gateway-controller}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  gatewayClassName: tollgate
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules: [{backendRefs: [{name: echo, port: 80}]}]
"#;

#[test]
fn an_unreadable_auth_policy_denies_its_routes() {
    let mut resources = Resources::default();
    for doc in serde_yaml::Deserializer::from_str(SETUP) {
        let value = serde_json::Value::deserialize(doc).unwrap();
        resources.insert_document(value).unwrap();
    }
    let raw = json!({
        "apiVersion": "tollgate.dev/v1alpha1",
        "kind": "AuthPolicy",
        "metadata": {"name": "future", "namespace": "default", "generation": 3},
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "api"}],
            "authorization": {"defaultAction": "Maybe"}
        }
    });
    let meta = serde_json::from_value(raw["metadata"].clone()).unwrap();
    let failure = Undecodable::new(
        "AuthPolicy",
        &meta,
        "spec.authorization.defaultAction: unknown variant `Maybe`".into(),
        &raw,
    );
    resources
        .undecodable
        .insert(failure.key(), Arc::new(failure));
    let compiled = compile(&resources, &CompileOptions::default());

    let snapshot = &compiled.snapshots["default/gw"];
    let auth = snapshot.routes[0].auth.expect("the route has auth");
    let config = &snapshot.auth[auth];
    assert_eq!(config.sources, ["authpolicy/default/future"]);
    let authorization = config.authorization.as_ref().unwrap();
    assert_eq!(authorization.default_action, AuthzAction::Deny);
    assert!(authorization.rules.is_empty());

    let status = compiled
        .statuses
        .iter()
        .find(|s| s.kind == "AuthPolicy" && s.name == "future")
        .expect("the policy has a status");
    let accepted = &status.status["ancestors"][0]["conditions"][0];
    assert_eq!(accepted["reason"], "Invalid");
    assert_eq!(accepted["observedGeneration"], 3);
    assert!(
        accepted["message"]
            .as_str()
            .unwrap()
            .contains("unknown variant `Maybe`")
    );
}
