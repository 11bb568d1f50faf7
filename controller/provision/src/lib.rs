//! Tollgate's provisioner: what a Gateway's data plane looks like in
//! Kubernetes.
//!
//! [`desired`] turns a Gateway and its merged `GatewayConfig.spec.kubernetes`
//! into the objects the operator applies: a Deployment of
//! `tollgate-dataplane`, a Service exposing the listener ports, a
//! ServiceAccount, a PodDisruptionBudget and optionally a
//! HorizontalPodAutoscaler, all labelled and owned by the Gateway. It is a
//! pure function (no I/O, no clock), golden-tested like `compile`, so what
//! a user gets for a Gateway can be read in `testdata/` and reviewed in
//! diffs.

mod deployment;
pub mod names;
mod others;
pub mod patch;
mod service;

use gateway_api::experimental::gateways::Gateway;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use thiserror::Error;
use tollgate_crds::KubernetesConfig;

/// Port of the data plane's admin endpoints (`/readyz`, `/healthz`,
/// `/metrics`) inside the pod.
pub const ADMIN_PORT: i32 = 9901;
/// Where the client-certificate Secret is mounted.
pub const TLS_DIR: &str = "/etc/tollgate/client";
/// Where the data plane keeps its last applied snapshot.
pub const STATE_DIR: &str = "/var/lib/tollgate";
/// Seconds the preStop hook sleeps before the data plane gets SIGTERM.
pub const PRE_STOP_SECONDS: i64 = 5;

/// Inputs that come from the controller rather than from the Gateway.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Env {
    /// Image of data planes whose configuration names none.
    pub image: String,
    /// The controller's snapshot URL, passed as `TOLLGATE_CONTROLLER`.
    pub controller_url: String,
    /// `OTEL_*` variables of the controller, copied to data planes.
    pub otel: Vec<(String, String)>,
    /// Seconds in-flight requests may take to finish at shutdown (the
    /// GatewayConfig's `drainTimeoutSeconds`, default 5).
    pub drain_timeout_seconds: u32,
}

/// One generated object.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Desired {
    /// The data-plane Deployment.
    Deployment(Box<Deployment>),
    /// The Service in front of it.
    Service(Box<Service>),
    /// The pods' ServiceAccount.
    ServiceAccount(Box<ServiceAccount>),
    /// The PodDisruptionBudget.
    PodDisruptionBudget(Box<PodDisruptionBudget>),
    /// The autoscaler, when enabled.
    HorizontalPodAutoscaler(Box<HorizontalPodAutoscaler>),
}

impl Desired {
    /// The object's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Desired::Deployment(_) => "Deployment",
            Desired::Service(_) => "Service",
            Desired::ServiceAccount(_) => "ServiceAccount",
            Desired::PodDisruptionBudget(_) => "PodDisruptionBudget",
            Desired::HorizontalPodAutoscaler(_) => "HorizontalPodAutoscaler",
        }
    }
}

/// Why a Gateway's objects cannot be generated.
#[derive(Debug, Error)]
pub enum ProvisionError {
    /// The Gateway has no `metadata.uid` yet (only stored objects do), so
    /// nothing could be owned by it.
    #[error("Gateway {0} has no uid")]
    NoUid(String),
    /// A patch made an object that is not one of its kind.
    #[error("patches.{kind} does not give a valid {kind}: {error}")]
    Patch {
        /// `deployment` or `service`.
        kind: &'static str,
        /// What failed to decode.
        error: serde_json::Error,
    },
    /// The merged configuration does not decode (a bug, or a field too
    /// new for this controller).
    #[error("GatewayConfig settings do not merge: {0}")]
    Config(serde_json::Error),
}

