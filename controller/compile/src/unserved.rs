//! Statuses for objects Tollgate reads but cannot serve: objects that did
//! not decode.
//!
//! Such an object takes no part in any snapshot, but silence would leave
//! its owner guessing, so it gets the status a user looks at first: a route
//! gets an `Accepted: False` entry for each of its parents that is a
//! Tollgate Gateway, a Gateway or GatewayClass of Tollgate's gets
//! `Accepted: False`. Kinds without a status of Tollgate's (Services,
//! ReferenceGrants, ...) are only logged and counted by the provider.

use crate::conditions::{Stamp, reasons, types};
use crate::gateway::GatewayPlan;
use crate::listeners::GATEWAY_GROUP;
use crate::options::CompileOptions;
use crate::output::{Compiled, push_status};
use crate::resources::{Resources, Undecodable};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Pushes the status of every undecodable object that names one of
/// Tollgate's classes or Gateways.
pub(super) fn compile_unserved(
    resources: &Resources,
    options: &CompileOptions,
    gateways: &BTreeMap<&str, GatewayPlan>,
    stamp: &Stamp,
    out: &mut Compiled,
) {
    for failure in resources.undecodable.values() {
        let message = format!(
            "Tollgate cannot read this {}: {}",
            failure.kind, failure.error
        );
        let stamp = stamp.for_generation(failure.generation);
        match failure.kind.as_str() {
            "HTTPRoute" | "GRPCRoute" | "TLSRoute" => {
                let parents = route_parents(
                    &failure.parent_refs,
                    failure.namespace.as_deref().unwrap_or_default(),
                    gateways,
                    options,
                    &stamp,
                    (reasons::UNSUPPORTED_VALUE, &message),
                );
                push_route(out, failure, parents);
            }
            "Gateway" if is_our_gateway(resources, options, failure) => {
                let conditions = [
                    stamp.condition(types::ACCEPTED, false, reasons::INVALID, &message),
                    stamp.condition(types::PROGRAMMED, false, reasons::INVALID, &message),
                ];
                let status = json!({ "conditions": conditions });
                push_status(
                    out,
                    "Gateway",
                    failure.namespace.as_deref(),
                    &failure.name,
                    &status,
                );
            }
            "GatewayClass"
                if failure.controller_name.as_deref() == Some(&options.controller_name) =>
            {
                let accepted = stamp.condition(types::ACCEPTED, false, reasons::INVALID, &message);
                let status = json!({ "conditions": [accepted] });
                push_status(out, "GatewayClass", None, &failure.name, &status);
            }
            _ => {}
        }
    }
}

/// One `Accepted: False` parent entry per parentRef naming a Tollgate
/// Gateway.
fn route_parents(
    refs: &[Value],
    route_namespace: &str,
    gateways: &BTreeMap<&str, GatewayPlan>,
    options: &CompileOptions,
    stamp: &Stamp,
    (reason, message): (&str, &str),
) -> Vec<Value> {
    refs.iter()
        .filter(|r| names_our_gateway(r, route_namespace, gateways))
        .map(|parent_ref| {
            json!({
                "parentRef": parent_ref,
                "controllerName": options.controller_name,
                "conditions": [stamp.condition(types::ACCEPTED, false, reason, message)],
            })
        })
        .collect()
}

fn push_route(out: &mut Compiled, failure: &Undecodable, parents: Vec<Value>) {
    if parents.is_empty() {
        return;
    }
    let status = json!({ "parents": parents });
    push_status(
        out,
        &failure.kind,
        failure.namespace.as_deref(),
        &failure.name,
        &status,
    );
}

/// Whether the raw parentRef `r` of a route in `route_namespace` names one
/// of Tollgate's Gateways.
fn names_our_gateway(
    r: &Value,
    route_namespace: &str,
    gateways: &BTreeMap<&str, GatewayPlan>,
) -> bool {
    let field = |name: &str| r.get(name).and_then(Value::as_str);
    let group = field("group").unwrap_or(GATEWAY_GROUP);
    let kind = field("kind").unwrap_or("Gateway");
    let namespace = field("namespace").unwrap_or(route_namespace);
    match field("name") {
        Some(name) if group == GATEWAY_GROUP && kind == "Gateway" => {
            gateways.contains_key(format!("{namespace}/{name}").as_str())
        }
        _ => false,
    }
}

