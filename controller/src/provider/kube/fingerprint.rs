//! Change detection: which watch events change what `compile` sees.
//!
//! Every status write Tollgate makes comes back as a watch event. If such
//! an event triggered a recompile, the recompile would write status again
//! and the controller would loop. So each object is reduced to a
//! fingerprint of the content `compile` reads (everything except `status`,
//! `metadata.resourceVersion`, `metadata.generation`,
//! `metadata.managedFields` and `metadata.finalizers`, which Tollgate's
//! status writer sets on GatewayClasses), and only a changed fingerprint
//! counts as a change. This works the same for kinds with a status subresource and for
//! Services, EndpointSlices and Namespaces, which have no generation, and
//! does not depend on the API server maintaining `generation`.
//!
//! [`Fingerprints`] follows the watcher's relist protocol like kube-runtime's
//! reflector store: `Init` starts a buffer, `InitApply` fills it, `InitDone`
//! swaps it in and reports the difference, so a relist that finds the same
//! objects reports nothing.

use kube::Resource;
use kube::runtime::watcher::Event;

use serde_json::Value;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The map key of an object: `namespace/name`, or `name` when cluster-scoped,
/// as in [`tollgate_compile::resources::Objects`].
pub(super) fn key_of<K: Resource>(obj: &K) -> String {
    let meta = obj.meta();
    let name = meta.name.as_deref().unwrap_or_default();
    match &meta.namespace {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// A hash of what `compile` reads from `obj`: the object without `status`,
/// `resourceVersion`, `generation`, `managedFields` and `finalizers`.
/// Watched objects are hashed by [`value_content`] as they are decoded;
/// this is the same rule for a typed object, for tests.
#[cfg(test)]
pub(super) fn content<K: serde::Serialize>(obj: &K) -> u64 {
    match serde_json::to_value(obj) {
        Ok(mut value) => value_content(&mut value),
        // Serializing typed objects does not fail; if it ever did, every
        // event would count as a change, which is safe.
        Err(_) => unique_fingerprint(),
    }
}

/// [`content`] of an object still in its JSON form (as `Lenient` decodes
/// it, so a watched object is hashed once, not serialised again). The
/// fields left out are taken out for the hash and put back.
pub(super) fn value_content(value: &mut Value) -> u64 {
    const VOLATILE: [&str; 4] = [
        "resourceVersion",
        "generation",
        "managedFields",
        "finalizers",
    ];
    let status = value.as_object_mut().and_then(|map| map.remove("status"));
    let meta = value
        .get_mut("metadata")
        .and_then(|m| m.as_object_mut())
        .map(|meta| VOLATILE.map(|field| meta.remove(field)));
    let mut hasher = DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    if let (Some(saved), Some(map)) = (
        meta,
        value.get_mut("metadata").and_then(|m| m.as_object_mut()),
    ) {
        for (field, kept) in VOLATILE.iter().zip(saved) {
            if let Some(kept) = kept {
                map.insert((*field).to_string(), kept);
            }
        }
    }
    if let (Some(status), Some(map)) = (status, value.as_object_mut()) {
        map.insert("status".to_string(), status);
    }
    hasher.finish()
}

/// A hash of an object's `resourceVersion`: for metadata-only watches, where
/// the resourceVersion is how a change of the full object shows.
pub(super) fn resource_version<K: Resource>(obj: &K) -> u64 {
    let mut hasher = DefaultHasher::new();
    obj.meta().resource_version.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
fn unique_fingerprint() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed) ^ 0x9e37_79b9_7f4a_7c15
}

/// Fingerprints of the objects of one kind, maintained from watch events.
#[derive(Debug, Default)]
pub(super) struct Fingerprints {
    current: HashMap<String, u64>,
    /// Filled between `Init` and `InitDone` of a (re)list.
    buffer: Option<HashMap<String, u64>>,
}

impl Fingerprints {
    /// Applies one watch event and returns the keys whose fingerprint
    /// changed (added, changed or removed). Events of a relist report
    /// nothing until `InitDone`, which reports the difference to the view
    /// before the relist.
    pub(super) fn apply<K: Resource>(
        &mut self,
        event: &Event<K>,
        fingerprint: impl Fn(&K) -> u64,
    ) -> Vec<String> {
        match event {
            Event::Apply(obj) => {
                let key = key_of(obj);
                let print = fingerprint(obj);
                match self.current.insert(key.clone(), print) {
                    Some(old) if old == print => Vec::new(),
                    _ => vec![key],
                }
            }
            Event::Delete(obj) => {
                let key = key_of(obj);
                match self.current.remove(&key) {
                    Some(_) => vec![key],
                    None => Vec::new(),
                }
            }
            Event::Init => {
                self.buffer = Some(HashMap::new());
                Vec::new()
            }
            Event::InitApply(obj) => {
                let buffer = self.buffer.get_or_insert_with(HashMap::new);
                buffer.insert(key_of(obj), fingerprint(obj));
                Vec::new()
            }
            Event::InitDone => {
                let new = self.buffer.take().unwrap_or_default();
                let mut changed: Vec<String> = new
                    .iter()
                    .filter(|(k, v)| self.current.get(*k) != Some(*v))
                    .map(|(k, _)| k.clone())
                    .chain(
                        self.current
                            .keys()
                            .filter(|k| !new.contains_key(*k))
                            .cloned(),
                    )
                    .collect();
                changed.sort();
                self.current = new;
                changed
            }
        }
    }
}

#[cfg(test)]
mod tests;
