//! Full Secrets and ConfigMaps, fetched only when referenced.
//!
//! The metadata-only watch says which Secrets exist and their current
//! resourceVersion. [`FullObjects`] keeps the full object of each
//! referenced one: it GETs an object the first time it is referenced and
//! again when the watched resourceVersion differs from the cached one, and
//! drops it when nothing references it any more or it is deleted. So memory
//! and API calls follow the references, not the cluster's Secret count.

use super::referenced::NamespacedName;
use super::watch::trim_managed_fields;
use ::kube::core::{NamespaceResourceScope, PartialObjectMeta};
use ::kube::runtime::reflector::{ObjectRef, store::Store};
use ::kube::{Api, Client, Resource};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use tollgate_compile::resources::Objects;
use tracing::{debug, warn};

/// How many GETs run at once.
const CONCURRENT_GETS: usize = 8;

/// The full objects of one kind that are currently referenced.
#[derive(Debug)]
pub(super) struct FullObjects<K> {
    cached: BTreeMap<NamespacedName, Arc<K>>,
}

impl<K> Default for FullObjects<K> {
    fn default() -> Self {
        FullObjects {
            cached: BTreeMap::new(),
        }
    }
}

impl<K> FullObjects<K>
where
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    /// Brings the cache in line with `wanted` and the metadata in `meta`.
    /// Returns how many GETs failed; their objects keep their previous
    /// content (or stay absent) until the next sync.
    pub(super) async fn sync(
        &mut self,
        client: &Client,
        wanted: &BTreeSet<NamespacedName>,
        meta: &[Store<PartialObjectMeta<K>>],
    ) -> usize {
        self.cached.retain(|key, _| wanted.contains(key));
        let mut stale = Vec::new();
        for key in wanted {
            let object = ObjectRef::new(&key.1).within(&key.0);
            let watched = meta.iter().find_map(|store| store.get(&object));
            let Some(watched) = watched else {
                self.cached.remove(key);
                continue;
            };
            let cached_version = self
                .cached
                .get(key)
                .and_then(|o| o.meta().resource_version.as_deref());
            if cached_version != watched.metadata.resource_version.as_deref() {
                stale.push(key.clone());
            }
        }
        let fetched: Vec<_> = futures_util::stream::iter(stale)
            .map(|key| {
                let api = Api::<K>::namespaced(client.clone(), &key.0);
                async move {
                    let got = api.get_opt(&key.1).await;
                    (key, got)
                }
            })
            .buffer_unordered(CONCURRENT_GETS)
            .collect()
            .await;
        let mut failed = 0;
        for (key, got) in fetched {
            match got {
                Ok(Some(mut obj)) => {
                    trim_managed_fields(&mut obj);
                    debug!(namespace = %key.0, name = %key.1, "fetched referenced object");
                    self.cached.insert(key, Arc::new(obj));
                }
                Ok(None) => {
                    self.cached.remove(&key);
                }
                Err(e) => {
                    failed += 1;
                    warn!(namespace = %key.0, name = %key.1, error = %e, "fetching a referenced object failed; will retry");
                }
            }
        }
        failed
    }

    /// The cached objects keyed `namespace/name`.
    pub(super) fn objects(&self) -> Objects<K> {
        self.cached
            .iter()
            .map(|((ns, name), obj)| (format!("{ns}/{name}"), Arc::clone(obj)))
            .collect()
    }
}
