//! `GatewayConfig.spec.kubernetes`: how the controller provisions each
//! Gateway's data plane (Deployment, Service, PodDisruptionBudget,
//! HorizontalPodAutoscaler).
//!
//! The GatewayClass's GatewayConfig gives the defaults of every Gateway of
//! the class; a Gateway's `spec.infrastructure.parametersRef` (a
//! GatewayConfig in the Gateway's own namespace) overrides them field by
//! field. Typed fields cover what users usually ask for; `patches` is the
//! escape hatch for everything else.

use k8s_openapi::api::core::v1::{
    Affinity, LocalObjectReference, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How each Gateway's data plane is provisioned in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct KubernetesConfig {
    /// The data plane's Deployment and its pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentConfig>,
    /// The Service exposing the Gateway's listener ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceConfig>,
    /// The PodDisruptionBudget of the data-plane pods. Default: at most
    /// one pod unavailable at a time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<PodDisruptionBudgetConfig>,
    /// A HorizontalPodAutoscaler for the Deployment; absent or disabled
    /// means a fixed replica count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingConfig>,
    /// Strategic merge patches applied to the generated objects last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patches: Option<PatchesConfig>,
}

/// The data-plane Deployment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentConfig {
    /// Number of data-plane pods. Default 2. Ignored while autoscaling is
    /// enabled (the HorizontalPodAutoscaler owns the count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,
    /// The data-plane image. Default: the controller's
    /// `--dataplane-image`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// `Always`, `IfNotPresent` or `Never`. Default: Kubernetes' default
    /// for the image tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_policy: Option<String>,
    /// Secrets used to pull the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_pull_secrets: Option<Vec<LocalObjectReference>>,
    /// CPU and memory requests and limits of the data-plane container.
    /// Default: requests of 100m CPU and 128Mi memory, no limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// Annotations added to the pods (not to the Deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_annotations: Option<BTreeMap<String, String>>,
    /// Labels added to the pods; the selector labels cannot be replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_labels: Option<BTreeMap<String, String>>,
    /// Node labels the pods must be scheduled on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerations: Option<Vec<Toleration>>,
    /// Node and pod affinity of the pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,
    /// How pods spread across zones or nodes. A constraint without a
    /// `labelSelector` gets the data plane's pod selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology_spread_constraints: Option<Vec<TopologySpreadConstraint>>,
    /// Seconds a stopping pod keeps accepting connections after its
    /// readiness turns false, so load balancers stop sending it traffic
    /// before it stops listening. Default 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 300))]
    pub drain_delay_seconds: Option<u32>,
}

/// The Service in front of the data-plane pods.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceConfig {
    /// `LoadBalancer` (default), `NodePort` or `ClusterIP`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(LoadBalancer|NodePort|ClusterIP)$"))]
    pub type_: Option<String>,
    /// `Cluster` or `Local`. `Local` keeps client source addresses and
    /// avoids a second hop, at the cost of uneven spreading.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(Cluster|Local)$"))]
    pub external_traffic_policy: Option<String>,
    /// The load-balancer implementation to use (`spec.loadBalancerClass`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_class: Option<String>,
    /// Client address ranges the load balancer admits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer_source_ranges: Option<Vec<String>>,
    /// Annotations of the Service (cloud load-balancer settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<BTreeMap<String, String>>,
    /// Labels added to the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The PodDisruptionBudget of the data-plane pods: set at most one of the
/// two numbers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodDisruptionBudgetConfig {
    /// Whether to create one. Default true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Pods (or a percentage) that must stay available during voluntary
    /// disruptions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods (or a percentage) that may be unavailable at once. Default 1
    /// when minAvailable is not set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// The HorizontalPodAutoscaler of the data plane.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingConfig {
    /// Whether to create one. Default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Fewest pods. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    /// Most pods. Default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_replicas: Option<i32>,
    /// Average CPU use, in percent of the request, the autoscaler aims
    /// for. Default 80.
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
}

/// Strategic merge patches of the generated objects, applied after every
/// typed setting. Lists of named items (containers, env, volumes,
/// volumeMounts, ports) merge by `name`; other lists are replaced; `null`
/// removes a field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PatchesConfig {
    /// Merged into the Deployment, e.g.
    /// `{"spec": {"template": {"spec": {"priorityClassName": "high"}}}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub deployment: Option<serde_json::Value>,
    /// Merged into the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub service: Option<serde_json::Value>,
}

/// Any JSON object, kept whole by the API server.
fn free_form_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}
