//! The reflector stores of every watched kind, and the [`Resources`] view
//! assembled from them.
//!
//! Cluster-scoped kinds are watched cluster-wide; namespaced kinds
//! cluster-wide too, or once per namespace when the provider is limited to
//! a list of namespaces. Secrets and ConfigMaps are watched by metadata
//! only; their full objects come from [`super::fetch`].

use super::fingerprint::{self, key_of};
use super::lenient::{self, Lenient};
use super::share::Shares;
use super::watch::{Kind, Signal, WatchId, WatchKind, trim_managed_fields, trim_to_identity};
use crate::metrics::Metrics;
use ::kube::core::{NamespaceResourceScope, PartialObjectMeta};
use ::kube::runtime::reflector::Lookup;
use ::kube::runtime::reflector::store::{Store, Writer};
use ::kube::{Api, Client, Resource};
use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::experimental::{
    gatewayclasses::GatewayClass, gateways::Gateway, grpcroutes::GrpcRoute, httproutes::HttpRoute,
    listenersets::ListenerSet, referencegrants::ReferenceGrant, tlsroutes::TlsRoute,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Debug;
use std::sync::Arc;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tollgate_compile::resources::{Objects, Resources, Undecodable};
use tollgate_crds::{AuthPolicy, GatewayConfig, RateLimitPolicy};

/// Read handles on every kind's stores (one per watched namespace, or one
/// for all).
pub(super) struct Stores {
    gateway_classes: Vec<Store<Lenient<GatewayClass>>>,
    gateways: Vec<Store<Lenient<Gateway>>>,
    listener_sets: Vec<Store<Lenient<ListenerSet>>>,
    http_routes: Vec<Store<Lenient<HttpRoute>>>,
    grpc_routes: Vec<Store<Lenient<GrpcRoute>>>,
    tls_routes: Vec<Store<Lenient<TlsRoute>>>,
    reference_grants: Vec<Store<Lenient<ReferenceGrant>>>,
    backend_tls_policies: Vec<Store<Lenient<BackendTlsPolicy>>>,
    namespaces: Vec<Store<Lenient<Namespace>>>,
    services: Vec<Store<Lenient<Service>>>,
    endpoint_slices: Vec<Store<Lenient<EndpointSlice>>>,
    gateway_configs: Vec<Store<Lenient<GatewayConfig>>>,
    auth_policies: Vec<Store<Lenient<AuthPolicy>>>,
    rate_limit_policies: Vec<Store<Lenient<RateLimitPolicy>>>,
    /// Secrets: metadata only.
    pub(super) secrets: Vec<Store<PartialObjectMeta<Secret>>>,
    /// ConfigMaps: metadata only.
    pub(super) config_maps: Vec<Store<PartialObjectMeta<ConfigMap>>>,
    /// Every watch started; the first view waits for all of them.
    pub(super) watches: Vec<WatchId>,
}

/// What every kind's task shares.
struct Spawner<'a> {
    client: &'a Client,
    signals: &'a UnboundedSender<Signal>,
    tasks: &'a mut JoinSet<()>,
    missing_after: u32,
    metrics: Metrics,
    /// `None`: namespaced kinds are watched cluster-wide.
    namespaces: Option<&'a BTreeSet<String>>,
    watches: Vec<WatchId>,
}

impl Spawner<'_> {
    /// The scopes of a namespaced kind: every namespace, or each listed one.
    fn scopes(&self) -> Vec<Option<String>> {
        match self.namespaces {
            None => vec![None],
            Some(list) => list.iter().cloned().map(Some).collect(),
        }
    }

    /// Watches a cluster-scoped kind with its full objects, each decoded
    /// on its own.
    fn cluster<K>(&mut self, kind: Kind) -> Vec<Store<Lenient<K>>>
    where
        K: Resource<DynamicType = ()> + Serialize,
        K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let api = Api::<Lenient<K>>::all_with(self.client.clone(), &());
        let print = lenient::print_of::<K>;
        vec![self.spawn((kind, None), api, trim_managed_fields, print)]
    }

    /// Watches a namespaced kind with its full objects, each decoded on its
    /// own; changes are content changes.
    fn namespaced<K>(&mut self, kind: Kind) -> Vec<Store<Lenient<K>>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Serialize,
        K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let print = lenient::print_of::<K>;
        let scopes = self.scopes();
        scopes
            .into_iter()
            .map(|ns| {
                let api = self.api::<Lenient<K>>(ns.as_deref());
                self.spawn((kind, ns), api, trim_managed_fields, print)
            })
            .collect()
    }

    /// Watches a namespaced kind by metadata only; changes are
    /// resourceVersion changes.
    fn metadata<K>(&mut self, kind: Kind) -> Vec<Store<PartialObjectMeta<K>>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
        K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let trim = trim_to_identity::<PartialObjectMeta<K>>;
        let print = fingerprint::resource_version::<PartialObjectMeta<K>>;
        let scopes = self.scopes();
        scopes
            .into_iter()
            .map(|ns| {
                let api = self.api::<PartialObjectMeta<K>>(ns.as_deref());
                self.spawn((kind, ns), api, trim, print)
            })
            .collect()
    }

    fn api<K>(&self, namespace: Option<&str>) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>,
    {
        match namespace {
            None => Api::all(self.client.clone()),
            Some(ns) => Api::namespaced(self.client.clone(), ns),
        }
    }

    fn spawn<K>(
        &mut self,
        id: WatchId,
        api: Api<K>,
        trim: fn(&mut K),
        print: fn(&K) -> u64,
    ) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Lookup<DynamicType = ()> + Shares,
        K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let writer = Writer::default();
        let store = writer.as_reader();
        let watch = WatchKind {
            id: id.clone(),
            api,
            trim,
            fingerprint: print,
            missing_after: self.missing_after,
            metrics: self.metrics.clone(),
        };
        self.tasks.spawn(watch.run(writer, self.signals.clone()));
        self.watches.push(id);
        store
    }
}

