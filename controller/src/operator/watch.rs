//! Watches of the generated kinds, by the label every generated object
//! carries, so a user's edit or deletion reaches the operator at once
//! (drift repair) and the Deployment's availability and the Service's
//! addresses reach Gateway status.

use super::infra::{Address, deployment_available, service_addresses};
use futures_util::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tollgate_provision::names::{GATEWAY_LABEL, MANAGED_SELECTOR};
use tracing::warn;

/// What an object tells about its Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Fact {
    /// Nothing (ServiceAccount, PodDisruptionBudget, autoscaler).
    Nothing,
    /// A Deployment: whether it is available.
    Available(bool),
    /// A Service: its addresses.
    Addresses(Vec<Address>),
}

/// One generated object seen (or seen gone).
#[derive(Clone, Debug)]
pub(crate) struct Observed {
    /// Its kind.
    pub(crate) kind: &'static str,
    /// Its namespace.
    pub(crate) namespace: String,
    /// Its name.
    pub(crate) name: String,
    /// `namespace/gateway` from its labels.
    pub(crate) gateway: String,
    /// `None` when it was deleted.
    pub(crate) fact: Option<Fact>,
    /// A hash of everything but status and bookkeeping: a change that
    /// leaves it equal (a status update) needs no apply.
    pub(crate) content: u64,
}

/// Hash of `object` without `status`, `resourceVersion` and
/// `managedFields`.
fn content_hash<K: serde::Serialize>(object: &K) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut value = serde_json::to_value(object).unwrap_or_default();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
    hasher.finish()
}

/// The Deployment's fact.
pub(crate) fn deployment_fact(d: &Deployment) -> Fact {
    Fact::Available(deployment_available(d))
}

/// The Service's fact.
pub(crate) fn service_fact(s: &Service) -> Fact {
    Fact::Addresses(service_addresses(s))
}

/// No fact.
pub(crate) fn no_fact<K>(_: &K) -> Fact {
    Fact::Nothing
}

/// Watches every object of `K` labelled as Tollgate's, in every
/// namespace, sending what it sees on `tx` until `tx` closes. Errors are
/// retried with the watcher's default backoff.
pub(crate) fn spawn<K>(
    client: Client,
    kind: &'static str,
    fact: fn(&K) -> Fact,
    tx: mpsc::Sender<Observed>,
) -> JoinHandle<()>
where
    K: Resource<DynamicType = ()>
        + Clone
        + DeserializeOwned
        + serde::Serialize
        + Debug
        + Send
        + Sync
        + 'static,
{
    let api: Api<K> = Api::all(client);
    let config = watcher::Config::default().labels(MANAGED_SELECTOR);
    tokio::spawn(async move {
        let mut stream = watcher(api, config).default_backoff().boxed();
        while let Some(event) = stream.next().await {
            let (object, present) = match event {
                Ok(Event::Apply(o) | Event::InitApply(o)) => (o, true),
                Ok(Event::Delete(o)) => (o, false),
                Ok(_) => continue,
                Err(error) => {
                    warn!(kind, %error, "watch of provisioned objects failed; retrying");
                    continue;
                }
            };
            // The owner names the Gateway whole; the label only when the
            // name fits in a label value.
            let owner = object
                .owner_references()
                .iter()
                .find(|o| o.kind == "Gateway")
                .map(|o| o.name.clone());
            let Some(gateway) = owner.or_else(|| object.labels().get(GATEWAY_LABEL).cloned())
            else {
                continue;
            };
            let namespace = object.namespace().unwrap_or_default();
            let observed = Observed {
                kind,
                gateway: format!("{namespace}/{gateway}"),
                name: object.name_any(),
                namespace,
                fact: present.then(|| fact(&object)),
                content: content_hash(&object),
            };
            if tx.send(observed).await.is_err() {
                return;
            }
        }
    })
}
