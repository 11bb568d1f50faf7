//! The credential-checking sections of an AuthPolicy: JWT, API keys, Basic
//! and OIDC login, shaped like Envoy Gateway's SecurityPolicy.

use crate::auth_policy::{CallBackendRef, LocalObjectRef};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// JWT validation with one or more providers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Jwt {
    /// Token issuers; a token is checked against the provider whose issuer
    /// it names.
    #[schemars(length(min = 1, max = 4))]
    pub providers: Vec<JwtProvider>,
    /// Let requests without a token through unauthenticated (authorization
    /// then decides); a present but invalid token is still refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
}

/// One JWT issuer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtProvider {
    /// Provider name, unique in the policy; authorization rules refer to it.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Required `iss` of tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `aud` must hold one of these, when any are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audiences: Option<Vec<String>>,
    /// Signature algorithms accepted (e.g. RS256, ES256); default: every
    /// asymmetric algorithm of the key's type. `none` is never accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithms: Option<Vec<String>>,
    /// Keys fetched from a JWKS endpoint. Exactly one of remoteJWKS and
    /// localJWKS.
    #[serde(
        default,
        rename = "remoteJWKS",
        skip_serializing_if = "Option::is_none"
    )]
    pub remote_jwks: Option<RemoteJwks>,
    /// Keys given inline or in a Secret.
    #[serde(default, rename = "localJWKS", skip_serializing_if = "Option::is_none")]
    pub local_jwks: Option<LocalJwks>,
    /// Where the token is read from; default the `Authorization: Bearer`
    /// header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_from: Option<JwtExtractor>,
    /// Claims copied into request headers for the backend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim_to_headers: Option<Vec<ClaimToHeader>>,
    /// Keep the token in the request sent to the backend; default false
    /// (removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_access_token: Option<bool>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds; default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 600))]
    pub clock_skew_seconds: Option<u32>,
}

/// A JWKS endpoint.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemoteJwks {
    /// The JWKS URI (`https://`; `http://` is accepted with a warning, for
    /// local setups). With backendRefs, only its path and Host are used.
    pub uri: String,
    /// Services that serve the URI, in place of DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1))]
    pub backend_refs: Option<Vec<CallBackendRef>>,
    /// How long keys are cached when the response names no lifetime, in
    /// seconds; default 300.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_duration_seconds: Option<u32>,
}

/// A JWKS document given with the policy.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LocalJwks {
    /// Where the document is.
    #[serde(rename = "type")]
    pub type_: LocalJwksType,
    /// The JWKS JSON, for `Inline`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inline: Option<String>,
    /// A Secret or ConfigMap holding the JWKS under the key `jwks`, for
    /// `ValueRef`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_ref: Option<LocalObjectRef>,
}

/// Where a local JWKS document is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum LocalJwksType {
    /// In the `inline` field.
    #[default]
    Inline,
    /// In the object `valueRef` names.
    ValueRef,
}

/// Where a JWT is read from, tried in order: headers, cookies, params.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtExtractor {
    /// Headers, each optionally after a prefix such as `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<JwtHeaderSource>>,
    /// Cookie names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<Vec<String>>,
    /// Query parameter names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
}

/// A header that carries a JWT.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JwtHeaderSource {
    /// Header name.
    pub name: String,
    /// Prefix before the token, e.g. `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_prefix: Option<String>,
}

/// A claim copied into a request header.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimToHeader {
    /// Header name.
    pub header: String,
    /// Claim name; dots reach into objects (`realm.role`).
    pub claim: String,
}

/// API keys: each Secret key is a consumer name, its value the key.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyAuth {
    /// Secrets in the policy's namespace holding keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_refs: Option<Vec<LocalObjectRef>>,
    /// Also every Secret of the policy's namespace with these labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Where the key is read from; default the `x-api-key` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extract_from: Option<Vec<ApiKeyExtractor>>,
    /// Keep the key in the request sent to the backend; default false
    /// (removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_credential: Option<bool>,
}

/// Places an API key may be read from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyExtractor {
    /// Header names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers: Option<Vec<String>>,
    /// Query parameter names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Vec<String>>,
    /// Cookie names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookies: Option<Vec<String>>,
}

/// HTTP Basic authentication.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// A Secret in the policy's namespace whose `.htpasswd` key holds
    /// `user:hash` lines (bcrypt, or `{SHA}`).
    pub users: LocalObjectRef,
    /// Keep the `Authorization` header for the backend; default false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_credential: Option<bool>,
}

/// OpenID Connect login for browsers.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Oidc {
    /// The OpenID provider.
    pub provider: OidcProvider,
    /// Client id registered with the provider.
    #[serde(rename = "clientID")]
    pub client_id: String,
    /// A Secret in the policy's namespace whose `client-secret` key holds
    /// the client secret.
    pub client_secret: LocalObjectRef,
    /// Scopes requested besides `openid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<String>>,
    /// Callback URL or path the provider redirects to; default
    /// `/oauth2/callback`.
    #[serde(
        default,
        rename = "redirectURL",
        skip_serializing_if = "Option::is_none"
    )]
    pub redirect_url: Option<String>,
    /// Path that ends the session; default `/logout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logout_path: Option<String>,
    /// A Secret in the policy's namespace whose `cookie-key` key holds the
    /// 32-byte base64 key that seals session cookies.
    pub cookie_key_ref: LocalObjectRef,
    /// Session cookie name prefix; default `tollgate-session`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cookie_name: Option<String>,
}

/// An OpenID provider's endpoints (compile does no discovery, so each is
/// named).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OidcProvider {
    /// The issuer; `iss` of ID tokens.
    pub issuer: String,
    /// Where browsers are sent to log in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// Where browsers are sent to log out, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// The provider's JWKS, to verify ID tokens.
    #[serde(rename = "jwksURI")]
    pub jwks_uri: String,
    /// A Service that serves the token and JWKS endpoints, in place of DNS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1))]
    pub backend_refs: Option<Vec<CallBackendRef>>,
}
