//! JWT bearer tokens: the first credential method of the auth stage.
//!
//! A token is looked for in every provider's sources (the `Authorization:
//! Bearer` header unless a provider names others). Its unverified `iss`
//! chooses the providers to try: those naming that issuer, else those that
//! name no issuer; a token matching neither is `wrong-issuer`. Each
//! candidate checks the algorithm against its allowlist, the signature
//! against its keys ([`super::jwks`]) and then the claims
//! ([`verify::Rules`]). Keys already held are tried first for every
//! candidate; only when none has the token's `kid` is a refetch asked for,
//! so a token meant for one provider never makes another refetch its set.
//!
//! A verified token is remembered until it expires or its key set is
//! replaced ([`cache`]), so a client reusing its token pays the signature
//! check once.
//!
//! On success the caller's [`Principal`] is set, the configured claims are
//! copied into headers (client-sent copies of those headers are always
//! removed first, token or not), and the token is removed unless the
//! provider forwards it. A refusal is a 401 with an RFC 6750
//! `invalid_token` challenge and a stable reason label; a provider whose
//! keys cannot be had at all makes it a 503 (see [`jwks::remote`]).
//!
//! [`jwks::remote`]: super::jwks::remote

mod cache;
mod claims;
pub(crate) mod verify;

use super::credential::{self, Found};
use super::jwks::{JwksError, KeySet, Keys};
use super::{BuildContext, Method, MethodFuture, Outcome, call::Call, challenge};
use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use cache::{TokenCache, Verified};
use claims::{claim, header_text, principal};
use http::{HeaderName, HeaderValue};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use tollgate_snapshot::{CredentialSource, JwksSource, Jwt, JwtProvider};
use verify::{Reject, Rules, Token};

/// The built JWT method.
#[derive(Debug)]
pub(crate) struct JwtAuth {
    providers: Vec<Provider>,
    /// Every provider's sources, without repeats, in order.
    sources: Vec<CredentialSource>,
    /// Every header any provider fills from claims.
    claim_headers: Vec<HeaderName>,
    /// Tokens verified lately.
    cache: TokenCache,
}

#[derive(Debug)]
struct Provider {
    name: Arc<str>,
    rules: Rules,
    keys: Keys,
    sources: Vec<CredentialSource>,
    claim_to_headers: Vec<(String, HeaderName)>,
    forward_token: bool,
}

/// Why one provider did not accept a token.
#[derive(Debug)]
enum Failure {
    Reject(Reject),
    Keys(JwksError),
}

impl Failure {
    /// Which of two failures to report: a provider that had the key and
    /// refused the token says the most; a missing set (503) comes next;
    /// an unknown `kid` least.
    fn rank(&self) -> u8 {
        match self {
            Failure::Reject(Reject::UnknownKid) => 0,
            Failure::Keys(_) => 1,
            Failure::Reject(_) => 2,
        }
    }
}

impl JwtAuth {
    /// Builds the method; remote key sets come from (or join) the
    /// process-wide cache in `cx.clients`.
    pub(crate) fn build(config: &Jwt, cx: &BuildContext<'_>) -> JwtAuth {
        let providers: Vec<Provider> = config
            .providers
            .iter()
            .map(|p| Provider::build(p, cx))
            .collect();
        let mut sources: Vec<CredentialSource> = Vec::new();
        let mut claim_headers: Vec<HeaderName> = Vec::new();
        for provider in &providers {
            for source in &provider.sources {
                if !sources.contains(source) {
                    sources.push(source.clone());
                }
            }
            for (_, header) in &provider.claim_to_headers {
                if !claim_headers.contains(header) {
                    claim_headers.push(header.clone());
                }
            }
        }
        JwtAuth {
            providers,
            sources,
            claim_headers,
            cache: TokenCache::default(),
        }
    }

