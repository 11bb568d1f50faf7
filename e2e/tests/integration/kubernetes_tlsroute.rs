//! TLSRoute through a cluster: the controller watches TLSRoutes, writes
//! their `status.parents` (Accepted, ResolvedRefs) and the listener's
//! attached route count, and relays by SNI.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::standalone_tlsroute::{passthrough_manifests, relays_to, tls_route, two_backends};

use common::k8s::*;

const ACCEPTED: &str = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}";
const RESOLVED: &str = "{.status.parents[0].conditions[?(@.type==\"ResolvedRefs\")].reason}";
const ATTACHED: &str = "{.status.listeners[0].attachedRoutes}";

/// A served TLSRoute is Accepted with its references resolved; one whose
/// Service is missing is Accepted with ResolvedRefs BackendNotFound; both
/// count on the listener; the served one relays to its backend.
#[tokio::test]
async fn tlsroute_status_is_written() {
    let b = two_backends().await;
    let server = cluster().await;
    let routes = [
        tls_route("a", &["a.example.com"], &[("svc-a", 1)]),
        tls_route("broken", &["x.example.com"], &[("missing", 1)]),
    ]
    .concat();
    apply(&server, &passthrough_manifests(&b, &routes, PORT)).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_jsonpath(&server, &["tlsroute", "a"], ACCEPTED, "True").await;
    wait_jsonpath(&server, &["tlsroute", "a"], RESOLVED, "ResolvedRefs").await;
    wait_jsonpath(&server, &["tlsroute", "broken"], ACCEPTED, "True").await;
    wait_jsonpath(
        &server,
        &["tlsroute", "broken"],
        RESOLVED,
        "BackendNotFound",
    )
    .await;
    wait_jsonpath(&server, &["gateway", "gw"], ATTACHED, "2").await;
    relays_to(ctl.port, &b, "a.example.com").await;
}
