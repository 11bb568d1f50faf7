//! ListenerSets in standalone mode: an application team adds its own HTTPS
//! listener and certificate to a shared Gateway from its own namespace.
//!
//! The promise of GEP-1713 is that the team needs no write access to the
//! Gateway: the platform team allows ListenerSets once, and the team's
//! ListenerSet, Secret and route (all in the team's namespace) make the
//! Gateway serve the team's hostname with the team's certificate, while
//! the Gateway's own listener keeps serving every other hostname with the
//! platform's. Checked from the outside: the certificate a rustls client
//! is given, where requests land, and the statuses the controller reports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::tls::{Ca, ClientOptions, Leaf, client_config, connect, get, secret};
use common::*;
use std::time::Duration;
use tollgate_e2e::Echo;
use tollgate_e2e::echo::EchoResponse;

/// `text` (manifests written for namespace `default`) moved to `ns`.
fn in_namespace(text: &str, ns: &str) -> String {
    text.replace("namespace: default", &format!("namespace: {ns}"))
}

/// The platform's Gateway `infra/shared` (HTTPS for `*.example.com`,
/// ListenerSets allowed from namespaces labelled `gateway-access: shared`)
/// with its route, and team A's namespace, ListenerSet, Secret and route
/// for `app.example.com`. A ListenerSet from unlabelled `team-b` is not
/// allowed.
/// Both HTTPS listeners are on manifest port `port`.
pub(crate) fn manifests(
    port: u16,
    platform: &Echo,
    team: &Echo,
    platform_leaf: &Leaf,
    team_leaf: &Leaf,
) -> String {
    let platform_side = format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tollgate}}
spec: {{controllerName: tollgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: shared, namespace: default}}
spec:
  gatewayClassName: tollgate
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  allowedListeners:
    namespaces:
      from: Selector
      selector: {{matchLabels: {{gateway-access: shared}}}}
  listeners:
  - name: https
    port: {port}
    protocol: HTTPS
    hostname: \"*.example.com\"
    tls: {{certificateRefs: [{{name: platform-cert}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: platform, namespace: default}}
spec:
  parentRefs: [{{name: shared}}]
  rules: [{{backendRefs: [{{name: {svc}, port: 80}}]}}]
{service}{secret}",
        svc = platform.service(),
        service = service(platform.service(), &[platform.port()]),
        secret = secret("platform-cert", platform_leaf),
    );
    let team_side = format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: team-a, namespace: default}}
spec:
  parentRef: {{name: shared, namespace: infra}}
  listeners:
  - name: app
    port: {port}
    protocol: HTTPS
    hostname: app.example.com
    tls: {{certificateRefs: [{{name: app-cert}}]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: app, namespace: default}}
spec:
  parentRefs: [{{kind: ListenerSet, name: team-a, sectionName: app}}]
  rules: [{{backendRefs: [{{name: {svc}, port: 80}}]}}]
{service}{secret}",
        svc = team.service(),
        service = service(team.service(), &[team.port()]),
        secret = secret("app-cert", team_leaf),
    );
    let outsider = format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {{name: team-b, namespace: team-b}}
spec:
  parentRef: {{name: shared, namespace: infra}}
  listeners: [{{name: b, port: {port}, protocol: HTTPS, hostname: b.example.com, tls: {{certificateRefs: [{{name: b}}]}}}}]
"
    );
    // Namespaces first: an API server refuses objects in a missing one.
    let namespaces = "apiVersion: v1
kind: Namespace
metadata: {name: infra}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-a, labels: {gateway-access: shared}}
---
apiVersion: v1
kind: Namespace
metadata: {name: team-b}
---
";
    namespaces.to_string()
        + &in_namespace(&platform_side, "infra")
        + &in_namespace(&team_side, "team-a")
        + &outsider
}

/// A ListenerSet in another namespace adds an HTTPS listener with its own
/// certificate to the shared Gateway: SNI `app.example.com` gets the team's
/// certificate and the team's backend, any other `*.example.com` the
/// platform's. The ListenerSet is Accepted and Programmed with its route
/// counted; the Gateway reports one attached ListenerSet and lists only its
/// own listener; the ListenerSet from a namespace the Gateway does not
/// select is `NotAllowed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_listener_serves_its_own_certificate() {
    let ca = Ca::new();
    let platform_leaf = ca.leaf(&["*.example.com"]);
    let team_leaf = ca.leaf(&["app.example.com"]);
    let platform = Echo::start("echo-platform").await.unwrap();
    let team = Echo::start("echo-team-a").await.unwrap();
    let dir = manifest_dir("listenerset");
    let text = manifests(443, &platform, &team, &platform_leaf, &team_leaf);
    write(&dir, "all.yaml", &text);
    let ctl = start_controller(&dir, true).await;
    let https_port = ctl.port - MANIFEST_PORT + 443;
    let config = client_config(&ca, &ClientOptions::default());

    let set = wait_condition(&ctl.admin, "ListenerSet", "team-a", "Programmed", "True").await;
    assert_eq!(set["namespace"], "team-a");
    assert_eq!(
        condition(&set["status"]["conditions"], "Accepted")["status"],
        "True"
    );
    let listeners = set["status"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1, "{set:#}");
    assert_eq!(listeners[0]["name"], "app");
    assert_eq!(listeners[0]["attachedRoutes"], 1);
    assert_eq!(
        condition(&listeners[0]["conditions"], "ResolvedRefs")["status"],
        "True"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let shaken = loop {
        if let Ok(shaken) = connect(https_port, "app.example.com", config.clone()).await
            && shaken.leaf() == team_leaf.der
        {
            break shaken;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "app.example.com never got the team's certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, body) = get(shaken, "app.example.com", "/orders").await;
    assert_eq!(status, 200, "{body}");
    let echoed: EchoResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed.service, team.service());
    assert_eq!(echoed.path, "/orders");

    // Every other hostname: the platform's listener, certificate and route.
    let shaken = connect(https_port, "www.example.com", config.clone())
        .await
        .unwrap();
    assert_eq!(shaken.leaf(), platform_leaf.der);
    let (status, body) = get(shaken, "www.example.com", "/").await;
    assert_eq!(status, 200, "{body}");
    let echoed: EchoResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed.service, platform.service());

    let gateway = object_status(&ctl.admin, "Gateway", "shared").await;
    assert_eq!(gateway["status"]["attachedListenerSets"], 1, "{gateway:#}");
    let own: Vec<&serde_json::Value> = gateway["status"]["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["name"])
        .collect();
    assert_eq!(own, ["https"]);

    let outsider = object_status(&ctl.admin, "ListenerSet", "team-b").await;
    let accepted = condition(&outsider["status"]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "False", "{outsider:#}");
    assert_eq!(accepted["reason"], "NotAllowed");
    // Its listener is not served: b.example.com falls to the platform's.
    let shaken = connect(https_port, "b.example.com", config).await.unwrap();
    assert_eq!(shaken.leaf(), platform_leaf.der);
}
