//! The controller's own metrics, value by value, against the in-memory API
//! server: objects by kind and conditions by (kind, type, status) match the
//! cluster exactly, snapshot size and connected data planes are per
//! Gateway, status writes count exactly what the API server accepted, the
//! leader gauge follows the Lease, and expired watches count as restarts.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::kubernetes_operator::controller_with_env;
use crate::telemetry_support::{env_refs, otel_env, scrape};

use common::k8s::*;
use common::*;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::otlp::Receiver;
use tollgate_e2e::prometheus::Scrape;
use tollgate_e2e::{Echo, free_port};

const OBJECTS: &str = "tollgate_controller_objects";
const CONDITIONS: &str = "tollgate_controller_conditions";
const SIZE: &str = "tollgate_controller_snapshot_size_bytes";
const CONNECTED: &str = "tollgate_controller_dataplanes_connected";
const LEADER: &str = "tollgate_controller_leader";
const WRITES: &str = "tollgate_controller_status_writes_total";
const RESTARTS: &str = "tollgate_controller_watch_restarts_total";

const RESOLVED: &str = "{.status.parents[0].conditions[?(@.type==\"ResolvedRefs\")].reason}";
const HOLDER: &str = "{.spec.holderIdentity}";

/// Every kind the controller reads; each reports an object count.
const KINDS: [&str; 16] = [
    "AuthPolicy",
    "BackendTLSPolicy",
    "ConfigMap",
    "EndpointSlice",
    "GRPCRoute",
    "Gateway",
    "GatewayClass",
    "GatewayConfig",
    "HTTPRoute",
    "ListenerSet",
    "Namespace",
    "RateLimitPolicy",
    "ReferenceGrant",
    "Secret",
    "Service",
    "TLSRoute",
];

/// The series of `name`, keyed by the values of `keys` joined with a
/// space (other labels, such as `otel_scope_name`, are not part of it).
fn series(s: &Scrape, name: &str, keys: &[&str]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for sample in s.series(name) {
        let key: Vec<&str> = keys
            .iter()
            .map(|k| sample.labels.get(*k).map_or("-", String::as_str))
            .collect();
        let key = key.join(" ");
        let twice = out.insert(key.clone(), sample.value).is_some();
        assert!(!twice, "{name} has two series for {key}");
    }
    out
}

/// `(key, value)` pairs as a map, for exact comparisons.
fn map<const N: usize>(pairs: [(&str, f64); N]) -> BTreeMap<String, f64> {
    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
}

/// Object counts by kind: 0 for every kind not in `present`.
fn objects(present: &[(&str, f64)]) -> BTreeMap<String, f64> {
    let mut all: BTreeMap<String, f64> = KINDS.iter().map(|k| (k.to_string(), 0.0)).collect();
    all.extend(present.iter().map(|(k, v)| (k.to_string(), *v)));
    all
}

