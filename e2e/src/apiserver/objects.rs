//! Rules for the server-owned parts of an object: metadata the server sets,
//! `generation`, and the view a client gets (`managedFields` are in
//! `managed`).
//!
//! These are pure functions over `serde_json::Value` (the clock is passed
//! in) so the storage code reads as the sequence of Kubernetes rules it
//! applies on each write.

use super::events;
use super::kinds::ResourceType;
use serde_json::{Map, Value, json};

/// The current time as Kubernetes writes it (`2026-01-02T03:04:05Z`).
pub(crate) fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// `metadata.<field>` as a string, empty when absent.
pub(crate) fn meta_str<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get("metadata")
        .and_then(|m| m.get(field))
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Runs `f` on the `metadata` map of `object` (created when missing; a
/// non-map `object` becomes a map first).
pub(crate) fn with_meta<R>(object: &mut Value, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
    if !object.is_object() {
        *object = json!({});
    }
    let mut meta = match object.get_mut("metadata").map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let out = f(&mut meta);
    if let Value::Object(root) = object {
        root.insert("metadata".into(), Value::Object(meta));
    }
    out
}

/// A stored `object` as served by `rt`: `apiVersion` and `kind` of the
/// requested version (and the shape of `events.k8s.io` Events).
pub(crate) fn view(rt: &ResourceType, object: &Value) -> Value {
    let mut out = events::from_storage(rt, object.clone());
    if let Value::Object(map) = &mut out {
        map.insert("apiVersion".into(), rt.api_version().into());
        map.insert("kind".into(), rt.kind.clone().into());
    }
    out
}

/// `object`, written through `rt`, as it is stored: `events.k8s.io` Events
/// as core Events, anything else as written.
pub(crate) fn stored(rt: &ResourceType, object: Value) -> Value {
    let events = events::is_events_api(rt);
    let mut out = events::to_storage(rt, object);
    if let Value::Object(map) = &mut out {
        let (api_version, kind) = match events {
            true => ("v1".to_string(), "Event".to_string()),
            false => (rt.api_version(), rt.kind.clone()),
        };
        map.insert("apiVersion".into(), api_version.into());
        map.insert("kind".into(), kind.into());
    }
    out
}

/// `object` without `metadata` and `status`: what bumps `generation` when it changes.
fn spec_part(object: &Value) -> Value {
    let mut out = object.clone();
    if let Value::Object(map) = &mut out {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    out
}

/// Whether anything outside metadata and status differs.
pub(crate) fn spec_changed(old: &Value, new: &Value) -> bool {
    spec_part(old) != spec_part(new)
}

/// Whether `old` and `new` are the same write: equal apart from
/// `resourceVersion` and `managedFields` timestamps.
pub(crate) fn same_content(old: &Value, new: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        with_meta(&mut v, |meta| {
            meta.remove("resourceVersion");
            if let Some(Value::Array(entries)) = meta.get_mut("managedFields") {
                for entry in entries.iter_mut().filter_map(Value::as_object_mut) {
                    entry.remove("time");
                }
            }
        });
        v
    };
    strip(old) == strip(new)
}

/// The status the server gives a CustomResourceDefinition: names accepted
/// and established right away.
pub(crate) fn crd_status(crd: &Value) -> Value {
    let time = now();
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    json!({
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or_else(|| json!({})),
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": time},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": time},
        ],
        "storedVersions": stored,
    })
}

/// `metadata.finalizers`.
pub(crate) fn finalizers(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The object an update stores: through `/status` only `.status` of `new`
/// counts; through the main endpoint everything but server-owned metadata
/// (and `.status` when the kind has the subresource).
pub(crate) fn merge_write(rt: &ResourceType, old: &Value, new: Value, status: bool) -> Value {
    let mut next = if status {
        let mut next = old.clone();
        if let Value::Object(map) = &mut next {
            match new.get("status") {
                Some(s) => map.insert("status".into(), s.clone()),
                None => map.remove("status"),
            };
        }
        next
    } else {
        let mut next = new;
        if let Value::Object(map) = &mut next {
            match (rt.status_subresource, old.get("status")) {
                (true, Some(s)) => map.insert("status".into(), s.clone()),
                (true, None) => map.remove("status"),
                (false, _) => None,
            };
        }
        next
    };
    let keep = [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
        "resourceVersion",
        "managedFields",
    ];
    with_meta(&mut next, |meta| {
        for field in keep {
            match old.get("metadata").and_then(|m| m.get(field)) {
                Some(v) => meta.insert(field.into(), v.clone()),
                None => meta.remove(field),
            };
        }
    });
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only changes outside metadata and status count as spec changes.
    #[test]
    fn generation_follows_spec_only() {
        let base = json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 1}});
        let cases = [
            (
                json!({"metadata": {"name": "a", "labels": {"l": "1"}}, "spec": {"x": 1}, "status": {"y": 1}}),
                false,
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "status": {"y": 2}}),
                false,
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"x": 2}, "status": {"y": 1}}),
                true,
            ),
            (
                json!({"metadata": {"name": "a"}, "spec": {"x": 1}, "data": {}, "status": {"y": 1}}),
                true,
            ),
        ];
        for (new, want) in cases {
            assert_eq!(spec_changed(&base, &new), want, "{new}");
        }
    }
}
