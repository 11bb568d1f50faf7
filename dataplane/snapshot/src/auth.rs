//! Authentication and authorization: the effective `AuthPolicy` of a route
//! rule, merged by `compile` from every level that targets it (Gateway,
//! listener, HTTPRoute, rule) plus the rule's Gateway API `ExternalAuth`
//! filter.
//!
//! Equal effective policies are stored once in `Snapshot::auth` and shared
//! by index (`Route::auth`), so a Gateway-wide policy costs one JWKS cache
//! and one set of key hashes however many rules it covers. Credentials
//! (client secrets, password hashes, session keys) travel as [`Redacted`].

use crate::Redacted;
use serde::{Deserialize, Serialize};

/// One effective authentication and authorization configuration.
///
/// Authentication methods run in a fixed order — JWT, OIDC session,
/// introspection, API key, basic — and the first that finds a credential
/// decides: a present but invalid credential is a 401 even when another
/// method could have accepted the request. With no credential at all the
/// request is anonymous; it is refused with 401 unless `authorization`
/// allows anonymous callers or no method is required. External auth runs
/// after authentication, and `authorization` last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthConfig {
    /// The policies merged into this configuration, e.g.
    /// `authpolicy/default/api`, most specific first: logs and the admin
    /// status name them.
    pub sources: Vec<String>,
    /// JWT validation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<Jwt>,
    /// Browser login with OpenID Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oidc: Option<Oidc>,
    /// OAuth2 token introspection (RFC 7662).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection: Option<Introspection>,
    /// API keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_keys: Option<ApiKeys>,
    /// HTTP Basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// External authorization services, called in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ext_auth: Vec<ExtAuth>,
    /// Who may pass, once authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<Authorization>,
}

impl AuthConfig {
    /// Whether any authentication method is configured: then a request with
    /// no credential at all is refused with 401 unless an authorization
    /// rule allows it without a principal.
    pub fn authenticates(&self) -> bool {
        self.jwt.is_some()
            || self.oidc.is_some()
            || self.introspection.is_some()
            || self.api_keys.is_some()
            || self.basic.is_some()
    }

    /// Replaces every credential with a placeholder, for admin output.
    pub fn redact(&mut self) {
        if let Some(oidc) = &mut self.oidc {
            oidc.client_secret = oidc.client_secret.placeholder();
            oidc.cookie_key = oidc.cookie_key.placeholder();
        }
        if let Some(introspection) = &mut self.introspection {
            introspection.client_secret = introspection.client_secret.placeholder();
        }
        if let Some(basic) = &mut self.basic {
            basic.htpasswd = basic.htpasswd.placeholder();
        }
    }

    /// Every call target, for validation of backend indexes.
    pub fn targets(&self) -> impl Iterator<Item = &CallTarget> {
        let jwt = self
            .jwt
            .iter()
            .flat_map(|j| &j.providers)
            .filter_map(|p| jwks(&p.jwks));
        let oidc = self.oidc.iter().flat_map(|o| {
            [Some(&o.token_endpoint), jwks(&o.jwks)]
                .into_iter()
                .flatten()
        });
        let introspection = self.introspection.iter().map(|i| &i.endpoint);
        let ext = self.ext_auth.iter().map(|e| &e.target);
        jwt.chain(oidc).chain(introspection).chain(ext)
    }
}

/// Where a credential is read from, tried in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum CredentialSource {
    /// A header, optionally after a prefix (`Bearer `, compared without case).
    Header {
        /// Header name, lowercase.
        name: String,
        /// Prefix before the credential, e.g. `Bearer `.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prefix: Option<String>,
    },
    /// A cookie.
    Cookie {
        /// Cookie name.
        name: String,
    },
    /// A query parameter.
    Query {
        /// Parameter name.
        name: String,
    },
}

/// A call the gateway makes to a service (JWKS, introspection, external
/// auth, OIDC endpoints).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallTarget {
    /// Absolute URI (`https://…` or `http://…`). For a `backendRef`, the
    /// Service's endpoints are in `backend` and the URI's authority is only
    /// the `Host` sent.
    pub uri: String,
    /// Index into `Snapshot::backends` when the manifest named a
    /// `backendRef`; calls then go to its endpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backend: Option<usize>,
    /// PEM CA bundle trusted for `https` calls, in place of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Timeout of one call, in milliseconds.
    pub timeout_ms: u64,
}

/// JWT validation with one or more providers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Jwt {
    /// Providers; a token is checked against the one whose issuer it names,
    /// else each in turn.
    pub providers: Vec<JwtProvider>,
    /// When true, a request without a token passes unauthenticated (and
    /// `authorization` decides); a present, invalid token is still 401.
    #[serde(default)]
    pub optional: bool,
}

/// One JWT issuer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtProvider {
    /// Provider name, used by authorization rules.
    pub name: String,
    /// Required `iss`, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// `aud` must contain one of these, when any are set.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Accepted `alg` values (never `none`); empty: every asymmetric
    /// algorithm of the key's type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub algorithms: Vec<String>,
    /// Where the keys come from.
    pub jwks: JwksSource,
    /// Where the token is read from; empty: `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract_from: Vec<CredentialSource>,
    /// Claims copied into request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Keep the token in the request sent to the backend.
    #[serde(default)]
    pub forward_token: bool,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub clock_skew_seconds: u64,
}

