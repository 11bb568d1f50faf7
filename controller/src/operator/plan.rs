//! Which Gateways get a data plane, and with which objects: the
//! Kubernetes-free half of the operator, on the compiled view.

use crate::status::StatusStore;
use gateway_api::experimental::gateways::{Gateway, GatewayListeners};
use serde_json::Value;
use std::sync::Arc;
use tollgate_compile::resources::Resources;
use tollgate_crds::{GROUP, GatewayConfigSpec, KubernetesConfig};
use tollgate_provision::{Desired, Env, ProvisionError, desired, merge_configs};

/// Default drain timeout of a data plane, as the snapshot's settings have it.
const DRAIN_TIMEOUT_SECONDS: u32 = 5;

/// The accepted Gateways of Tollgate's classes in `resources`, by
/// `namespace/name`: compile decided acceptance (class, parameters,
/// listeners) and stored it in `statuses`, which only hold Tollgate's.
pub(crate) fn accepted_gateways(
    resources: &Resources,
    statuses: &StatusStore,
) -> Vec<(String, Arc<Gateway>)> {
    resources
        .gateways
        .iter()
        .filter(|(_, g)| {
            let ns = g.metadata.namespace.clone();
            let name = g.metadata.name.clone().unwrap_or_default();
            statuses
                .get("Gateway", ns.as_deref(), &name)
                .is_some_and(|s| accepted(&s.status))
        })
        .map(|(k, g)| (k.clone(), Arc::clone(g)))
        .collect()
}

/// Whether a status has `Accepted: True`.
fn accepted(status: &Value) -> bool {
    status
        .get("conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("type").and_then(Value::as_str) == Some("Accepted")
                    && c.get("status").and_then(Value::as_str) == Some("True")
            })
        })
}

/// The objects of `gateway`'s data plane: its class's GatewayConfig
/// overridden by its own `spec.infrastructure.parametersRef`, with the
/// listeners of its accepted ListenerSets exposed too.
///
/// # Errors
///
/// What [`desired`] refuses (no uid, a breaking patch).
pub(crate) fn objects(
    resources: &Resources,
    statuses: &StatusStore,
    gateway: &Gateway,
    env: &Env,
) -> Result<Vec<Desired>, ProvisionError> {
    let with_sets = with_listener_sets(resources, statuses, gateway);
    let gateway = &with_sets;
    let class = class_config(resources, gateway);
    let own = own_config(resources, gateway);
    fn kubernetes(c: Option<&GatewayConfigSpec>) -> Option<&KubernetesConfig> {
        c.and_then(|c| c.kubernetes.as_ref())
    }
    let merged = merge_configs(kubernetes(class.as_deref()), kubernetes(own.as_deref()))?;
    let drain = own
        .as_deref()
        .and_then(|c| c.drain_timeout_seconds)
        .or(class.as_deref().and_then(|c| c.drain_timeout_seconds))
        .unwrap_or(DRAIN_TIMEOUT_SECONDS);
    let env = Env {
        drain_timeout_seconds: drain,
        ..env.clone()
    };
    desired(gateway, &merged, &env)
}

/// `gateway` with the listeners of the ListenerSets compile accepted for
/// it appended: the pods bind their ports too, so the Service must expose
/// them. Only port and protocol matter to the generated objects.
fn with_listener_sets(resources: &Resources, statuses: &StatusStore, gateway: &Gateway) -> Gateway {
    let mut out = gateway.clone();
    let namespace = gateway.metadata.namespace.as_deref().unwrap_or_default();
    let name = gateway.metadata.name.as_deref().unwrap_or_default();
    for set in resources.listener_sets.values() {
        let set_ns = set.metadata.namespace.as_deref().unwrap_or_default();
        let parent = &set.spec.parent_ref;
        let parent_ns = parent.namespace.as_deref().unwrap_or(set_ns);
        if parent.name != name || parent_ns != namespace {
            continue;
        }
        let set_name = set.metadata.name.as_deref().unwrap_or_default();
        let accepted_set = statuses
            .get("ListenerSet", Some(set_ns), set_name)
            .is_some_and(|s| accepted(&s.status));
        if !accepted_set {
            continue;
        }
        out.spec
            .listeners
            .extend(set.spec.listeners.iter().map(|l| GatewayListeners {
                name: l.name.clone(),
                port: l.port,
                protocol: l.protocol.clone(),
                ..GatewayListeners::default()
            }));
    }
    out
}

/// The GatewayConfig the Gateway's class names, if any.
fn class_config(resources: &Resources, gateway: &Gateway) -> Option<Arc<GatewayConfigSpec>> {
    let class = resources
        .gateway_classes
        .get(&gateway.spec.gateway_class_name)?;
    let r = class.spec.parameters_ref.as_ref()?;
    if r.group != GROUP || r.kind != "GatewayConfig" {
        return None;
    }
    let key = format!("{}/{}", r.namespace.as_deref()?, r.name);
    resources
        .gateway_configs
        .get(&key)
        .map(|c| Arc::new(c.spec.clone()))
}

/// The GatewayConfig of the Gateway's own `spec.infrastructure.parametersRef`.
fn own_config(resources: &Resources, gateway: &Gateway) -> Option<Arc<GatewayConfigSpec>> {
    let r = gateway
        .spec
        .infrastructure
        .as_ref()?
        .parameters_ref
        .as_ref()?;
    if r.group != GROUP || r.kind != "GatewayConfig" {
        return None;
    }
    let key = format!(
        "{}/{}",
        gateway.metadata.namespace.as_deref().unwrap_or_default(),
        r.name
    );
    resources
        .gateway_configs
        .get(&key)
        .map(|c| Arc::new(c.spec.clone()))
}