/// Whether an undecodable Gateway belongs to one of Tollgate's classes.
fn is_our_gateway(resources: &Resources, options: &CompileOptions, failure: &Undecodable) -> bool {
    failure
        .gateway_class_name
        .as_deref()
        .and_then(|class| resources.gateway_classes.get(class))
        .is_some_and(|class| class.spec.controller_name == options.controller_name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::compile;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    use std::sync::Arc;

    fn resources() -> Resources {
        let mut r = Resources::default();
        for doc in [
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
                   "metadata": {"name": "tollgate"},
                   "spec": {"controllerName": "tollgate.dev/gateway-controller"}}),
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
                   "metadata": {"name": "gw", "namespace": "ns"},
                   "spec": {"gatewayClassName": "tollgate",
                            "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}),
        ] {
            r.insert_document(doc).unwrap();
        }
        r
    }

    fn undecodable(kind: &str, name: &str, raw: Value) -> Arc<Undecodable> {
        let meta = ObjectMeta {
            name: Some(name.into()),
            namespace: Some("ns".into()),
            generation: Some(4),
            ..ObjectMeta::default()
        };
        Arc::new(Undecodable::new(
            kind,
            &meta,
            "spec.x: unknown variant `Y`".into(),
            &raw,
        ))
    }

    /// An undecodable route gets `Accepted: False` (UnsupportedValue, with
    /// the decoding error) on each parent that is a Tollgate Gateway, and
    /// an undecodable Gateway of Tollgate's class gets Accepted and
    /// Programmed False; an undecodable Gateway of another class and an
    /// undecodable Service get nothing. The good Gateway compiles as ever.
    #[test]
    fn undecodable_objects_get_a_status_saying_why() {
        let mut r = resources();
        for failure in [
            undecodable(
                "HTTPRoute",
                "new-filter",
                json!({"spec": {"parentRefs": [{"name": "gw"}, {"name": "other", "namespace": "x"}]}}),
            ),
            undecodable(
                "Gateway",
                "new-gw",
                json!({"spec": {"gatewayClassName": "tollgate"}}),
            ),
            undecodable(
                "Gateway",
                "theirs",
                json!({"spec": {"gatewayClassName": "other"}}),
            ),
            undecodable("Service", "svc", json!({"spec": {}})),
        ] {
            r.undecodable.insert(failure.key(), failure);
        }
        let out = compile(&r, &CompileOptions::default());
        let names: Vec<(&str, &str)> = out
            .statuses
            .iter()
            .map(|s| (s.kind.as_str(), s.name.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("Gateway", "gw"),
                ("Gateway", "new-gw"),
                ("GatewayClass", "tollgate"),
                ("HTTPRoute", "new-filter")
            ]
        );
        let route = &out.statuses[3].status;
        assert_eq!(route["parents"].as_array().unwrap().len(), 1);
        let accepted = &route["parents"][0]["conditions"][0];
        assert_eq!(route["parents"][0]["parentRef"], json!({"name": "gw"}));
        assert_eq!(accepted["status"], "False");
        assert_eq!(accepted["reason"], "UnsupportedValue");
        assert_eq!(accepted["observedGeneration"], 4);
        assert_eq!(
            accepted["message"],
            "Tollgate cannot read this HTTPRoute: spec.x: unknown variant `Y`"
        );
        let gateway = &out.statuses[1].status["conditions"];
        assert_eq!(gateway[0]["type"], "Accepted");
        assert_eq!(gateway[0]["status"], "False");
        assert_eq!(gateway[1]["type"], "Programmed");
        assert_eq!(gateway[1]["status"], "False");
        assert!(out.snapshots.contains_key("ns/gw"));
        assert_eq!(out.snapshots.len(), 1);
    }
}
