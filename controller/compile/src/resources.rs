//! `Resources`: every object `compile` reads, typed, from any provider.
//!
//! The file provider and (later) the Kubernetes provider both produce this
//! one value; `compile` never knows where the objects came from. Objects are
//! kept in maps keyed by `namespace/name` so iteration order, and therefore
//! compile output, is deterministic.

use gateway_api::backendtlspolicies::BackendTlsPolicy;
use gateway_api::experimental::{
    gatewayclasses::GatewayClass, gateways::Gateway, grpcroutes::GrpcRoute, httproutes::HttpRoute,
    listenersets::ListenerSet, referencegrants::ReferenceGrant, tlsroutes::TlsRoute,
};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::sync::Arc;
use thiserror::Error;
use tollgate_crds::{AuthPolicy, GatewayConfig, RateLimitPolicy};

/// Objects keyed by `namespace/name` (cluster-scoped: `name`), shared.
pub type Objects<T> = BTreeMap<String, Arc<T>>;

/// All objects Tollgate reads.
#[derive(Clone, Debug, Default)]
pub struct Resources {
    /// GatewayClasses (cluster-scoped).
    pub gateway_classes: Objects<GatewayClass>,
    /// Gateways.
    pub gateways: Objects<Gateway>,
    /// ListenerSets: more listeners for a Gateway that allows them.
    pub listener_sets: Objects<ListenerSet>,
    /// HTTPRoutes.
    pub http_routes: Objects<HttpRoute>,
    /// GRPCRoutes (read and reported; served in a later release).
    pub grpc_routes: Objects<GrpcRoute>,
    /// TLSRoutes (read with the experimental types, which also decode the
    /// standard channel's).
    pub tls_routes: Objects<TlsRoute>,
    /// ReferenceGrants.
    pub reference_grants: Objects<ReferenceGrant>,
    /// BackendTLSPolicies (read and kept; TLS to backends is served in a
    /// later release).
    pub backend_tls_policies: Objects<BackendTlsPolicy>,
    /// Namespaces (cluster-scoped), for `allowedRoutes` label selectors.
    pub namespaces: Objects<Namespace>,
    /// Services.
    pub services: Objects<Service>,
    /// EndpointSlices.
    pub endpoint_slices: Objects<EndpointSlice>,
    /// Secrets.
    pub secrets: Objects<Secret>,
    /// ConfigMaps.
    pub config_maps: Objects<ConfigMap>,
    /// Tollgate GatewayConfigs.
    pub gateway_configs: Objects<GatewayConfig>,
    /// Tollgate AuthPolicies.
    pub auth_policies: Objects<AuthPolicy>,
    /// Tollgate RateLimitPolicies.
    pub rate_limit_policies: Objects<RateLimitPolicy>,
    /// Objects of the kinds above that did not decode (a field or value
    /// newer than Tollgate's types), keyed by kind, then `namespace/name`.
    /// They take no part in routing; `compile` reports them on their status.
    pub undecodable: BTreeMap<(String, String), Arc<Undecodable>>,
}

/// An object of a kind Tollgate reads whose content it cannot decode.
///
/// Keeps what is needed to report the failure on the object's own status
/// (read from the raw object, which still parses as JSON): its identity,
/// and the fields that decide whether the object is Tollgate's.
#[derive(Clone, Debug, PartialEq)]
pub struct Undecodable {
    /// The object's kind, e.g. `HTTPRoute`.
    pub kind: String,
    /// Namespace; absent for cluster-scoped kinds.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// `metadata.generation`, for `observedGeneration`.
    pub generation: Option<i64>,
    /// Where and why decoding failed, e.g.
    /// ``spec.rules[0].filters[0].type: unknown variant `X`, expected ...``.
    pub error: String,
    /// `spec.parentRefs` as written (routes).
    pub parent_refs: Vec<serde_json::Value>,
    /// `spec.gatewayClassName` (Gateways).
    pub gateway_class_name: Option<String>,
    /// `spec.controllerName` (GatewayClasses).
    pub controller_name: Option<String>,
    /// `spec.targetRefs` as written (policies), so an unreadable
    /// AuthPolicy can still close the routes it was meant to protect.
    pub target_refs: Vec<serde_json::Value>,
}