    async fn check(&self, ctx: &mut RequestContext<'_>) -> Result<Outcome, ProxyError> {
        for header in &self.claim_headers {
            ctx.headers.remove(header);
        }
        let Some(found) = credential::find(&self.sources, ctx) else {
            return Ok(Outcome::NoCredential);
        };
        let now = unix_now();
        let verified = match self.remembered(&found, now) {
            Some(verified) => verified,
            None => {
                let verified = self
                    .verify(&found, now)
                    .await
                    .map_err(|failure| self.refuse(failure, ctx))?;
                self.cache.insert(&found.value, verified.clone());
                verified
            }
        };
        let Some(provider) = self.providers.get(verified.provider) else {
            return Ok(Outcome::NoCredential);
        };
        if !provider.forward_token {
            credential::remove(&found, ctx);
        }
        provider.copy_claims(&verified.claims, ctx);
        Ok(Outcome::Authenticated(verified.principal.clone()))
    }

    /// A token verified before, when its entry still holds (see
    /// [`cache`]).
    fn remembered(&self, found: &Found<'_>, now: u64) -> Option<Arc<Verified>> {
        let verified = self.cache.get(&found.value, now)?;
        let provider = self.providers.get(verified.provider)?;
        if !provider.takes(found.source) {
            return None;
        }
        if !provider.keys.holds(&verified.keys) {
            self.cache.remove(&found.value);
            return None;
        }
        Some(verified)
    }

    /// What the provider that accepted the token made of it.
    async fn verify(&self, found: &Found<'_>, now: u64) -> Result<Arc<Verified>, Failure> {
        let token = verify::parse(&found.value).map_err(Failure::Reject)?;
        let issuer = token.issuer();
        let named = self.providers.iter().any(|p| {
            p.takes(found.source) && p.rules.issuer.is_some() && p.rules.issuer.as_deref() == issuer
        });
        let candidates: Vec<usize> = (0..self.providers.len())
            .filter(|&i| {
                let p = &self.providers[i];
                let own = p.rules.issuer.as_deref();
                p.takes(found.source) && if named { own == issuer } else { own.is_none() }
            })
            .collect();
        let mut worst: Option<Failure> = None;
        let mut unknown_kid = Vec::new();
        for &i in &candidates {
            match self.providers[i].verify(&token, now, false).await {
                Ok(keys) => return Ok(self.accepted(i, keys, token)),
                Err(Failure::Reject(Reject::UnknownKid)) => unknown_kid.push(i),
                Err(failure) => keep_worst(&mut worst, failure),
            }
        }
        for &i in &unknown_kid {
            match self.providers[i].verify(&token, now, true).await {
                Ok(keys) => return Ok(self.accepted(i, keys, token)),
                Err(failure) => keep_worst(&mut worst, failure),
            }
        }
        Err(worst.unwrap_or(Failure::Reject(Reject::WrongIssuer)))
    }

    fn accepted(&self, index: usize, keys: Arc<KeySet>, token: Token<'_>) -> Arc<Verified> {
        let claims = Arc::new(token.claims);
        let (until, principal) = match self.providers.get(index) {
            Some(provider) => (
                provider.rules.valid_until(&claims),
                principal(provider, claims.clone()),
            ),
            None => (0, Principal::default()),
        };
        Arc::new(Verified {
            provider: index,
            keys,
            until,
            principal,
            claims,
        })
    }

    fn refuse(&self, failure: Failure, ctx: &RequestContext<'_>) -> ProxyError {
        match failure {
            Failure::Reject(reject) => ProxyError::Unauthenticated {
                reason: reject.label(),
                challenge: challenge("Bearer", &ctx.host, Some("invalid_token")),
            },
            Failure::Keys(error) => ProxyError::Dependency {
                dependency: "jwks".into(),
                source: Box::new(error),
            },
        }
    }
}

fn keep_worst(worst: &mut Option<Failure>, failure: Failure) {
    if worst.as_ref().is_none_or(|w| failure.rank() > w.rank()) {
        *worst = Some(failure);
    }
}

impl Method for JwtAuth {
    fn authenticate<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> MethodFuture<'a> {
        Box::pin(self.check(ctx))
    }

    fn challenge_scheme(&self) -> Option<&'static str> {
        Some("Bearer")
    }
}

