//! The status writer against the in-memory API server: what it writes,
//! what it leaves alone, and that a converged cluster sees no writes; plus
//! data-plane reports over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::sync::watch;
use tollgate_compile::ObjectStatus;
use tollgate_controller::controller::Desired;
use tollgate_controller::publisher::Publisher;
use tollgate_controller::reports::{Reports, apply_programmed};
use tollgate_controller::writer::StatusWriter;
use tollgate_controller::writer::finalizer::FINALIZER;
use tollgate_e2e::apiserver::{ApiServer, RequestRecord};

const GW: &str = "gateway.networking.k8s.io/v1";
const US: &str = "tollgate.dev/gateway-controller";
const THEM: &str = "example.com/other-controller";
const WAIT: Duration = Duration::from_secs(10);

/// A server with the Gateway API CRDs and one class, Gateway and route.
async fn cluster() -> (ApiServer, Client) {
    let server = ApiServer::start().await.unwrap();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crds/generated/gateway-api");
    for entry in std::fs::read_dir(root).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        server.create(serde_yaml::from_str(&text).unwrap()).unwrap();
    }
    server
        .create(
            json!({"apiVersion": GW, "kind": "GatewayClass", "metadata": {"name": "tollgate"},
                       "spec": {"controllerName": US}}),
        )
        .unwrap();
    server.create(gateway("gw")).unwrap();
    server.create(route("route", &["gw"])).unwrap();
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    (server, Client::try_from(config).unwrap())
}

fn gateway(name: &str) -> Value {
    json!({"apiVersion": GW, "kind": "Gateway", "metadata": {"name": name, "namespace": "default"},
           "spec": {"gatewayClassName": "tollgate", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}})
}

fn route(name: &str, gateways: &[&str]) -> Value {
    let parents: Vec<Value> = gateways.iter().map(|g| json!({"name": g})).collect();
    json!({"apiVersion": GW, "kind": "HTTPRoute", "metadata": {"name": name, "namespace": "default"},
           "spec": {"parentRefs": parents, "rules": [{}]}})
}

fn condition(type_: &str, status: &str, reason: &str, message: &str, time: &str) -> Value {
    json!({"type": type_, "status": status, "reason": reason, "message": message,
           "observedGeneration": 1, "lastTransitionTime": time})
}

fn parent(gateway: &str, controller: &str, resolved: (&str, &str, &str), time: &str) -> Value {
    json!({"parentRef": {"name": gateway}, "controllerName": controller, "conditions": [
        condition("Accepted", "True", "Accepted", "route is accepted", time),
        condition("ResolvedRefs", resolved.0, resolved.1, resolved.2, time)]})
}

const RESOLVED: (&str, &str, &str) = ("True", "ResolvedRefs", "all references are resolved");
const MISSING: (&str, &str, &str) = (
    "False",
    "BackendNotFound",
    "Service default/echo does not exist",
);

/// What compile would say about the class, `gw` and `route` at `time`.
fn desired(route_parents: Vec<Value>, time: &str) -> Vec<ObjectStatus> {
    let status = |kind: &str, ns: Option<&str>, name: &str, status: Value| ObjectStatus {
        kind: kind.into(),
        namespace: ns.map(Into::into),
        name: name.into(),
        status: status.into(),
    };
    let mut out = vec![
        status(
            "GatewayClass",
            None,
            "tollgate",
            json!({"conditions": [
            condition("Accepted", "True", "Accepted", "Tollgate handles Gateways of this class", time)]}),
        ),
        status(
            "Gateway",
            Some("default"),
            "gw",
            json!({"conditions": [
            condition("Accepted", "True", "Accepted", "Gateway is accepted", time),
            condition("Programmed", "True", "Programmed", "Gateway is programmed", time)],
            "listeners": [{"name": "http", "attachedRoutes": 1, "conditions": [
                condition("Accepted", "True", "Accepted", "listener is valid", time)]}]}),
        ),
    ];
    if !route_parents.is_empty() {
        out.push(status(
            "HTTPRoute",
            Some("default"),
            "route",
            json!({"parents": route_parents}),
        ));
    }
    out
}

/// The statuses channel as the compile loop drives it: `None` until the
/// first complete compile, then every status.
struct Statuses(watch::Sender<Desired>);

