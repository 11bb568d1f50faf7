//! AuthPolicy from a folder of manifests (no Kubernetes): the file provider
//! reads the policy and its Secret, a rule-level policy protects only its
//! rule, and editing the Secret rotates the key without a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use http::Method;
use std::time::Duration;
use tollgate_e2e::{Echo, HttpClient};

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: api, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - name: admin
    matches: [{path: {type: PathPrefix, value: /admin}}]
    backendRefs: [{name: echo-a, port: 80}]
  - name: public
    backendRefs: [{name: echo-a, port: 80}]
---
apiVersion: tollgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: admins, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: api, sectionName: admin}]
  apiKeyAuth:
    credentialRefs: [{name: admin-keys}]
";

fn keys(key: &str) -> String {
    format!(
        "apiVersion: v1
kind: Secret
metadata: {{name: admin-keys, namespace: default}}
stringData: {{ops: {key}}}
"
    )
}

/// Only the `admin` rule asks for a key; a new key in the Secret file
/// replaces the old one while the controller runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rule_policy_from_manifests_and_key_rotation() {
    let echo = Echo::start("echo-a").await.unwrap();
    let dir = manifest_dir("auth-policy");
    write(&dir, "base.yaml", &base("gw", "127.0.0.1", &[&echo]));
    write(&dir, "keys.yaml", &keys("first-key"));
    write(&dir, "route.yaml", ROUTE);
    let ctl = start_controller(&dir, true).await;
    let admin = format!("{}/admin/users", ctl.gateway);
    wait_status(&admin, 401, Duration::from_secs(10)).await;
    wait_status(
        &format!("{}/public", ctl.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;

    let client = HttpClient::http1();
    let status = |key: &'static str| {
        let (client, admin) = (client.clone(), admin.clone());
        async move {
            let reply = client
                .request(Method::GET, &admin, &[("x-api-key", key)])
                .await
                .unwrap();
            reply.status.as_u16()
        }
    };
    assert_eq!(status("first-key").await, 200);

    write(&dir, "keys.yaml", &keys("second-key"));
    let start = std::time::Instant::now();
    while status("second-key").await != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the new key never worked"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status("first-key").await, 401);
}
