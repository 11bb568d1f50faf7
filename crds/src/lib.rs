//! Tollgate's custom resource types, and the Gateway API types Tollgate reads.
//!
//! Tollgate's own kinds live in the `tollgate.dev` group. The Gateway API
//! types are re-exported from the `gateway-api` crate's experimental channel,
//! a superset of the standard channel, so manifests written for either
//! channel deserialize.

pub mod auth_calls;
pub mod auth_methods;
mod auth_policy;
pub mod authorization;
mod gateway_config;
pub mod generate;
mod kubernetes_config;
mod rate_limit_policy;

pub use auth_policy::{
    AncestorRef, AuthPolicy, AuthPolicySpec, AuthPolicyStatus, AuthSections, CallBackendRef,
    LocalObjectRef, PolicyAncestorStatus, PolicyTargetRef,
};
pub use gateway_config::{
    AccessLogConfig, ClientAddressConfig, ClientCertificateHeaderConfig, GatewayConfig,
    GatewayConfigSpec, RateLimitConfig, RedisConfig, RetryConfig, TelemetryConfig, TlsConfig,
    TracingConfig, TracingSampler,
};
pub use kubernetes_config::{
    AutoscalingConfig, DeploymentConfig, KubernetesConfig, PatchesConfig,
    PodDisruptionBudgetConfig, ServiceConfig,
};
pub use rate_limit_policy::{
    ConditionSpec, CostSpec, Empty, HeaderConditionSpec, HeaderCostSpec, KeyPartSpec, LimitSpec,
    Named, RateLimitPolicy, RateLimitPolicySpec,
};

/// The Gateway API types (experimental channel: a superset of standard).
pub use gateway_api::experimental as gateway;

/// The API group of Tollgate's own kinds.
pub const GROUP: &str = "tollgate.dev";
