//! The status store: what Kubernetes would hold for each object.
//!
//! `compile` stamps every condition with the compile time. A condition that
//! did not change keeps the `lastTransitionTime` it already had, as the
//! Kubernetes API conventions ask, so a recompile with nothing new produces
//! exactly the same statuses and nothing is logged or written.

use serde_json::Value;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use tollgate_compile::ObjectStatus;
use tracing::info;

/// Identifies one object: kind, namespace (absent for cluster-scoped kinds), name.
pub type Key = (String, Option<String>, String);

/// What one update changed: objects whose status is new or different, and
/// objects that left (Tollgate no longer reports on them). Both matter to
/// the status writer: a removal is how a route loses the entry of a deleted
/// Gateway and how a GatewayClass gets its finalizer released.
#[derive(Debug, Default, PartialEq)]
pub struct Changes {
    /// New or changed statuses.
    pub updated: Vec<ObjectStatus>,
    /// Objects whose status left the store.
    pub removed: Vec<Key>,
}

impl Changes {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.updated.is_empty() && self.removed.is_empty()
    }

    /// How many objects changed or left.
    pub fn len(&self) -> usize {
        self.updated.len() + self.removed.len()
    }
}

/// Current statuses, shared with the admin server.
#[derive(Clone, Debug, Default)]
pub struct StatusStore {
    inner: Arc<RwLock<BTreeMap<Key, ObjectStatus>>>,
}

impl StatusStore {
    /// Replaces the stored statuses with `statuses`, keeping transition
    /// times of unchanged conditions, and logs every object whose status
    /// changed. Returns the objects that changed or left.
    pub fn update(&self, statuses: Vec<ObjectStatus>) -> Changes {
        self.replace(statuses, |_| true)
    }

    /// Like [`StatusStore::update`], for the objects of one `kind` only:
    /// objects of other kinds keep their statuses.
    pub fn update_kind(&self, kind: &str, statuses: Vec<ObjectStatus>) -> Changes {
        self.replace(statuses, |key| key.0 == kind)
    }

    /// Replaces the statuses of the objects `in_scope` selects by
    /// `statuses`; in-scope objects absent from `statuses` leave the store.
    ///
    /// Walks the stored and the new statuses side by side in key order, so
    /// an object whose status is unchanged apart from condition times (most
    /// of them after one manifest change) keeps its stored entry without a
    /// new key, a transition-time walk or a copy.
    fn replace(&self, mut statuses: Vec<ObjectStatus>, in_scope: impl Fn(&Key) -> bool) -> Changes {
        let mut changes = Changes::default();
        let Ok(mut map) = self.inner.write() else {
            return changes;
        };
        // Compile's output is already sorted; anything else is sorted here.
        if !statuses.is_sorted_by(|a, b| order(a, b).is_le()) {
            statuses.sort_by(order);
        }
        let mut old = std::mem::take(&mut *map).into_iter().peekable();
        let mut next: Vec<(Key, ObjectStatus)> = Vec::with_capacity(statuses.len());
        for mut status in statuses {
            // Stored objects before this one: kept if out of scope, else gone.
            while let Some((key, _)) = old.peek()
                && key_order(key, &status).is_lt()
            {
                if let Some((key, stored)) = old.next() {
                    if in_scope(&key) {
                        log_removal(&key);
                        changes.removed.push(key);
                    } else {
                        next.push((key, stored));
                    }
                }
            }
            let previous = old.next_if(|(key, _)| key_order(key, &status).is_eq());
            match previous {
                // The same shared value (a route status compile kept), or
                // one that differs only in times: the stored one stands.
                Some((key, stored))
                    if Arc::ptr_eq(&stored.status, &status.status)
                        || same_but_times(&stored.status, &status.status) =>
                {
                    next.push((key, stored));
                }
                Some((key, stored)) => {
                    carry_transition_times(&stored.status, Arc::make_mut(&mut status.status));
                    if stored != status {
                        log_change(&status);
                        changes.updated.push(status.clone());
                    }
                    next.push((key, status));
                }
                None => {
                    log_change(&status);
                    changes.updated.push(status.clone());
                    next.push((key_of(&status), status));
                }
            }
        }
        for (key, stored) in old {
            if in_scope(&key) {
                log_removal(&key);
                changes.removed.push(key);
            } else {
                next.push((key, stored));
            }
        }
        // Sorted input: the map is built in one pass (a repeated key keeps
        // its last status).
        *map = next.into_iter().collect();
        changes
    }

