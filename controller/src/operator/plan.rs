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

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::Service;
    use serde_json::json;
    use tollgate_compile::ObjectStatus;

    const OBJECTS: &str = "
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate}
spec:
  controllerName: tollgate.dev/gateway-controller
  parametersRef: {group: tollgate.dev, kind: GatewayConfig, name: class, namespace: infra}
---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {name: class, namespace: infra}
spec:
  drainTimeoutSeconds: 9
  kubernetes: {deployment: {replicas: 3, image: class-image}}
---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {name: own, namespace: apps}
spec:
  kubernetes: {deployment: {replicas: 4}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw, namespace: apps, uid: u1}
spec:
  gatewayClassName: tollgate
  infrastructure:
    parametersRef: {group: tollgate.dev, kind: GatewayConfig, name: own}
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: ListenerSet
metadata: {name: set, namespace: apps}
spec:
  parentRef: {name: gw}
  listeners: [{name: more, port: 9090, protocol: HTTP}]
";

    fn resources() -> Resources {
        let mut resources = Resources::default();
        for doc in OBJECTS.split("\n---\n") {
            let value: Value = serde_yaml::from_str(doc).expect("yaml");
            resources.insert_document(value).expect("insert");
        }
        resources
    }

    fn accepted_status(kind: &str, name: &str) -> ObjectStatus {
        ObjectStatus {
            kind: kind.into(),
            namespace: Some("apps".into()),
            name: name.into(),
            status: json!({"conditions": [{"type": "Accepted", "status": "True"}]}).into(),
        }
    }

    fn env() -> Env {
        Env {
            image: "default-image".into(),
            controller_url: "https://c".into(),
            otel: Vec::new(),
            drain_timeout_seconds: 5,
        }
    }

    /// The Gateway's own GatewayConfig overrides the class's field by
    /// field; the class's drain timeout sets the grace period; ports of an
    /// accepted ListenerSet are exposed, of one not accepted are not.
    #[test]
    fn settings_merge_and_listener_sets_count_once_accepted() {
        let resources = resources();
        let statuses = StatusStore::default();
        statuses.update(vec![accepted_status("Gateway", "gw")]);
        let gateways = accepted_gateways(&resources, &statuses);
        assert_eq!(gateways.len(), 1);
        let first = objects(&resources, &statuses, &gateways[0].1, &env()).expect("objects");
        let deployment: Deployment =
            serde_json::from_value(serde_json::to_value(&first[0]).expect("json"))
                .expect("deployment");
        let spec = deployment.spec.expect("spec");
        assert_eq!(spec.replicas, Some(4));
        let pod = spec.template.spec.expect("pod");
        assert_eq!(pod.containers[0].image.as_deref(), Some("class-image"));
        // preStop 5 + drain delay 5 + drain timeout 9 + margin 5.
        assert_eq!(pod.termination_grace_period_seconds, Some(24));
        let ports = |objects: &[Desired]| {
            let service: Service =
                serde_json::from_value(serde_json::to_value(&objects[1]).expect("json"))
                    .expect("service");
            let ports = service.spec.expect("spec").ports.expect("ports");
            ports.iter().map(|p| p.port).collect::<Vec<_>>()
        };
        assert_eq!(ports(&first), [80]);

        statuses.update(vec![
            accepted_status("Gateway", "gw"),
            accepted_status("ListenerSet", "set"),
        ]);
        let again = objects(&resources, &statuses, &gateways[0].1, &env()).expect("objects");
        assert_eq!(ports(&again), [80, 9090]);
    }

    /// A Gateway compile did not accept gets nothing.
    #[test]
    fn only_accepted_gateways_are_provisioned() {
        let statuses = StatusStore::default();
        assert!(accepted_gateways(&resources(), &statuses).is_empty());
    }
}
