//! OAuth2 token introspection (RFC 7662): opaque bearer tokens checked by
//! asking the authorization server.
//!
//! The token is POSTed as a form with the gateway's client credentials
//! (HTTP Basic, RFC 6749 §2.3.1). An active answer names the caller: `sub`
//! is the subject, `username` (else `client_id`) the consumer, `scope` the
//! scopes, and the whole answer the claims authorization rules read. An
//! inactive answer is a 401. Answers are cached by token hash in
//! [`TokenCache`] until the token's `exp` (at most `max_cache_seconds`),
//! refusals for `negative_cache_seconds`.
//!
//! When the server cannot be asked (down, timeout, an error status, an
//! answer that is not JSON) the method fails closed with a 503. With
//! `failOpen` the token is set aside instead and the request goes on as if
//! it carried none: later methods may still authenticate it, and otherwise
//! it is anonymous, so it passes only where the policy lets anonymous
//! callers through. Failing open never invents an identity.

use super::call::Call;
use super::credential::{self, Found};
use super::token_cache::{Fetched, TokenCache};
use super::{BuildContext, Method, MethodFuture, Outcome, challenge};
use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use crate::telemetry::{OpenSpan, SpanEnd, StageTrace};
use base64::Engine;
use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderValue, Method as HttpMethod, Request};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tollgate_snapshot::{CredentialSource, Introspection};
use tollgate_telemetry::TRACEPARENT;

/// What the authorization server said about a token.
#[derive(Clone, Debug)]
pub(crate) enum Verdict {
    /// Active: the caller it names.
    Active(Arc<Principal>),
    /// Not active (expired, revoked, unknown).
    Inactive,
}

/// The built introspection method.
#[derive(Debug)]
pub(crate) struct IntrospectionAuth {
    /// `Err`: the endpoint cannot be called (a bad target); every token is
    /// then treated as the endpoint being down.
    call: Result<Call, String>,
    /// `Authorization: Basic …` for the endpoint.
    client_authorization: Arc<str>,
    sources: Vec<CredentialSource>,
    negative_ttl: Duration,
    max_ttl: Duration,
    fail_open: bool,
    cache: Arc<TokenCache<Verdict>>,
}

impl IntrospectionAuth {
    /// Builds the method, reusing the process-wide cache of this endpoint
    /// and client.
    pub(crate) fn build(config: &Introspection, cx: &BuildContext<'_>) -> IntrospectionAuth {
        let call = Call::build(&config.endpoint, cx).map_err(|e| e.to_string());
        if let Err(error) = &call {
            tracing::warn!(endpoint = %config.endpoint.uri, %error, "introspection endpoint cannot be called");
        }
        let form = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let pair = format!(
            "{}:{}",
            form(&config.client_id),
            form(config.client_secret.expose())
        );
        let basic = base64::engine::general_purpose::STANDARD.encode(pair);
        let sources = if config.extract_from.is_empty() {
            vec![credential::bearer()]
        } else {
            config.extract_from.clone()
        };
        IntrospectionAuth {
            call,
            client_authorization: format!("Basic {basic}").into(),
            sources,
            negative_ttl: Duration::from_secs(config.negative_cache_seconds),
            max_ttl: Duration::from_secs(config.max_cache_seconds),
            fail_open: config.fail_open,
            cache: cx
                .clients
                .introspection
                .cache(&config.endpoint.uri, &config.client_id),
        }
    }

    async fn check(&self, ctx: &mut RequestContext<'_>) -> Result<Outcome, ProxyError> {
        const PURPOSE: &str = "token-introspection";
        let Some(found) = credential::find(&self.sources, ctx) else {
            return Ok(Outcome::NoCredential);
        };
        let Found { value: token, .. } = &found;
        // A sampled request that makes the call (not one answered from the
        // cache, or waiting on another request's call) gets its span.
        let span = ctx.trace.as_deref().map(StageTrace::open);
        let mut called = false;
        let verdict = match &self.call {
            Ok(call) => {
                let parent = span.as_ref().map(OpenSpan::traceparent);
                let fetch = || {
                    called = true;
                    self.fetch(call, token, parent)
                };
                self.cache.get(token, fetch).await
            }
            Err(error) => Err(Arc::from(error.as_str())),
        };
        if let (Some(trace), Some(span), Ok(call)) = (ctx.trace.as_deref_mut(), span, &self.call)
            && called
        {
            let end = SpanEnd {
                name: "POST".into(),
                kind: opentelemetry::trace::SpanKind::Client,
                attributes: call.span_attributes("POST", call.path(), PURPOSE),
                error: verdict.is_err().then(|| "introspection-failed".into()),
            };
            trace.close(span, end);
        }
        credential::remove(&found, ctx);
        match verdict {
            Ok(Verdict::Active(principal)) => Ok(Outcome::Authenticated((*principal).clone())),
            Ok(Verdict::Inactive) => Err(ProxyError::Unauthenticated {
                reason: "inactive",
                challenge: challenge("Bearer", &ctx.host, Some("invalid_token")),
            }),
            Err(error) if self.fail_open => {
                tracing::warn!(%error, "introspection unavailable; token ignored (fail open)");
                Ok(Outcome::NoCredential)
            }
            Err(error) => {
                tracing::warn!(%error, "introspection unavailable");
                Err(ProxyError::Dependency {
                    dependency: "introspection".into(),
                    source: error.to_string().into(),
                })
            }
        }
    }

