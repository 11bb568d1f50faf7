//! The ServiceAccount, PodDisruptionBudget and HorizontalPodAutoscaler.

use crate::{Context, names};
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The pods' ServiceAccount. The data plane never calls the Kubernetes
/// API (it gets everything in its snapshot), so no token is mounted.
pub(crate) fn service_account(ctx: &Context<'_>) -> ServiceAccount {
    ServiceAccount {
        metadata: ctx.meta(None, None),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    }
}

/// The PodDisruptionBudget, unless disabled: at most one pod down at a
/// time by default, so a node drain never takes the whole Gateway.
pub(crate) fn pod_disruption_budget(ctx: &Context<'_>) -> Option<PodDisruptionBudget> {
    let settings = ctx.config.pod_disruption_budget.clone().unwrap_or_default();
    if settings.enabled == Some(false) {
        return None;
    }
    let max_unavailable = match (&settings.min_available, settings.max_unavailable) {
        (Some(_), None) => None,
        (_, Some(max)) => Some(max),
        (None, None) => Some(IntOrString::Int(1)),
    };
    Some(PodDisruptionBudget {
        metadata: ctx.meta(None, None),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(LabelSelector {
                match_labels: Some(names::selector(&ctx.name)),
                match_expressions: None,
            }),
            min_available: settings.min_available,
            max_unavailable,
            unhealthy_pod_eviction_policy: None,
        }),
        status: None,
    })
}

/// Whether the autoscaler owns the replica count.
pub(crate) fn autoscaling(ctx: &Context<'_>) -> bool {
    ctx.config
        .autoscaling
        .as_ref()
        .and_then(|a| a.enabled)
        .unwrap_or(false)
}

/// The HorizontalPodAutoscaler, when enabled: CPU-based.
pub(crate) fn autoscaler(ctx: &Context<'_>) -> Option<HorizontalPodAutoscaler> {
    if !autoscaling(ctx) {
        return None;
    }
    let settings = ctx.config.autoscaling.clone().unwrap_or_default();
    let min = settings.min_replicas.unwrap_or(2);
    let max = settings.max_replicas.unwrap_or(10).max(min);
    Some(HorizontalPodAutoscaler {
        metadata: ctx.meta(None, None),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some("apps/v1".to_string()),
                kind: "Deployment".to_string(),
                name: ctx.base(),
            },
            min_replicas: Some(min),
            max_replicas: max,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".to_string(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".to_string(),
                    target: MetricTarget {
                        type_: "Utilization".to_string(),
                        average_utilization: Some(
                            settings.target_cpu_utilization_percentage.unwrap_or(80),
                        ),
                        ..MetricTarget::default()
                    },
                }),
                ..MetricSpec::default()
            }]),
            behavior: None,
        }),
        status: None,
    })
}
