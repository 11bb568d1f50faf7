//! The quickstart (`make run`) works: the real controller with its in-process
//! data plane serves `examples/quickstart/` in front of two real echo
//! backends. Ports are moved to free ones so the test runs beside a live
//! `make run` and other tests.

// Test helpers outside #[test] functions may unwrap too.
#![allow(clippy::unwrap_used)]

use http::{Method, StatusCode};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use tollgate_e2e::{Echo, HttpClient, Proc, free_port, log_dir, wait_http_ok, workspace_dir};

/// The listener port written in `examples/quickstart/gateway.yaml`.
const MANIFEST_PORT: u16 = 8080;

/// A copy of the quickstart manifests whose EndpointSlices point at `v1` and `v2`.
fn manifests_for(v1: &Echo, v2: &Echo) -> PathBuf {
    let src = workspace_dir().join("examples/quickstart");
    let dst = log_dir().join(format!("quickstart-{}", std::process::id()));
    std::fs::create_dir_all(&dst).unwrap();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let text = text
            .replace("3001", &v1.port().to_string())
            .replace("3002", &v2.port().to_string());
        std::fs::write(dst.join(path.file_name().unwrap()), text).unwrap();
    }
    dst
}

/// A free port above the manifest's, so it is reachable with an offset.
fn free_port_above_manifest() -> u16 {
    loop {
        let port = free_port().unwrap();
        if port > MANIFEST_PORT {
            return port;
        }
    }
}

struct Quickstart {
    _controller: Proc,
    gateway: String,
    controller_admin: String,
}

async fn start(v1: &Echo, v2: &Echo) -> Quickstart {
    let dir = manifests_for(v1, v2);
    let gateway_port = free_port_above_manifest();
    let offset = (gateway_port - MANIFEST_PORT).to_string();
    let admin = format!("127.0.0.1:{}", free_port().unwrap());
    let dataplane_admin = format!("127.0.0.1:{}", free_port().unwrap());
    let snapshots = format!("127.0.0.1:{}", free_port().unwrap());
    let args = [
        "--manifests",
        dir.to_str().unwrap(),
        "--with-dataplane",
        "--listener-port-offset",
        &offset,
        "--admin-address",
        &admin,
        "--dataplane-admin-address",
        &dataplane_admin,
        "--snapshot-address",
        &snapshots,
    ];
    let mut controller = Proc::spawn("tollgate-controller", args, [("RUST_LOG", "info")]).unwrap();
    let ready = format!("http://{dataplane_admin}/readyz");
    if let Err(err) = wait_http_ok(&ready, Duration::from_secs(30)).await {
        controller.check_running().unwrap();
        panic!("{err}");
    }
    Quickstart {
        _controller: controller,
        gateway: format!("http://127.0.0.1:{gateway_port}"),
        controller_admin: format!("http://{admin}"),
    }
}

/// `/` splits 90/10, `X-Version: v2` always reaches v2, `/old` redirects
/// with 301 to `/new`, and the controller reports status on its admin port.
#[tokio::test]
async fn quickstart_routes_as_documented() {
    let v1 = Echo::start("echo-v1").await.unwrap();
    let v2 = Echo::start("echo-v2").await.unwrap();
    let qs = start(&v1, &v2).await;
    let client = HttpClient::http1();

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..200 {
        let reply = client.get(&format!("{}/", qs.gateway)).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
        *seen.entry(reply.echo().unwrap().service).or_default() += 1;
    }
    // 0.9^200 makes "no v2 at all" a one-in-a-billion event.
    assert!(seen.get("echo-v2").is_some_and(|n| *n > 0), "{seen:?}");
    assert!(seen["echo-v1"] > seen["echo-v2"], "{seen:?}");

    for _ in 0..5 {
        let reply = client
            .request(
                Method::GET,
                &format!("{}/", qs.gateway),
                &[("X-Version", "v2")],
            )
            .await
            .unwrap();
        assert_eq!(reply.echo().unwrap().service, "echo-v2");
    }

    let reply = client.get(&format!("{}/old", qs.gateway)).await.unwrap();
    assert_eq!(reply.status, StatusCode::MOVED_PERMANENTLY);
    let location = reply.header("location").unwrap();
    assert!(location.ends_with("/new"), "{location}");

    // `/limited`: 3 per minute per client, then 429 with Retry-After and
    // the RateLimit headers on every answer.
    let limited = format!("{}/limited", qs.gateway);
    for left in [2, 1, 0] {
        let reply = client.get(&limited).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK);
        let state = reply.header("ratelimit").unwrap();
        assert!(state.contains(&format!("r={left}")), "{state}");
    }
    let refused = client.get(&limited).await.unwrap();
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.header("retry-after").is_some());
    assert_eq!(
        refused.header("ratelimit-policy"),
        Some("\"per-client\";q=3;w=60")
    );

    let status = client
        .get(&format!("{}/status", qs.controller_admin))
        .await
        .unwrap();
    assert_eq!(status.status, StatusCode::OK);
    assert!(status.text().contains("quickstart"), "{}", status.text());
}