    /// The call for `token`, owning what it needs so it can outlive the
    /// request that started it.
    fn fetch(
        &self,
        call: &Call,
        token: &str,
        traceparent: Option<HeaderValue>,
    ) -> futures_util::future::BoxFuture<'static, Fetched<Verdict>> {
        let call = call.clone();
        let body = format!(
            "token={}&token_type_hint=access_token",
            utf8_percent_encode(token, NON_ALPHANUMERIC)
        );
        let authorization = self.client_authorization.clone();
        let (negative, max) = (self.negative_ttl, self.max_ttl);
        async move {
            let mut request = Request::builder()
                .method(HttpMethod::POST)
                .uri(call.path())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(ACCEPT, "application/json")
                .header(AUTHORIZATION, authorization.as_ref())
                .body(Bytes::from(body))
                .map_err(|e| Arc::from(e.to_string()))?;
            if let Some(parent) = traceparent {
                request.headers_mut().insert(TRACEPARENT.clone(), parent);
            }
            let answer = call
                .send(request)
                .await
                .map_err(|e| Arc::from(format!("{}: {e}", call.uri())))?;
            if !answer.status().is_success() {
                return Err(Arc::from(format!(
                    "{}: status {}",
                    call.uri(),
                    answer.status()
                )));
            }
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            verdict(answer.body(), now, max, negative)
                .map_err(|e| Arc::from(format!("{}: {e}", call.uri())))
        }
        .boxed()
    }
}

impl Method for IntrospectionAuth {
    fn authenticate<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> MethodFuture<'a> {
        Box::pin(self.check(ctx))
    }

    fn challenge_scheme(&self) -> Option<&'static str> {
        Some("Bearer")
    }
}

/// Reads an introspection answer (`now` in Unix seconds): the verdict and
/// how long to cache it.
///
/// # Errors
///
/// When the body is not a JSON object.
fn verdict(
    body: &[u8],
    now: u64,
    max: Duration,
    negative: Duration,
) -> Result<(Verdict, Duration), &'static str> {
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(body) else {
        return Err("the answer is not a JSON object");
    };
    // RFC 7662 §2.2: `active` is a boolean; anything else is not active.
    if claims.get("active") != Some(&Value::Bool(true)) {
        return Ok((Verdict::Inactive, negative));
    }
    let ttl = match claims.get("exp").and_then(Value::as_u64) {
        // A server that calls an expired token active is not believed.
        Some(exp) if exp <= now => return Ok((Verdict::Inactive, negative)),
        Some(exp) => Duration::from_secs(exp - now).min(max),
        None => max,
    };
    Ok((Verdict::Active(Arc::new(principal(claims))), ttl))
}

fn principal(claims: Map<String, Value>) -> Principal {
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    let scopes = text("scope")
        .map(|s| s.split_whitespace().map(str::to_string).collect())
        .unwrap_or_default();
    Principal {
        method: "introspection",
        provider: None,
        subject: text("sub"),
        consumer: text("username").or_else(|| text("client_id")),
        scopes,
        claims: Some(Arc::new(claims)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: Duration = Duration::from_secs(300);
    const NEG: Duration = Duration::from_secs(10);

    #[test]
    fn an_active_answer_names_the_caller_and_is_cached_until_exp() {
        let body =
            br#"{"active":true,"sub":"u1","client_id":"app","scope":"read write","exp":1060}"#;
        let (Verdict::Active(p), ttl) = verdict(body, 1000, MAX, NEG).unwrap() else {
            panic!("not active");
        };
        assert_eq!(ttl, Duration::from_secs(60));
        assert_eq!(p.method, "introspection");
        assert_eq!(p.subject.as_deref(), Some("u1"));
        assert_eq!(p.consumer.as_deref(), Some("app"));
        assert_eq!(p.scopes, ["read", "write"]);
        assert_eq!(p.claims.as_ref().unwrap()["exp"], 1060);
        let named = br#"{"active":true,"username":"bob","client_id":"app"}"#;
        let (Verdict::Active(p), ttl) = verdict(named, 1000, MAX, NEG).unwrap() else {
            panic!("not active");
        };
        assert_eq!((p.consumer.as_deref(), ttl), (Some("bob"), MAX));
        let far = br#"{"active":true,"exp":999999}"#;
        assert_eq!(verdict(far, 1000, MAX, NEG).unwrap().1, MAX);
    }

    #[test]
    fn anything_but_active_true_is_inactive() {
        for body in [
            &br#"{"active":false}"#[..],
            br#"{"active":"true"}"#,
            br#"{}"#,
            br#"{"active":true,"exp":1000}"#,
        ] {
            let (v, ttl) = verdict(body, 1000, MAX, NEG).unwrap();
            assert!(matches!(v, Verdict::Inactive), "{body:?}");
            assert_eq!(ttl, NEG);
        }
        assert!(verdict(b"[1]", 1000, MAX, NEG).is_err());
        assert!(verdict(b"<html>", 1000, MAX, NEG).is_err());
    }
}
