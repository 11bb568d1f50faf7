//! The controller and the data plane as separate processes: snapshots flow
//! over the controller's HTTP/2 stream; the data plane keeps serving when
//! the controller goes away; SIGTERM ends each process promptly; two
//! Gateways share a port on different loopback addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use rustix::process::{Pid, Signal, kill_process};
use std::time::{Duration, Instant};
use tollgate_e2e::{Echo, HttpClient, Proc, free_port, wait_http_ok};

const ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: echo-a, port: 80}]
";

/// Sends SIGTERM and returns how long the process took to exit.
fn terminate(proc: &mut Proc) -> Duration {
    let pid = Pid::from_raw(proc.pid() as i32).unwrap();
    kill_process(pid, Signal::TERM).unwrap();
    let start = Instant::now();
    while proc.check_running().is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

/// A data plane following the controller's stream serves the Gateway, and
/// keeps serving its last snapshot after the controller is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_data_plane_follows_the_controller() {
    let echo = Echo::start("echo-a").await.unwrap();
    let dir = manifest_dir("separate");
    write(
        &dir,
        "all.yaml",
        &(base("gw", "127.0.0.1", &[&echo]) + ROUTE),
    );
    let mut ctl = start_controller(&dir, false).await;
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let mut dp = Proc::spawn(
        "tollgate-dataplane",
        [
            "--controller",
            &ctl.snapshots,
            "--gateway",
            "default/gw",
            "--admin-address",
            &admin,
        ],
        [("RUST_LOG", "info")],
    )
    .unwrap();
    if let Err(e) = wait_http_ok(&format!("http://{admin}/readyz"), Duration::from_secs(20)).await {
        panic!("data plane not ready: {e}\n{}", dp.tail(30));
    }
    let client = HttpClient::http1();
    let reply = client.get(&format!("{}/hello", ctl.gateway)).await.unwrap();
    assert_eq!(reply.echo().unwrap().service, "echo-a");

    // A route change reaches the separate data plane through the stream.
    write(
        &dir,
        "extra.yaml",
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: extra, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /teapot}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /kettle}, statusCode: 307}}]
",
    );
    wait_status(
        &format!("{}/teapot", ctl.gateway),
        307,
        Duration::from_secs(5),
    )
    .await;

    let took = terminate(&mut ctl.proc);
    assert!(
        took < Duration::from_secs(5),
        "controller took {took:?} to exit"
    );
    for _ in 0..20 {
        let reply = client.get(&format!("{}/hello", ctl.gateway)).await.unwrap();
        assert_eq!(
            reply.status, 200,
            "the data plane stopped serving without its controller"
        );
    }
    let status = client.get(&format!("http://{admin}/status")).await.unwrap();
    assert!(status.text().contains("default/gw"), "{}", status.text());

    let took = terminate(&mut dp);
    assert!(
        took < Duration::from_secs(5),
        "data plane took {took:?} to exit"
    );
}

/// Two Gateways bind the same port on 127.0.0.1 and 127.0.0.2; each serves
/// its own routes, and the bound addresses show in Gateway status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_share_a_port_on_different_addresses() {
    let a = Echo::start("echo-a").await.unwrap();
    let b = Echo::start("echo-b").await.unwrap();
    let dir = manifest_dir("two-gateways");
    let second = base("gw2", "127.0.0.2", &[&b]);
    // Only the Gateway and the Service of the second base: one GatewayClass.
    let second = second.split_once("---\n").map_or("", |(_, rest)| rest);
    write(&dir, "one.yaml", &(base("gw", "127.0.0.1", &[&a]) + ROUTE));
    write(
        &dir,
        "two.yaml",
        &format!(
            "{second}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: r2, namespace: default}}
spec:
  parentRefs: [{{name: gw2}}]
  rules:
  - backendRefs: [{{name: echo-b, port: 80}}]
"
        ),
    );
    let ctl = start_controller(&dir, true).await;
    let client = HttpClient::http1();
    let one = client
        .get(&format!("http://127.0.0.1:{}/", ctl.port))
        .await
        .unwrap();
    let two = client
        .get(&format!("http://127.0.0.2:{}/", ctl.port))
        .await
        .unwrap();
    assert_eq!(one.echo().unwrap().service, "echo-a");
    assert_eq!(two.echo().unwrap().service, "echo-b");
    let status = object_status(&ctl.admin, "Gateway", "gw2").await;
    assert_eq!(
        status["status"]["addresses"][0]["value"], "127.0.0.2",
        "{status:#}"
    );
    // The in-process data plane reports its snapshot applied.
    wait_condition(&ctl.admin, "Gateway", "gw2", "Programmed", "True").await;
}
