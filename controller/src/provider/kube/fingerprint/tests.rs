//! Tests for change detection.

use super::*;
use gateway_api::experimental::httproutes::HttpRoute;
use k8s_openapi::api::core::v1::Service;
use serde_json::json;

fn route(extra: serde_json::Value) -> HttpRoute {
    let mut doc = json!({
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"namespace": "a", "name": "r", "resourceVersion": "1", "generation": 1},
        "spec": {"hostnames": ["a.example"]},
    });
    merge(&mut doc, extra);
    serde_json::from_value(doc).unwrap()
}

fn service(extra: serde_json::Value) -> Service {
    let mut doc = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": "a", "name": "s", "resourceVersion": "1"},
        "spec": {"ports": [{"port": 80}]},
    });
    merge(&mut doc, extra);
    serde_json::from_value(doc).unwrap()
}

fn merge(base: &mut serde_json::Value, extra: serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e,
    }
}

/// Status, resourceVersion, generation, managedFields and finalizers do not
/// change the fingerprint; spec, labels and annotations do. Services have no
/// generation: their status (load balancer) is ignored the same way.
#[test]
fn content_ignores_status_and_bookkeeping() {
    let base_route = route(json!({}));
    let base_service = service(json!({}));
    let route_cases = [
        ("status only", json!({"status": {"parents": []}}), true),
        (
            "resourceVersion and generation",
            json!({"metadata": {"resourceVersion": "9", "generation": 4}}),
            true,
        ),
        (
            "managedFields",
            json!({"metadata": {"managedFields": [{"manager": "tollgate", "operation": "Apply"}]}}),
            true,
        ),
        (
            "finalizers",
            json!({"metadata": {"finalizers": ["tollgate.dev/gateway-controller"]}}),
            true,
        ),
        ("spec", json!({"spec": {"hostnames": ["b.example"]}}), false),
        ("labels", json!({"metadata": {"labels": {"x": "y"}}}), false),
        (
            "annotations",
            json!({"metadata": {"annotations": {"x": "y"}}}),
            false,
        ),
    ];
    for (name, extra, same) in route_cases {
        let got = content(&route(extra)) == content(&base_route);
        assert_eq!(got, same, "HTTPRoute: {name}");
    }
    let service_cases = [
        (
            "load balancer status",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}),
            true,
        ),
        ("ports", json!({"spec": {"ports": [{"port": 81}]}}), false),
    ];
    for (name, extra, same) in service_cases {
        let got = content(&service(extra)) == content(&base_service);
        assert_eq!(got, same, "Service: {name}");
    }
}

fn apply(f: &mut Fingerprints, event: Event<Service>) -> Vec<String> {
    f.apply(&event, content)
}

/// Applies and deletes report their key once per real change; an update
/// that changes only status reports nothing.
#[test]
fn live_events_report_real_changes() {
    let mut f = Fingerprints::default();
    assert_eq!(apply(&mut f, Event::Apply(service(json!({})))), ["a/s"]);
    let status_only =
        service(json!({"status": {"loadBalancer": {"ingress": [{"ip": "1.2.3.4"}]}}}));
    assert!(apply(&mut f, Event::Apply(status_only)).is_empty());
    let changed = service(json!({"spec": {"ports": [{"port": 81}]}}));
    assert_eq!(apply(&mut f, Event::Apply(changed.clone())), ["a/s"]);
    assert_eq!(apply(&mut f, Event::Delete(changed.clone())), ["a/s"]);
    assert!(apply(&mut f, Event::Delete(changed)).is_empty());
}

/// A relist reports nothing until InitDone, then exactly the difference to
/// the view before it: changed, added and vanished keys; an identical
/// relist reports nothing.
#[test]
fn relist_reports_the_difference_at_init_done() {
    let mut f = Fingerprints::default();
    let s = |name: &str, port: u16| {
        service(json!({"metadata": {"name": name}, "spec": {"ports": [{"port": port}]}}))
    };
    for e in [
        Event::Init,
        Event::InitApply(s("a", 80)),
        Event::InitApply(s("b", 80)),
    ] {
        assert!(apply(&mut f, e).is_empty());
    }
    assert_eq!(apply(&mut f, Event::InitDone), ["a/a", "a/b"]);

    for e in [
        Event::Init,
        Event::InitApply(s("a", 80)),
        Event::InitApply(s("b", 80)),
    ] {
        assert!(apply(&mut f, e).is_empty());
    }
    assert!(apply(&mut f, Event::InitDone).is_empty(), "same objects");

    for e in [
        Event::Init,
        Event::InitApply(s("b", 81)),
        Event::InitApply(s("c", 80)),
    ] {
        assert!(apply(&mut f, e).is_empty());
    }
    assert_eq!(apply(&mut f, Event::InitDone), ["a/a", "a/b", "a/c"]);
}

/// Cluster-scoped objects are keyed by name, namespaced ones by
/// `namespace/name`, as in `Resources`.
#[test]
fn keys_match_resources() {
    use k8s_openapi::api::core::v1::Namespace;
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": "team"}})).unwrap();
    assert_eq!(key_of(&ns), "team");
    assert_eq!(key_of(&service(json!({}))), "a/s");
}
