//! The AuthPolicy sections that call out per request: external
//! authorization (Envoy Gateway's `extAuth`) and OAuth2 token
//! introspection (Tollgate's own).

use crate::auth_policy::{CallBackendRef, LocalObjectRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An external authorization service, called before the backend.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExtAuth {
    /// An HTTP service: a 2xx allows; any other answer (401, 403, a
    /// redirect to a sign-in page) goes to the client unchanged. Exactly
    /// one of http and grpc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpExtAuth>,
    /// An Envoy `ext_authz` gRPC service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc: Option<GrpcExtAuth>,
    /// Request headers sent to the service; default all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_to_ext_auth: Option<Vec<String>>,
    /// Let requests through when the service cannot be reached or times
    /// out; default false (refused with 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_open: Option<bool>,
    /// Longest one call may take, as a Gateway API duration (`500ms`,
    /// `2s`); default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// An HTTP external authorization service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HttpExtAuth {
    /// The Service that answers.
    #[schemars(length(min = 1, max = 1))]
    pub backend_refs: Vec<CallBackendRef>,
    /// Prefix put before the request's path in the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Headers of the service's OK answer copied into the request to the
    /// backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_to_backend: Option<Vec<String>>,
}

/// A gRPC (`envoy.service.auth.v3.Authorization`) service.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrpcExtAuth {
    /// The Service that answers.
    #[schemars(length(min = 1, max = 1))]
    pub backend_refs: Vec<CallBackendRef>,
}

/// OAuth2 token introspection (RFC 7662) of opaque bearer tokens.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Introspection {
    /// The introspection endpoint URI. With backendRefs, only its path and
    /// Host are used.
    pub uri: String,
    /// A Service that serves the endpoint, in place of DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1))]
    pub backend_refs: Option<Vec<CallBackendRef>>,
    /// Client id the gateway authenticates with (HTTP Basic).
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// A Secret in the policy's namespace whose `client-secret` key holds
    /// the client secret.
    pub client_secret: LocalObjectRef,
    /// Let requests through when the endpoint cannot be reached; default
    /// false (refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_open: Option<bool>,
    /// How long an inactive answer is cached, in seconds; default 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 3600))]
    pub negative_cache_seconds: Option<u32>,
    /// Longest an active answer without `exp` is cached, in seconds;
    /// default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cache_seconds: Option<u32>,
    /// Longest one call may take, as a Gateway API duration; default `5s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}