impl Provider {
    fn build(config: &JwtProvider, cx: &BuildContext<'_>) -> Provider {
        let keys = match &config.jwks {
            JwksSource::Inline { jwks } => match KeySet::parse(jwks.as_bytes()) {
                Ok(set) => Keys::Inline(Arc::new(set)),
                Err(error) => {
                    tracing::warn!(provider = config.name, %error, "inline JWKS unusable");
                    Keys::Unusable(
                        format!("inline JWKS of provider {}: {error}", config.name).into(),
                    )
                }
            },
            JwksSource::Remote {
                target,
                default_ttl_seconds,
            } => match Call::build(target, cx) {
                Ok(call) => Keys::Remote(cx.clients.jwks.get(
                    &target.uri,
                    call,
                    Duration::from_secs(*default_ttl_seconds),
                )),
                Err(error) => {
                    tracing::warn!(provider = config.name, %error, "JWKS endpoint unusable");
                    Keys::Unusable(format!("JWKS of provider {}: {error}", config.name).into())
                }
            },
        };
        let sources = if config.extract_from.is_empty() {
            vec![credential::bearer()]
        } else {
            config.extract_from.clone()
        };
        let claim_to_headers = config
            .claim_to_headers
            .iter()
            .filter_map(|c| {
                Some((
                    c.claim.clone(),
                    HeaderName::from_bytes(c.header.as_bytes()).ok()?,
                ))
            })
            .collect();
        Provider {
            name: config.name.as_str().into(),
            rules: Rules::build(config),
            keys,
            sources,
            claim_to_headers,
            forward_token: config.forward_token,
        }
    }

    fn takes(&self, source: &CredentialSource) -> bool {
        self.sources.contains(source)
    }

    /// Algorithm, signature, then claims. With `refetch`, an unknown `kid`
    /// asks the key source for a refetch and tries once more. Returns the
    /// key set that verified the token.
    async fn verify(
        &self,
        token: &Token<'_>,
        now: u64,
        refetch: bool,
    ) -> Result<Arc<KeySet>, Failure> {
        if !self.rules.allows(token.alg) {
            return Err(Failure::Reject(Reject::AlgNotAllowed));
        }
        let mut keys = self.keys.current().await.map_err(Failure::Keys)?;
        let mut signed = keys.verify(token);
        if refetch
            && signed == Err(Reject::UnknownKid)
            && let Some(fresh) = self.keys.refetched().await
        {
            signed = fresh.verify(token);
            keys = fresh;
        }
        signed.map_err(Failure::Reject)?;
        self.rules
            .check_claims(&token.claims, now)
            .map_err(Failure::Reject)?;
        Ok(keys)
    }

    fn copy_claims(&self, claims: &Map<String, Value>, ctx: &mut RequestContext<'_>) {
        for (name, header) in &self.claim_to_headers {
            let Some(text) = claim(claims, name).and_then(header_text) else {
                continue;
            };
            match HeaderValue::from_bytes(text.as_bytes()) {
                Ok(value) => {
                    ctx.headers.insert(header.clone(), value);
                }
                Err(_) => tracing::debug!(claim = name, "claim not valid as a header value"),
            }
        }
    }
}

/// One provider's checks with fixed keys and no request: parse, algorithm,
/// signature, claims, exactly as the JWT method runs them on warm keys.
/// The data plane goes through the auth stage; this is public for the
/// benchmark (`benches/jwt.rs`) and fuzz targets.
#[derive(Debug)]
pub struct TokenVerifier {
    rules: Rules,
    keys: KeySet,
}

impl TokenVerifier {
    /// The verifier of `provider` with the keys of the JWKS document
    /// `jwks` (the provider's own `jwks` source is not read).
    ///
    /// # Errors
    ///
    /// When `jwks` holds no usable key.
    pub fn new(provider: &JwtProvider, jwks: &str) -> Result<TokenVerifier, String> {
        let keys = KeySet::parse(jwks.as_bytes()).map_err(|e| e.to_string())?;
        Ok(TokenVerifier {
            rules: Rules::build(provider),
            keys,
        })
    }

    /// Checks `token` at `now` (seconds since the epoch).
    ///
    /// # Errors
    ///
    /// The refusal's reason label (`expired`, `bad-signature`, ...).
    pub fn verify(&self, token: &str, now: u64) -> Result<(), &'static str> {
        let check = || {
            let token = verify::parse(token)?;
            if !self.rules.allows(token.alg) {
                return Err(Reject::AlgNotAllowed);
            }
            self.keys.verify(&token)?;
            self.rules.check_claims(&token.claims, now)
        };
        check().map_err(Reject::label)
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests;
