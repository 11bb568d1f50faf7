//! ListenerSets through the in-memory API server: the Kubernetes provider
//! watches ListenerSets, fetches the Secret a ListenerSet's listener names
//! in the team's namespace, and the status writer applies the ListenerSet's
//! status, read back with the real kubectl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::standalone_listenerset::manifests;

use common::k8s::*;
use common::tls::{Ca, ClientOptions, client_config, connect, get};
use std::time::{Duration, Instant};
use tollgate_e2e::Echo;
use tollgate_e2e::echo::EchoResponse;

/// Team A's ListenerSet in its own namespace adds an HTTPS listener with
/// its own certificate to the shared Gateway in `infra`: the client gets
/// the team's certificate for `app.example.com` and reaches the team's
/// backend; the ListenerSet's status is written (Accepted, Programmed, one
/// route on its listener), the Gateway counts one attached ListenerSet, and
/// the ListenerSet from a namespace the Gateway does not select is written
/// `NotAllowed`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listener_set_from_another_namespace_in_kubernetes() {
    let ca = Ca::new();
    let platform_leaf = ca.leaf(&["*.example.com"]);
    let team_leaf = ca.leaf(&["app.example.com"]);
    let platform = Echo::start("echo-k8s-platform").await.unwrap();
    let team = Echo::start("echo-k8s-team").await.unwrap();
    let server = cluster().await;
    let text = manifests(PORT, &platform, &team, &platform_leaf, &team_leaf);
    apply(&server, &text).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    let set = ["listenerset", "team-a", "-n", "team-a"];
    let programmed = "{.status.conditions[?(@.type==\"Programmed\")].status}";
    wait_jsonpath(&server, &set, programmed, "True").await;
    let accepted = "{.status.conditions[?(@.type==\"Accepted\")].reason}";
    wait_jsonpath(&server, &set, accepted, "Accepted").await;
    wait_jsonpath(&server, &set, "{.status.listeners[0].name}", "app").await;
    wait_jsonpath(&server, &set, "{.status.listeners[0].attachedRoutes}", "1").await;
    let gateway = ["gateway", "shared", "-n", "infra"];
    wait_jsonpath(&server, &gateway, "{.status.attachedListenerSets}", "1").await;
    wait_jsonpath(&server, &gateway, "{.status.listeners[*].name}", "https").await;
    let outsider = ["listenerset", "team-b", "-n", "team-b"];
    wait_jsonpath(&server, &outsider, accepted, "NotAllowed").await;

    let config = client_config(&ca, &ClientOptions::default());
    let deadline = Instant::now() + Duration::from_secs(10);
    let shaken = loop {
        if let Ok(shaken) = connect(ctl.port, "app.example.com", config.clone()).await
            && shaken.leaf() == team_leaf.der
        {
            break shaken;
        }
        assert!(
            Instant::now() < deadline,
            "app.example.com never got the team's certificate"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (status, body) = get(shaken, "app.example.com", "/cart").await;
    assert_eq!(status, 200, "{body}");
    let echoed: EchoResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(echoed.service, team.service());
    let shaken = connect(ctl.port, "www.example.com", config).await.unwrap();
    assert_eq!(shaken.leaf(), platform_leaf.der);
}
