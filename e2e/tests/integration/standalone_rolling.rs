//! Rolling data planes under load, and snapshot fan-out.
//!
//! One controller, three data-plane processes of one Gateway (each its own
//! port through `--listener-port-offset`, as each pod has its own IP)
//! behind [`Balancer`], which picks only backends whose `/readyz` said 200
//! at its last poll (every 100 ms). A steady load of new-connection-per-
//! request clients, with no retry of any kind, runs while the three are
//! replaced one at a time: SIGTERM the old one (it turns unready at once
//! and keeps accepting for `--drain-delay-seconds 1`, then drains), start
//! its replacement, wait until it is ready, next. Not one request may fail.
//!
//! Then the fan-out: N manifest edits, each timed from the file write to
//! the moment all three data planes (asked directly) serve it; p50 and p99
//! are printed (`--nocapture`). Timing belongs to benchmarks, so only a
//! generous sanity bound is asserted.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tollgate_e2e::balancer::Balancer;
use tollgate_e2e::controller::{ControllerPorts, start_controller_at};
use tollgate_e2e::dataplane::{DataplaneArgs, DataplaneProc};
use tollgate_e2e::load::Load;
use tollgate_e2e::{Echo, HttpClient, free_port};

/// Data planes of the Gateway.
const REPLICAS: usize = 3;
/// Concurrent clients of the steady load.
const CLIENTS: usize = 4;
/// Manifest edits timed for the fan-out.
const EDITS: usize = 20;
/// Sanity bound on one edit's fan-out (not a performance target).
const FAN_OUT_LIMIT: Duration = Duration::from_secs(10);

/// The route, tagging every answer with `x-edit: {edit}`.
fn route(edit: usize) -> String {
    tagged_route("echo-a", edit)
}

/// A data plane and the loopback port it serves the Gateway's listener on.
struct Replica {
    dp: DataplaneProc,
    traffic: SocketAddr,
}

/// Starts a data plane on a fresh port (the snapshot says
/// [`MANIFEST_PORT`]; the offset moves it) and waits until it is ready.
async fn replica(controller: &str) -> Replica {
    let port = free_port().unwrap();
    let args = DataplaneArgs {
        controller: controller.to_string(),
        gateway: "default/gw".into(),
        port_offset: port - MANIFEST_PORT,
        state_dir: None,
        drain_delay_seconds: 1,
        env: Vec::new(),
    };
    let dp = DataplaneProc::start(&args, Duration::from_secs(20))
        .await
        .unwrap();
    Replica {
        dp,
        traffic: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// Waits until the balancer's last poll saw `traffic` ready.
async fn wait_balanced(balancer: &Balancer, traffic: SocketAddr) {
    let start = Instant::now();
    while !balancer.is_ready(traffic) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the balancer never saw {traffic} ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Polls `url` until its answer carries `x-edit: {edit}`.
async fn wait_edit(client: &HttpClient, url: &str, edit: usize) {
    let want = edit.to_string();
    let start = Instant::now();
    loop {
        if let Ok(reply) = client.get(url).await
            && reply.header("x-edit") == Some(want.as_str())
        {
            return;
        }
        assert!(
            start.elapsed() < FAN_OUT_LIMIT,
            "{url} never served edit {edit}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The `q`-quantile (nearest rank) of sorted durations.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_three_data_planes_under_load_fails_no_request() {
    let echo = Echo::start("echo-a").await.unwrap();
    let dir = manifest_dir("rolling");
    write(
        &dir,
        "all.yaml",
        &(base("gw", "127.0.0.1", &[&echo]) + &route(0)),
    );
    let ports = ControllerPorts::free(0).unwrap();
    let _ctl = start_controller_at(&dir, &ports).await.unwrap();
    let url = ports.snapshot_url();
    let balancer = Balancer::start().await.unwrap();
    let mut replicas = Vec::new();
    for _ in 0..REPLICAS {
        let r = replica(&url).await;
        balancer.add(r.traffic, r.dp.admin());
        wait_balanced(&balancer, r.traffic).await;
        replicas.push(r);
    }

    let client = HttpClient::http1();
    let load = Load::start(balancer.addr(), "127.0.0.1", "/hello", 200, CLIENTS);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(load.ok() > 0, "no request got through before the roll");
    for (i, slot) in replicas.iter_mut().enumerate() {
        let before = load.ok();
        let old = slot;
        old.dp.terminate().unwrap();
        // Unready at once, yet still serving while balancers notice.
        let unready = wait_status(&old.dp.url("/readyz"), 503, Duration::from_millis(500)).await;
        let direct = client.get(&format!("http://{}/hello", old.traffic)).await;
        assert_eq!(
            direct.unwrap().status,
            200,
            "stopped serving before the drain delay"
        );
        let new = replica(&url).await;
        balancer.add(new.traffic, new.dp.admin());
        wait_balanced(&balancer, new.traffic).await;
        let took = old.dp.wait_exit(Duration::from_secs(15)).await.unwrap();
        let picked = balancer.remove(old.traffic);
        println!(
            "replica {i}: unready {unready:?} after SIGTERM; old one served {picked} connections, exited {took:?} after its replacement was ready"
        );
        *old = new;
        // The load kept flowing through the other two meanwhile.
        assert!(load.ok() > before, "no request served during roll {i}");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let report = load.stop().await;
    println!(
        "rolling {REPLICAS} data planes under {CLIENTS} clients (new connection per request, no retries): {} requests served, {} failed",
        report.ok, report.failed
    );
    assert_eq!(
        report.failed, 0,
        "requests failed during the roll: {:?}",
        report.failures
    );
    assert!(
        report.ok >= 100,
        "too little load to mean anything: {report:?}"
    );
    assert_eq!(balancer.dropped(), 0, "the balancer found no ready backend");
    for (traffic, picked) in balancer.picks() {
        assert!(picked > 0, "replacement {traffic} got no traffic");
    }

    // Fan-out: each edit timed from the write to all three serving it.
    let urls: Vec<String> = replicas
        .iter()
        .map(|r| format!("http://{}/hello", r.traffic))
        .collect();
    for url in &urls {
        wait_edit(&client, url, 0).await;
    }
    let mut took = Vec::new();
    for edit in 1..=EDITS {
        let start = Instant::now();
        write(
            &dir,
            "all.yaml",
            &(base("gw", "127.0.0.1", &[&echo]) + &route(edit)),
        );
        let waits = urls.iter().map(|url| wait_edit(&client, url, edit));
        futures_util::future::join_all(waits).await;
        took.push(start.elapsed());
    }
    took.sort();
    println!(
        "fan-out of {EDITS} edits to {REPLICAS} data planes (file write to all serving): p50 {:?}, p99 {:?}, max {:?}",
        quantile(&took, 0.5),
        quantile(&took, 0.99),
        took[took.len() - 1]
    );
    for r in &mut replicas {
        r.dp.proc().check_running().unwrap();
    }
}
