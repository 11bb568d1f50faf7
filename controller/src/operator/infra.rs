//! What the provisioned objects tell about each Gateway, and how that
//! shows in its status.
//!
//! The operator's watches record, per Gateway, whether its Deployment is
//! available and which addresses its Service has; the compile loop reads
//! them when it computes Gateway statuses ([`Infrastructure::apply`]): a
//! Gateway is `Programmed` only once its data plane both reported the
//! snapshot and runs in an available Deployment, and its
//! `status.addresses` are the Service's. A change of either wakes the
//! compile loop ([`Infrastructure::changed`]) to recompute Gateway
//! statuses, as a data-plane report does.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use opentelemetry::trace::SpanContext;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::watch;
use tollgate_compile::ObjectStatus;
use tollgate_compile::resources::Resources;

/// Message of `Programmed: False/Pending` while the Deployment is not
/// available.
pub const WAITING_FOR_DEPLOYMENT: &str = "waiting for the data plane Deployment to be available";

/// One address of a Gateway status (`type`, `value`).
pub type Address = (String, String);

/// What is known about one Gateway's provisioned objects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// Whether the Deployment's `Available` condition is true.
    pub available: bool,
    /// The Service's addresses, best first.
    pub addresses: Vec<Address>,
}

/// Facts shared between the operator (writer) and the compile loop
/// (reader), plus the view handed to the operator after each compile.
#[derive(Clone, Debug)]
pub struct Infrastructure {
    facts: Arc<Mutex<BTreeMap<String, Facts>>>,
    changed: watch::Sender<u64>,
    view: watch::Sender<Option<CompiledView>>,
}

/// A view whose statuses were stored, and the compile that made them.
#[derive(Clone, Debug)]
pub struct CompiledView {
    /// What the compile read.
    pub resources: Arc<Resources>,
    /// The compile's span, when it was traced: the provisioning passes
    /// the view starts link to it.
    pub cause: Option<SpanContext>,
}

impl Default for Infrastructure {
    fn default() -> Self {
        Infrastructure {
            facts: Arc::default(),
            changed: watch::channel(0).0,
            view: watch::channel(None).0,
        }
    }
}

impl Infrastructure {
    /// Signals each change of the facts.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Records that the Gateway `key` (`ns/name`) has `facts` (or, with
    /// `None`, no Deployment or Service at all); wakes the compile loop
    /// when that is news.
    pub fn set(&self, key: &str, update: impl FnOnce(&mut Facts)) {
        let mut map = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(key.to_string()).or_default();
        let before = entry.clone();
        update(entry);
        if *entry != before {
            drop(map);
            self.changed.send_modify(|n| *n += 1);
        }
    }

    /// The facts of Gateway `key`.
    pub fn get(&self, key: &str) -> Facts {
        let map = self.facts.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(key).cloned().unwrap_or_default()
    }

    /// Hands the operator the view whose statuses were just stored, made
    /// by the compile of span `cause` (when traced).
    pub fn compiled(&self, resources: Arc<Resources>, cause: Option<SpanContext>) {
        self.view
            .send_replace(Some(CompiledView { resources, cause }));
    }

    /// The views [`Infrastructure::compiled`] hands over.
    pub fn views(&self) -> watch::Receiver<Option<CompiledView>> {
        self.view.subscribe()
    }

    /// Applies the facts to compile's Gateway statuses (see the module
    /// documentation). Statuses of other kinds are left alone.
    pub fn apply(&self, statuses: &mut [ObjectStatus]) {
        for status in statuses.iter_mut().filter(|s| s.kind == "Gateway") {
            let key = format!(
                "{}/{}",
                status.namespace.as_deref().unwrap_or_default(),
                status.name
            );
            apply_facts(Arc::make_mut(&mut status.status), &self.get(&key));
        }
    }
}

/// One Gateway status with `facts` applied.
pub(crate) fn apply_facts(status: &mut Value, facts: &Facts) {
    let Value::Object(map) = status else {
        return;
    };
    if facts.addresses.is_empty() {
        map.remove("addresses");
    } else {
        let addresses = facts
            .addresses
            .iter()
            .map(|(t, v)| json!({"type": t, "value": v}))
            .collect();
        map.insert("addresses".into(), Value::Array(addresses));
    }
    if facts.available {
        return;
    }
    mark_pending(map.get_mut("conditions"));
    if let Some(Value::Array(listeners)) = map.get_mut("listeners") {
        for listener in listeners {
            mark_pending(listener.get_mut("conditions"));
        }
    }
}

