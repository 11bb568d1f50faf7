//! OpenID Connect login for browsers: the authorization code flow with
//! PKCE (S256), sessions in sealed cookies ([`super::oidc_session`]).
//!
//! ```text
//!   logout path         → clear the session, 302 to the end-session endpoint (or /)
//!   callback path       → check state (its own cookie), exchange the code,
//!                         verify the ID token and its nonce, set the session,
//!                         302 back to the URL the login started from
//!   valid session       → the caller (claims like a JWT's)
//!   expired, refreshable→ refresh at the token endpoint, 307 to the same URL
//!                         with the new session (a method cannot set cookies
//!                         on a proxied response; 307 keeps method and body)
//!   no session          → a browser navigation (GET/HEAD asking for HTML,
//!                         no Authorization) is sent to the provider; any
//!                         other request has no credential here, so API
//!                         clients get a 401 or another method's answer
//! ```
//!
//! The session and state cookies never reach the backend.

use super::call::Call;
use super::credential;
use super::id_token::{IdTokenVerifier, JwksVerifier, VerifyError};
use super::oidc_session::{
    LoginState, Sealer, Session, challenge, random, seal_session, set_cookie, state_cookie,
};
use super::{BuildContext, Method, MethodFuture, Outcome};
use crate::body::empty;
use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use crate::stage::Flow;
use base64::Engine;
use bytes::Bytes;
use http::header::{
    ACCEPT, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE,
};
use http::{HeaderValue, Method as HttpMethod, Request, Response, StatusCode};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_snapshot::Oidc;

/// How long a login attempt may take, in seconds.
const LOGIN_SECONDS: u64 = 600;

/// The built OIDC method.
#[derive(Debug)]
pub(crate) struct OidcAuth {
    issuer: Arc<str>,
    authorization_endpoint: String,
    token: Result<Call, String>,
    end_session_endpoint: Option<String>,
    client_id: String,
    /// `Authorization: Basic …` for the token endpoint.
    client_authorization: String,
    /// `openid` and the configured scopes, space separated.
    scopes: String,
    /// The callback as configured: a path, or an absolute URL.
    redirect_uri: String,
    /// The callback's path.
    callback_path: String,
    logout_path: String,
    /// `None`: the key is not 32 bytes of base64; every request fails.
    sealer: Option<Sealer>,
    cookie: String,
    verifier: Box<dyn IdTokenVerifier>,
}

/// A token endpoint's answer (RFC 6749 §5.1).
#[derive(Debug, Deserialize)]
struct Tokens {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl OidcAuth {
    /// Builds the method; configuration errors are logged here and make
    /// every request fail closed.
    pub(crate) fn build(config: &Oidc, cx: &BuildContext<'_>) -> OidcAuth {
        let token = Call::build(&config.token_endpoint, cx).map_err(|e| e.to_string());
        let sealer = Sealer::new(config.cookie_key.expose());
        if sealer.is_none() {
            tracing::warn!(issuer = %config.issuer, "OIDC cookie key is not 32 bytes of base64");
        }
        let form = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let pair = format!(
            "{}:{}",
            form(&config.client_id),
            form(config.client_secret.expose())
        );
        let mut scopes = vec!["openid"];
        scopes.extend(
            config
                .scopes
                .iter()
                .map(String::as_str)
                .filter(|s| *s != "openid"),
        );
        let callback_path = match config.redirect_uri.parse::<http::Uri>() {
            Ok(uri) if uri.scheme().is_some() => uri.path().to_string(),
            _ => config.redirect_uri.clone(),
        };
        OidcAuth {
            issuer: config.issuer.as_str().into(),
            authorization_endpoint: config.authorization_endpoint.clone(),
            token,
            end_session_endpoint: config.end_session_endpoint.clone(),
            client_id: config.client_id.clone(),
            client_authorization: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ),
            scopes: scopes.join(" "),
            redirect_uri: config.redirect_uri.clone(),
            callback_path,
            logout_path: config.logout_path.clone(),
            sealer,
            cookie: config.cookie_name.clone(),
            verifier: Box::new(JwksVerifier::build(
                &config.jwks,
                &config.issuer,
                &config.client_id,
                cx,
            )),
        }
    }

    async fn check(&self, ctx: &mut RequestContext<'_>) -> Result<Outcome, ProxyError> {
        let Some(sealer) = &self.sealer else {
            return Err(unavailable("invalid cookie key".into()));
        };
        if ctx.path == self.logout_path {
            return Ok(Outcome::Answer(self.logout()));
        }
        if ctx.path == self.callback_path {
            return self.callback(sealer, ctx).await.map(Outcome::Answer);
        }
        let sealed = credential::cookie(ctx, &self.cookie);
        self.strip_cookies(ctx);
        let now = unix_now();
        if let Some(session) = sealed.and_then(|s| sealer.open::<Session>(&self.cookie, &s)) {
            if session.expires > now {
                return Ok(Outcome::Authenticated(self.principal(session)));
            }
            if let Some(refresh) = &session.refresh {
                match self.refresh(sealer, refresh, now).await {
                    Ok(cookie) => {
                        let back = ctx.path_and_query();
                        return Ok(Outcome::Answer(redirect(
                            StatusCode::TEMPORARY_REDIRECT,
                            &back,
                            &[cookie],
                        )));
                    }
                    Err(error) => tracing::debug!(%error, "OIDC refresh failed; logging in again"),
                }
            }
        }
        if !navigation(ctx) {
            return Ok(Outcome::NoCredential);
        }
        self.login(sealer, ctx, now).map(Outcome::Answer)
    }