    /// The status of one object, if Tollgate reports on it.
    pub fn get(&self, kind: &str, namespace: Option<&str>, name: &str) -> Option<ObjectStatus> {
        let key = (
            kind.to_string(),
            namespace.map(str::to_string),
            name.to_string(),
        );
        self.inner.read().ok()?.get(&key).cloned()
    }

    /// All statuses, sorted by kind, namespace and name.
    pub fn all(&self) -> Vec<ObjectStatus> {
        self.inner
            .read()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }
}

fn key_of(status: &ObjectStatus) -> Key {
    (
        status.kind.clone(),
        status.namespace.clone(),
        status.name.clone(),
    )
}

/// The store's order: kind, namespace, name.
fn order(a: &ObjectStatus, b: &ObjectStatus) -> Ordering {
    (&a.kind, &a.namespace, &a.name).cmp(&(&b.kind, &b.namespace, &b.name))
}

/// How a stored key orders against `status`'s.
fn key_order(key: &Key, status: &ObjectStatus) -> Ordering {
    (&key.0, &key.1, &key.2).cmp(&(&status.kind, &status.namespace, &status.name))
}

fn log_change(status: &ObjectStatus) {
    info!(
        kind = %status.kind,
        namespace = status.namespace.as_deref().unwrap_or(""),
        name = %status.name,
        conditions = %summary(&status.status),
        "status changed"
    );
}

/// The conditions of a status on one short line: `Accepted=True
/// Programmed=False(Pending)`, with route parents (and policy ancestors)
/// as `gw: Accepted=True`.
/// The whole status stays on the admin `/status` endpoint.
fn summary(status: &Value) -> String {
    fn conditions(value: Option<&Value>) -> String {
        value
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .map(|c| {
                let field = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or_default();
                match field("status") {
                    "True" => format!("{}=True", field("type")),
                    other => format!("{}={other}({})", field("type"), field("reason")),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
    let mut parts = Vec::new();
    let own = conditions(status.get("conditions"));
    if !own.is_empty() {
        parts.push(own);
    }
    for (list, reference) in [
        ("parents", "/parentRef/name"),
        ("ancestors", "/ancestorRef/name"),
    ] {
        for parent in status
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = parent
                .pointer(reference)
                .and_then(Value::as_str)
                .unwrap_or_default();
            parts.push(format!("{name}: {}", conditions(parent.get("conditions"))));
        }
    }
    parts.join("; ")
}

fn log_removal((kind, namespace, name): &Key) {
    info!(
        %kind,
        namespace = namespace.as_deref().unwrap_or(""),
        %name,
        "status removed: Tollgate no longer reports on this object"
    );
}

/// Whether `old` and `new` are equal apart from `lastTransitionTime`
/// values. Then carrying the times over would make `new` equal `old`, so
/// the stored status stands as it is.
fn same_but_times(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            o.len() == n.len()
                && o.iter().all(|(k, ov)| {
                    n.get(k)
                        .is_some_and(|nv| k == "lastTransitionTime" || same_but_times(ov, nv))
                })
        }
        (Value::Array(o), Value::Array(n)) => {
            o.len() == n.len() && o.iter().zip(n).all(|(ov, nv)| same_but_times(ov, nv))
        }
        _ => old == new,
    }
}

/// Copies `lastTransitionTime` from `old` into `new` for every condition
/// whose type and status are unchanged.
///
/// Walks both values in parallel; list items are paired by `name` (listener
/// statuses), `parentRef` (route parents), `ancestorRef` (policy
/// ancestors) or `type` (conditions), else by position.
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
                let paired = ["name", "parentRef", "ancestorRef", "type"]
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
#[path = "status_tests.rs"]
mod tests;