impl Undecodable {
    /// The record for `raw`, an object of `kind` with metadata `meta` that
    /// failed to decode with `error`.
    pub fn new(
        kind: &str,
        meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
        error: String,
        raw: &serde_json::Value,
    ) -> Undecodable {
        let spec_str = |field: &str| {
            raw.pointer(&format!("/spec/{field}"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        Undecodable {
            kind: kind.to_string(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
            generation: meta.generation,
            error,
            parent_refs: raw
                .pointer("/spec/parentRefs")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default(),
            gateway_class_name: spec_str("gatewayClassName"),
            target_refs: raw
                .pointer("/spec/targetRefs")
                .and_then(serde_json::Value::as_array)
                .cloned()
                .unwrap_or_default(),
            controller_name: spec_str("controllerName"),
        }
    }

    /// The key of [`Resources::undecodable`].
    pub fn key(&self) -> (String, String) {
        let key = match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        };
        (self.kind.clone(), key)
    }
}

/// What happened to one YAML document given to [`Resources::insert_document`].
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    /// Stored under this kind and key.
    Stored {
        /// The document's kind.
        kind: String,
        /// `namespace/name` or `name`.
        key: String,
    },
    /// A kind Tollgate does not read; skipped.
    Skipped {
        /// `apiVersion` of the document.
        api_version: String,
        /// `kind` of the document.
        kind: String,
    },
}

/// A document that names a kind Tollgate reads but does not fit its schema.
#[derive(Debug, Error)]
pub enum DocumentError {
    /// `apiVersion`, `kind` or `metadata.name` is missing.
    #[error("document has no {0}")]
    Missing(&'static str),
    /// The document does not deserialize as its kind.
    #[error("invalid {kind} {name}: {source}")]
    Invalid {
        /// The document's kind.
        kind: String,
        /// Its `metadata.name`.
        name: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
}

impl Resources {
    /// Parses one document (already read from YAML) and stores it by kind.
    ///
    /// Gateway API kinds are accepted at any version of the
    /// `gateway.networking.k8s.io` group (for example ReferenceGrant
    /// `v1beta1` and `v1`), since their schemas are compatible supersets.
    /// A namespaced object without `metadata.namespace` is put in `default`,
    /// as `kubectl apply` would.
    ///
    /// # Errors
    ///
    /// [`DocumentError`] when the document is a known kind but malformed.
    pub fn insert_document(
        &mut self,
        mut doc: serde_json::Value,
    ) -> Result<Inserted, DocumentError> {
        let api_version = str_at(&doc, "apiVersion")
            .ok_or(DocumentError::Missing("apiVersion"))?
            .to_string();
        let kind = str_at(&doc, "kind")
            .ok_or(DocumentError::Missing("kind"))?
            .to_string();
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let name = doc
            .pointer("/metadata/name")
            .and_then(|v| v.as_str())
            .ok_or(DocumentError::Missing("metadata.name"))?
            .to_string();
        let cluster_scoped = matches!(kind.as_str(), "GatewayClass" | "Namespace");
        let key = if cluster_scoped {
            name.clone()
        } else {
            let ns = doc
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or("default")
                .to_string();
            if let Some(meta) = doc.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.insert("namespace".into(), ns.clone().into());
            }
            format!("{ns}/{name}")
        };
        let stored = Inserted::Stored {
            kind: kind.clone(),
            key: key.clone(),
        };
        match (group, kind.as_str()) {
            ("gateway.networking.k8s.io", "GatewayClass") => {
                put(&mut self.gateway_classes, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "Gateway") => {
                put(&mut self.gateways, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "ListenerSet") => {
                put(&mut self.listener_sets, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "HTTPRoute") => {
                put(&mut self.http_routes, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "GRPCRoute") => {
                put(&mut self.grpc_routes, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "TLSRoute") => {
                put(&mut self.tls_routes, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "ReferenceGrant") => {
                put(&mut self.reference_grants, key, doc, &kind, &name)?
            }
            ("gateway.networking.k8s.io", "BackendTLSPolicy") => {
                put(&mut self.backend_tls_policies, key, doc, &kind, &name)?
            }
            ("", "Namespace") => put(&mut self.namespaces, key, doc, &kind, &name)?,
            ("", "Service") => put(&mut self.services, key, doc, &kind, &name)?,
            ("", "Secret") => put(&mut self.secrets, key, doc, &kind, &name)?,
            ("", "ConfigMap") => put(&mut self.config_maps, key, doc, &kind, &name)?,
            ("discovery.k8s.io", "EndpointSlice") => {
                put(&mut self.endpoint_slices, key, doc, &kind, &name)?
            }
            ("tollgate.dev", "GatewayConfig") => {
                put(&mut self.gateway_configs, key, doc, &kind, &name)?
            }
            ("tollgate.dev", "AuthPolicy") => put(&mut self.auth_policies, key, doc, &kind, &name)?,
            ("tollgate.dev", "RateLimitPolicy") => {
                put(&mut self.rate_limit_policies, key, doc, &kind, &name)?
            }
            _ => return Ok(Inserted::Skipped { api_version, kind }),
        }
        Ok(stored)
    }
}

impl Resources {
    /// How many objects of each kind the view holds (for metrics).
    pub fn counts(&self) -> [(&'static str, usize); 16] {
        [
            ("GatewayClass", self.gateway_classes.len()),
            ("Gateway", self.gateways.len()),
            ("ListenerSet", self.listener_sets.len()),
            ("HTTPRoute", self.http_routes.len()),
            ("GRPCRoute", self.grpc_routes.len()),
            ("TLSRoute", self.tls_routes.len()),
            ("ReferenceGrant", self.reference_grants.len()),
            ("BackendTLSPolicy", self.backend_tls_policies.len()),
            ("Namespace", self.namespaces.len()),
            ("Service", self.services.len()),
            ("EndpointSlice", self.endpoint_slices.len()),
            ("Secret", self.secrets.len()),
            ("ConfigMap", self.config_maps.len()),
            ("GatewayConfig", self.gateway_configs.len()),
            ("AuthPolicy", self.auth_policies.len()),
            ("RateLimitPolicy", self.rate_limit_policies.len()),
        ]
    }

    /// Adds every object of `other`, sharing them; an object already
    /// present under the same kind and key is replaced.
    pub fn extend_from(&mut self, other: &Resources) {
        fn extend<T>(into: &mut Objects<T>, from: &Objects<T>) {
            into.extend(from.iter().map(|(k, v)| (k.clone(), Arc::clone(v))));
        }
        extend(&mut self.gateway_classes, &other.gateway_classes);
        extend(&mut self.gateways, &other.gateways);
        extend(&mut self.listener_sets, &other.listener_sets);
        extend(&mut self.http_routes, &other.http_routes);
        extend(&mut self.grpc_routes, &other.grpc_routes);
        extend(&mut self.tls_routes, &other.tls_routes);
        extend(&mut self.reference_grants, &other.reference_grants);
        extend(&mut self.backend_tls_policies, &other.backend_tls_policies);
        extend(&mut self.namespaces, &other.namespaces);
        extend(&mut self.services, &other.services);
        extend(&mut self.endpoint_slices, &other.endpoint_slices);
        extend(&mut self.secrets, &other.secrets);
        extend(&mut self.config_maps, &other.config_maps);
        self.undecodable.extend(
            other
                .undecodable
                .iter()
                .map(|(k, v)| (k.clone(), Arc::clone(v))),
        );
        extend(&mut self.gateway_configs, &other.gateway_configs);
        extend(&mut self.auth_policies, &other.auth_policies);
        extend(&mut self.rate_limit_policies, &other.rate_limit_policies);
    }
}

fn str_at<'a>(doc: &'a serde_json::Value, field: &str) -> Option<&'a str> {
    doc.get(field).and_then(|v| v.as_str())
}

fn put<T: DeserializeOwned>(
    map: &mut Objects<T>,
    key: String,
    doc: serde_json::Value,
    kind: &str,
    name: &str,
) -> Result<(), DocumentError> {
    let object = serde_json::from_value(doc).map_err(|source| DocumentError::Invalid {
        kind: kind.to_string(),
        name: name.to_string(),
        source,
    })?;
    map.insert(key, Arc::new(object));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stores_known_kinds_and_defaults_the_namespace() {
        let mut r = Resources::default();
        let got = r
            .insert_document(json!({
                "apiVersion": "gateway.networking.k8s.io/v1",
                "kind": "HTTPRoute",
                "metadata": {"name": "a"},
                "spec": {}
            }))
            .unwrap();
        assert_eq!(
            got,
            Inserted::Stored {
                kind: "HTTPRoute".into(),
                key: "default/a".into()
            }
        );
        assert!(r.http_routes.contains_key("default/a"));
    }

    /// BackendTLSPolicy is read (at its standard `v1`), though not served yet.
    #[test]
    fn stores_backend_tls_policies() {
        let mut r = Resources::default();
        r.insert_document(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "BackendTLSPolicy",
            "metadata": {"name": "p", "namespace": "apps"},
            "spec": {
                "targetRefs": [{"group": "", "kind": "Service", "name": "echo"}],
                "validation": {"hostname": "echo.apps", "wellKnownCACertificates": "System"}
            }
        }))
        .unwrap();
        assert!(r.backend_tls_policies.contains_key("apps/p"));
    }

    #[test]
    fn skips_unknown_kinds() {
        let mut r = Resources::default();
        let got = r
            .insert_document(
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}),
            )
            .unwrap();
        assert!(matches!(got, Inserted::Skipped { .. }));
    }

    #[test]
    fn a_malformed_known_kind_is_an_error() {
        let mut r = Resources::default();
        let got = r.insert_document(json!({
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "Gateway",
            "metadata": {"name": "g"},
            "spec": {"listeners": "not-a-list"}
        }));
        assert!(matches!(got, Err(DocumentError::Invalid { .. })));
    }
}