    /// The redirect to the provider, with a new state cookie.
    fn login(
        &self,
        sealer: &Sealer,
        ctx: &RequestContext<'_>,
        now: u64,
    ) -> Result<Flow, ProxyError> {
        let fresh = || random(32).ok_or_else(|| unavailable("no randomness".into()));
        let state = LoginState {
            state: fresh()?,
            verifier: fresh()?,
            nonce: fresh()?,
            url: ctx.path_and_query(),
            expires: now + LOGIN_SECONDS,
        };
        let name = state_cookie(&self.cookie, &state.state);
        let sealed = sealer
            .seal(&name, &state)
            .ok_or_else(|| unavailable("sealing failed".into()))?;
        let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
        let separator = if self.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!(
            "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            self.authorization_endpoint,
            enc(&self.client_id),
            enc(&self.redirect_uri(ctx)),
            enc(&self.scopes),
            state.state,
            state.nonce,
            challenge(&state.verifier),
        );
        let cookie = set_cookie(&name, &sealed, &self.callback_path, LOGIN_SECONDS);
        Ok(redirect(StatusCode::FOUND, &location, &[cookie]))
    }

    /// The provider sent the browser back: finish the login it started.
    async fn callback(
        &self,
        sealer: &Sealer,
        ctx: &RequestContext<'_>,
    ) -> Result<Flow, ProxyError> {
        let refused = |reason| ProxyError::Unauthenticated {
            reason,
            challenge: None,
        };
        let query = ctx.query.as_deref().unwrap_or("");
        if param(query, "error").is_some() {
            return Err(refused("oidc-provider-refused"));
        }
        let (Some(code), Some(state)) = (param(query, "code"), param(query, "state")) else {
            return Err(refused("oidc-callback"));
        };
        let name = state_cookie(&self.cookie, &state);
        let login = credential::cookie(ctx, &name)
            .and_then(|sealed| sealer.open::<LoginState>(&name, &sealed))
            .filter(|login| login.state == state && login.expires > unix_now())
            .ok_or(refused("oidc-state"))?;
        let form = format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            enc(&code),
            enc(&self.redirect_uri(ctx)),
            enc(&login.verifier)
        );
        let tokens = self.tokens(form).await?.map_err(|_| refused("oidc-code"))?;
        let id_token = tokens.id_token.as_deref().ok_or(refused("oidc-id-token"))?;
        let claims = self.verify(id_token).await?;
        if claims.get("nonce").and_then(Value::as_str) != Some(login.nonce.as_str()) {
            return Err(refused("oidc-nonce"));
        }
        let expires = claims.get("exp").and_then(Value::as_u64).unwrap_or(0);
        let session = Session {
            claims,
            refresh: tokens.refresh_token,
            expires,
        };
        let sealed = seal_session(sealer, &self.cookie, session)
            .ok_or_else(|| unavailable("session too large".into()))?;
        let url = if login.url.starts_with('/') && !login.url.starts_with("//") {
            login.url
        } else {
            "/".into()
        };
        let cookies = [
            set_cookie(
                &self.cookie,
                &sealed,
                "/",
                expires.saturating_sub(unix_now()).max(1) + 86_400,
            ),
            set_cookie(&name, "", &self.callback_path, 0),
        ];
        Ok(redirect(StatusCode::FOUND, &url, &cookies))
    }

    /// A new session from `refresh`, as a `Set-Cookie` value.
    async fn refresh(
        &self,
        sealer: &Sealer,
        refresh: &str,
        now: u64,
    ) -> Result<String, ProxyError> {
        let form = format!("grant_type=refresh_token&refresh_token={}", enc(refresh));
        let tokens = self
            .tokens(form)
            .await?
            .map_err(|status| unavailable(format!("refresh refused: {status}")))?;
        let (claims, expires) = match tokens.id_token.as_deref() {
            Some(id_token) => {
                let claims = self.verify(id_token).await?;
                let exp = claims.get("exp").and_then(Value::as_u64).unwrap_or(now);
                (claims, exp)
            }
            None => return Err(unavailable("refresh answer without an ID token".into())),
        };
        let session = Session {
            claims,
            refresh: tokens.refresh_token.or(Some(refresh.to_string())),
            expires,
        };
        let sealed = seal_session(sealer, &self.cookie, session)
            .ok_or_else(|| unavailable("session too large".into()))?;
        Ok(set_cookie(
            &self.cookie,
            &sealed,
            "/",
            expires.saturating_sub(now).max(1) + 86_400,
        ))
    }

    /// POSTs `form` to the token endpoint: `Ok(Err(status))` when the
    /// provider refused it.
    async fn tokens(&self, form: String) -> Result<Result<Tokens, StatusCode>, ProxyError> {
        let call = self.token.as_ref().map_err(|e| unavailable(e.clone()))?;
        let request = Request::builder()
            .method(HttpMethod::POST)
            .uri(call.path())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, &self.client_authorization)
            .body(Bytes::from(form))
            .map_err(|e| unavailable(e.to_string()))?;
        let answer = call
            .send(request)
            .await
            .map_err(|e| unavailable(format!("{}: {e}", call.uri())))?;
        if answer.status().is_client_error() {
            return Ok(Err(answer.status()));
        }
        if !answer.status().is_success() {
            return Err(unavailable(format!(
                "{}: status {}",
                call.uri(),
                answer.status()
            )));
        }
        serde_json::from_slice(answer.body())
            .map(Ok)
            .map_err(|e| unavailable(format!("{}: {e}", call.uri())))
    }

    async fn verify(&self, id_token: &str) -> Result<serde_json::Map<String, Value>, ProxyError> {
        self.verifier.verify(id_token).await.map_err(|e| match e {
            VerifyError::Invalid(why) => {
                tracing::debug!(%why, "ID token refused");
                ProxyError::Unauthenticated {
                    reason: "oidc-id-token",
                    challenge: None,
                }
            }
            VerifyError::Keys(why) => unavailable(why),
        })
    }

    fn logout(&self) -> Flow {
        let location = match &self.end_session_endpoint {
            Some(end) => {
                let separator = if end.contains('?') { '&' } else { '?' };
                format!("{end}{separator}client_id={}", enc(&self.client_id))
            }
            None => "/".into(),
        };
        redirect(
            StatusCode::FOUND,
            &location,
            &[set_cookie(&self.cookie, "", "/", 0)],
        )
    }

    fn principal(&self, session: Session) -> Principal {
        let claims = session.claims;
        let scopes = match claims.get("scope").or_else(|| claims.get("scp")) {
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(list)) => list
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
            _ => Vec::new(),
        };
        Principal {
            method: "oidc",
            provider: Some(self.issuer.clone()),
            subject: claims
                .get("sub")
                .and_then(Value::as_str)
                .map(str::to_string),
            consumer: None,
            scopes,
            claims: Some(Arc::new(claims)),
        }
    }

    /// The callback as an absolute URL: as configured, or this host's.
    fn redirect_uri(&self, ctx: &RequestContext<'_>) -> String {
        if self.redirect_uri.starts_with('/') {
            let host = ctx
                .original_host
                .as_ref()
                .and_then(|h| h.to_str().ok())
                .unwrap_or(&ctx.host);
            format!("{}://{host}{}", ctx.scheme, self.redirect_uri)
        } else {
            self.redirect_uri.clone()
        }
    }

    /// Removes the session and state cookies from the upstream request.
    fn strip_cookies(&self, ctx: &mut RequestContext<'_>) {
        let state_prefix = format!("{}-state-", self.cookie);
        let kept: Vec<String> = ctx
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .map(str::trim)
            .filter(|pair| {
                let name = pair.split('=').next().unwrap_or("");
                name != self.cookie && !name.starts_with(&state_prefix)
            })
            .map(str::to_string)
            .collect();
        ctx.headers.remove(COOKIE);
        if !kept.is_empty()
            && let Ok(value) = HeaderValue::from_str(&kept.join("; "))
        {
            ctx.headers.insert(COOKIE, value);
        }
    }
}

impl Method for OidcAuth {
    fn authenticate<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> MethodFuture<'a> {
        Box::pin(self.check(ctx))
    }
}

/// Whether the request is a browser navigation a login redirect can help.
fn navigation(ctx: &RequestContext<'_>) -> bool {
    let html = ctx
        .headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    (ctx.method == HttpMethod::GET || ctx.method == HttpMethod::HEAD)
        && html
        && !ctx.headers.contains_key(AUTHORIZATION)
}

fn redirect(status: StatusCode, location: &str, cookies: &[String]) -> Flow {
    let mut response = Response::new(empty());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, location);
    }
    for cookie in cookies {
        if let Ok(cookie) = HeaderValue::from_str(cookie) {
            headers.append(SET_COOKIE, cookie);
        }
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Flow::Answer(response)
}

fn unavailable(why: String) -> ProxyError {
    ProxyError::Dependency {
        dependency: "oidc".into(),
        source: why.into(),
    }
}

fn enc(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key == name).then(|| {
            percent_encoding::percent_decode_str(&value.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
