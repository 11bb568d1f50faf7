//! `AuthPolicy`: who may call the routes of a Gateway, attached the Gateway
//! API way (GEP-713).
//!
//! A policy targets a Gateway, one listener of it (`sectionName`), an
//! HTTPRoute, or one named rule of an HTTPRoute (`sectionName`). The
//! sections directly under `spec` are defaults: for each section (`jwt`,
//! `apiKeyAuth`, `basicAuth`, `oidc`, `introspection`, `extAuth`,
//! `authorization`) the most specific level that sets it wins. A policy
//! that targets a Gateway or a listener may also set `spec.overrides`,
//! whose sections win over every more specific level. Field names follow
//! Envoy Gateway's SecurityPolicy wherever it has the feature, so its users
//! feel at home.

use crate::auth_calls::{ExtAuth, Introspection};
use crate::auth_methods::{ApiKeyAuth, BasicAuth, Jwt, Oidc};
use crate::authorization::Authorization;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Authentication and authorization for the routes of a Gateway.
#[derive(CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tollgate.dev",
    version = "v1alpha1",
    kind = "AuthPolicy",
    plural = "authpolicies",
    shortname = "authpol",
    namespaced,
    status = "AuthPolicyStatus",
    printcolumn = r#"{"name":"Accepted","type":"string","description":"Whether the policy is in effect (its first ancestor's Accepted condition).","jsonPath":".status.ancestors[0].conditions[?(@.type==\"Accepted\")].status"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"description":"Why, or why not.","jsonPath":".status.ancestors[0].conditions[?(@.type==\"Accepted\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    doc = "Authentication (JWT, OIDC, token introspection, API keys, Basic, external auth) and authorization for a Gateway, a listener, an HTTPRoute or a route rule."
)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicySpec {
    /// What the policy applies to: Gateways (optionally one listener by
    /// `sectionName`) or HTTPRoutes (optionally one named rule by
    /// `sectionName`), in the policy's namespace.
    #[schemars(length(min = 1, max = 16))]
    pub target_refs: Vec<PolicyTargetRef>,
    /// The defaults: each section set here applies unless a more specific
    /// level (listener, route, rule) sets the same section.
    #[serde(flatten)]
    pub sections: AuthSections,
    /// Sections that win over every more specific level. Honoured only when
    /// the policy targets a Gateway or a listener.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<AuthSections>,
    /// CA certificates trusted for the `https` calls this policy makes
    /// (JWKS, token, introspection, external auth), in place of the system
    /// roots: ConfigMaps or Secrets in the policy's namespace with a
    /// `ca.crt` key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 8))]
    pub ca_certificate_refs: Option<Vec<LocalObjectRef>>,
}

/// The sections of an AuthPolicy; each is decided on its own when policies
/// of several levels apply.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthSections {
    /// JWT bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Jwt>,
    /// API keys from Secrets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_auth: Option<ApiKeyAuth>,
    /// HTTP Basic authentication from an htpasswd Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// Browser login with OpenID Connect (authorization code with PKCE).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Oidc>,
    /// OAuth2 token introspection (RFC 7662), Tollgate's own section.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<Introspection>,
    /// An external authorization service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_auth: Option<ExtAuth>,
    /// Who may pass once authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
}

impl AuthSections {
    /// The names of the sections set, in manifest spelling.
    pub fn names(&self) -> Vec<&'static str> {
        let set = [
            ("jwt", self.jwt.is_some()),
            ("apiKeyAuth", self.api_key_auth.is_some()),
            ("basicAuth", self.basic_auth.is_some()),
            ("oidc", self.oidc.is_some()),
            ("introspection", self.introspection.is_some()),
            ("extAuth", self.ext_auth.is_some()),
            ("authorization", self.authorization.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(n, _)| n)
            .collect()
    }
}

/// A policy target in the policy's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyTargetRef {
    /// API group of the target: `gateway.networking.k8s.io`.
    pub group: String,
    /// Kind of the target: `Gateway` or `HTTPRoute`.
    pub kind: String,
    /// Name of the target.
    pub name: String,
    /// A listener name (Gateway) or a rule name (HTTPRoute); absent: the
    /// whole target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// A ConfigMap or Secret in the policy's namespace.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalObjectRef {
    /// API group; empty (core) for ConfigMap and Secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `ConfigMap` or `Secret`; default `Secret` where a Secret is
    /// expected, `ConfigMap` for CA certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the object.
    pub name: String,
}

/// A Service that serves a call, as an HTTPRoute backendRef names it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallBackendRef {
    /// API group; empty (core) for a Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind; `Service` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the Service.
    pub name: String,
    /// Namespace of the Service; the policy's when absent. Another
    /// namespace needs a ReferenceGrant there from `tollgate.dev`
    /// AuthPolicies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Service port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
}

/// Where an AuthPolicy applies and whether it is in effect.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPolicyStatus {
    /// One entry per Gateway the policy affects (for route targets, the
    /// route's parent Gateways), as the Gateway API policy status asks.
    #[serde(default)]
    pub ancestors: Vec<PolicyAncestorStatus>,
}

/// The policy's status for one ancestor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAncestorStatus {
    /// The ancestor: a Gateway (with `sectionName` for a listener target),
    /// or the target itself when it does not exist.
    pub ancestor_ref: AncestorRef,
    /// The controller that wrote this entry.
    pub controller_name: String,
    /// `Accepted` (reasons `Accepted`, `Conflicted`, `Invalid`,
    /// `TargetNotFound`), and `Warning` for risky but accepted settings.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A reference to a policy ancestor.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AncestorRef {
    /// API group of the ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind of the ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name of the ancestor.
    pub name: String,
    /// Namespace of the ancestor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Listener or rule name, when the target named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}
