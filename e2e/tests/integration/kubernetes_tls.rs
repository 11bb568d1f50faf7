//! HTTPS in Kubernetes mode: a `kubernetes.io/tls` Secret (base64 `data`,
//! as `kubectl create secret tls` makes it) applied to the API server is
//! served, and replacing it reaches new handshakes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::tls::{Ca, ClientOptions, Leaf, client_config, connect, get};
use common::*;
use std::time::{Duration, Instant};
use tollgate_e2e::Echo;

fn base64(bytes: &str) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new("base64")
        .arg("-w0")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(bytes.as_bytes())
        .unwrap();
    String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap()
}

fn tls_secret(leaf: &Leaf) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: web-tls, namespace: default}}\ntype: kubernetes.io/tls\ndata:\n  tls.crt: {}\n  tls.key: {}\n",
        base64(&leaf.cert_pem),
        base64(&leaf.key_pem)
    )
}

/// The Gateway's HTTPS listener serves the Secret's certificate and turns
/// Programmed; a new Secret is served to new handshakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_from_a_kubernetes_tls_secret() {
    let ca = Ca::new();
    let first = ca.leaf(&["secure.example.com"]);
    let second = ca.leaf(&["secure.example.com"]);
    let echo = Echo::start("echo-k8s-tls").await.unwrap();
    let server = cluster().await;
    let gateway = format!(
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
  - name: https
    port: {PORT}
    protocol: HTTPS
    hostname: secure.example.com
    tls: {{certificateRefs: [{{name: web-tls}}]}}
{}",
        service(echo.service(), &[echo.port()])
    );
    apply(&server, &gateway).await;
    apply(&server, &tls_secret(&first)).await;
    apply(&server, &http_route("web", "/", echo.service())).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_jsonpath(
        &server,
        &["gateway", "gw"],
        "{.status.listeners[0].conditions[?(@.type==\"Programmed\")].status}",
        "True",
    )
    .await;
    let config = client_config(&ca, &ClientOptions::default());
    let served = |want: Leaf| {
        let (config, port) = (config.clone(), ctl.port);
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(shaken) = connect(port, "secure.example.com", config.clone()).await
                    && shaken.leaf() == want.der
                {
                    return get(shaken, "secure.example.com", "/").await.0;
                }
                assert!(Instant::now() < deadline, "certificate never served");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(served(first).await, 200);
    apply(&server, &tls_secret(&second)).await;
    assert_eq!(served(second).await, 200);
}