/// Scrapes `admin` until `read` gives `want` (gauges are read when
/// scraped, counters move after the API server answered); after 10 s
/// fails showing what it last read.
async fn until_eq<T: PartialEq + Debug>(
    admin: &str,
    what: &str,
    want: &T,
    read: impl Fn(&Scrape) -> T,
) -> Scrape {
    let start = Instant::now();
    loop {
        let s = scrape(admin).await;
        let got = read(&s);
        if got == *want {
            return s;
        }
        if start.elapsed() > Duration::from_secs(10) {
            panic!("{admin}/metrics: {what}\n got: {got:?}\nwant: {want:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The status writes the API server accepted from the controller, as
/// `"<Kind> written"` → count: what `status.writes` must say. A write
/// refused with 409 and retried counts once, when it succeeds.
fn accepted_status_writes(server: &ApiServer) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for r in server.requests() {
        let ours = r.user_agent.starts_with("tollgate-controller");
        if !ours || !r.is_status_write() || !(200..300).contains(&r.status) {
            continue;
        }
        let plural = r.path.rsplit('/').nth(2).unwrap_or_default();
        let kind = match plural {
            "gatewayclasses" => "GatewayClass",
            "gateways" => "Gateway",
            "httproutes" => "HTTPRoute",
            other => panic!("an unexpected status write to {other}: {}", r.path),
        };
        *out.entry(format!("{kind} written")).or_default() += 1.0;
    }
    out
}

/// Waits until writes other than Lease renewals (every second) stop for
/// a second.
async fn settle(server: &ApiServer) {
    let writes = |s: &ApiServer| {
        let requests = s.requests();
        let writes = requests.iter().filter(|r| r.is_write());
        writes.filter(|r| !r.path.contains("/leases")).count()
    };
    let mut seen = writes(server);
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = writes(server);
        if now == seen {
            return;
        }
        seen = now;
    }
}

/// A Gateway `gw` with an echo backend, route `good` (`/one` to it) and
/// route `broken` (`/two` to a Service that does not exist).
async fn two_route_cluster() -> (Echo, ApiServer) {
    let echo = Echo::start("echo-a").await.unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &http_route("good", "/one", "echo-a")).await;
    apply(&server, &http_route("broken", "/two", "missing")).await;
    (echo, server)
}

/// The conditions of [`two_route_cluster`] while `missing` of its routes
/// name a backend that does not exist: the top-level ones of the class
/// (its CRDs are a supported version) and the Gateway, and those of each
/// route's parent entry (both routes are accepted).
fn two_route_conditions(missing: f64) -> BTreeMap<String, f64> {
    let mut want = map([
        ("Gateway Accepted True", 1.0),
        ("Gateway Programmed True", 1.0),
        ("GatewayClass Accepted True", 1.0),
        ("GatewayClass SupportedVersion True", 1.0),
        ("HTTPRoute Accepted True", 2.0),
        ("HTTPRoute ResolvedRefs True", 2.0 - missing),
    ]);
    if missing > 0.0 {
        want.insert("HTTPRoute ResolvedRefs False".into(), missing);
    }
    want
}

/// After a known set of objects converges, objects by kind, conditions by
/// (kind, type, status), snapshot size, connected data planes, leadership
/// and status writes are exactly what the cluster holds; fixing the broken
/// route moves each of them by exactly what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn controller_metrics_match_the_cluster() {
    let (_echo, server) = two_route_cluster().await;
    let ctl = start_kube_controller(&server, "replica-a", true, PORT).await;
    // Statuses are written (the metrics below say what they hold).
    let broken = ["httproute", "broken"];
    wait_jsonpath(&server, &broken, RESOLVED, "BackendNotFound").await;

    // The four Namespaces every cluster starts with; the echo Service and
    // its EndpointSlice.
    let mut want_objects = objects(&[
        ("EndpointSlice", 1.0),
        ("Gateway", 1.0),
        ("GatewayClass", 1.0),
        ("HTTPRoute", 2.0),
        ("Namespace", 4.0),
        ("Service", 1.0),
    ]);
    let count_objects = |s: &Scrape| series(s, OBJECTS, &["kind"]);
    until_eq(&ctl.admin, "objects by kind", &want_objects, count_objects).await;
    let conditions = |s: &Scrape| series(s, CONDITIONS, &["kind", "type", "status"]);
    let want = two_route_conditions(1.0);
    until_eq(&ctl.admin, "conditions", &want, conditions).await;

    // Settled, every status write the API server accepted is counted, and
    // nothing conflicted or failed.
    settle(&server).await;
    let writes = |s: &Scrape| series(s, WRITES, &["kind", "result"]);
    let accepted = accepted_status_writes(&server);
    for kind in ["GatewayClass", "Gateway"] {
        let n = accepted.get(&format!("{kind} written")).copied();
        assert!(n >= Some(1.0), "{kind} status never written: {accepted:?}");
    }
    assert_eq!(
        accepted.get("HTTPRoute written"),
        Some(&2.0),
        "one per route"
    );
    let s = until_eq(&ctl.admin, "status writes", &accepted, writes).await;

    // One Gateway: its snapshot has a size, and the in-process data plane
    // follows it; this replica holds the Lease.
    let sizes = series(&s, SIZE, &["tollgate_gateway"]);
    let size = sizes.get("default/gw").copied().unwrap_or_default();
    assert!(size > 0.0 && sizes.len() == 1, "snapshot sizes: {sizes:?}");
    let connected = series(&s, CONNECTED, &["tollgate_gateway"]);
    assert_eq!(connected, map([("default/gw", 1.0)]), "data planes");
    assert_eq!(series(&s, LEADER, &[]), map([("", 1.0)]), "leader");

    // The missing Service appears: exactly one more status write (the
    // broken route's), its ResolvedRefs turns True, one more Service, and
    // a snapshot that now names the backend.
    apply(&server, &service("missing", &[])).await;
    wait_jsonpath(&server, &broken, RESOLVED, "ResolvedRefs").await;
    want_objects.insert("Service".into(), 2.0);
    until_eq(&ctl.admin, "objects after", &want_objects, count_objects).await;
    let want = two_route_conditions(0.0);
    until_eq(&ctl.admin, "conditions after", &want, conditions).await;
    settle(&server).await;
    // The broken route's status is written once more; the Gateway's may
    // be too (its listeners' attached routes and Programmed move with the
    // new snapshot, as fast as the data plane applies it), so the metric
    // is held to what the API server accepted, kind by kind.
    let after = accepted_status_writes(&server);
    let routes = |m: &BTreeMap<String, f64>| m.get("HTTPRoute written").copied();
    assert_eq!(
        routes(&after),
        routes(&accepted).map(|n| n + 1.0),
        "API server: {after:?}"
    );
    let s = until_eq(&ctl.admin, "writes after", &after, writes).await;
    let sizes = series(&s, SIZE, &["tollgate_gateway"]);
    let grown = sizes.get("default/gw").copied().unwrap_or_default();
    assert!(grown > size, "snapshot size {size} -> {grown}: {sizes:?}");
}

