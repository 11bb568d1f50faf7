//! Inputs to `compile` that do not come from Kubernetes objects.
//!
//! A leaf: every part of compile may read the options, none of them
//! imports the compiler that passes them down.

/// The GatewayClass `controllerName` Tollgate answers to by default.
pub const CONTROLLER_NAME: &str = "tollgate.dev/gateway-controller";

/// Inputs to `compile` that do not come from Kubernetes objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompileOptions {
    /// GatewayClasses with this `controllerName` are Tollgate's.
    pub controller_name: String,
    /// Address listeners bind when a Gateway has no `spec.addresses`.
    pub bind_address: String,
    /// Added to every listener port when binding (tests use unprivileged ports).
    pub listener_port_offset: u16,
    /// RFC 3339 time written as `lastTransitionTime` on new conditions.
    pub now: String,
    /// Whether each Gateway's data plane runs in pods the operator
    /// provisions: `spec.addresses` are then the Service's addresses, not
    /// addresses to bind, and listeners bind `bind_address`.
    pub provisioned: bool,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            controller_name: CONTROLLER_NAME.to_string(),
            bind_address: "0.0.0.0".to_string(),
            listener_port_offset: 0,
            now: "1970-01-01T00:00:00Z".to_string(),
            provisioned: false,
        }
    }
}
