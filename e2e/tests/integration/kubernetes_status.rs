//! Status in a cluster across the controller's life: a restart with
//! nothing changed writes nothing, deleting a Gateway and its class cleans
//! up after itself, and an object the controller cannot decode is told so
//! without holding anything else back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::{ApiServer, RequestRecord};
use tollgate_e2e::{Echo, HttpClient};

const ACCEPTED: &str = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}";
const RESOLVED: &str = "{.status.parents[0].conditions[?(@.type==\"ResolvedRefs\")].reason}";
const PROGRAMMED: &str = "{.status.conditions[?(@.type==\"Programmed\")].status}";

/// Every write the controller makes: statuses, finalizers, Events, and
/// anything else but its Lease.
fn controller_writes(server: &ApiServer) -> Vec<RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.is_write() && r.user_agent.starts_with("tollgate-controller"))
        .filter(|r| !r.path.contains("/leases"))
        .collect()
}

/// A cluster serving `/one` from an echo backend, and a route whose backend
/// does not exist (a problem, reported with an Event).
async fn converged_cluster() -> (Echo, ApiServer, Controller) {
    let echo = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &http_route("good", "/one", "echo-a")).await;
    apply(&server, &http_route("broken", "/two", "missing")).await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_status(
        &format!("{}/one", ctl.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;
    wait_jsonpath(&server, &["gateway", "gw"], PROGRAMMED, "True").await;
    wait_jsonpath(&server, &["httproute", "good"], ACCEPTED, "True").await;
    wait_jsonpath(
        &server,
        &["httproute", "broken"],
        RESOLVED,
        "BackendNotFound",
    )
    .await;
    (echo, server, ctl)
}

/// Waits until `controller_writes` stops growing for a second.
async fn settle(server: &ApiServer) -> usize {
    let mut seen = controller_writes(server).len();
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = controller_writes(server).len();
        if now == seen {
            return now;
        }
        seen = now;
    }
}

/// A controller restarted with nothing changed in the cluster makes no
/// status write at all (no route loses its entry, no transition time is
/// reset, Programmed does not flip) and emits no Event again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_with_nothing_changed_writes_nothing() {
    let (_echo, server, mut ctl) = converged_cluster().await;
    // The data plane's client certificate is issued once; a restart finds
    // it valid and leaves it alone.
    client_secret(&server, "default", "gw").await;
    let before_restart = settle(&server).await;
    let events = |s: &ApiServer| {
        controller_writes(s)
            .iter()
            .filter(|r| r.path.contains("/events"))
            .count()
    };
    assert!(
        events(&server) > 0,
        "the broken route was reported with an Event"
    );
    let snapshot = |s: &ApiServer| {
        s.get(
            "gateway.networking.k8s.io/v1",
            "HTTPRoute",
            Some("default"),
            "good",
        )
        .unwrap()["status"]
            .clone()
    };
    let good_status = snapshot(&server);
    ctl.proc.stop();

    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_status(
        &format!("{}/one", ctl.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;
    // Long enough for the new leader to read every object once.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = controller_writes(&server);
    assert_eq!(
        after.len(),
        before_restart,
        "writes after a restart: {:?}",
        &after[before_restart..]
    );
    assert_eq!(snapshot(&server), good_status, "transition times kept");
    assert!(
        ctl.proc.log().contains("first statuses complete"),
        "{}",
        ctl.proc.tail(30)
    );
}

/// Deleting the Gateway takes its entries off the routes within seconds,
/// and deleting the class then finishes (its finalizer is released) without
/// any other object having to change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_gateway_and_class_cleans_up() {
    let (_echo, server, _ctl) = converged_cluster().await;
    let parents = "{.status.parents[*].controllerName}";
    wait_jsonpath(
        &server,
        &["httproute", "good"],
        parents,
        "tollgate.dev/gateway-controller",
    )
    .await;
    let finalizers = "{.metadata.finalizers}";
    wait_jsonpath(
        &server,
        &["gatewayclass", "tollgate"],
        finalizers,
        "[\"gateway-exists-finalizer.gateway.networking.k8s.io\"]",
    )
    .await;

    kubectl(&server, &["delete", "gateway", "gw", "--wait=false"]).await;
    wait_jsonpath(&server, &["httproute", "good"], parents, "").await;
    wait_jsonpath(&server, &["httproute", "broken"], parents, "").await;

    kubectl(
        &server,
        &["delete", "gatewayclass", "tollgate", "--wait=false"],
    )
    .await;
    let start = Instant::now();
    while server
        .get(
            "gateway.networking.k8s.io/v1",
            "GatewayClass",
            None,
            "tollgate",
        )
        .is_ok()
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the class is still there: its finalizer was not released"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Installs an HTTPRoute CRD that knows a filter type from a newer Gateway
/// API release than Tollgate's types, as a cluster upgraded ahead of
/// Tollgate would have.
fn install_newer_httproute_crd(server: &ApiServer) {
    server
        .extend_crd_enums(
            "httproutes.gateway.networking.k8s.io",
            "RequestHeaderModifier",
            "FutureFilter",
        )
        .unwrap();
}

/// An HTTPRoute using a filter type newer than Tollgate's types, present
/// when the controller starts: the controller still becomes ready, serves
/// the other routes, and tells the route why it is not accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_route_next_to_good_ones() {
    let echo = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    install_newer_httproute_crd(&server);
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &http_route("good", "/one", "echo-a")).await;
    let future = http_route("future", "/two", "echo-a").replace(
        "    backendRefs:",
        "    filters: [{type: FutureFilter}]\n    backendRefs:",
    );
    apply(&server, &future).await;

    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_status(
        &format!("{}/one", ctl.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;
    let response = HttpClient::http1()
        .get(&format!("{}/two", ctl.gateway))
        .await
        .unwrap();
    assert_eq!(response.status, 404, "the undecodable route is not served");
    wait_jsonpath(&server, &["httproute", "future"], ACCEPTED, "False").await;
    let reason = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].reason}";
    wait_jsonpath(
        &server,
        &["httproute", "future"],
        reason,
        "UnsupportedValue",
    )
    .await;
    let message = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].message}";
    let text = kubectl(
        &server,
        &[
            "get",
            "httproute",
            "future",
            "-o",
            &format!("jsonpath={message}"),
        ],
    )
    .await;
    assert!(text.contains("spec.rules[0].filters[0].type"), "{text}");
    wait_jsonpath(&server, &["httproute", "good"], ACCEPTED, "True").await;
    let logged = ctl.proc.log().matches("cannot decode this object").count();
    assert_eq!(logged, 1, "logged once: {}", ctl.proc.tail(30));
    let metrics = HttpClient::http1()
        .get(&format!("{}/metrics", ctl.admin))
        .await
        .unwrap();
    let gauge = "tollgate_controller_undecodable_objects{kind=\"HTTPRoute\",otel_scope_name=\"tollgate-controller\"} 1";
    assert!(metrics.text().contains(gauge), "{}", metrics.text());
}
