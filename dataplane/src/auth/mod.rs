//! Authentication and authorization: the `auth` stage built from a rule's
//! effective [`AuthConfig`].
//!
//! ```text
//!   credential methods, in a fixed order; the first that finds a
//!   credential decides (a present, bad credential is 401 even if a later
//!   method would accept the request):
//!     jwt → oidc session → introspection → api key → basic
//!   no credential and a method configured → anonymous: 401 unless the
//!     authorization rules allow anonymous callers
//!   external auth calls, in order (may answer, may add headers)
//!   authorization rules (first match decides; default when none)
//! ```
//!
//! Each method lives in its own module and implements `Method`; the
//! process-wide state they share across snapshot swaps (JWKS caches, the
//! HTTP client for auth calls, introspection caches) is in [`AuthClients`],
//! owned by the upstream `Clients` and handed to `Runtime::build`.

mod api_key;
mod authz;
mod basic;
mod call;
mod credential;
mod ext_auth;
mod ext_auth_grpc;
mod id_token;
mod introspection;
mod jwks;
mod jwt;
mod oidc;
mod oidc_provider;
mod oidc_session;
#[cfg(test)]
mod test_keys;
mod token_cache;

use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use crate::stage::{Flow, Stage, StageFuture};
use crate::upstream::BackendSet;
use http::HeaderValue;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tollgate_snapshot::AuthConfig;

pub(crate) use authz::{Authorizer, under};
use ext_auth::ExtAuthCall;
use introspection::IntrospectionAuth;
use introspection::Verdict;
pub use jwt::TokenVerifier;
use oidc::OidcAuth;
use token_cache::TokenCaches;

/// What a credential method found.
pub(crate) enum Outcome {
    /// No credential of this kind in the request: try the next method.
    NoCredential,
    /// A valid credential: the caller.
    Authenticated(Principal),
    /// The method answers itself (an OIDC login redirect or callback).
    Answer(Flow),
}

/// The future of [`Method::authenticate`].
pub(crate) type MethodFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Outcome, ProxyError>> + Send + 'a>>;

/// One credential method (JWT, API key, ...).
pub(crate) trait Method: Send + Sync + fmt::Debug {
    /// Looks for this method's credential in the request and checks it.
    /// A present but invalid credential is `Err(Unauthenticated)`; a
    /// dependency that is down is `Err(Dependency)` unless the method fails
    /// open. The method removes its credential from the request unless
    /// configured to forward it.
    fn authenticate<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> MethodFuture<'a>;

    /// The `WWW-Authenticate` scheme to offer when no credential was
    /// found (`Bearer`, `Basic`), if the method has one.
    fn challenge_scheme(&self) -> Option<&'static str> {
        None
    }
}

/// Process-wide state of the auth methods, kept across snapshot swaps.
#[derive(Debug, Default)]
pub struct AuthClients {
    /// Remote JWKS by endpoint URI.
    jwks: jwks::JwksCache,
    /// Introspection answers, by endpoint and client id.
    introspection: TokenCaches<Verdict>,
    /// OIDC session renewals, by issuer and client id.
    oidc_renewals: TokenCaches<String>,
}

/// What building an auth stage needs besides its configuration.
pub(crate) struct BuildContext<'a> {
    /// The process-wide state.
    pub(crate) clients: &'a Arc<AuthClients>,
    /// The snapshot's backends, for `backendRef` call targets.
    pub(crate) backends: &'a BackendSet,
}

/// The `auth` stage of one effective [`AuthConfig`].
#[derive(Debug)]
pub(crate) struct AuthStage {
    /// The policies it came from, for logs.
    sources: Box<str>,
    methods: Vec<Box<dyn Method>>,
    /// External auth calls, run in order after authentication.
    ext: Vec<ExtAuthCall>,
    authorizer: Option<Authorizer>,
    /// Whether a request with no credential is refused before
    /// authorization (a method is configured and no rule could allow an
    /// anonymous caller).
    requires_credential: bool,
}

