//! GRPCRoute in a cluster: the controller watches GRPCRoutes, writes their
//! `status.parents`, lists GRPCRoute among the listener's supported kinds,
//! counts it in `attachedRoutes`, and the data plane serves it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::k8s::*;
use crate::grpc_support::*;

const ACCEPTED: &str = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}";
const RESOLVED: &str = "{.status.parents[0].conditions[?(@.type==\"ResolvedRefs\")].reason}";
const KINDS: &str = "{.status.listeners[0].supportedKinds[*].kind}";
const ATTACHED: &str = "{.status.listeners[0].attachedRoutes}";

/// A served GRPCRoute is Accepted with its references resolved; one whose
/// Service is missing is Accepted with ResolvedRefs BackendNotFound; both
/// count on the listener, which supports HTTPRoute and GRPCRoute; calls
/// reach the backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpcroute_status_is_written_and_served() {
    let b = backends(&["echo"]).await;
    let server = cluster().await;
    let served = "  - backendRefs: [{name: svc-echo, port: 9000}]\n";
    let broken = "  - backendRefs: [{name: missing, port: 9000}]\n";
    let yaml = [
        gateway(),
        grpc_service("svc-echo", &[b[0].port()]),
        grpc_route("served", &["k.example.com"], served),
        grpc_route("broken", &["x.example.com"], broken),
    ]
    .concat();
    apply(&server, &yaml).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_jsonpath(&server, &["grpcroute", "served"], ACCEPTED, "True").await;
    wait_jsonpath(&server, &["grpcroute", "served"], RESOLVED, "ResolvedRefs").await;
    wait_jsonpath(&server, &["grpcroute", "broken"], ACCEPTED, "True").await;
    wait_jsonpath(
        &server,
        &["grpcroute", "broken"],
        RESOLVED,
        "BackendNotFound",
    )
    .await;
    wait_jsonpath(&server, &["gateway", "gw"], KINDS, "HTTPRoute GRPCRoute").await;
    wait_jsonpath(&server, &["gateway", "gw"], ATTACHED, "2").await;
    wait_routed(&ctl, "k.example.com", "tollgate.echo.v1.Echo").await;
    let mut c = client(&ctl, "k.example.com").await;
    assert_eq!(c.say("in a cluster").await.unwrap().backend, "echo");
}