impl Statuses {
    fn send_replace(&self, all: Vec<ObjectStatus>) {
        self.0.send_replace(Some(all.into()));
    }
}

/// Runs a writer; returns the channels that drive it.
fn start_writer(
    client: Client,
    initial: Vec<ObjectStatus>,
    leading: bool,
) -> (Statuses, watch::Sender<bool>) {
    let (statuses, leader) = start_writer_with(client, Some(initial.into()), leading);
    (Statuses(statuses), leader)
}

/// Runs a writer from `initial`, which may be `None` (no compile yet).
fn start_writer_with(
    client: Client,
    initial: Desired,
    leading: bool,
) -> (watch::Sender<Desired>, watch::Sender<bool>) {
    let (statuses, statuses_rx) = watch::channel(initial);
    let (leader, leader_rx) = watch::channel(leading);
    let writer = StatusWriter::new(client, US.into()).with_resync(Duration::from_millis(200));
    tokio::spawn(writer.run(statuses_rx, leader_rx));
    (statuses, leader)
}

/// Polls `check` until it holds or [`WAIT`] passes.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn status_of(server: &ApiServer, kind: &str, ns: Option<&str>, name: &str) -> Value {
    server.get(GW, kind, ns, name).unwrap()["status"].clone()
}

fn parents_of(server: &ApiServer, name: &str) -> Vec<Value> {
    let status = status_of(server, "HTTPRoute", Some("default"), name);
    status["parents"].as_array().cloned().unwrap_or_default()
}

fn status_writes(server: &ApiServer) -> Vec<RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(RequestRecord::is_status_write)
        .collect()
}

fn events(server: &ApiServer) -> Vec<Value> {
    server
        .list("events.k8s.io/v1", "Event", Some("default"))
        .unwrap()
}

/// Statuses are written once with Tollgate's field manager; sending them
/// again (a recompile with new condition times) and re-reading every object
/// (resync) writes nothing more; a real change writes that object only.
#[tokio::test]
async fn statuses_are_written_once_and_not_again_when_unchanged() {
    let (server, client) = cluster().await;
    let (statuses, _leader) = start_writer(
        client,
        desired(
            vec![parent("gw", US, RESOLVED, "2025-01-01T00:00:00Z")],
            "2025-01-01T00:00:00Z",
        ),
        true,
    );
    eventually("the route status", || {
        parents_of(&server, "route").len() == 1
    })
    .await;
    eventually("the gateway status", || {
        status_of(&server, "Gateway", Some("default"), "gw")["conditions"]
            .as_array()
            .is_some_and(|c| c.len() == 2)
    })
    .await;
    let writes = status_writes(&server);
    assert_eq!(writes.len(), 3, "one write per object: {writes:?}");
    assert!(
        writes
            .iter()
            .all(|w| w.field_manager.as_deref() == Some(US))
    );
    assert_eq!(
        status_of(&server, "GatewayClass", None, "tollgate")["conditions"][0]["reason"],
        "Accepted"
    );

    server.clear_requests();
    for i in 0..5 {
        let later = format!("2025-01-01T00:0{i}:30Z");
        statuses.send_replace(desired(vec![parent("gw", US, RESOLVED, &later)], &later));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let reads = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/gw"))
        .count();
    assert!(reads > 0, "resync re-read the Gateway");
    assert_eq!(
        status_writes(&server),
        vec![],
        "nothing changed, nothing written"
    );
    let kept = &parents_of(&server, "route")[0]["conditions"][0]["lastTransitionTime"];
    assert_eq!(
        kept, "2025-01-01T00:00:00Z",
        "unchanged conditions keep their time"
    );

    statuses.send_replace(desired(
        vec![parent("gw", US, MISSING, "2025-01-02T00:00:00Z")],
        "2025-01-02T00:00:00Z",
    ));
    eventually("the new route status", || {
        parents_of(&server, "route")[0]["conditions"][1]["reason"] == "BackendNotFound"
    })
    .await;
    let writes = status_writes(&server);
    assert_eq!(writes.len(), 1, "only the route changed: {writes:?}");
    assert_eq!(writes[0].method, "PUT");
    let route = &parents_of(&server, "route")[0]["conditions"];
    assert_eq!(route[0]["lastTransitionTime"], "2025-01-01T00:00:00Z");
    assert_eq!(route[1]["lastTransitionTime"], "2025-01-02T00:00:00Z");
}

/// A new problem becomes one Warning Event naming the object; the same
/// problem compiled again does not repeat it.
#[tokio::test]
async fn one_event_per_new_problem() {
    let (server, client) = cluster().await;
    let (statuses, _leader) = start_writer(
        client,
        desired(
            vec![parent("gw", US, MISSING, "2025-01-01T00:00:00Z")],
            "2025-01-01T00:00:00Z",
        ),
        true,
    );
    eventually("the event", || !events(&server).is_empty()).await;
    for _ in 0..3 {
        statuses.send_replace(desired(
            vec![parent("gw", US, MISSING, "2025-01-01T00:00:00Z")],
            "2025-01-01T00:00:01Z",
        ));
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let events = events(&server);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["reason"], "BackendNotFound");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["regarding"]["kind"], "HTTPRoute");
    assert_eq!(
        events[0]["note"],
        "HTTPRoute default/route (parent Gateway gw): Service default/echo does not exist"
    );
}

