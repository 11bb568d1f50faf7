//! AuthPolicy in a cluster: `kubectl apply --server-side` of the documented
//! policy against the in-memory API server, the controller writes its
//! ancestor status (read back with `kubectl get`, whose table shows
//! whether it is in effect), the admin `/status` names the route's
//! effective policies, and the in-process data plane enforces it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use http::Method;
use std::time::{Duration, Instant};
use tollgate_e2e::{Echo, HttpClient};

const POLICY_ACCEPTED: &str = "{.status.ancestors[0].conditions[?(@.type==\"Accepted\")].status}";
const POLICY_REASON: &str = "{.status.ancestors[0].conditions[?(@.type==\"Accepted\")].reason}";
const ROUTE_AUTH: &str =
    "{.status.parents[0].conditions[?(@.type==\"tollgate.dev/AuthPolicies\")].message}";

/// The documented AuthPolicy (docs/policies.md), with the Secret it names.
const POLICY: &str = include_str!("../../../examples/auth/api-policy.yaml");

/// A policy on a route that does not exist.
const ORPHAN: &str = r#"apiVersion: tollgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: orphan, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: nowhere}]
  authorization: {defaultAction: Deny}
"#;

/// Server-side apply of the policy; its status says Accepted for the
/// route's Gateway, `kubectl get authpolicies` shows it, the route's own
/// status and the admin `/status` name it, and a policy whose target is
/// missing says TargetNotFound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn applied_auth_policy_reports_accepted_status() {
    let echo = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &http_route("api", "/", "echo-a")).await;
    apply(&server, POLICY).await;
    apply(&server, ORPHAN).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;

    wait_jsonpath(&server, &["authpolicy", "api"], POLICY_ACCEPTED, "True").await;
    wait_jsonpath(&server, &["authpolicy", "api"], POLICY_REASON, "Accepted").await;
    wait_jsonpath(
        &server,
        &["authpolicy", "orphan"],
        POLICY_REASON,
        "TargetNotFound",
    )
    .await;
    let ancestor = kubectl(
        &server,
        &[
            "get",
            "authpolicy",
            "api",
            "-o",
            "jsonpath={.status.ancestors[0].ancestorRef.kind}/{.status.ancestors[0].ancestorRef.name} {.status.ancestors[0].controllerName}",
        ],
    )
    .await;
    assert_eq!(
        ancestor.trim(),
        "Gateway/gw tollgate.dev/gateway-controller"
    );
    // The plain-http JWKS is accepted with a warning.
    let warning = kubectl(
        &server,
        &[
            "get",
            "authpolicy",
            "api",
            "-o",
            "jsonpath={.status.ancestors[0].conditions[?(@.type==\"Warning\")].reason}",
        ],
    )
    .await;
    assert_eq!(warning.trim(), "PlainHttp");

    // The printer columns: NAME, ACCEPTED, AGE.
    let table = kubectl(&server, &["get", "authpolicies"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("NAME") && lines[0].contains("ACCEPTED") && lines[0].contains("AGE"),
        "{table}"
    );
    let api = lines.iter().find(|l| l.starts_with("api ")).expect(&table);
    assert!(api.contains("True"), "{table}");
    let orphan = lines
        .iter()
        .find(|l| l.starts_with("orphan "))
        .expect(&table);
    assert!(orphan.contains("False"), "{table}");

    wait_jsonpath(
        &server,
        &["httproute", "api"],
        ROUTE_AUTH,
        "rule 0: authpolicy/default/api",
    )
    .await;
    // Served as written: no credential is refused; consumer `ci` is
    // allowed by the second authorization rule.
    let url = format!("{}/", ctl.gateway);
    wait_status(&url, 401, Duration::from_secs(10)).await;
    let client = HttpClient::http1();
    let ci = client
        .request(Method::GET, &url, &[("x-api-key", "ci-secret-key")])
        .await
        .unwrap();
    assert_eq!(ci.status.as_u16(), 200, "{}", ci.text());

    let start = Instant::now();
    loop {
        let status = tollgate_e2e::get(&format!("{}/status", ctl.admin))
            .await
            .unwrap()
            .text();
        if status.contains("authpolicy/default/api") && status.contains("\"AuthPolicy\"") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "{status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// API keys for every route of Gateway `gw`.
const KEYS_POLICY: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: api-keys, namespace: default}
stringData: {ci: ci-secret-key}
---
apiVersion: tollgate.dev/v1alpha1
kind: AuthPolicy
metadata: {name: keys, namespace: default}
spec:
  targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]
  apiKeyAuth:
    credentialRefs: [{name: api-keys}]
"#;

/// The compile side and the data plane agree: a Gateway-wide API-key
/// policy applied with kubectl protects the route served in process; the
/// key the Secret holds reaches the backend with the key removed, no key
/// or a wrong one gets 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_key_policy_is_enforced() {
    let echo = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &http_route("api", "/", "echo-a")).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    let url = format!("{}/hello", ctl.gateway);
    wait_status(&url, 200, Duration::from_secs(10)).await;

    apply(&server, KEYS_POLICY).await;
    wait_status(&url, 401, Duration::from_secs(10)).await;
    let client = HttpClient::http1();
    let with_key = |key: &'static str| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .request(Method::GET, &url, &[("x-api-key", key)])
                .await
                .unwrap()
        }
    };
    let ok = with_key("ci-secret-key").await;
    assert_eq!(ok.status.as_u16(), 200, "{}", ok.text());
    let seen = ok.echo().unwrap();
    assert!(
        !seen
            .headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("x-api-key")),
        "the key is removed before the backend: {:?}",
        seen.headers
    );
    assert_eq!(with_key("wrong").await.status.as_u16(), 401);
    wait_jsonpath(&server, &["authpolicy", "keys"], POLICY_ACCEPTED, "True").await;
}
