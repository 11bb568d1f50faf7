//! BackendTLSPolicy in a cluster: a policy applied with kubectl makes the
//! data plane reach its Service over verified TLS, its status names the
//! Gateway as ancestor, a CA ConfigMap change is followed (traffic fails
//! once the CA no longer matches), and an unusable CA reference is
//! reported and fails closed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use std::time::Duration;
use tollgate_e2e::HttpClient;
use tollgate_e2e::tls::{Ca, TlsEcho};

const POLICY_ACCEPTED: &str = "{.status.ancestors[0].conditions[?(@.type==\"Accepted\")].reason}";
const POLICY_RESOLVED: &str =
    "{.status.ancestors[0].conditions[?(@.type==\"ResolvedRefs\")].reason}";
const POLICY_ANCESTOR: &str = "{.status.ancestors[0].ancestorRef.name}";

/// A Service `name` port 443 (named https) whose endpoint is 127.0.0.1:`port`,
/// and an HTTPRoute sending `/<name>` to it.
fn tls_service(name: &str, port: u16) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec:
  ports: [{{name: https, port: 443, targetPort: 8443}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {name}-0
  namespace: default
  labels: {{kubernetes.io/service-name: {name}}}
addressType: IPv4
ports: [{{name: https, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: /{name}}}}}]
    backendRefs: [{{name: {name}, port: 443}}]
"
    )
}

/// A ConfigMap `name` holding `pem` as `ca.crt`.
fn ca_config_map(name: &str, pem: &str) -> String {
    let indented: String = pem.lines().map(|l| format!("    {l}\n")).collect();
    format!(
        "apiVersion: v1
kind: ConfigMap
metadata: {{name: {name}, namespace: default}}
data:
  ca.crt: |
{indented}"
    )
}

/// A BackendTLSPolicy `name` for Service `service`, trusting ConfigMap `ca`.
fn policy(name: &str, service: &str, ca: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: {name}, namespace: default}}
spec:
  targetRefs: [{{group: \"\", kind: Service, name: {service}}}]
  validation:
    hostname: backend.example.com
    caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: {ca}}}]
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_tls_policy_end_to_end() {
    let ca = Ca::new("backend ca").unwrap();
    let other = Ca::new("another ca").unwrap();
    let leaf = ca.leaf(&["backend.example.com"], &[]).unwrap();
    let backend = TlsEcho::start(&leaf, &["h2", "http/1.1"], None)
        .await
        .unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[])).await;
    apply(&server, &tls_service("secure", backend.addr.port())).await;
    apply(&server, &tls_service("unverified", backend.addr.port())).await;
    apply(&server, &ca_config_map("backend-ca", &ca.pem())).await;
    apply(&server, &policy("secure", "secure", "backend-ca")).await;
    apply(&server, &policy("unverified", "unverified", "no-such-map")).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;

    // Verified TLS, SNI from the policy, HTTP/2 by ALPN.
    let url = format!("{}/secure", ctl.gateway);
    wait_status(&url, 200, Duration::from_secs(15)).await;
    let reply = HttpClient::http1().get(&url).await.unwrap();
    let seen: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(seen["sni"], "backend.example.com", "{seen}");
    assert_eq!(seen["alpn"], "h2", "{seen}");
    wait_jsonpath(
        &server,
        &["backendtlspolicy", "secure"],
        POLICY_ANCESTOR,
        "gw",
    )
    .await;
    wait_jsonpath(
        &server,
        &["backendtlspolicy", "secure"],
        POLICY_ACCEPTED,
        "Accepted",
    )
    .await;
    wait_jsonpath(
        &server,
        &["backendtlspolicy", "secure"],
        POLICY_RESOLVED,
        "ResolvedRefs",
    )
    .await;

    // A CA reference that does not resolve: reported, and requests fail
    // with a 5xx rather than reach the backend unverified.
    wait_jsonpath(
        &server,
        &["backendtlspolicy", "unverified"],
        POLICY_ACCEPTED,
        "NoValidCACertificate",
    )
    .await;
    wait_jsonpath(
        &server,
        &["backendtlspolicy", "unverified"],
        POLICY_RESOLVED,
        "InvalidCACertificateRef",
    )
    .await;
    let failed = HttpClient::http1()
        .get(&format!("{}/unverified", ctl.gateway))
        .await
        .unwrap();
    assert_eq!(failed.status.as_u16(), 502, "{:?}", failed.body);

    // The CA ConfigMap changes to a CA that did not sign the backend:
    // new connections fail verification once the change is compiled.
    apply(&server, &ca_config_map("backend-ca", &other.pem())).await;
    let before = backend.handshakes();
    wait_status(&url, 502, Duration::from_secs(15)).await;
    // Pooled connections made before the change may serve a last request;
    // a new connection is never made with the old trust.
    let after = backend.handshakes();
    assert!(after <= before + 1, "handshakes {before} -> {after}");
}