/// A standby replica reports leader 0 and no data plane following it, the
/// leader 1 and its in-process data plane; an API server that forgets old
/// versions and drops every watch makes each kind's watch restart exactly
/// once in both replicas; when the leader stops, the standby's gauge turns 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_gauge_and_watch_restarts_across_replicas() {
    let (_echo, server) = two_route_cluster().await;
    let mut a = start_kube_controller(&server, "replica-a", true, PORT).await;
    let lease = ["lease", "tollgate-controller"];
    wait_jsonpath(&server, &lease, HOLDER, "replica-a").await;
    // Without a data plane of its own (and provisioning off).
    let b = start_kube_controller(&server, "replica-b", false, PORT).await;

    let gauges = |s: &Scrape| {
        (
            series(s, LEADER, &[]),
            series(s, CONNECTED, &["tollgate_gateway"]),
        )
    };
    let leading = (map([("", 1.0)]), map([("default/gw", 1.0)]));
    let standing_by = (map([("", 0.0)]), map([("default/gw", 0.0)]));
    until_eq(&a.admin, "the leader", &leading, gauges).await;
    until_eq(&b.admin, "the standby", &standing_by, gauges).await;

    // Both replicas listed every kind once; no watch has failed yet.
    let restarts = |s: &Scrape| series(s, RESTARTS, &["kind"]);
    for ctl in [&a, &b] {
        let s = scrape(&ctl.admin).await;
        assert_eq!(restarts(&s), BTreeMap::new(), "{} restarts", ctl.admin);
    }
    // A write no watch sees moves the version past every watch's last
    // one; history compacted and watches dropped, each watch resumes from
    // a version that is gone, gets 410 Gone, and relists.
    server
        .create(
            json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                       "metadata": {"name": "bump", "namespace": "default"}, "spec": {}}),
        )
        .unwrap();
    server.expire_resource_versions();
    server.drop_watches();
    let once: BTreeMap<String, f64> = KINDS.iter().map(|k| (k.to_string(), 1.0)).collect();
    for ctl in [&a, &b] {
        until_eq(&ctl.admin, "one restart per kind", &once, restarts).await;
    }
    // Relisted, both still see every object.
    let count = |s: &Scrape| series(s, OBJECTS, &["kind"]).get("HTTPRoute").copied();
    apply(&server, &http_route("later", "/three", "echo-a")).await;
    for ctl in [&a, &b] {
        until_eq(&ctl.admin, "the route made after", &Some(3.0), count).await;
    }

    a.proc.stop();
    wait_jsonpath(&server, &lease, HOLDER, "replica-b").await;
    let leader = |s: &Scrape| series(s, LEADER, &[]);
    until_eq(&b.admin, "the new leader", &map([("", 1.0)]), leader).await;
    let s = scrape(&b.admin).await;
    assert_eq!(restarts(&s), once, "no more restarts on takeover");
}

