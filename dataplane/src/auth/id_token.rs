//! Verifying OIDC ID tokens: signature against the provider's JWKS, `iss`,
//! `aud` (the client id), `exp` and `nbf`.
//!
//! OIDC needs only "are these the provider's claims?", so it asks through
//! [`IdTokenVerifier`]; [`JwksVerifier`] is a small JWKS cache of its own
//! (fetched on first use, refetched when a token names an unknown `kid` or
//! the keys are older than their lifetime, at most once per
//! [`REFETCH_GAP`], keeping the old keys while the endpoint is down). The
//! JWT method's shared JWKS cache (`jwks.rs`) can take its place behind
//! the same trait once both exist.

use super::BuildContext;
use super::call::Call;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::Request;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use std::fmt;
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tollgate_snapshot::JwksSource;

/// Least time between two JWKS fetches, so a flood of tokens with unknown
/// `kid`s cannot turn into a flood of fetches.
pub(crate) const REFETCH_GAP: Duration = Duration::from_secs(10);

/// Clock skew allowed on `exp` and `nbf`, in seconds.
const LEEWAY: u64 = 60;

/// Why an ID token was refused.
#[derive(Debug, Error)]
pub(crate) enum VerifyError {
    /// The token is malformed, badly signed, expired, or for someone else.
    #[error("invalid ID token: {0}")]
    Invalid(String),
    /// The keys could not be fetched.
    #[error("JWKS unavailable: {0}")]
    Keys(String),
}

/// Checks an ID token and returns its claims.
pub(crate) trait IdTokenVerifier: Send + Sync + fmt::Debug {
    /// The claims of `token` once its signature, issuer, audience and
    /// lifetime are checked.
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Map<String, Value>, VerifyError>>;
}

/// Where the keys come from.
#[derive(Debug)]
enum Keys {
    Inline(JwkSet),
    Remote {
        call: Result<Call, String>,
        ttl: Duration,
        /// The last keys fetched, and when.
        cached: Mutex<Option<(JwkSet, Instant)>>,
    },
}

/// Verifies ID tokens against a provider's JWKS.
#[derive(Debug)]
pub(crate) struct JwksVerifier {
    keys: Keys,
    issuer: String,
    client_id: String,
}

impl JwksVerifier {
    /// Builds the verifier; an inline JWKS that does not parse holds no key.
    pub(crate) fn build(
        source: &JwksSource,
        issuer: &str,
        client_id: &str,
        cx: &BuildContext<'_>,
    ) -> JwksVerifier {
        let keys = match source {
            JwksSource::Inline { jwks } => Keys::Inline(serde_json::from_str(jwks).unwrap_or_else(|e| {
                tracing::warn!(issuer, error = %e, "inline JWKS does not parse; no ID token will verify");
                JwkSet { keys: vec![] }
            })),
            JwksSource::Remote {
                target,
                default_ttl_seconds,
            } => Keys::Remote {
                call: Call::build(target, cx).map_err(|e| e.to_string()),
                ttl: Duration::from_secs(*default_ttl_seconds),
                cached: Mutex::new(None),
            },
        };
        JwksVerifier {
            keys,
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
        }
    }

    async fn check(&self, token: &str) -> Result<Map<String, Value>, VerifyError> {
        let invalid = |e: jsonwebtoken::errors::Error| VerifyError::Invalid(e.to_string());
        let header = decode_header(token).map_err(invalid)?;
        if !asymmetric(header.alg) {
            return Err(VerifyError::Invalid(format!(
                "algorithm {:?} refused",
                header.alg
            )));
        }
        let kid = header.kid.unwrap_or_default();
        let key = self.key(&kid).await?;
        let mut validation = Validation::new(header.alg);
        validation.algorithms = vec![header.alg];
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        validation.leeway = LEEWAY;
        validation.validate_nbf = true;
        Ok(decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(invalid)?
            .claims)
    }

    /// The key named `kid` (any key when the token names none and the set
    /// has one), fetching the set when needed.
    async fn key(&self, kid: &str) -> Result<DecodingKey, VerifyError> {
        match &self.keys {
            Keys::Inline(set) => find(set, kid),
            Keys::Remote { call, ttl, cached } => {
                let call = call.as_ref().map_err(|e| VerifyError::Keys(e.clone()))?;
                let mut cached = cached.lock().await;
                let fresh = cached
                    .as_ref()
                    .is_some_and(|(set, at)| at.elapsed() < *ttl && find(set, kid).is_ok());
                let may_fetch = cached
                    .as_ref()
                    .is_none_or(|(_, at)| at.elapsed() >= REFETCH_GAP);
                if !fresh && may_fetch {
                    match fetch(call).await {
                        Ok(set) => *cached = Some((set, Instant::now())),
                        Err(error) if cached.is_none() => return Err(error),
                        Err(error) => {
                            tracing::warn!(%error, "JWKS refresh failed; keeping the old keys")
                        }
                    }
                }
                match cached.as_ref() {
                    Some((set, _)) => find(set, kid),
                    None => Err(VerifyError::Keys("no keys yet".into())),
                }
            }
        }
    }
}

impl IdTokenVerifier for JwksVerifier {
    fn verify<'a>(
        &'a self,
        token: &'a str,
    ) -> BoxFuture<'a, Result<Map<String, Value>, VerifyError>> {
        Box::pin(self.check(token))
    }
}

/// Only public-key algorithms: an HMAC "signature" made with a public key
/// must never verify.
fn asymmetric(alg: Algorithm) -> bool {
    !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
}

fn find(set: &JwkSet, kid: &str) -> Result<DecodingKey, VerifyError> {
    let jwk = if kid.is_empty() && set.keys.len() == 1 {
        set.keys.first()
    } else {
        set.find(kid)
    };
    let jwk = jwk.ok_or_else(|| VerifyError::Invalid(format!("unknown key {kid:?}")))?;
    DecodingKey::from_jwk(jwk).map_err(|e| VerifyError::Invalid(e.to_string()))
}

async fn fetch(call: &Call) -> Result<JwkSet, VerifyError> {
    let request = Request::get(call.path())
        .header(http::header::ACCEPT, "application/json")
        .body(Bytes::new())
        .map_err(|e| VerifyError::Keys(e.to_string()))?;
    let answer = call
        .send(request)
        .await
        .map_err(|e| VerifyError::Keys(format!("{}: {e}", call.uri())))?;
    if !answer.status().is_success() {
        return Err(VerifyError::Keys(format!(
            "{}: status {}",
            call.uri(),
            answer.status()
        )));
    }
    serde_json::from_slice(answer.body())
        .map_err(|e| VerifyError::Keys(format!("{}: {e}", call.uri())))
}
