//! Writing the generated objects: server-side apply with force, as field
//! manager `tollgate-operator`, so the operator owns exactly the fields it
//! sets and takes them back from anyone who changed them, while fields it
//! does not set (a Service's node ports, an HPA-owned replica count) stay
//! with whoever set them.

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{DeleteParams, Patch, PatchParams};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use tollgate_provision::Desired;

/// The field manager of every write.
pub const FIELD_MANAGER: &str = "tollgate-operator";

/// Applies one generated object.
///
/// # Errors
///
/// What the API server answers.
pub(crate) async fn apply(client: &Client, object: &Desired) -> Result<(), kube::Error> {
    match object {
        Desired::Deployment(o) => apply_typed(client, o.as_ref()).await,
        Desired::Service(o) => apply_typed(client, o.as_ref()).await,
        Desired::ServiceAccount(o) => apply_typed(client, o.as_ref()).await,
        Desired::PodDisruptionBudget(o) => apply_typed(client, o.as_ref()).await,
        Desired::HorizontalPodAutoscaler(o) => apply_typed(client, o.as_ref()).await,
    }
}

async fn apply_typed<K>(client: &Client, object: &K) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&object.name_any(), &params, &Patch::Apply(object))
        .await
        .map(drop)
}

/// Deletes one generated object of `kind`; one already gone is fine.
///
/// # Errors
///
/// What the API server answers, but 404.
pub(crate) async fn delete(
    client: &Client,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<(), kube::Error> {
    match kind {
        "Deployment" => delete_typed::<Deployment>(client, namespace, name).await,
        "Service" => delete_typed::<Service>(client, namespace, name).await,
        "ServiceAccount" => delete_typed::<ServiceAccount>(client, namespace, name).await,
        "PodDisruptionBudget" => delete_typed::<PodDisruptionBudget>(client, namespace, name).await,
        "HorizontalPodAutoscaler" => {
            delete_typed::<HorizontalPodAutoscaler>(client, namespace, name).await
        }
        _ => Ok(()),
    }
}

async fn delete_typed<K>(client: &Client, namespace: &str, name: &str) -> Result<(), kube::Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}