/// Each status-write round that writes anything is a span of the
/// controller's (`write status`), and the rounds' counts add up to
/// exactly the status writes the API server accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_write_rounds_are_spans_that_count_the_writes() {
    let receiver = Receiver::start().await.unwrap();
    let (_echo, server) = two_route_cluster().await;
    let env = otel_env(&receiver, "http/protobuf", "tollgate-controller");
    let offset = free_port().unwrap() - 80;
    let (_ctl, _) = controller_with_env(&server, &[], offset, &env_refs(&env)).await;
    let broken = ["httproute", "broken"];
    wait_jsonpath(&server, &broken, RESOLVED, "BackendNotFound").await;
    settle(&server).await;
    let accepted: f64 = accepted_status_writes(&server).values().sum();
    let rounds = |r: &Receiver| -> Vec<_> {
        r.spans()
            .into_iter()
            .filter(|s| s.name == "write status")
            .collect()
    };
    let written = |spans: &[tollgate_e2e::otlp::Span]| -> i64 {
        spans
            .iter()
            .filter_map(|s| s.int_attr("tollgate.status.written"))
            .sum()
    };
    let spans = receiver
        .wait_until(
            "rounds counting every write",
            Duration::from_secs(10),
            |r| {
                let spans = rounds(r);
                (written(&spans) as f64 == accepted).then_some(spans)
            },
        )
        .await;
    assert!(accepted >= 4.0, "class, Gateway, two routes: {accepted}");
    for round in &spans {
        assert_eq!(round.parent_span_id, None, "a round starts its own trace");
        assert_eq!(round.origin.service_name(), Some("tollgate-controller"));
        assert_eq!(round.int_attr("tollgate.status.errors"), Some(0));
        assert!(
            round.int_attr("tollgate.status.objects") >= round.int_attr("tollgate.status.written")
        );
        assert_ne!(round.status, tollgate_e2e::otlp::StatusCode::Error);
    }
    // Each round links to the compile whose statuses it wrote, so a
    // change's trace leads to the writes that report it.
    let compiles: Vec<_> = receiver
        .spans()
        .into_iter()
        .filter(|s| s.name == "compile")
        .collect();
    for round in &spans {
        let [link] = round.links.as_slice() else {
            panic!("one link per round: {:?}", round.links);
        };
        assert_ne!(link.trace_id, round.trace_id);
        let compile = compiles
            .iter()
            .find(|c| c.span_id == link.span_id && c.trace_id == link.trace_id);
        let Some(compile) = compile else {
            panic!("the link names no compile span: {link:?}");
        };
        assert!(
            compile.start_time_unix_nano <= round.start_time_unix_nano,
            "a round links to an earlier compile"
        );
    }
}
