//! Deciding what to write: the desired status merged with what the object
//! holds, or nothing when they already agree.
//!
//! A condition whose type and status did not change keeps the
//! `lastTransitionTime` the object holds (the Kubernetes API conventions), so
//! a desired status that differs from the live one only in transition times
//! is equal to it and costs no write. That is what keeps a converged cluster
//! at zero status writes.

use crate::status::carry_transition_times;
use serde_json::{Map, Value};

/// The status to apply to an object Tollgate writes whole, or `None` when
/// `live` already holds it.
pub(crate) fn whole_status(live: Option<&Value>, desired: &Value) -> Option<Value> {
    let mut next = without_nulls(desired);
    let live = live.map(without_nulls).unwrap_or(Value::Null);
    carry_transition_times(&live, &mut next);
    (next != live).then_some(next)
}

/// The shared list (`status.parents` of a route) after replacing the
/// entries of `controller` with `ours`, or `None` when `live` already holds
/// exactly that.
///
/// Entries of other controllers stay untouched and in place; an entry of
/// ours whose reference is still wanted is replaced in place; one no longer
/// wanted is removed (the route left our Gateway); new ones are appended.
/// Keeping positions stable means two controllers never reorder each
/// other's entries back and forth.
pub(crate) fn shared_list(
    live: &[Value],
    ours: &[Value],
    controller: &str,
    ref_field: &str,
) -> Option<Vec<Value>> {
    let live: Vec<Value> = live.iter().map(without_nulls).collect();
    let mut wanted: Vec<Option<Value>> = ours.iter().map(|v| Some(without_nulls(v))).collect();
    let mut next = Vec::with_capacity(live.len().max(ours.len()));
    for entry in &live {
        if !is_ours(entry, controller) {
            next.push(entry.clone());
            continue;
        }
        let slot = wanted.iter_mut().find(|w| {
            w.as_ref()
                .is_some_and(|w| w.get(ref_field) == entry.get(ref_field))
        });
        if let Some(mut replacement) = slot.and_then(Option::take) {
            carry_transition_times(entry, &mut replacement);
            next.push(replacement);
        }
    }
    next.extend(wanted.into_iter().flatten());
    (next != live).then_some(next)
}

/// Whether a shared-list entry was written by `controller`.
pub(crate) fn is_ours(entry: &Value, controller: &str) -> bool {
    entry.get("controllerName").and_then(Value::as_str) == Some(controller)
}

/// The field naming an entry's target in the shared list `field`.
pub(crate) fn ref_field(field: &str) -> &'static str {
    match field {
        "ancestors" => "ancestorRef",
        _ => "parentRef",
    }
}

/// `value` without `lastTransitionTime` anywhere: what a status means,
/// independent of when its conditions changed.
pub(crate) fn without_times(value: &Value) -> Value {
    strip(value, &|k, _| k == "lastTransitionTime")
}

/// `value` without keys whose value is `null` (absent and null mean the same
/// to the API server).
pub(crate) fn without_nulls(value: &Value) -> Value {
    strip(value, &|_, v| v.is_null())
}

fn strip(value: &Value, drop: &dyn Fn(&str, &Value) -> bool) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| !drop(k, v))
                .map(|(k, v)| (k.clone(), strip(v, drop)))
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| strip(v, drop)).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const US: &str = "tollgate.dev/gateway-controller";

    fn cond(status: &str, reason: &str, time: &str) -> Value {
        json!({"type": "Accepted", "status": status, "reason": reason, "message": "m",
               "observedGeneration": 1, "lastTransitionTime": time})
    }

    fn parent(gateway: &str, controller: &str, status: &str, time: &str) -> Value {
        json!({"parentRef": {"name": gateway}, "controllerName": controller,
               "conditions": [cond(status, "Accepted", time)]})
    }

    /// A status that differs from the live one only in transition times, or
    /// in nulls, is not written; any other difference is, keeping the live
    /// time of conditions whose status did not change.
    #[test]
    fn whole_status_is_written_only_when_it_means_something_else() {
        let live = json!({"conditions": [cond("True", "Accepted", "t1")]});
        let cases = [
            (
                "same but the time",
                json!({"conditions": [cond("True", "Accepted", "t2")]}),
                None,
            ),
            (
                "a null where live has nothing",
                json!({"conditions": [cond("True", "Accepted", "t2")], "addresses": null}),
                None,
            ),
            (
                "new reason, same status: live time kept",
                json!({"conditions": [cond("True", "Other", "t2")]}),
                Some(json!({"conditions": [cond("True", "Other", "t1")]})),
            ),
            (
                "status flips: new time",
                json!({"conditions": [cond("False", "Accepted", "t2")]}),
                Some(json!({"conditions": [cond("False", "Accepted", "t2")]})),
            ),
        ];
        for (name, desired, want) in cases {
            assert_eq!(whole_status(Some(&live), &desired), want, "{name}");
        }
        assert!(
            whole_status(None, &live).is_some(),
            "an object with no status gets one"
        );
    }

    /// Other controllers' entries stay as they are and where they are; ours
    /// are replaced in place, removed when no longer wanted, appended when new.
    #[test]
    fn shared_list_touches_only_our_entries() {
        let other = parent("theirs", "example.com/other", "True", "t0");
        let cases = [
            (
                "nothing changed but times",
                vec![other.clone(), parent("a", US, "True", "t1")],
                vec![parent("a", US, "True", "t2")],
                None,
            ),
            (
                "ours changes in place, theirs kept first",
                vec![parent("a", US, "True", "t1"), other.clone()],
                vec![parent("a", US, "False", "t2")],
                Some(vec![parent("a", US, "False", "t2"), other.clone()]),
            ),
            (
                "stale entry of ours removed",
                vec![other.clone(), parent("gone", US, "True", "t1")],
                vec![],
                Some(vec![other.clone()]),
            ),
            (
                "new entry appended after theirs",
                vec![other.clone()],
                vec![parent("a", US, "True", "t2")],
                Some(vec![other.clone(), parent("a", US, "True", "t2")]),
            ),
            (
                "nothing of ours, nothing wanted",
                vec![other.clone()],
                vec![],
                None,
            ),
        ];
        for (name, live, ours, want) in cases {
            assert_eq!(shared_list(&live, &ours, US, "parentRef"), want, "{name}");
        }
    }

    /// Stripping times and nulls reaches into lists and nested objects.
    #[test]
    fn stripping_reaches_everywhere() {
        let v = json!({"a": null, "l": [{"lastTransitionTime": "t", "b": 1, "c": null}]});
        assert_eq!(
            without_times(&v),
            json!({"a": null, "l": [{"b": 1, "c": null}]})
        );
        assert_eq!(
            without_nulls(&v),
            json!({"l": [{"lastTransitionTime": "t", "b": 1}]})
        );
        assert_eq!(ref_field("ancestors"), "ancestorRef");
        assert!(is_ours(&parent("a", US, "True", "t"), US));
    }
}
