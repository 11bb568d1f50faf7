//! The reflector stores of every watched kind, and the [`Resources`] view
//! assembled from them.
//!
//! Every kind is watched cluster-wide. Secrets and ConfigMaps are watched
//! by metadata only; their full objects come from [`super::fetch`].

use super::fingerprint::{self, key_of};
use super::watch::{Kind, Signal, WatchKind, trim_managed_fields, trim_to_identity};
use crate::resources::{Objects, Resources};
use ::kube::core::PartialObjectMeta;
use ::kube::runtime::reflector::Lookup;
use ::kube::runtime::reflector::store::{Store, Writer};
use ::kube::{Api, Client, Resource};
use gateway_api::experimental::{
    gatewayclasses::GatewayClass, gateways::Gateway, grpcroutes::GrpcRoute, httproutes::HttpRoute,
    referencegrants::ReferenceGrant,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinSet;
use tollgate_crds::GatewayConfig;

/// Read handles on every kind's store.
pub(super) struct Stores {
    gateway_classes: Store<GatewayClass>,
    gateways: Store<Gateway>,
    http_routes: Store<HttpRoute>,
    grpc_routes: Store<GrpcRoute>,
    reference_grants: Store<ReferenceGrant>,
    namespaces: Store<Namespace>,
    services: Store<Service>,
    endpoint_slices: Store<EndpointSlice>,
    gateway_configs: Store<GatewayConfig>,
    /// Secrets: metadata only.
    pub(super) secrets: Store<PartialObjectMeta<Secret>>,
    /// ConfigMaps: metadata only.
    pub(super) config_maps: Store<PartialObjectMeta<ConfigMap>>,
}

/// What every kind's task shares.
struct Spawner<'a> {
    client: &'a Client,
    signals: &'a UnboundedSender<Signal>,
    tasks: &'a mut JoinSet<()>,
    missing_after: u32,
}

impl Spawner<'_> {
    /// Watches a kind with its full objects; changes are content changes.
    fn full<K>(&mut self, kind: Kind) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Lookup<DynamicType = ()> + Serialize,
        K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.spawn(kind, trim_managed_fields::<K>, fingerprint::content::<K>)
    }

    /// Watches a kind by metadata only; changes are resourceVersion changes.
    fn metadata<K>(&mut self, kind: Kind) -> Store<PartialObjectMeta<K>>
    where
        K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        self.spawn(
            kind,
            trim_to_identity::<PartialObjectMeta<K>>,
            fingerprint::resource_version::<PartialObjectMeta<K>>,
        )
    }

    fn spawn<K>(&mut self, kind: Kind, trim: fn(&mut K), print: fn(&K) -> u64) -> Store<K>
    where
        K: Resource<DynamicType = ()> + Lookup<DynamicType = ()>,
        K: Clone + DeserializeOwned + Debug + Send + Sync + 'static,
    {
        let writer = Writer::default();
        let store = writer.as_reader();
        let watch = WatchKind {
            kind,
            api: Api::<K>::all_with(self.client.clone(), &()),
            trim,
            fingerprint: print,
            missing_after: self.missing_after,
        };
        self.tasks.spawn(watch.run(writer, self.signals.clone()));
        store
    }
}

impl Stores {
    /// Starts one watch task per kind in `tasks`; each reports to `signals`.
    pub(super) fn spawn(
        client: &Client,
        signals: &UnboundedSender<Signal>,
        tasks: &mut JoinSet<()>,
        missing_after: u32,
    ) -> Stores {
        let mut s = Spawner {
            client,
            signals,
            tasks,
            missing_after,
        };
        Stores {
            gateway_classes: s.full(Kind::GatewayClass),
            gateways: s.full(Kind::Gateway),
            http_routes: s.full(Kind::HttpRoute),
            grpc_routes: s.full(Kind::GrpcRoute),
            reference_grants: s.full(Kind::ReferenceGrant),
            namespaces: s.full(Kind::Namespace),
            services: s.full(Kind::Service),
            endpoint_slices: s.full(Kind::EndpointSlice),
            gateway_configs: s.full(Kind::GatewayConfig),
            secrets: s.metadata(Kind::Secret),
            config_maps: s.metadata(Kind::ConfigMap),
        }
    }

    /// Every kind's current objects, without Secrets and ConfigMaps (the
    /// provider adds the referenced ones).
    pub(super) fn resources(&self) -> Resources {
        Resources {
            gateway_classes: objects(&self.gateway_classes),
            gateways: objects(&self.gateways),
            http_routes: objects(&self.http_routes),
            grpc_routes: objects(&self.grpc_routes),
            reference_grants: objects(&self.reference_grants),
            namespaces: objects(&self.namespaces),
            services: objects(&self.services),
            endpoint_slices: objects(&self.endpoint_slices),
            gateway_configs: objects(&self.gateway_configs),
            ..Resources::default()
        }
    }
}

fn objects<K>(store: &Store<K>) -> Objects<K>
where
    K: Resource + Lookup + Clone + 'static,
    <K as Lookup>::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .state()
        .iter()
        .map(|o| (key_of(o.as_ref()), o.as_ref().clone()))
        .collect()
}
