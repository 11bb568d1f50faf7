//! Compiled HTTPRoutes and GRPCRoutes kept between compiles, so a change costs what it
//! touches rather than a recompile of every route.
//!
//! A route's rules depend on the route object and, for every backend it
//! references (`backendRefs` and mirrors), that Service, the
//! ReferenceGrants and BackendTLSPolicies of the Service's namespace and
//! the CA ConfigMaps those policies name. Not on EndpointSlices: endpoints
//! are added when the snapshot is assembled (`endpoints`), so an endpoint
//! change recompiles no route. The
//! time on its conditions is stamped when it is attached, outside the memo,
//! so a new second does not renew every entry.
//!
//! Providers share unchanged objects between views (`Arc`), so "unchanged"
//! is pointer identity: an entry is reused when the route is the same `Arc`
//! and every object it read is the same `Arc` (or still absent). Entries
//! hold those `Arc`s, so an address cannot be reused by a different object
//! while it is compared. Attachment has a memo of its own, used while the
//! Gateway side is unchanged (`attach_memo`); snapshot assembly is redone
//! on every compile, and so are
//! AuthPolicies: they are not read by a route's compile at all, but
//! applied to its result when snapshots are assembled (`auth_policies`),
//! so no policy edit can leave a memo stale.

use crate::httproute::CompiledRoute;
use crate::resources::Resources;
use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::experimental::referencegrants::ReferenceGrant;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use std::collections::HashMap;
use std::sync::Arc;

/// Compiled routes of one kind `R` from the previous compile, by the
/// address of the route object they were compiled from: an entry is only
/// valid for that very `Arc` anyway (an edited route is a new object), and
/// an address hashes in a few instructions where a `namespace/name` key
/// was SipHashed and compared for each of 10k routes on every compile.
/// The entry holds the `Arc`, so no other object can take the address
/// while it is kept.
#[derive(Debug)]
pub(crate) struct RouteMemos<R> {
    entries: foldhash::HashMap<usize, Entry<R>>,
    /// Counts compiles, so that the entries of routes a compile did not ask
    /// for are found by a number rather than by looking up every key.
    epoch: u64,
}

impl<R> Default for RouteMemos<R> {
    fn default() -> Self {
        RouteMemos {
            entries: foldhash::HashMap::default(),
            epoch: 0,
        }
    }
}

#[derive(Debug)]
struct Entry<R> {
    /// The `epoch` of the last compile that asked for this route.
    used: u64,
    object: Arc<R>,
    reads: Vec<Read>,
    compiled: Arc<CompiledRoute>,
}

/// What a route's compile read about one referenced Service `ns/name`.
#[derive(Debug)]
struct Read {
    namespace: String,
    /// `namespace/name`, the Service's key, kept so that checking the read
    /// on every compile builds no string.
    key: String,
    service: Option<Arc<Service>>,
    grants: Vec<Arc<ReferenceGrant>>,
    policies: Vec<Arc<BackendTlsPolicy>>,
    /// The CA ConfigMaps the namespace's policies name, by name.
    ca_maps: Vec<(String, Option<Arc<ConfigMap>>)>,
}

/// The objects of one view a route compile can read, found by key.
#[derive(Debug)]
pub(crate) struct Inputs<'a> {
    resources: &'a Resources,
    /// ReferenceGrants by namespace, in key order.
    grants: HashMap<&'a str, Vec<&'a Arc<ReferenceGrant>>>,
    /// BackendTLSPolicies by namespace, in key order.
    policies: HashMap<&'a str, Vec<&'a Arc<BackendTlsPolicy>>>,
}

impl<'a> Inputs<'a> {
    /// Indexes `resources`: one pass over grants and policies.
    pub(crate) fn new(resources: &'a Resources) -> Self {
        let mut grants: HashMap<&str, Vec<&Arc<ReferenceGrant>>> = HashMap::new();
        for grant in resources.reference_grants.values() {
            if let Some(ns) = grant.metadata.namespace.as_deref() {
                grants.entry(ns).or_default().push(grant);
            }
        }
        let mut policies: HashMap<&str, Vec<&Arc<BackendTlsPolicy>>> = HashMap::new();
        for policy in resources.backend_tls_policies.values() {
            if let Some(ns) = policy.metadata.namespace.as_deref() {
                policies.entry(ns).or_default().push(policy);
            }
        }
        Inputs {
            resources,
            grants,
            policies,
        }
    }