/// Turns `Programmed: True` in `conditions` into `False`/`Pending`.
fn mark_pending(conditions: Option<&mut Value>) {
    let Some(Value::Array(conditions)) = conditions else {
        return;
    };
    for c in conditions {
        if c.get("type").and_then(Value::as_str) == Some("Programmed")
            && c.get("status").and_then(Value::as_str) == Some("True")
            && let Value::Object(c) = c
        {
            c.insert("status".into(), "False".into());
            c.insert("reason".into(), "Pending".into());
            c.insert("message".into(), WAITING_FOR_DEPLOYMENT.into());
        }
    }
}

/// Whether `deployment`'s `Available` condition is true.
pub fn deployment_available(deployment: &Deployment) -> bool {
    deployment
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Available" && c.status == "True")
        })
}

/// The addresses clients reach the Gateway at through `service`: its
/// load-balancer ingress (IPs, then hostnames), its external IPs, else its
/// cluster IP.
pub fn service_addresses(service: &Service) -> Vec<Address> {
    fn push(out: &mut Vec<Address>, t: &str, v: &str) {
        let a = (t.to_string(), v.to_string());
        if !v.is_empty() && !out.contains(&a) {
            out.push(a);
        }
    }
    let mut out: Vec<Address> = Vec::new();
    let ingress = service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref());
    for i in ingress.into_iter().flatten() {
        if let Some(ip) = &i.ip {
            push(&mut out, "IPAddress", ip);
        }
        if let Some(host) = &i.hostname {
            push(&mut out, "Hostname", host);
        }
    }
    let spec = service.spec.as_ref();
    for ip in spec
        .and_then(|s| s.external_ips.as_ref())
        .into_iter()
        .flatten()
    {
        push(&mut out, "IPAddress", ip);
    }
    if out.is_empty()
        && let Some(ip) = spec.and_then(|s| s.cluster_ip.as_deref())
        && ip != "None"
    {
        push(&mut out, "IPAddress", ip);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Value {
        let conditions = json!([
            {"type": "Accepted", "status": "True", "reason": "Accepted"},
            {"type": "Programmed", "status": "True", "reason": "Programmed"},
        ]);
        json!({"conditions": conditions, "listeners": [{"name": "http", "conditions": conditions}]})
    }

    /// Without an available Deployment, a programmed Gateway and its
    /// listeners are Pending.
    #[test]
    fn programmed_waits_for_the_deployment() {
        let mut s = status();
        apply_facts(&mut s, &Facts::default());
        assert_eq!(s["listeners"][0]["conditions"][1]["reason"], "Pending");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][1]["status"], "False");
        assert_eq!(s["conditions"][1]["reason"], "Pending");
        assert_eq!(s["conditions"][1]["message"], WAITING_FOR_DEPLOYMENT);
        assert!(s.get("addresses").is_none());
    }

    /// With it, Programmed stays and the Service's addresses show.
    #[test]
    fn addresses_come_from_the_service() {
        let mut s = status();
        let facts = Facts {
            available: true,
            addresses: vec![("IPAddress".into(), "203.0.113.9".into())],
        };
        apply_facts(&mut s, &facts);
        assert_eq!(s["conditions"][1]["status"], "True");
        assert_eq!(
            s["addresses"],
            json!([{"type": "IPAddress", "value": "203.0.113.9"}])
        );
    }

    /// Load-balancer ingress first (IPs and hostnames), cluster IP only
    /// when there is nothing else.
    #[test]
    fn service_addresses_prefer_the_load_balancer() {
        let service: Service = serde_json::from_value(json!({
            "spec": {"clusterIP": "10.0.0.5", "externalIPs": ["198.51.100.1"]},
            "status": {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}, {"hostname": "lb.example.com"}]}},
        }))
        .expect("service");
        assert_eq!(
            service_addresses(&service),
            vec![
                ("IPAddress".to_string(), "203.0.113.9".to_string()),
                ("Hostname".to_string(), "lb.example.com".to_string()),
                ("IPAddress".to_string(), "198.51.100.1".to_string()),
            ]
        );
        let plain: Service =
            serde_json::from_value(json!({"spec": {"clusterIP": "10.0.0.5"}})).expect("service");
        assert_eq!(
            service_addresses(&plain),
            vec![("IPAddress".to_string(), "10.0.0.5".to_string())]
        );
    }
}