/// Where a provider's keys come from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum JwksSource {
    /// Fetched and cached (per `Cache-Control`, refreshed in the background).
    Remote {
        /// The JWKS endpoint.
        target: CallTarget,
        /// Cache lifetime when the response names none, in seconds.
        default_ttl_seconds: u64,
    },
    /// A JWKS document given inline or read from a Secret.
    Inline {
        /// The JWKS JSON.
        jwks: String,
    },
}

/// A claim copied into a request header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimToHeader {
    /// Claim name; nested claims with dots (`realm.role`).
    pub claim: String,
    /// Header name, lowercase.
    pub header: String,
}

/// OpenID Connect authorization-code login with PKCE.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Oidc {
    /// The provider's issuer; `iss` of ID tokens.
    pub issuer: String,
    /// Authorization endpoint (browser redirect).
    pub authorization_endpoint: String,
    /// Token endpoint (code exchange, refresh).
    pub token_endpoint: CallTarget,
    /// The provider's JWKS, to verify ID tokens.
    pub jwks: JwksSource,
    /// End-session endpoint, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: Redacted,
    /// Scopes requested (`openid` always).
    pub scopes: Vec<String>,
    /// Callback path or absolute URL.
    pub redirect_uri: String,
    /// Path that clears the session.
    pub logout_path: String,
    /// Key that seals session cookies (32 bytes, base64).
    pub cookie_key: Redacted,
    /// Session cookie name prefix.
    pub cookie_name: String,
}

/// OAuth2 token introspection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Introspection {
    /// The introspection endpoint.
    pub endpoint: CallTarget,
    /// Client id for the endpoint (HTTP Basic).
    pub client_id: String,
    /// Client secret.
    pub client_secret: Redacted,
    /// Where the token is read from; empty: `Authorization: Bearer`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract_from: Vec<CredentialSource>,
    /// How long an inactive answer is cached, in seconds.
    pub negative_cache_seconds: u64,
    /// Longest an active answer is cached when it names no `exp`, in seconds.
    pub max_cache_seconds: u64,
    /// Let requests through when the endpoint cannot be reached.
    #[serde(default)]
    pub fail_open: bool,
}

/// API keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeys {
    /// Keys by consumer; only SHA-256 hashes travel.
    pub keys: Vec<ApiKey>,
    /// Where the key is read from; empty: `x-api-key`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extract_from: Vec<CredentialSource>,
    /// Keep the key in the request sent to the backend.
    #[serde(default)]
    pub forward_credential: bool,
}

/// One consumer's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// The consumer the key identifies.
    pub consumer: String,
    /// Lowercase hex SHA-256 of the key.
    pub sha256: String,
}

/// HTTP Basic authentication from an htpasswd file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasicAuth {
    /// `user:hash` lines (bcrypt `$2y$`/`$2b$`, or `{SHA}`).
    pub htpasswd: Redacted,
    /// Keep the `Authorization` header for the backend.
    #[serde(default)]
    pub forward_credential: bool,
}

/// An external authorization call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtAuth {
    /// Where the check goes; with HTTP, the request's path is appended to
    /// the target's path.
    pub target: CallTarget,
    /// HTTP (the request's method and path, headers, no body) or gRPC
    /// (`envoy.service.auth.v3.Authorization/Check`).
    pub protocol: ExtAuthProtocol,
    /// Request headers sent to the service; empty: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers_to_auth: Vec<String>,
    /// Headers of the service's OK answer copied to the backend request.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers_to_backend: Vec<String>,
    /// Let requests through when the service cannot be reached or times
    /// out. The Gateway API filter always fails closed.
    #[serde(default)]
    pub fail_open: bool,
    /// The policy or filter this call came from.
    pub source: String,
}

/// Protocol of an external authorization service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtAuthProtocol {
    /// Plain HTTP: a 2xx allows; anything else is the answer.
    #[serde(rename = "HTTP")]
    Http,
    /// Envoy's ext_authz gRPC service.
    #[serde(rename = "GRPC")]
    Grpc,
}

/// Authorization rules, checked in order after authentication.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    /// What happens when no rule matches.
    pub default_action: AuthzAction,
    /// Rules; the first whose conditions all hold decides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<AuthzRule>,
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthzAction {
    /// Let the request through.
    Allow,
    /// Refuse it: 403 when authenticated, 401 when anonymous.
    Deny,
}

/// One authorization rule: every condition present must hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthzRule {
    /// Rule name, for logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The decision when the rule matches.
    pub action: AuthzAction,
    /// JWT conditions (provider, scopes, claims).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtPrincipal>,
    /// Consumers (API key, basic user, introspected `sub`/`username`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<String>,
    /// Client address ranges (CIDR), tested against the client address.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_cidrs: Vec<String>,
    /// Methods, uppercase.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub methods: Vec<String>,
    /// Normalized path prefixes (element-wise, like `PathPrefix`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_prefixes: Vec<String>,
}

/// JWT conditions of an authorization rule.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JwtPrincipal {
    /// The provider that verified the token; `None`: any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// Every scope must be granted (`scope` or `scp`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// Claims that must hold one of the values (strings, or in arrays).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimMatch>,
}

/// A claim condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimMatch {
    /// Claim name; dots reach into objects.
    pub name: String,
    /// Accepted values.
    pub values: Vec<String>,
}

fn jwks(source: &JwksSource) -> Option<&CallTarget> {
    match source {
        JwksSource::Remote { target, .. } => Some(target),
        JwksSource::Inline { .. } => None,
    }
}