impl Stores {
    /// Starts the watch tasks in `tasks`; each reports to `signals`.
    /// Namespaced kinds are watched in each of `namespaces`, or everywhere
    /// when `None`.
    pub(super) fn spawn(
        client: &Client,
        signals: &UnboundedSender<Signal>,
        tasks: &mut JoinSet<()>,
        missing_after: u32,
        namespaces: Option<&BTreeSet<String>>,
        metrics: &Metrics,
    ) -> Stores {
        let mut s = Spawner {
            client,
            signals,
            tasks,
            missing_after,
            metrics: metrics.clone(),
            namespaces,
            watches: Vec::new(),
        };
        Stores {
            gateway_classes: s.cluster(Kind::GatewayClass),
            gateways: s.namespaced(Kind::Gateway),
            listener_sets: s.namespaced(Kind::ListenerSet),
            http_routes: s.namespaced(Kind::HttpRoute),
            grpc_routes: s.namespaced(Kind::GrpcRoute),
            tls_routes: s.namespaced(Kind::TlsRoute),
            reference_grants: s.namespaced(Kind::ReferenceGrant),
            backend_tls_policies: s.namespaced(Kind::BackendTlsPolicy),
            namespaces: s.cluster(Kind::Namespace),
            services: s.namespaced(Kind::Service),
            endpoint_slices: s.namespaced(Kind::EndpointSlice),
            gateway_configs: s.namespaced(Kind::GatewayConfig),
            auth_policies: s.namespaced(Kind::AuthPolicy),
            rate_limit_policies: s.namespaced(Kind::RateLimitPolicy),
            secrets: s.metadata(Kind::Secret),
            config_maps: s.metadata(Kind::ConfigMap),
            watches: s.watches,
        }
    }

    /// Every kind's current objects, without Secrets and ConfigMaps (the
    /// provider adds the referenced ones).
    pub(super) fn resources(&self) -> Resources {
        Resources {
            gateway_classes: objects(&self.gateway_classes),
            gateways: objects(&self.gateways),
            listener_sets: objects(&self.listener_sets),
            http_routes: objects(&self.http_routes),
            grpc_routes: objects(&self.grpc_routes),
            tls_routes: objects(&self.tls_routes),
            reference_grants: objects(&self.reference_grants),
            backend_tls_policies: objects(&self.backend_tls_policies),
            namespaces: objects(&self.namespaces),
            services: objects(&self.services),
            endpoint_slices: objects(&self.endpoint_slices),
            gateway_configs: objects(&self.gateway_configs),
            auth_policies: objects(&self.auth_policies),
            rate_limit_policies: objects(&self.rate_limit_policies),
            undecodable: self.undecodable(),
            ..Resources::default()
        }
    }

    /// Every object that did not decode, of every kind.
    fn undecodable(&self) -> BTreeMap<(String, String), Arc<Undecodable>> {
        let mut all = BTreeMap::new();
        failures(&self.gateway_classes, &mut all);
        failures(&self.gateways, &mut all);
        failures(&self.listener_sets, &mut all);
        failures(&self.http_routes, &mut all);
        failures(&self.grpc_routes, &mut all);
        failures(&self.tls_routes, &mut all);
        failures(&self.reference_grants, &mut all);
        failures(&self.backend_tls_policies, &mut all);
        failures(&self.namespaces, &mut all);
        failures(&self.services, &mut all);
        failures(&self.endpoint_slices, &mut all);
        failures(&self.gateway_configs, &mut all);
        failures(&self.auth_policies, &mut all);
        failures(&self.rate_limit_policies, &mut all);
        all
    }
}

/// The decoded objects of `stores`, keyed as [`Objects`].
fn objects<K>(stores: &[Store<Lenient<K>>]) -> Objects<K>
where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    stores
        .iter()
        .flat_map(|store| store.state())
        .filter_map(|o| Some((key_of(o.as_ref()), Arc::clone(o.decoded.as_ref().ok()?))))
        .collect()
}

/// Adds the objects of `stores` that did not decode to `into`.
fn failures<K>(
    stores: &[Store<Lenient<K>>],
    into: &mut BTreeMap<(String, String), Arc<Undecodable>>,
) where
    K: Resource<DynamicType = ()> + Clone + 'static,
{
    for object in stores.iter().flat_map(|store| store.state()) {
        if let Err(failure) = &object.decoded {
            into.insert(failure.key(), Arc::clone(failure));
        }
    }
}
