//! One shared copy of an object while what `compile` reads of it stays the
//! same.
//!
//! Every status write Tollgate makes comes back as a watch event with a new
//! copy of the object: a new `resourceVersion`, and otherwise the content
//! of the copy it replaces (the status is dropped when an object is
//! decoded, see `lenient.rs`). `compile` recognises an unchanged object by
//! `Arc` identity — the route memos, and the path that only refills
//! endpoints when nothing but EndpointSlices changed — so a new copy after
//! each status write would make the next change look like a change of
//! every object whose status was written, and compile them all again.
//!
//! So before the reflector stores an object, it takes over the decoded
//! object of the copy it replaces when their fingerprints agree (the same
//! fingerprint that decides what is a change, `fingerprint.rs`). The copy
//! dropped differs from the one kept in fields `compile` does not read
//! (`resourceVersion`, `generation`, `managedFields`, `finalizers`); the
//! reflector's own copy keeps the new metadata.

use super::fingerprint::key_of;
use super::lenient::Lenient;
use ::kube::Resource;
use ::kube::core::PartialObjectMeta;
use ::kube::runtime::watcher::Event;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// An object whose decoded part can be shared between its copies.
pub(super) trait Shares {
    /// What is shared.
    type Part: Clone + Send + 'static;
    /// The part, if this object has one (a decoded object).
    fn part(&self) -> Option<Self::Part>;
    /// Makes `part` this object's.
    fn set_part(&mut self, part: Self::Part);
}

impl<K> Shares for Lenient<K>
where
    K: Send + Sync + 'static,
{
    type Part = Arc<K>;

    fn part(&self) -> Option<Arc<K>> {
        self.decoded.as_ref().ok().cloned()
    }

    fn set_part(&mut self, part: Arc<K>) {
        self.decoded = Ok(part);
    }
}

/// Metadata-only kinds are fetched whole elsewhere: nothing to share.
impl<K> Shares for PartialObjectMeta<K> {
    type Part = ();

    fn part(&self) -> Option<()> {
        None
    }

    fn set_part(&mut self, (): ()) {}
}

/// The shared part of every object of one watch, with its fingerprint.
pub(super) struct Shared<P> {
    kept: HashMap<String, (u64, P)>,
    /// Keys seen in a relist in progress: the ones not seen are dropped
    /// when it completes.
    listing: Option<HashSet<String>>,
}

impl<P> Default for Shared<P> {
    fn default() -> Self {
        Shared {
            kept: HashMap::new(),
            listing: None,
        }
    }
}

impl<P: Clone> Shared<P> {
    /// Lets the objects `event` brings share the part of the copies they
    /// replace, when `print` finds them unchanged.
    pub(super) fn on_event<K>(&mut self, event: &mut Event<K>, print: fn(&K) -> u64)
    where
        K: Resource + Shares<Part = P>,
    {
        match event {
            Event::Apply(object) => self.share(object, print),
            Event::InitApply(object) => {
                self.share(object, print);
                if let Some(seen) = &mut self.listing {
                    seen.insert(key_of(object));
                }
            }
            Event::Delete(object) => {
                self.kept.remove(&key_of(object));
            }
            Event::Init => self.listing = Some(HashSet::new()),
            Event::InitDone => {
                if let Some(seen) = self.listing.take() {
                    self.kept.retain(|key, _| seen.contains(key));
                }
            }
        }
    }

    fn share<K>(&mut self, object: &mut K, print: fn(&K) -> u64)
    where
        K: Resource + Shares<Part = P>,
    {
        let Some(part) = object.part() else {
            return;
        };
        let key = key_of(object);
        let printed = print(object);
        match self.kept.get(&key) {
            Some((kept_print, kept)) if *kept_print == printed => object.set_part(kept.clone()),
            _ => {
                self.kept.insert(key, (printed, part));
            }
        }
    }

    /// Objects kept (for tests).
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.kept.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::provider::kube::lenient;
    use gateway_api::experimental::httproutes::HttpRoute;

    fn route(version: &str, path: &str, status: &str) -> Lenient<HttpRoute> {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "ns", "resourceVersion": version, "generation": 1},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [{"matches": [{"path": {"type": "PathPrefix", "value": path}}]}]
            },
            "status": {"parents": [{"parentRef": {"name": "gw"}, "controllerName": status, "conditions": []}]}
        }))
        .unwrap()
    }

    fn decoded(event: &Event<Lenient<HttpRoute>>) -> Arc<HttpRoute> {
        match event {
            Event::Apply(o) | Event::InitApply(o) => o.part().expect("decoded"),
            _ => panic!("no object"),
        }
    }

    /// A copy that differs only in status and resourceVersion (a status
    /// write coming back) takes over the shared object; a spec change
    /// brings its own, which is shared from then on.
    #[test]
    fn status_writes_keep_the_shared_copy() {
        let print = lenient::print_of::<HttpRoute>;
        let mut shared = Shared::default();
        let mut first = Event::Apply(route("1", "/a", "x/one"));
        shared.on_event(&mut first, print);
        let mut status_write = Event::Apply(route("2", "/a", "x/two"));
        shared.on_event(&mut status_write, print);
        assert!(Arc::ptr_eq(&decoded(&first), &decoded(&status_write)));
        let mut edited = Event::Apply(route("3", "/b", "x/two"));
        shared.on_event(&mut edited, print);
        assert!(!Arc::ptr_eq(&decoded(&first), &decoded(&edited)));
        let mut again = Event::Apply(route("4", "/b", "x/three"));
        shared.on_event(&mut again, print);
        assert!(Arc::ptr_eq(&decoded(&edited), &decoded(&again)));
    }

    /// A relist keeps the shared copies of objects it finds unchanged and
    /// forgets the ones it no longer finds; a deletion forgets at once.
    #[test]
    fn relists_and_deletions_forget_what_is_gone() {
        let print = lenient::print_of::<HttpRoute>;
        let mut shared = Shared::default();
        let mut first = Event::Apply(route("1", "/a", "x/one"));
        shared.on_event(&mut first, print);
        shared.on_event(&mut Event::Init, print);
        let mut listed = Event::InitApply(route("5", "/a", "x/one"));
        shared.on_event(&mut listed, print);
        shared.on_event(&mut Event::InitDone, print);
        assert!(Arc::ptr_eq(&decoded(&first), &decoded(&listed)));
        assert_eq!(shared.len(), 1);
        shared.on_event(&mut Event::Init, print);
        shared.on_event(&mut Event::InitDone, print);
        assert_eq!(shared.len(), 0);
        let mut back = Event::Apply(route("6", "/a", "x/one"));
        shared.on_event(&mut back, print);
        shared.on_event(&mut Event::Delete(route("7", "/a", "x/one")), print);
        assert_eq!(shared.len(), 0);
    }
}
