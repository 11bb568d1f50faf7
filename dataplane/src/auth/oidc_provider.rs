//! What the OIDC login asks of the provider behind the browser's back: the
//! token endpoint (code exchange with the PKCE verifier, refresh), with the
//! client's credentials in HTTP Basic, and ID-token verification.
//!
//! Every token coming back is verified before anything is built from it;
//! a refresh answer without an ID token does not renew a session (its
//! claims could not be checked), so the browser logs in again.

use super::BuildContext;
use super::call::Call;
use super::id_token::{IdTokenVerifier, JwksVerifier, VerifyError};
use crate::error::ProxyError;
use base64::Engine;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::{Map, Value};
use tollgate_snapshot::Oidc;

/// Verified tokens from the token endpoint.
#[derive(Debug)]
pub(crate) struct Tokens {
    /// The ID token's claims, checked.
    pub(crate) claims: Map<String, Value>,
    /// A refresh token, when the provider issued one.
    pub(crate) refresh_token: Option<String>,
}

/// A token endpoint's answer (RFC 6749 §5.1), before verification.
#[derive(Debug, Deserialize)]
struct Answer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

/// The provider's token endpoint and keys, as one client sees them.
#[derive(Debug)]
pub(crate) struct Provider {
    token: Result<Call, String>,
    /// `Authorization: Basic …` (RFC 6749 §2.3.1: each part form-encoded).
    client_authorization: String,
    verifier: Box<dyn IdTokenVerifier>,
}

impl Provider {
    /// Builds the provider of `config`.
    pub(crate) fn build(config: &Oidc, cx: &BuildContext<'_>) -> Provider {
        let token = Call::build(&config.token_endpoint, cx).map_err(|e| e.to_string());
        if let Err(error) = &token {
            tracing::warn!(issuer = %config.issuer, %error, "OIDC token endpoint cannot be called");
        }
        let pair = format!(
            "{}:{}",
            encode(&config.client_id),
            encode(config.client_secret.expose())
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(pair);
        let verifier = JwksVerifier::build(&config.jwks, &config.issuer, &config.client_id, cx);
        Provider {
            token,
            client_authorization: format!("Basic {basic}"),
            verifier: Box::new(verifier),
        }
    }

    /// Exchanges an authorization code; `nonce` must be in the ID token.
    ///
    /// # Errors
    ///
    /// `Unauthenticated` when the provider refuses the code or the ID token
    /// does not check out; `Dependency` when it cannot be asked.
    pub(crate) async fn exchange(
        &self,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
        nonce: &str,
    ) -> Result<Tokens, ProxyError> {
        let form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            encode(code),
            encode(redirect_uri),
            encode(verifier)
        );
        let answer = self.post(form).await?.ok_or(refused("oidc-code"))?;
        let id_token = answer.id_token.ok_or(refused("oidc-id-token"))?;
        let claims = self.verify(&id_token).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
            return Err(refused("oidc-nonce"));
        }
        Ok(Tokens {
            claims,
            refresh_token: answer.refresh_token,
        })
    }

    /// Renews a session with its refresh token; the old refresh token is
    /// kept when the provider does not rotate it.
    ///
    /// # Errors
    ///
    /// As for [`Provider::exchange`]; any error means "log in again".
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Tokens, ProxyError> {
        let form = format!(
            "grant_type=refresh_token&refresh_token={}",
            encode(refresh_token)
        );
        let answer = self.post(form).await?.ok_or(refused("oidc-refresh"))?;
        let id_token = answer.id_token.ok_or(refused("oidc-id-token"))?;
        Ok(Tokens {
            claims: self.verify(&id_token).await?,
            refresh_token: answer
                .refresh_token
                .or_else(|| Some(refresh_token.to_string())),
        })
    }

    /// POSTs `form` to the token endpoint; `None` when the provider refused
    /// it (a 4xx: a bad code or refresh token).
    async fn post(&self, form: String) -> Result<Option<Answer>, ProxyError> {
        let call = self.token.as_ref().map_err(|e| unavailable(e.clone()))?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(call.path())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, &self.client_authorization)
            .body(Bytes::from(form))
            .map_err(|e| unavailable(e.to_string()))?;
        let failed = |why: String| unavailable(format!("{}: {why}", call.uri()));
        let answer = call
            .send(request)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if answer.status().is_client_error() {
            tracing::debug!(status = %answer.status(), "token endpoint refused");
            return Ok(None);
        }
        if !answer.status().is_success() {
            return Err(failed(format!("status {}", answer.status())));
        }
        serde_json::from_slice(answer.body())
            .map(Some)
            .map_err(|e| failed(e.to_string()))
    }

    async fn verify(&self, id_token: &str) -> Result<Map<String, Value>, ProxyError> {
        self.verifier.verify(id_token).await.map_err(|e| match e {
            VerifyError::Invalid(why) => {
                tracing::debug!(%why, "ID token refused");
                refused("oidc-id-token")
            }
            VerifyError::Keys(why) => unavailable(why),
        })
    }
}

/// A 401 with a stable reason, without a challenge (browsers have none to
/// answer).
pub(crate) fn refused(reason: &'static str) -> ProxyError {
    ProxyError::Unauthenticated {
        reason,
        challenge: None,
    }
}

/// The provider (or the gateway's side of talking to it) failed: 503.
pub(crate) fn unavailable(why: String) -> ProxyError {
    ProxyError::Dependency {
        dependency: "oidc".into(),
        source: why.into(),
    }
}

/// Form (and query) encoding.
pub(crate) fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}
