//! The status store: what Kubernetes would hold for each object.
//!
//! `compile` stamps every condition with the compile time. A condition that
//! did not change keeps the `lastTransitionTime` it already had, as the
//! Kubernetes API conventions ask, so a recompile with nothing new produces
//! exactly the same statuses and nothing is logged or written.

use crate::compile::ObjectStatus;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tracing::info;

type Key = (String, Option<String>, String);

/// Current statuses, shared with the admin server.
#[derive(Clone, Debug, Default)]
pub struct StatusStore {
    inner: Arc<RwLock<BTreeMap<Key, ObjectStatus>>>,
}

impl StatusStore {
    /// Replaces the stored statuses with `statuses`, keeping transition
    /// times of unchanged conditions, and logs every object whose status
    /// changed. Returns the objects that changed.
    pub fn update(&self, statuses: Vec<ObjectStatus>) -> Vec<ObjectStatus> {
        self.replace(statuses, |_| true)
    }

    /// Like [`StatusStore::update`], for the objects of one `kind` only:
    /// objects of other kinds keep their statuses.
    pub fn update_kind(&self, kind: &str, statuses: Vec<ObjectStatus>) -> Vec<ObjectStatus> {
        self.replace(statuses, |key| key.0 == kind)
    }

    /// Replaces the statuses of the objects `in_scope` selects by
    /// `statuses`; in-scope objects absent from `statuses` leave the store.
    fn replace(
        &self,
        statuses: Vec<ObjectStatus>,
        in_scope: impl Fn(&Key) -> bool,
    ) -> Vec<ObjectStatus> {
        let mut changed = Vec::new();
        let Ok(mut map) = self.inner.write() else {
            return changed;
        };
        let mut next = BTreeMap::new();
        for mut status in statuses {
            let key = (
                status.kind.clone(),
                status.namespace.clone(),
                status.name.clone(),
            );
            let old = map.remove(&key);
            if let Some(old) = &old {
                carry_transition_times(&old.status, &mut status.status);
            }
            if old.as_ref() != Some(&status) {
                info!(
                    kind = %status.kind,
                    namespace = status.namespace.as_deref().unwrap_or(""),
                    name = %status.name,
                    status = %status.status,
                    "status changed"
                );
                changed.push(status.clone());
            }
            next.insert(key, status);
        }
        // What is left is out of scope (kept) or gone (dropped).
        map.retain(|key, _| !in_scope(key));
        map.append(&mut next);
        changed
    }

    /// All statuses, sorted by kind, namespace and name.
    pub fn all(&self) -> Vec<ObjectStatus> {
        self.inner
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// Copies `lastTransitionTime` from `old` into `new` for every condition
/// whose type and status are unchanged.
///
/// Walks both values in parallel; list items are paired by `name` (listener
/// statuses), `parentRef` (route parents) or `type` (conditions), else by
/// position.
pub fn carry_transition_times(old: &Value, new: &mut Value) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let same_condition = n.contains_key("lastTransitionTime")
                && o.get("type") == n.get("type")
                && o.get("status") == n.get("status");
            if same_condition && let Some(t) = o.get("lastTransitionTime") {
                n.insert("lastTransitionTime".into(), t.clone());
            }
            for (k, nv) in n.iter_mut() {
                if let Some(ov) = o.get(k) {
                    carry_transition_times(ov, nv);
                }
            }
        }
        (Value::Array(o), Value::Array(n)) => {
            for (i, nv) in n.iter_mut().enumerate() {
                let paired = ["name", "parentRef", "type"]
                    .iter()
                    .find_map(|key| {
                        let id = nv.get(*key)?;
                        o.iter().find(|ov| ov.get(*key) == Some(id))
                    })
                    .or_else(|| o.get(i));
                if let Some(ov) = paired {
                    carry_transition_times(ov, nv);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
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
            }),
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
        assert!(store.update_kind("Gateway", vec![]).is_empty());
        assert_eq!(store.all(), vec![route]);
    }

    /// Objects that no longer exist leave the store.
    #[test]
    fn removed_objects_leave() {
        let store = StatusStore::default();
        store.update(vec![gateway("True", "t1")]);
        store.update(vec![]);
        assert!(store.all().is_empty());
    }
}
