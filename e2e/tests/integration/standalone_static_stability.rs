//! Static stability: a data plane restarted while its controller is down
//! serves the last snapshot it kept on disk (`--state-dir`), is ready, and
//! says so on `/status`; when the controller comes back on the same
//! snapshot port the data plane reconnects by itself and follows changes
//! again.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::telemetry_support::{scrape, scrape_until};

use common::*;
use rustix::process::Signal;
use std::time::{Duration, Instant};
use tollgate_e2e::controller::{ControllerPorts, start_controller_at};
use tollgate_e2e::dataplane::{DataplaneArgs, DataplaneProc, signal};
use tollgate_e2e::{Echo, HttpClient, free_port, log_dir};

const ROUTE: &str = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - backendRefs: [{name: echo-a, port: 80}]
";

/// A route added once the controller is back.
const TEAPOT: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: teapot, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /teapot}}]
    filters: [{type: RequestRedirect, requestRedirect: {path: {type: ReplaceFullPath, replaceFullPath: /kettle}, statusCode: 307}}]
";

/// The data plane's link to the controller: open (1) or not (0).
const CONNECTED: &str = "tollgate_dataplane_controller_connected";
/// Streams from the controller that failed, by `error_type`.
const DISCONNECTS: &str = "tollgate_dataplane_controller_disconnects_total";

/// Polls `check` on the data plane's `/status` until it holds.
async fn wait_dp_status(
    dp: &DataplaneProc,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) {
    dp.wait_status(what, Duration::from_secs(20), check)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_data_plane_serves_from_disk_while_the_controller_is_down() {
    let echo = Echo::start("echo-a").await.unwrap();
    let dir = manifest_dir("static-stability");
    write(
        &dir,
        "all.yaml",
        &(base("gw", "127.0.0.1", &[&echo]) + ROUTE),
    );
    let port = free_port().unwrap();
    let ports = ControllerPorts::free(port - MANIFEST_PORT).unwrap();
    let state = log_dir().join(format!("state-static-stability-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    let mut ctl = start_controller_at(&dir, &ports).await.unwrap();
    let args = DataplaneArgs {
        controller: ports.snapshot_url(),
        gateway: "default/gw".into(),
        port_offset: 0,
        state_dir: Some(state.clone()),
        drain_delay_seconds: 0,
        env: Vec::new(),
    };
    let mut dp = DataplaneProc::start(&args, Duration::from_secs(20))
        .await
        .unwrap();
    let gateway = format!("http://127.0.0.1:{port}");
    let client = HttpClient::http1();
    let reply = client.get(&format!("{gateway}/hello")).await.unwrap();
    assert_eq!(reply.echo().unwrap().service, "echo-a");
    let live = dp.status().await.unwrap();
    assert_eq!(live["fromStateFile"], false, "{live:#}");
    let version = live["version"].clone();
    // The snapshot is kept on disk just after it is applied, so it may
    // be serving a moment before the file is there.
    let kept = Instant::now();
    while !state.join("snapshot.json").is_file() && kept.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        state.join("snapshot.json").is_file(),
        "nothing kept on disk"
    );

    // The controller dies without a goodbye, then the data plane restarts.
    signal(&ctl, Signal::KILL).unwrap();
    ctl.stop();
    dp.terminate().unwrap();
    dp.wait_exit(Duration::from_secs(10)).await.unwrap();
    drop(dp);
    let started = Instant::now();
    let dp = DataplaneProc::start(&args, Duration::from_secs(20))
        .await
        .unwrap();
    println!(
        "restarted data plane ready from disk in {:?}",
        started.elapsed()
    );
    assert!(
        std::net::TcpStream::connect(ports.snapshots).is_err(),
        "the controller is still reachable"
    );
    let restored = dp.status().await.unwrap();
    assert_eq!(restored["fromStateFile"], true, "{restored:#}");
    assert_eq!(restored["ready"], true, "{restored:#}");
    assert_eq!(restored["version"], version, "{restored:#}");
    for _ in 0..10 {
        let reply = client.get(&format!("{gateway}/hello")).await.unwrap();
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(reply.echo().unwrap().service, "echo-a");
    }
    let ready = client.get(&dp.url("/readyz")).await.unwrap();
    assert_eq!(ready.status, 200, "{}", ready.text());
    // The lost controller shows: on /status, and as the gauge and the
    // counter of failed streams an alert would read.
    let down = dp
        .wait_status(
            "counted a failed connection",
            Duration::from_secs(10),
            |s| s["controller"]["disconnects"]["connect"].as_u64() > Some(0),
        )
        .await
        .unwrap();
    assert_eq!(down["controller"]["connected"], false, "{down:#}");
    assert!(down["controller"]["lastError"].is_string(), "{down:#}");
    let admin = dp.url("");
    let gw = [("tollgate_gateway", "default/gw")];
    let metrics = scrape(&admin).await;
    assert_eq!(metrics.value(CONNECTED, &gw), Some(0.0));
    let failed = [
        ("tollgate_gateway", "default/gw"),
        ("error_type", "connect"),
    ];
    assert!(
        metrics.value(DISCONNECTS, &failed) >= Some(1.0),
        "{:?}",
        metrics.series(DISCONNECTS)
    );

    // The controller comes back on the same snapshot port: the data plane
    // finds it again on its own and takes its snapshot.
    let _ctl = start_controller_at(&dir, &ports).await.unwrap();
    wait_dp_status(&dp, "reconnected", |s| {
        s["fromStateFile"] == false && s["version"].as_u64() > version.as_u64()
    })
    .await;
    scrape_until(&admin, "the stream open again", |m| {
        m.value(CONNECTED, &gw) == Some(1.0)
    })
    .await;
    write(&dir, "teapot.yaml", TEAPOT);
    wait_status(&format!("{gateway}/teapot"), 307, Duration::from_secs(10)).await;
    let reply = client.get(&format!("{gateway}/hello")).await.unwrap();
    assert_eq!(reply.echo().unwrap().service, "echo-a");
}
