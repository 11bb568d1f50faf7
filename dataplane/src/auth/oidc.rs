//! OpenID Connect login for browsers: the authorization code flow with
//! PKCE (S256), sessions in sealed cookies ([`super::oidc_session`]).
//!
//! ```text
//!   logout path         → clear the session, 302 to the end-session endpoint (or /)
//!   callback path       → check state (its own cookie), exchange the code,
//!                         verify the ID token and its nonce, set the session,
//!                         302 back to the URL the login started from
//!   valid session       → the caller (claims like a JWT's)
//!   expired, refreshable→ refresh at the token endpoint (one call per refresh
//!                         token, shared), 307 to the same URL with the new
//!                         session (a method cannot set cookies on a proxied
//!                         response; 307 keeps method and body); a failed
//!                         refresh is treated as no session
//!   no session          → a browser navigation (GET/HEAD asking for HTML,
//!                         no Authorization) is sent to the provider; any
//!                         other request has no credential here, so API
//!                         clients get a 401 or another method's answer
//! ```
//!
//! The session and state cookies never reach the backend. Cookies are
//! always `Secure`: serve OIDC routes over HTTPS (browsers drop `Secure`
//! cookies on plain HTTP except for localhost, and the login would loop).

use super::credential;
use super::oidc_provider::{Provider, encode, refused, unavailable};
use super::oidc_session::{
    LoginState, Sealer, Session, challenge, random, return_url, session_cookie, set_cookie,
    state_cookie,
};
use super::token_cache::TokenCache;
use super::{BuildContext, Method, MethodFuture, Outcome};
use crate::body::empty;
use crate::context::{Principal, RequestContext};
use crate::error::ProxyError;
use crate::stage::Flow;
use futures_util::FutureExt;
use http::header::{ACCEPT, AUTHORIZATION, CACHE_CONTROL, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Method as HttpMethod, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_snapshot::Oidc;

/// How long a login attempt may take, in seconds.
const LOGIN_SECONDS: u64 = 600;

/// How long a renewed session is handed to other requests that carry the
/// refresh token it replaced.
const RENEWAL_SHARED: Duration = Duration::from_secs(30);

/// The built OIDC method.
#[derive(Debug)]
pub(crate) struct OidcAuth {
    issuer: Arc<str>,
    authorization_endpoint: String,
    provider: Arc<Provider>,
    /// Renewals in flight or just done, by refresh token (process-wide).
    renewals: Arc<TokenCache<String>>,
    end_session_endpoint: Option<String>,
    client_id: String,
    /// `openid` and the configured scopes, space separated.
    scopes: String,
    /// The callback as configured: a path, or an absolute URL.
    redirect_uri: String,
    /// The callback's path.
    callback_path: String,
    logout_path: String,
    /// `None`: the key is not 32 bytes of base64; every request fails.
    sealer: Option<Arc<Sealer>>,
    cookie: String,
}

impl OidcAuth {
    /// Builds the method; configuration errors are logged here and make
    /// every request fail closed.
    pub(crate) fn build(config: &Oidc, cx: &BuildContext<'_>) -> OidcAuth {
        let sealer = Sealer::new(config.cookie_key.expose()).map(Arc::new);
        if sealer.is_none() {
            tracing::warn!(issuer = %config.issuer, "OIDC cookie key is not 32 bytes of base64");
        }
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
            provider: Arc::new(Provider::build(config, cx)),
            renewals: cx
                .clients
                .oidc_renewals
                .cache(&config.issuer, &config.client_id),
            end_session_endpoint: config.end_session_endpoint.clone(),
            client_id: config.client_id.clone(),
            scopes: scopes.join(" "),
            redirect_uri: config.redirect_uri.clone(),
            callback_path,
            logout_path: config.logout_path.clone(),
            sealer,
            cookie: config.cookie_name.clone(),
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
                match self.renew(sealer, refresh, now).await {
                    Ok(cookie) => {
                        let back = ctx.path_and_query();
                        let status = StatusCode::TEMPORARY_REDIRECT;
                        return Ok(Outcome::Answer(redirect(status, &back, &[cookie])));
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
            url: return_url(ctx),
            expires: now + LOGIN_SECONDS,
        };
        let name = state_cookie(&self.cookie, &state.state);
        let sealed = sealer
            .seal(&name, &state)
            .ok_or_else(|| unavailable("sealing failed".into()))?;
        let separator = if self.authorization_endpoint.contains('?') {
            '&'
        } else {
            '?'
        };
        let location = format!(
            "{}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={}&code_challenge_method=S256",
            self.authorization_endpoint,
            encode(&self.client_id),
            encode(&self.redirect_uri(ctx)),
            encode(&self.scopes),
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
        let query = ctx.query.as_deref().unwrap_or("");
        if param(query, "error").is_some() {
            return Err(refused("oidc-provider-refused"));
        }
        let (Some(code), Some(state)) = (param(query, "code"), param(query, "state")) else {
            return Err(refused("oidc-callback"));
        };
        let name = state_cookie(&self.cookie, &state);
        let now = unix_now();
        let login = credential::cookie(ctx, &name)
            .and_then(|sealed| sealer.open::<LoginState>(&name, &sealed))
            .filter(|login| login.state == state && login.expires > now)
            .ok_or(refused("oidc-state"))?;
        let redirect_uri = self.redirect_uri(ctx);
        let tokens = self
            .provider
            .exchange(&code, &redirect_uri, &login.verifier, &login.nonce)
            .await?;
        let session = session_cookie(
            sealer,
            &self.cookie,
            tokens.claims,
            tokens.refresh_token,
            now,
        )?;
        // Only a path on this host: the state cookie is ours, but a
        // relative target can never become an open redirect.
        let url = if login.url.starts_with('/') && !login.url.starts_with("//") {
            login.url
        } else {
            "/".into()
        };
        let cookies = [session, set_cookie(&name, "", &self.callback_path, 0)];
        Ok(redirect(StatusCode::FOUND, &url, &cookies))
    }

    /// The `Set-Cookie` of a session renewed with `refresh`. Requests
    /// carrying the same refresh token share one renewal and its cookie
    /// for [`RENEWAL_SHARED`]: a page's requests arrive together when its
    /// session expires, and a provider that rotates refresh tokens would
    /// refuse all but the first.
    async fn renew(
        &self,
        sealer: &Arc<Sealer>,
        refresh: &str,
        now: u64,
    ) -> Result<String, ProxyError> {
        let (provider, sealer) = (Arc::clone(&self.provider), Arc::clone(sealer));
        let (cookie, token) = (self.cookie.clone(), refresh.to_string());
        let renewal = async move {
            let failed = |e: ProxyError| Arc::<str>::from(e.to_string());
            let tokens = provider.refresh(&token).await.map_err(failed)?;
            let set = session_cookie(&sealer, &cookie, tokens.claims, tokens.refresh_token, now)
                .map_err(failed)?;
            Ok((set, RENEWAL_SHARED))
        };
        self.renewals
            .get(refresh, || renewal.boxed())
            .await
            .map_err(|why| unavailable(why.to_string()))
    }

    fn logout(&self) -> Flow {
        let location = match &self.end_session_endpoint {
            Some(end) => {
                let separator = if end.contains('?') { '&' } else { '?' };
                format!("{end}{separator}client_id={}", encode(&self.client_id))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::tests::context;

    #[test]
    fn only_browser_navigations_are_sent_to_log_in() {
        let html = ("accept", "text/html,application/xhtml+xml");
        assert!(navigation(&context(&[html], None)));
        assert!(!navigation(&context(
            &[("accept", "application/json")],
            None
        )));
        assert!(!navigation(&context(
            &[html, ("authorization", "Bearer t")],
            None
        )));
        let mut post = context(&[html], None);
        post.method = HttpMethod::POST;
        assert!(!navigation(&post));
    }

    #[test]
    fn callback_parameters_are_decoded() {
        let query = "code=a%2Fb+c&state=s1&error";
        assert_eq!(param(query, "code").as_deref(), Some("a/b c"));
        assert_eq!(param(query, "state").as_deref(), Some("s1"));
        assert_eq!(param(query, "error").as_deref(), Some(""));
        assert_eq!(param(query, "nonce"), None);
    }
}
