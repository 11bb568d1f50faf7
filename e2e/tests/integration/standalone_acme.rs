//! ACME HTTP-01 next to an HTTP-to-HTTPS redirect, in standalone mode.
//!
//! cert-manager's HTTP-01 solver creates an HTTPRoute with an `Exact` path
//! `/.well-known/acme-challenge/<token>` to its solver Service. Most
//! Gateways also have a catch-all route on port 80 that redirects to HTTPS.
//! The challenge must keep reaching the solver (an `Exact` match beats the
//! catch-all `/` prefix across routes), or certificates never renew; every
//! other request must be redirected, and the redirect must land on a real
//! HTTPS listener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::tls::{Ca, ClientOptions, client_config, connect, get, secret};
use common::*;
use std::time::Duration;
use tollgate_e2e::echo::EchoResponse;
use tollgate_e2e::{Echo, HttpClient};

/// The token cert-manager would put in the path.
const TOKEN: &str = "K7s9vQm2Xw-e4_Rb1TzYpLc0aN5hJ8dFgU3oSiEq6M";

/// An HTTP listener (80) and an HTTPS listener (443) for `example.com`; the
/// solver's route and a redirect-everything route on `http`, and an echo
/// route on `https`.
fn manifests(echo: &Echo, solver: &Echo, leaf: &common::tls::Leaf) -> String {
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
  - {{name: http, port: 80, protocol: HTTP}}
  - name: https
    port: 443
    protocol: HTTPS
    tls: {{certificateRefs: [{{name: web}}]}}
---
# As cert-manager's HTTP-01 solver creates it.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: cm-acme-http-solver-x7k2p
  namespace: default
  labels: {{acme.cert-manager.io/http01-solver: \"true\"}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  hostnames: [example.com]
  rules:
  - matches: [{{path: {{type: Exact, value: /.well-known/acme-challenge/{TOKEN}}}}}]
    backendRefs: [{{name: {solver_svc}, port: 80}}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: to-https, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: http}}]
  rules:
  - filters:
    - type: RequestRedirect
      requestRedirect: {{scheme: https, statusCode: 301}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: default}}
spec:
  parentRefs: [{{name: gw, sectionName: https}}]
  rules: [{{backendRefs: [{{name: {app_svc}, port: 80}}]}}]
{app_service}{solver_service}{secret}",
        solver_svc = solver.service(),
        app_svc = echo.service(),
        app_service = service(echo.service(), &[echo.port()]),
        solver_service = service(solver.service(), &[solver.port()]),
        secret = secret("web", leaf),
    )
}

/// The challenge path reaches the solver unchanged with 200; any other
/// path on port 80 (including other `.well-known` paths, the bare challenge
/// prefix and a path that only starts with the token path) gets a 301 to
/// `https://` with the path and query kept, and following that `Location`
/// against the HTTPS listener, with the test CA trusted, gets 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http01_challenge_survives_https_redirect() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["example.com"]);
    let app = Echo::start("echo-acme-app").await.unwrap();
    let solver = Echo::start("echo-acme-solver").await.unwrap();
    let dir = manifest_dir("acme-http01");
    write(&dir, "all.yaml", &manifests(&app, &solver, &leaf));
    let ctl = start_controller(&dir, true).await;
    let https_port = ctl.port - MANIFEST_PORT + 443;
    let challenge = format!("/.well-known/acme-challenge/{TOKEN}");
    let client = HttpClient::http1();
    let host = [("host", "example.com")];

    // The challenge: served by the solver, path unchanged, not redirected.
    let url = format!("{}{challenge}", ctl.gateway);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let reply = client
            .request(http::Method::GET, &url, &host)
            .await
            .unwrap();
        if reply.status == 200 {
            break reply;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "challenge never served: {} {:?}",
            reply.status,
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let echoed: EchoResponse = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(echoed.path, challenge);
    assert_eq!(echoed.service, solver.service(), "reached the solver");

    // Everything else on port 80: 301 to https, path and query kept.
    let longer = format!("{challenge}/more");
    for path in [
        "/",
        "/shop/cart?item=3",
        "/.well-known/acme-challenge/other-token",
        "/.well-known/acme-challenge/",
        longer.as_str(),
        "/.well-known/security.txt",
    ] {
        let reply = client
            .request(http::Method::GET, &format!("{}{path}", ctl.gateway), &host)
            .await
            .unwrap();
        assert_eq!(reply.status, 301, "{path}");
        let location = reply.headers["location"].to_str().unwrap();
        assert_eq!(location, format!("https://example.com{path}"), "{path}");
    }

    // Follow one redirect against the real HTTPS listener.
    let reply = client
        .request(
            http::Method::GET,
            &format!("{}/shop/cart?item=3", ctl.gateway),
            &host,
        )
        .await
        .unwrap();
    let location = reply.headers["location"].to_str().unwrap();
    let target: http::Uri = location.parse().unwrap();
    assert_eq!(target.scheme_str(), Some("https"));
    let sni = target.host().unwrap();
    let path = target.path_and_query().unwrap().as_str();
    let config = client_config(&ca, &ClientOptions::default());
    let shaken = connect(https_port, sni, config).await.unwrap();
    assert_eq!(shaken.leaf(), leaf.der, "the listener's certificate");
    let (status, body) = get(shaken, sni, path).await;
    assert_eq!(status, 200, "{body}");
    let echoed: EchoResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed.path, "/shop/cart?item=3");
    assert_eq!(echoed.service, app.service());
    assert_eq!(echoed.headers["X-Forwarded-Proto"], ["https"]);
}
