//! Tests of the status store: what counts as a change, and condition
//! times carried over.

use super::*;
use serde_json::json;

fn gateway(status: &str, time: &str) -> ObjectStatus {
    ObjectStatus {
        kind: "Gateway".into(),
        namespace: Some("default".into()),
        name: "gw".into(),
        status: json!({
            "conditions": [{"type": "Accepted", "status": status, "lastTransitionTime": time}],
            "listeners": [{"name": "http", "conditions": [
                {"type": "Programmed", "status": "True", "lastTransitionTime": time}
            ]}]
        })
        .into(),
    }
}

/// An unchanged condition keeps its transition time and is not reported as a change.
#[test]
fn unchanged_conditions_keep_their_time() {
    let store = StatusStore::default();
    assert_eq!(store.update(vec![gateway("True", "t1")]).len(), 1);
    assert!(store.update(vec![gateway("True", "t2")]).is_empty());
    let all = store.all();
    assert_eq!(all[0].status["conditions"][0]["lastTransitionTime"], "t1");
    assert_eq!(
        all[0].status["listeners"][0]["conditions"][0]["lastTransitionTime"],
        "t1"
    );
}

/// A condition whose status flips gets the new time; its neighbours keep theirs.
#[test]
fn a_transition_takes_the_new_time() {
    let store = StatusStore::default();
    store.update(vec![gateway("True", "t1")]);
    let changed = store.update(vec![gateway("False", "t2")]);
    assert_eq!(changed.len(), 1);
    let s = &store.all()[0].status;
    assert_eq!(s["conditions"][0]["lastTransitionTime"], "t2");
    assert_eq!(
        s["listeners"][0]["conditions"][0]["lastTransitionTime"],
        "t1"
    );
}

/// Updating one kind leaves the other kinds alone.
#[test]
fn a_kind_update_keeps_other_kinds() {
    let store = StatusStore::default();
    let mut route = gateway("True", "t1");
    route.kind = "HTTPRoute".into();
    store.update(vec![gateway("True", "t1"), route.clone()]);
    let changed = store.update_kind("Gateway", vec![gateway("False", "t2")]);
    assert_eq!(changed.len(), 1);
    let all = store.all();
    assert_eq!(all.len(), 2);
    assert!(all.contains(&route));
    assert_eq!(store.update_kind("Gateway", vec![]).removed.len(), 1);
    assert_eq!(store.all(), vec![route]);
}

/// Input in any order is stored in key order; an in-scope object
/// missing from a kind update leaves, others of that kind stay only
/// if given, and every other kind is untouched.
#[test]
fn unsorted_input_and_scoped_merge() {
    let store = StatusStore::default();
    let named = |kind: &str, name: &str, status: &str| {
        let mut s = gateway(status, "t1");
        s.kind = kind.into();
        s.name = name.into();
        s
    };
    let changed = store.update(vec![
        named("HTTPRoute", "b", "True"),
        named("Gateway", "z", "True"),
        named("HTTPRoute", "a", "True"),
        named("Gateway", "a", "True"),
    ]);
    assert_eq!(changed.len(), 4);
    let keys = |all: Vec<ObjectStatus>| -> Vec<String> {
        all.iter()
            .map(|s| format!("{}/{}", s.kind, s.name))
            .collect()
    };
    assert_eq!(
        keys(store.all()),
        ["Gateway/a", "Gateway/z", "HTTPRoute/a", "HTTPRoute/b"]
    );
    let changed = store.update_kind(
        "HTTPRoute",
        vec![
            named("HTTPRoute", "c", "True"),
            named("HTTPRoute", "a", "True"),
        ],
    );
    assert_eq!(keys(changed.updated), ["HTTPRoute/c"]);
    assert_eq!(
        changed.removed,
        [(
            "HTTPRoute".to_string(),
            Some("default".to_string()),
            "b".to_string()
        )]
    );
    assert_eq!(
        keys(store.all()),
        ["Gateway/a", "Gateway/z", "HTTPRoute/a", "HTTPRoute/c"]
    );
}

/// A status change is one short line: condition types and statuses,
/// the reason where one is not True.
#[test]
fn summaries_are_short() {
    let route = json!({"parents": [{"parentRef": {"name": "gw"}, "conditions": [
        {"type": "Accepted", "status": "True", "reason": "Accepted"},
        {"type": "ResolvedRefs", "status": "False", "reason": "BackendNotFound"}]}]});
    assert_eq!(
        summary(&route),
        "gw: Accepted=True ResolvedRefs=False(BackendNotFound)"
    );
    assert_eq!(summary(&gateway("True", "t1").status), "Accepted=True");
    let policy = json!({"ancestors": [{"ancestorRef": {"name": "gw"}, "conditions": [
        {"type": "Accepted", "status": "False", "reason": "Conflicted"}]}]});
    assert_eq!(summary(&policy), "gw: Accepted=False(Conflicted)");
}

/// Objects that no longer exist leave the store, and their leaving is
/// a change (the status writer must hear of it to clean up).
#[test]
fn removed_objects_leave_and_count_as_changes() {
    let store = StatusStore::default();
    store.update(vec![gateway("True", "t1")]);
    let changes = store.update(vec![]);
    assert!(store.all().is_empty());
    assert!(changes.updated.is_empty());
    assert_eq!(changes.len(), 1);
    assert!(!changes.is_empty());
    assert!(store.update(vec![]).is_empty());
}
