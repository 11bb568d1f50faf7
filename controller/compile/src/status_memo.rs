//! Route statuses kept between compiles, so a change serialises only the
//! statuses it changed.
//!
//! Every compile still decides every route's status (attachment is cheap
//! and depends on Gateways, policies and other routes), but a status that
//! equals the previous compile's apart from condition times is handed out
//! as the previous compile's shared JSON value, times included: the status
//! store keeps the stored time of every unchanged condition anyway, and it,
//! the status writer and the admin server recognise the same allocation
//! without comparing or copying it. With 10k routes this saves serialising,
//! comparing and freeing 10k statuses on every change.

use crate::rule_context::RouteKind;
use gateway_api::experimental::httproutes::HttpRouteStatus;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// The last status of each route, typed and serialised.
#[derive(Debug, Default)]
pub(crate) struct RouteStatuses {
    /// By kind, then `namespace/name`: looked up by `&str`, so asking for
    /// 10k unchanged statuses copies no key.
    entries: HashMap<RouteKind, HashMap<String, Entry>>,
    /// Counts compiles (see [`RouteStatuses::retain_used`]).
    epoch: u64,
}

/// One route's last status, and the last compile that asked for it.
#[derive(Debug)]
struct Entry {
    status: HttpRouteStatus,
    value: Arc<Value>,
    used: u64,
}

impl RouteStatuses {
    /// The JSON of `status` for route `key`: the previous value when the
    /// status is the same apart from condition times, else a new one that
    /// replaces it.
    pub(crate) fn shared(
        &mut self,
        kind: RouteKind,
        key: &str,
        status: HttpRouteStatus,
    ) -> Arc<Value> {
        let entries = self.entries.entry(kind).or_default();
        if let Some(kept) = entries.get_mut(key)
            && same_apart_from_times(&kept.status, &status)
        {
            kept.used = self.epoch;
            return Arc::clone(&kept.value);
        }
        // Serialising the generated status types cannot fail (string keys,
        // no non-finite floats); a null status would still name the object.
        let value = Arc::new(serde_json::to_value(&status).unwrap_or_default());
        let used = self.epoch;
        let entry = Entry {
            status,
            value: Arc::clone(&value),
            used,
        };
        entries.insert(key.to_string(), entry);
        value
    }

    /// Marks route `key`'s status as still wanted by this compile, which
    /// took it from the attach memo rather than through
    /// [`RouteStatuses::shared`]; whether there is one.
    pub(crate) fn keep(&mut self, kind: RouteKind, key: &str) -> bool {
        let epoch = self.epoch;
        self.entries
            .get_mut(&kind)
            .and_then(|entries| entries.get_mut(key))
            .map(|kept| kept.used = epoch)
            .is_some()
    }

    /// Ends a compile: forgets the routes it did not ask a status for
    /// (deleted, or no longer Tollgate's), without looking up every key.
    pub(crate) fn retain_used(&mut self) {
        let epoch = self.epoch;
        for entries in self.entries.values_mut() {
            entries.retain(|_, e| e.used == epoch);
        }
        self.epoch += 1;
    }
}

/// Whether `a` and `b` differ at most in `lastTransitionTime`s.
fn same_apart_from_times(a: &HttpRouteStatus, b: &HttpRouteStatus) -> bool {
    a.parents.len() == b.parents.len()
        && a.parents.iter().zip(&b.parents).all(|(a, b)| {
            a.controller_name == b.controller_name
                && a.parent_ref == b.parent_ref
                && a.conditions.len() == b.conditions.len()
                && a.conditions
                    .iter()
                    .zip(&b.conditions)
                    .all(|(a, b)| same_condition(a, b))
        })
}

fn same_condition(a: &Condition, b: &Condition) -> bool {
    a.type_ == b.type_
        && a.status == b.status
        && a.reason == b.reason
        && a.message == b.message
        && a.observed_generation == b.observed_generation
}

#[cfg(test)]
mod tests {
    use super::*;
    use gateway_api::experimental::httproutes::HttpRouteStatusParents;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn status(accepted: &str, time: &str) -> HttpRouteStatus {
        let time: k8s_openapi::jiff::Timestamp = time.parse().unwrap_or_default();
        HttpRouteStatus {
            parents: vec![HttpRouteStatusParents {
                conditions: vec![Condition {
                    type_: "Accepted".into(),
                    status: accepted.into(),
                    reason: "Accepted".into(),
                    message: String::new(),
                    observed_generation: Some(1),
                    last_transition_time: Time(time),
                }],
                controller_name: "tollgate.dev/gateway-controller".into(),
                ..HttpRouteStatusParents::default()
            }],
        }
    }

    /// A status that only got newer times is the same shared value, with
    /// the first times; any other change is a new value.
    #[test]
    fn unchanged_statuses_are_shared() {
        let mut memo = RouteStatuses::default();
        let first = memo.shared(
            RouteKind::Http,
            "ns/r",
            status("True", "2026-01-01T00:00:00Z"),
        );
        let again = memo.shared(
            RouteKind::Http,
            "ns/r",
            status("True", "2026-01-01T00:00:09Z"),
        );
        assert!(Arc::ptr_eq(&first, &again));
        let other = memo.shared(
            RouteKind::Grpc,
            "ns/r",
            status("True", "2026-01-01T00:00:09Z"),
        );
        assert!(!Arc::ptr_eq(&first, &other));
        let changed = memo.shared(
            RouteKind::Http,
            "ns/r",
            status("False", "2026-01-01T00:00:09Z"),
        );
        assert!(!Arc::ptr_eq(&first, &changed));
        assert_eq!(changed["parents"][0]["conditions"][0]["status"], "False");
        memo.retain_used();
        // A compile that asks only for the GRPCRoute's status forgets the
        // HTTPRoute's.
        memo.shared(
            RouteKind::Grpc,
            "ns/r",
            status("True", "2026-01-01T00:00:09Z"),
        );
        memo.retain_used();
        let fresh = memo.shared(
            RouteKind::Http,
            "ns/r",
            status("False", "2026-01-01T00:00:09Z"),
        );
        assert!(!Arc::ptr_eq(&changed, &fresh));
    }
}