    fn service(&self, key: &str) -> Option<&'a Arc<Service>> {
        self.resources.services.get(key)
    }

    fn grants(&self, ns: &str) -> &[&'a Arc<ReferenceGrant>] {
        self.grants.get(ns).map_or(&[], Vec::as_slice)
    }

    fn policies(&self, ns: &str) -> &[&'a Arc<BackendTlsPolicy>] {
        self.policies.get(ns).map_or(&[], Vec::as_slice)
    }

    fn config_map(&self, ns: &str, name: &str) -> Option<&'a Arc<ConfigMap>> {
        self.resources.config_maps.get(&format!("{ns}/{name}"))
    }

    /// The ConfigMaps named as CA certificates by the policies of `ns`.
    fn ca_maps(&self, ns: &str) -> Vec<(String, Option<Arc<ConfigMap>>)> {
        let mut names: Vec<&str> = self
            .policies(ns)
            .iter()
            .flat_map(|p| p.spec.validation.ca_certificate_refs.iter().flatten())
            .map(|r| r.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|n| (n.to_string(), self.config_map(ns, n).cloned()))
            .collect()
    }

    /// Whether what `read` saw is still what this view holds.
    fn unchanged(&self, read: &Read) -> bool {
        let ns = read.namespace.as_str();
        let service_same = match (&read.service, self.service(&read.key)) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        service_same
            && same(&read.grants, self.grants(ns))
            && same(&read.policies, self.policies(ns))
            && read
                .ca_maps
                .iter()
                .all(|(name, kept)| match (kept, self.config_map(ns, name)) {
                    (None, None) => true,
                    (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                    _ => false,
                })
    }

    fn capture(&self, ns: &str, name: &str) -> Read {
        let key = format!("{ns}/{name}");
        Read {
            namespace: ns.to_string(),
            service: self.service(&key).cloned(),
            key,
            grants: self.grants(ns).iter().map(|g| Arc::clone(g)).collect(),
            policies: self.policies(ns).iter().map(|p| Arc::clone(p)).collect(),
            ca_maps: self.ca_maps(ns),
        }
    }
}

/// Whether `kept` and `now` are the same objects in the same order.
fn same<T>(kept: &[Arc<T>], now: &[&Arc<T>]) -> bool {
    kept.len() == now.len() && kept.iter().zip(now).all(|(a, b)| Arc::ptr_eq(a, b))
}

impl<R> RouteMemos<R> {
    /// The compiled `route` (stored under `key`): the previous result when
    /// nothing it read changed, else a fresh `compile` that replaces it.
    ///
    /// # Guarantees
    ///
    /// Equal to `compile(inputs.resources, key, route)`.
    pub(crate) fn compile(
        &mut self,
        inputs: &Inputs<'_>,
        key: &str,
        route: &Arc<R>,
        compile: fn(&Resources, &str, &R) -> CompiledRoute,
    ) -> Arc<CompiledRoute> {
        let address = Arc::as_ptr(route).addr();
        if let Some(entry) = self.entries.get_mut(&address)
            && Arc::ptr_eq(&entry.object, route)
            && entry.reads.iter().all(|r| inputs.unchanged(r))
        {
            entry.used = self.epoch;
            return Arc::clone(&entry.compiled);
        }
        let compiled = Arc::new(compile(inputs.resources, key, route));
        let reads = compiled
            .reads
            .iter()
            .map(|(ns, name)| inputs.capture(ns, name))
            .collect();
        self.entries.insert(
            address,
            Entry {
                used: self.epoch,
                object: Arc::clone(route),
                reads,
                compiled: Arc::clone(&compiled),
            },
        );
        compiled
    }

    /// Ends a compile: forgets the routes it did not ask for (deleted, or
    /// no longer Tollgate's).
    pub(crate) fn retain_used(&mut self) {
        let epoch = self.epoch;
        self.entries.retain(|_, e| e.used == epoch);
        self.epoch += 1;
    }
}
