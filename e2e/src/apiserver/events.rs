//! Core `v1` and `events.k8s.io/v1` Events are one collection, stored in the
//! core shape and served in either, as the real server converts them.
//!
//! The field names differ (from `k8s.io/kubernetes/pkg/apis/events/v1`
//! conversions): `regarding`↔`involvedObject`, `note`↔`message`,
//! `deprecatedSource`↔`source`, `deprecatedFirstTimestamp`↔`firstTimestamp`,
//! `deprecatedLastTimestamp`↔`lastTimestamp`, `deprecatedCount`↔`count`,
//! `reportingController`↔`reportingComponent`; `series`, `related`,
//! `eventTime`, `action`, `reason`, `type` and `reportingInstance` are the
//! same in both.

use super::kinds::ResourceType;
use serde_json::Value;

/// (events.k8s.io/v1 name, core v1 name).
const RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
    ("reportingController", "reportingComponent"),
];

/// Whether `rt` is the `events.k8s.io` Event type.
pub(crate) fn is_events_api(rt: &ResourceType) -> bool {
    rt.group == "events.k8s.io" && rt.plural == "events"
}

/// `object` in the core shape, from the shape `rt` serves.
pub(crate) fn to_storage(rt: &ResourceType, object: Value) -> Value {
    if is_events_api(rt) {
        rename(object, |(new, core)| (new, core))
    } else {
        object
    }
}

/// A stored (core-shaped) Event in the shape `rt` serves.
pub(crate) fn from_storage(rt: &ResourceType, object: Value) -> Value {
    if is_events_api(rt) {
        rename(object, |(new, core)| (core, new))
    } else {
        object
    }
}

/// Renames the top-level fields of `object` by `direction(pair)` = (from, to).
fn rename(
    mut object: Value,
    direction: impl Fn((&'static str, &'static str)) -> (&'static str, &'static str),
) -> Value {
    if let Value::Object(map) = &mut object {
        for pair in RENAMES {
            let (from, to) = direction(*pair);
            if let Some(value) = map.remove(from) {
                map.insert(to.to_string(), value);
            }
        }
    }
    object
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::kinds::Registry;
    use serde_json::json;

    /// events.k8s.io fields become core fields and back, unchanged.
    #[test]
    fn events_round_trip_between_shapes() {
        let registry = Registry::builtin();
        let events = registry.lookup("events.k8s.io/v1", "Event").unwrap();
        let new = json!({"regarding": {"name": "a"}, "note": "n", "deprecatedCount": 2,
            "reportingController": "c", "series": {"count": 2}, "reason": "R"});
        let core = to_storage(events, new.clone());
        assert_eq!(
            core,
            json!({"involvedObject": {"name": "a"}, "message": "n", "count": 2,
                "reportingComponent": "c", "series": {"count": 2}, "reason": "R"})
        );
        assert_eq!(from_storage(events, core.clone()), new);
        let core_rt = registry.lookup("v1", "Event").unwrap();
        assert_eq!(from_storage(core_rt, core.clone()), core);
    }
}