/// The objects of `gateway`'s data plane under `config` (already merged
/// with [`merge_configs`]).
///
/// # Errors
///
/// [`ProvisionError::NoUid`] for a Gateway that was never stored, and
/// [`ProvisionError::Patch`] when a patch breaks an object.
///
/// # Guarantees
///
/// Deterministic, sorted by kind; every object carries the labels of
/// [`names::labels`] and one controller ownerReference to the Gateway.
pub fn desired(
    gateway: &Gateway,
    config: &KubernetesConfig,
    env: &Env,
) -> Result<Vec<Desired>, ProvisionError> {
    let name = gateway.metadata.name.clone().unwrap_or_default();
    let namespace = gateway.metadata.namespace.clone().unwrap_or_default();
    let uid = gateway
        .metadata
        .uid
        .clone()
        .ok_or_else(|| ProvisionError::NoUid(format!("{namespace}/{name}")))?;
    let ctx = Context {
        gateway,
        name,
        namespace,
        uid,
        config,
        env,
    };
    let mut out = vec![
        Desired::Deployment(Box::new(deployment::deployment(&ctx)?)),
        Desired::Service(Box::new(service::service(&ctx)?)),
        Desired::ServiceAccount(Box::new(others::service_account(&ctx))),
    ];
    if let Some(pdb) = others::pod_disruption_budget(&ctx) {
        out.push(Desired::PodDisruptionBudget(Box::new(pdb)));
    }
    if let Some(hpa) = others::autoscaler(&ctx) {
        out.push(Desired::HorizontalPodAutoscaler(Box::new(hpa)));
    }
    Ok(out)
}

/// The class's settings overridden field by field by the Gateway's.
///
/// # Errors
///
/// [`ProvisionError::Config`] when the merged JSON does not decode.
pub fn merge_configs(
    class: Option<&KubernetesConfig>,
    gateway: Option<&KubernetesConfig>,
) -> Result<KubernetesConfig, ProvisionError> {
    let to_json = |c: Option<&KubernetesConfig>| {
        c.map(serde_json::to_value)
            .transpose()
            .map_err(ProvisionError::Config)
    };
    let mut merged = to_json(class)?.unwrap_or_else(|| serde_json::json!({}));
    if let Some(over) = to_json(gateway)? {
        patch::overlay(&mut merged, &over);
    }
    serde_json::from_value(merged).map_err(ProvisionError::Config)
}

/// What every generator reads.
pub(crate) struct Context<'a> {
    pub(crate) gateway: &'a Gateway,
    pub(crate) name: String,
    pub(crate) namespace: String,
    pub(crate) uid: String,
    pub(crate) config: &'a KubernetesConfig,
    pub(crate) env: &'a Env,
}

impl Context<'_> {
    /// The generated objects' name.
    pub(crate) fn base(&self) -> String {
        names::base(&self.name)
    }

    /// Metadata of a generated object: the Gateway's infrastructure labels
    /// and annotations, then `labels`/`annotations`, then Tollgate's own
    /// labels (which nothing may replace: selectors and the operator's
    /// watch depend on them), and the owner reference.
    pub(crate) fn meta(
        &self,
        labels: Option<&BTreeMap<String, String>>,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.base()),
            namespace: Some(self.namespace.clone()),
            labels: Some(self.labels(labels)),
            annotations: self.annotations(annotations),
            owner_references: Some(vec![OwnerReference {
                api_version: "gateway.networking.k8s.io/v1".to_string(),
                kind: "Gateway".to_string(),
                name: self.name.clone(),
                uid: self.uid.clone(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        }
    }

    /// Infrastructure labels, then `extra`, then Tollgate's.
    pub(crate) fn labels(
        &self,
        extra: Option<&BTreeMap<String, String>>,
    ) -> BTreeMap<String, String> {
        let infra = self.gateway.spec.infrastructure.as_ref();
        let mut labels = infra.and_then(|i| i.labels.clone()).unwrap_or_default();
        labels.extend(extra.cloned().unwrap_or_default());
        labels.extend(names::labels(
            &self.name,
            &self.gateway.spec.gateway_class_name,
        ));
        labels
    }

    /// Infrastructure annotations, then `extra`; `None` when empty.
    pub(crate) fn annotations(
        &self,
        extra: Option<&BTreeMap<String, String>>,
    ) -> Option<BTreeMap<String, String>> {
        let infra = self.gateway.spec.infrastructure.as_ref();
        let mut annotations = infra
            .and_then(|i| i.annotations.clone())
            .unwrap_or_default();
        annotations.extend(extra.cloned().unwrap_or_default());
        (!annotations.is_empty()).then_some(annotations)
    }
}

/// `object` with `patch` strategically merged in.
pub(crate) fn patched<T: Serialize + DeserializeOwned>(
    object: T,
    patch: Option<&serde_json::Value>,
    kind: &'static str,
) -> Result<T, ProvisionError> {
    let Some(patch) = patch else {
        return Ok(object);
    };
    let mut value =
        serde_json::to_value(&object).map_err(|error| ProvisionError::Patch { kind, error })?;
    patch::strategic_merge(&mut value, patch);
    serde_json::from_value(value).map_err(|error| ProvisionError::Patch { kind, error })
}
