//! Several controller replicas and a separate data plane against one
//! Kubernetes API server: exactly one replica writes status, another takes
//! over when it stops, and a data plane keeps serving without any
//! controller.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::{Echo, HttpClient, Proc, free_port, wait_http_ok};

fn route(name: &str, path: &str) -> String {
    http_route(name, path, "echo-a")
}

const HOLDER: &str = "{.spec.holderIdentity}";
const ACCEPTED: &str = "{.status.parents[0].conditions[?(@.type==\"Accepted\")].status}";

/// Status writes made by the replica named `identity`.
fn writes_by(server: &ApiServer, identity: &str) -> usize {
    status_writes(server)
        .iter()
        .filter(|r| r.user_agent.contains(&format!("({identity})")))
        .count()
}

/// An echo backend and a cluster with Gateway `gw` routing `/one` to it.
async fn one_route_cluster() -> (Echo, ApiServer) {
    let echo = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &route("r1", "/one")).await;
    (echo, server)
}

/// Two replicas compile and serve; only the Lease holder writes status;
/// when it stops, the other takes the Lease and keeps status current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_among_replicas_and_takeover() {
    let (_echo, server) = one_route_cluster().await;
    let mut first = start_kube_controller(&server, "replica-a", true, PORT).await;
    wait_jsonpath(
        &server,
        &["lease", "tollgate-controller"],
        HOLDER,
        "replica-a",
    )
    .await;
    let second = start_kube_controller(&server, "replica-b", true, PORT).await;
    wait_status(
        &format!("{}/one", second.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;

    apply(&server, &route("r2", "/two")).await;
    wait_jsonpath(&server, &["httproute", "r2"], ACCEPTED, "True").await;
    // Both replicas serve the new route (hot standby) ...
    for ctl in [&first, &second] {
        wait_status(&format!("{}/two", ctl.gateway), 200, Duration::from_secs(5)).await;
    }
    // ... but only the leader wrote status.
    assert!(writes_by(&server, "replica-a") > 0);
    assert_eq!(
        writes_by(&server, "replica-b"),
        0,
        "the standby wrote status"
    );

    let stopped = Instant::now();
    first.proc.stop();
    wait_jsonpath(
        &server,
        &["lease", "tollgate-controller"],
        HOLDER,
        "replica-b",
    )
    .await;
    assert!(
        stopped.elapsed() < Duration::from_secs(3 + 2),
        "takeover took {:?} with a 3 s lease",
        stopped.elapsed()
    );
    apply(&server, &route("r3", "/three")).await;
    wait_jsonpath(&server, &["httproute", "r3"], ACCEPTED, "True").await;
    assert!(
        writes_by(&server, "replica-b") > 0,
        "the new leader never wrote"
    );
    let client = HttpClient::http1();
    let r = client
        .get(&format!("{}/three", second.gateway))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
}

/// A data plane in its own process follows the controller over mutual TLS
/// with the client certificate the controller issued it, reports what it
/// applied (the Gateway turns Programmed only then), and keeps serving its
/// last snapshot after the controller is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_plane_outlives_its_controller() {
    let (_echo, server) = one_route_cluster().await;
    let mut ctl = start_kube_controller(&server, "replica-a", false, PORT).await;
    let programmed = "{.status.conditions[?(@.type==\"Programmed\")].reason}";
    wait_jsonpath(&server, &["gateway", "gw"], programmed, "Pending").await;

    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let tls_dir = client_certificate_dir(&server, "default", "gw").await;
    let tls_dir = tls_dir.display().to_string();
    let args = [
        "--controller",
        &ctl.snapshots,
        "--tls-dir",
        &tls_dir,
        "--gateway",
        "default/gw",
        "--admin-address",
        &admin,
    ];
    let _dataplane = Proc::spawn("tollgate-dataplane", args, [("POD_NAME", "dp-0")]).unwrap();
    wait_http_ok(&format!("http://{admin}/readyz"), Duration::from_secs(20))
        .await
        .unwrap();
    wait_jsonpath(&server, &["gateway", "gw"], programmed, "Programmed").await;

    ctl.proc.stop();
    let client = HttpClient::http1();
    for _ in 0..50 {
        let r = client.get(&format!("{}/one", ctl.gateway)).await.unwrap();
        assert_eq!(
            r.status, 200,
            "the data plane stopped serving without its controller"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
