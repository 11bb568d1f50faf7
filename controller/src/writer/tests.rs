//! What the writer records in its metrics: each object's write counted
//! once by its result (`written`, `conflict` after every retry was
//! refused, `error`), and the leader gauge following the leadership.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod proxy;

use super::StatusWriter;
use super::round::Term;
use crate::metrics::Metrics;
use kube::{Client, Config};
use proxy::{Proxy, Refuse};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tollgate_compile::ObjectStatus;
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::prometheus::parse;
use tollgate_telemetry::MetricsPipeline;

const GW: &str = "gateway.networking.k8s.io/v1";
const US: &str = "tollgate.dev/gateway-controller";
const TIME: &str = "2025-01-01T00:00:00Z";

/// A server with the Gateway API CRDs, class `tollgate`, Gateways
/// `gw` and `failing`, and HTTPRoutes `stuck` and `busy` on `gw`.
async fn cluster() -> ApiServer {
    let server = ApiServer::start().await.unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/generated/gateway-api");
    for entry in std::fs::read_dir(root).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        server.create(serde_yaml::from_str(&text).unwrap()).unwrap();
    }
    let class = json!({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "tollgate"},
                       "spec": {"controllerName": US}});
    server.create(class).unwrap();
    for name in ["gw", "failing"] {
        server
            .create(json!({"apiVersion": GW, "kind": "Gateway",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"gatewayClassName": "tollgate",
                         "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}))
            .unwrap();
    }
    for name in ["stuck", "busy"] {
        server
            .create(json!({"apiVersion": GW, "kind": "HTTPRoute",
                "metadata": {"name": name, "namespace": "default"},
                "spec": {"parentRefs": [{"name": "gw"}], "rules": [{}]}}))
            .unwrap();
    }
    server
}

fn accepted() -> Value {
    json!({"type": "Accepted", "status": "True", "reason": "Accepted", "message": "accepted",
           "observedGeneration": 1, "lastTransitionTime": TIME})
}

fn desired(kind: &str, ns: Option<&str>, name: &str, status: Value) -> ObjectStatus {
    ObjectStatus {
        kind: kind.into(),
        namespace: ns.map(Into::into),
        name: name.into(),
        status: status.into(),
    }
}

/// Statuses for every object of [`cluster`], all without problems (no
/// Events).
fn statuses() -> Vec<ObjectStatus> {
    let whole = json!({"conditions": [accepted()]});
    let parents = json!({"parents": [{"parentRef": {"name": "gw"}, "controllerName": US,
                                      "conditions": [accepted()]}]});
    vec![
        desired("GatewayClass", None, "tollgate", whole.clone()),
        desired("Gateway", Some("default"), "gw", whole.clone()),
        desired("Gateway", Some("default"), "failing", whole),
        desired("HTTPRoute", Some("default"), "stuck", parents.clone()),
        desired("HTTPRoute", Some("default"), "busy", parents),
    ]
}

/// A client of `addr`, without credentials.
fn client(addr: std::net::SocketAddr) -> Client {
    let config = Config::new(format!("http://{addr}").parse().unwrap());
    Client::try_from(config).unwrap()
}

/// `tollgate_controller_status_writes_total` as `"<kind> <result>"` → count.
fn writes(pipeline: &MetricsPipeline) -> BTreeMap<String, f64> {
    let scrape = parse(&pipeline.encode()).unwrap();
    let series = scrape.series("tollgate_controller_status_writes_total");
    let label = |s: &tollgate_e2e::prometheus::Sample, k: &str| s.labels[k].clone();
    series
        .iter()
        .map(|s| {
            (
                format!("{} {}", label(s, "kind"), label(s, "result")),
                s.value,
            )
        })
        .collect()
}

fn counts<const N: usize>(pairs: [(&str, f64); N]) -> BTreeMap<String, f64> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// One round against a server that refuses some writes: a write that
/// succeeds counts `written` (also after conflicts it retried past), one
/// refused with 409 on every attempt counts `conflict` once, any other
/// failure `error`. The next round retries only the failed ones, and a
/// confirmed status is not counted again.
#[tokio::test]
async fn status_writes_are_counted_by_result() {
    let server = cluster().await;
    let rules = BTreeMap::from([
        ("failing", Refuse::Always(500)),
        ("stuck", Refuse::Always(409)),
        ("busy", Refuse::FirstConflicts(2)),
    ]);
    let proxy = Proxy::start(server.addr(), rules).await;
    let pipeline = MetricsPipeline::prometheus_only();
    let writer =
        StatusWriter::new(client(proxy.addr), US.into()).with_metrics(Metrics::new(&pipeline));
    let mut term = Term::default();

    assert!(
        !writer.round(&mut term, &statuses(), None).await,
        "failures retry"
    );
    let first = counts([
        ("Gateway error", 1.0),
        ("Gateway written", 1.0),
        ("GatewayClass written", 1.0),
        ("HTTPRoute conflict", 1.0),
        ("HTTPRoute written", 1.0),
    ]);
    assert_eq!(writes(&pipeline), first, "after one round");
    assert_eq!(
        proxy.attempts("stuck"),
        5,
        "a conflict is every attempt refused"
    );
    assert_eq!(proxy.attempts("busy"), 3, "two conflicts, then written");
    assert_eq!(
        proxy.attempts("failing"),
        1,
        "an error is not retried at once"
    );
    let busy = server
        .get(GW, "HTTPRoute", Some("default"), "busy")
        .unwrap();
    assert_eq!(busy["status"]["parents"][0]["controllerName"], US);

    assert!(!writer.round(&mut term, &statuses(), None).await);
    let second = counts([
        ("Gateway error", 2.0),
        ("Gateway written", 1.0),
        ("GatewayClass written", 1.0),
        ("HTTPRoute conflict", 2.0),
        ("HTTPRoute written", 1.0),
    ]);
    assert_eq!(writes(&pipeline), second, "after a second round");
}

/// The leader gauge is 0 until the writer leads, 1 while it does, and 0
/// again once leadership is lost.
#[tokio::test]
async fn leader_gauge_follows_leadership() {
    let server = ApiServer::start().await.unwrap();
    let pipeline = MetricsPipeline::prometheus_only();
    let writer =
        StatusWriter::new(client(server.addr()), US.into()).with_metrics(Metrics::new(&pipeline));
    // No compile yet: a leader writes nothing, so no CRDs are needed.
    let (_statuses, statuses_rx) = watch::channel(None);
    let (leader, leader_rx) = watch::channel(false);
    let running = tokio::spawn(writer.run(statuses_rx, leader_rx));
    let gauge = || {
        let scrape = parse(&pipeline.encode()).unwrap();
        scrape.value("tollgate_controller_leader", &[])
    };
    let until = |want: f64, what: &'static str| async move {
        for _ in 0..200 {
            if gauge() == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the leader gauge never read {want} {what}: {:?}", gauge());
    };

    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(gauge(), Some(0.0), "before leading");
    leader.send_replace(true);
    until(1.0, "while leading").await;
    leader.send_replace(false);
    until(0.0, "after losing the Lease").await;
    leader.send_replace(true);
    until(1.0, "when leading again").await;
    drop(leader);
    running.await.unwrap();
    assert_eq!(gauge(), Some(0.0), "after the writer stopped");
}
