//! The `authorization` section of an AuthPolicy: allow or deny by
//! principal (JWT scopes and claims, consumer, client address) and
//! operation (method, path), as Envoy Gateway's SecurityPolicy spells it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Rules checked in order after authentication; the first that matches
/// decides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// What happens when no rule matches; default `Deny`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_action: Option<AuthorizationAction>,
    /// The rules.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub rules: Option<Vec<AuthorizationRule>>,
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum AuthorizationAction {
    /// Let the request through.
    Allow,
    /// Refuse it: 403 when authenticated, 401 when anonymous.
    #[default]
    Deny,
}

/// One rule: every condition given must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationRule {
    /// Rule name, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The decision when the rule matches.
    pub action: AuthorizationAction,
    /// Who the caller must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<Principal>,
    /// What the request must be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

/// Conditions on the caller.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Principal {
    /// Client address ranges (CIDR), tested against the client address
    /// decided by the GatewayConfig's `clientAddress`.
    #[serde(
        default,
        rename = "clientCIDRs",
        skip_serializing_if = "Option::is_none"
    )]
    pub client_cidrs: Option<Vec<String>>,
    /// Conditions on a verified JWT.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtPrincipal>,
    /// Consumer names (API key owner, Basic user, introspected subject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consumers: Option<Vec<String>>,
}

/// Conditions on a verified JWT.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtPrincipal {
    /// The provider that verified the token; absent: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Scopes that must all be granted (`scope` or `scp`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Claims that must each hold one of their values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<Vec<JwtClaim>>,
}

/// A claim condition.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtClaim {
    /// Claim name; dots reach into objects.
    pub name: String,
    /// Accepted values (a string claim equal to one, or an array claim
    /// holding one).
    pub values: Vec<String>,
}

/// Conditions on the request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// HTTP methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Path prefixes, matched element-wise (like `PathPrefix`) against the
    /// normalized path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}