/// Entries of other controllers stay; ours are replaced, and removed when
/// the route leaves our Gateway; a route only other controllers write is
/// never touched.
#[tokio::test]
async fn shared_route_parents_keep_other_controllers_entries() {
    let (server, client) = cluster().await;
    let theirs = parent("their-gw", THEM, RESOLVED, "2024-01-01T00:00:00Z");
    let mut live = server
        .get(GW, "HTTPRoute", Some("default"), "route")
        .unwrap();
    live["status"] = json!({"parents": [theirs.clone(), parent("old-gw", US, RESOLVED, "2024-01-01T00:00:00Z")]});
    server.replace_status(live).unwrap();
    server.create(route("foreign", &["their-gw"])).unwrap();
    let mut foreign = server
        .get(GW, "HTTPRoute", Some("default"), "foreign")
        .unwrap();
    foreign["status"] = json!({"parents": [theirs.clone()]});
    server.replace_status(foreign).unwrap();

    let ours = parent("gw", US, RESOLVED, "2025-01-01T00:00:00Z");
    let (statuses, _leader) = start_writer(
        client,
        desired(vec![ours.clone()], "2025-01-01T00:00:00Z"),
        true,
    );
    eventually("our entry replaced", || {
        parents_of(&server, "route") == vec![theirs.clone(), ours.clone()]
    })
    .await;

    statuses.send_replace(desired(vec![], "2025-01-01T00:00:00Z"));
    eventually("our entry removed", || {
        parents_of(&server, "route") == vec![theirs.clone()]
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let foreign_writes = server
        .requests()
        .iter()
        .filter(|r| r.is_write() && r.path.contains("/foreign"))
        .count();
    assert_eq!(foreign_writes, 0);
    assert_eq!(parents_of(&server, "foreign"), vec![theirs]);
}

/// A new writer (a new leader, a restart) finds our stale entries on routes
/// it has never been told about and removes them.
#[tokio::test]
async fn a_new_term_removes_stale_entries_it_was_never_told_about() {
    let (server, client) = cluster().await;
    let mut live = server
        .get(GW, "HTTPRoute", Some("default"), "route")
        .unwrap();
    live["status"] = json!({"parents": [parent("gw", US, RESOLVED, "2024-01-01T00:00:00Z")]});
    server.replace_status(live).unwrap();
    let (_statuses, _leader) = start_writer(client, desired(vec![], "2025-01-01T00:00:00Z"), true);
    eventually("the stale entry removed", || {
        parents_of(&server, "route").is_empty()
    })
    .await;
}

/// The class finalizer is on while a Gateway of the class exists and off
/// once none does.
#[tokio::test]
async fn class_finalizer_follows_its_gateways() {
    let (server, client) = cluster().await;
    let finalizers = |server: &ApiServer| {
        server.get(GW, "GatewayClass", None, "tollgate").unwrap()["metadata"]["finalizers"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    };
    let (statuses, _leader) = start_writer(client, desired(vec![], "2025-01-01T00:00:00Z"), true);
    eventually("the finalizer added", || {
        finalizers(&server) == vec![json!(FINALIZER)]
    })
    .await;

    server
        .delete(GW, "HTTPRoute", Some("default"), "route")
        .unwrap();
    server.delete(GW, "Gateway", Some("default"), "gw").unwrap();
    let mut without_gateway = desired(vec![], "2025-01-01T00:00:00Z");
    without_gateway.retain(|s| s.kind != "Gateway");
    statuses.send_replace(without_gateway);
    eventually("the finalizer removed", || finalizers(&server).is_empty()).await;
}

/// A leader that starts before the first compile writes nothing, and in
/// particular does not strip Tollgate's entries off routes it finds; once
/// the compile arrives and says the same, still nothing is written.
#[tokio::test]
async fn a_leader_before_the_first_compile_writes_nothing() {
    let (server, client) = cluster().await;
    let ours = parent("gw", US, RESOLVED, "2024-01-01T00:00:00Z");
    let mut live = server
        .get(GW, "HTTPRoute", Some("default"), "route")
        .unwrap();
    live["status"] = json!({"parents": [ours.clone()]});
    server.replace_status(live).unwrap();
    let before = server.requests().len();
    let (statuses, _leader) = start_writer_with(client, None, true);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = |server: &ApiServer| {
        server.requests()[before..]
            .iter()
            .filter(|r| r.is_write())
            .count()
    };
    assert_eq!(writes(&server), 0, "wrote before any compile");
    assert_eq!(parents_of(&server, "route"), vec![ours.clone()]);

    // The compile says what the route already holds (newer times only).
    let same = parent("gw", US, RESOLVED, "2025-01-01T00:00:00Z");
    let mut all = desired(vec![same], "2025-01-01T00:00:00Z");
    all.retain(|s| s.kind == "HTTPRoute");
    statuses.send_replace(Some(all.into()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(writes(&server), 0, "rewrote an unchanged route status");
    assert_eq!(parents_of(&server, "route"), vec![ours]);
}

/// A replica that does not lead writes nothing until it leads.
#[tokio::test]
async fn only_the_leader_writes() {
    let (server, client) = cluster().await;
    let (_statuses, leader) = start_writer(
        client,
        desired(
            vec![parent("gw", US, RESOLVED, "2025-01-01T00:00:00Z")],
            "2025-01-01T00:00:00Z",
        ),
        false,
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let writes = server.requests().iter().filter(|r| r.is_write()).count();
    assert_eq!(writes, 0);
    leader.send_replace(true);
    eventually("the route status", || {
        parents_of(&server, "route").len() == 1
    })
    .await;
}

/// A real data plane following a real snapshot stream reports what it
/// applied; only then does the Gateway count as Programmed.
#[tokio::test]
async fn data_plane_reports_make_the_gateway_programmed() {
    let reports = Reports::default();
    let publisher = Publisher::default();
    let (r, p) = (reports.clone(), publisher.clone());
    let addr = tollgate_controller::serve::spawn("127.0.0.1:0".parse().unwrap(), move |req| {
        r.serve(&p, req)
    })
    .await
    .unwrap();
    let snapshot = tollgate_snapshot::Snapshot::empty("default/gw");
    publisher.publish(BTreeMap::from([("default/gw".to_string(), snapshot)]));
    let published = publisher.published();
    let programmed = |reports: &Reports| {
        let mut statuses = desired(vec![], "2025-01-01T00:00:00Z");
        apply_programmed(&mut statuses, &published, reports);
        statuses[1].status["conditions"][1].clone()
    };
    assert_eq!(programmed(&reports)["reason"], "Pending");

    let mut changed = reports.changed();
    let dataplane = tollgate_dataplane::Dataplane::new(tollgate_dataplane::DataplaneOptions {
        gateway: "default/gw".into(),
        ..Default::default()
    });
    let client = tokio::spawn(tollgate_dataplane::subscribe(
        format!("http://{addr}"),
        dataplane.clone(),
    ));
    tokio::time::timeout(WAIT, changed.changed())
        .await
        .unwrap()
        .unwrap();
    let report = reports.of("default/gw").into_values().next().unwrap();
    assert_eq!(report.hash, published["default/gw"].hash);
    assert_eq!(report.version, published["default/gw"].version);
    assert!(!report.pod.is_empty());
    assert_eq!(programmed(&reports)["status"], "True");
    dataplane.shutdown();
    tokio::time::timeout(WAIT, client).await.unwrap().unwrap();
}