impl AuthStage {
    /// Builds the stage for `config`.
    pub(crate) fn build(config: &AuthConfig, cx: &BuildContext<'_>) -> AuthStage {
        let mut methods: Vec<Box<dyn Method>> = Vec::new();
        if let Some(jwt) = &config.jwt {
            methods.push(Box::new(jwt::JwtAuth::build(jwt, cx)));
        }
        if let Some(oidc) = &config.oidc {
            methods.push(Box::new(OidcAuth::build(oidc, cx)));
        }
        if let Some(introspection) = &config.introspection {
            methods.push(Box::new(IntrospectionAuth::build(introspection, cx)));
        }
        if let Some(keys) = &config.api_keys {
            methods.push(Box::new(api_key::ApiKeyAuth::build(keys)));
        }
        if let Some(basic) = &config.basic {
            methods.push(Box::new(basic::BasicAuth::build(basic)));
        }
        let authorizer = config.authorization.as_ref().map(Authorizer::build);
        let requires_credential = credential_required(config)
            && !authorizer
                .as_ref()
                .is_some_and(Authorizer::may_allow_anonymous);
        AuthStage {
            sources: config.sources.join(",").into(),
            methods,
            ext: config
                .ext_auth
                .iter()
                .map(|e| ExtAuthCall::build(e, cx))
                .collect(),
            authorizer,
            requires_credential,
        }
    }

    async fn run(&self, ctx: &mut RequestContext<'_>) -> Result<Flow, ProxyError> {
        for method in &self.methods {
            match method.authenticate(ctx).await? {
                Outcome::NoCredential => {}
                Outcome::Authenticated(principal) => {
                    ctx.principal = Some(principal);
                    break;
                }
                Outcome::Answer(flow) => return Ok(flow),
            }
        }
        if ctx.principal.is_none() && self.requires_credential {
            tracing::debug!(sources = %self.sources, "no credential");
            return Err(self.missing(ctx));
        }
        for ext in &self.ext {
            if let answer @ Flow::Answer(_) = ext.check(ctx).await? {
                return Ok(answer);
            }
        }
        if let Some(authorizer) = &self.authorizer
            && let Err(rule) = authorizer.check(ctx)
        {
            tracing::debug!(sources = %self.sources, rule, "denied by authorization");
            return Err(if ctx.principal.is_some() {
                ProxyError::Forbidden { reason: "denied" }
            } else {
                self.missing(ctx)
            });
        }
        Ok(Flow::Continue)
    }

    /// The 401 for a request that carries no credential: the first
    /// method's challenge, without an error code (RFC 6750 §3.1).
    fn missing(&self, ctx: &RequestContext<'_>) -> ProxyError {
        let scheme = self.methods.iter().find_map(|m| m.challenge_scheme());
        ProxyError::Unauthenticated {
            reason: "missing",
            challenge: scheme.and_then(|s| challenge(s, &ctx.host, None)),
        }
    }
}

impl Stage for AuthStage {
    fn name(&self) -> &'static str {
        "auth"
    }

    fn on_request<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> StageFuture<'a> {
        Box::pin(self.run(ctx))
    }
}

/// Whether a request with no credential at all is refused (before
/// authorization): some method is configured and not every configured
/// method is optional. Only JWT can be optional today.
fn credential_required(config: &AuthConfig) -> bool {
    let jwt_only_optional = config.jwt.as_ref().is_some_and(|jwt| jwt.optional)
        && config.oidc.is_none()
        && config.introspection.is_none()
        && config.api_keys.is_none()
        && config.basic.is_none();
    config.authenticates() && !jwt_only_optional
}

/// A `WWW-Authenticate` value: `<scheme> realm="<host>"`, with an RFC 6750
/// error code when a bearer token was refused.
pub(crate) fn challenge(scheme: &str, realm: &str, error: Option<&str>) -> Option<HeaderValue> {
    let realm: String = realm
        .chars()
        .filter(|c| c.is_ascii_graphic() && *c != '"' && *c != '\\')
        .collect();
    let mut value = format!("{scheme} realm=\"{realm}\"");
    if scheme == "Basic" {
        value.push_str(", charset=\"UTF-8\"");
    }
    if let Some(error) = error {
        value.push_str(&format!(", error=\"{error}\""));
    }
    HeaderValue::from_str(&value).ok()
}

/// Request contexts for unit tests outside this module.
#[cfg(test)]
pub(crate) mod tests_support {
    use crate::context::RequestContext;

    /// A bare `GET /` context for `api.example` from 127.0.0.1.
    pub(crate) fn context() -> RequestContext<'static> {
        crate::context::tests::context(&[], None)
    }
}
