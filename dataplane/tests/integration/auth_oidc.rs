//! OIDC login against a fake provider: redirect, callback, session, what
//! the backend sees, two logins at once in one browser, refresh, logout.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::stub::{Seen, Stub, respond};
use crate::common::*;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};
use tollgate_snapshot::*;

const KEY: [u8; 32] = [42; 32];

/// The fake provider's state: issued codes (nonce, PKCE challenge), the
/// lifetime of the ID tokens it signs, how often it refreshed, and the one
/// refresh token it accepts (rotated at each use, like many providers).
#[derive(Default)]
struct Provider {
    codes: Mutex<HashMap<String, (String, String)>>,
    lifetime: AtomicI64,
    refreshes: AtomicUsize,
    refresh_token: Mutex<String>,
}

impl Provider {
    /// A new refresh token for a new login; the previous one is no longer
    /// accepted.
    fn rotate(&self) {
        let logins = self.codes.lock().unwrap().len();
        *self.refresh_token.lock().unwrap() = format!("rt-{logins}");
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn form(body: &[u8]) -> HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            let v = percent_encoding::percent_decode_str(v).decode_utf8_lossy();
            (k.to_string(), v.into_owned())
        })
        .collect()
}

/// Starts the provider: `/jwks` and `/token` (code with PKCE and client
/// credentials checked, refresh).
async fn provider(state: Arc<Provider>) -> Stub {
    let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
    let point = pair.public_key().as_ref().to_vec();
    let jwks = json!({"keys": [{
        "kty": "EC", "crv": "P-256", "kid": "k1", "alg": "ES256", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
        "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
    }]})
    .to_string();
    let signing = EncodingKey::from_ec_der(pair.to_pkcs8v1().unwrap().as_ref());
    Stub::start(move |seen: Seen| {
        let (state, jwks, signing) = (state.clone(), jwks.clone(), signing.clone());
        Box::pin(async move {
            if seen.path() == "/jwks" {
                return respond(200, &[], &jwks);
            }
            // base64("web:s3cret")
            if seen.header("authorization") != Some("Basic d2ViOnMzY3JldA==") {
                return respond(401, &[], r#"{"error":"invalid_client"}"#);
            }
            let params = form(&seen.body);
            let nonce = match params.get("grant_type").map(String::as_str) {
                Some("authorization_code") => {
                    let code = params.get("code").cloned().unwrap_or_default();
                    let Some((nonce, challenge)) = state.codes.lock().unwrap().remove(&code) else {
                        return respond(400, &[], r#"{"error":"invalid_grant"}"#);
                    };
                    let verifier = params.get("code_verifier").cloned().unwrap_or_default();
                    if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) != challenge {
                        return respond(400, &[], r#"{"error":"invalid_grant"}"#);
                    }
                    state.rotate();
                    Some(nonce)
                }
                Some("refresh_token") => {
                    // Check and rotate at once: a refresh token works once.
                    let mut current = state.refresh_token.lock().unwrap();
                    if params.get("refresh_token") != Some(&*current) {
                        return respond(400, &[], r#"{"error":"invalid_grant"}"#);
                    }
                    state.refreshes.fetch_add(1, Ordering::SeqCst);
                    current.push_str("-next");
                    None
                }
                _ => return respond(400, &[], r#"{"error":"invalid_grant"}"#),
            };
            let mut claims = json!({
                "iss": "https://idp.example", "aud": "web", "sub": "u-1",
                "email": "alice@example.com", "groups": ["dev"],
                "iat": now(), "exp": now() + state.lifetime.load(Ordering::SeqCst),
            });
            if let Some(nonce) = nonce {
                claims["nonce"] = json!(nonce);
            }
            let mut header = Header::new(Algorithm::ES256);
            header.kid = Some("k1".into());
            let id_token = jsonwebtoken::encode(&header, &claims, &signing).unwrap();
            let refresh_token = state.refresh_token.lock().unwrap().clone();
            let body = json!({"id_token": id_token, "refresh_token": refresh_token, "token_type": "Bearer"});
            respond(
                200,
                &[("content-type", "application/json")],
                &body.to_string(),
            )
        })
    })
    .await
}

fn config(idp: &Stub) -> AuthConfig {
    AuthConfig {
        sources: vec!["authpolicy/default/login".into()],
        oidc: Some(Oidc {
            issuer: "https://idp.example".into(),
            authorization_endpoint: "https://idp.example/authorize".into(),
            token_endpoint: call_target(&idp.uri("/token"), 1000),
            jwks: JwksSource::Remote {
                target: call_target(&idp.uri("/jwks"), 1000),
                default_ttl_seconds: 300,
            },
            end_session_endpoint: Some("https://idp.example/logout".into()),
            client_id: "web".into(),
            client_secret: Redacted::new("s3cret"),
            scopes: vec!["email".into()],
            redirect_uri: "/callback".into(),
            logout_path: "/logout".into(),
            cookie_key: Redacted::new(base64::engine::general_purpose::STANDARD.encode(KEY)),
            cookie_name: "tg-session".into(),
        }),
        authorization: Some(Authorization {
            default_action: AuthzAction::Deny,
            rules: vec![AuthzRule {
                name: Some("devs".into()),
                action: AuthzAction::Allow,
                jwt: Some(JwtPrincipal {
                    provider: None,
                    scopes: vec![],
                    claims: vec![ClaimMatch {
                        name: "groups".into(),
                        values: vec!["dev".into()],
                    }],
                }),
                consumers: vec![],
                client_cidrs: vec![],
                methods: vec![],
                path_prefixes: vec![],
            }],
        }),
        ..AuthConfig::default()
    }
}

/// A browser's cookie jar: cookies by name with their path.
#[derive(Default)]
struct Jar(HashMap<String, (String, String)>);

impl Jar {
    fn store(&mut self, answer: &Answer) {
        for line in answer.headers.get_all("set-cookie") {
            let line = line.to_str().unwrap();
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let path = attributes
                .split(';')
                .find_map(|a| a.trim().strip_prefix("Path="))
                .unwrap_or("/")
                .to_string();
            if attributes.contains("Max-Age=0") {
                self.0.remove(name);
            } else {
                self.0.insert(name.to_string(), (value.to_string(), path));
            }
        }
    }

    /// A browser navigation to `path`, with the cookies for it.
    fn get(&self, path: &str) -> Request<Full<Bytes>> {
        let cookies: Vec<String> = self
            .0
            .iter()
            .filter(|(_, (_, p))| path.starts_with(p.as_str()))
            .map(|(n, (v, _))| format!("{n}={v}"))
            .chain(["theme=dark".to_string()])
            .collect();
        Request::get(path)
            .header("host", "app.example")
            .header("accept", "text/html,application/xhtml+xml")
            .header("cookie", cookies.join("; "))
            .body(Full::default())
            .unwrap()
    }
}

/// The provider's side of `/authorize`: checks what the gateway asked
/// for, issues a code, and returns the callback path the browser follows.
fn authorize(provider: &Provider, location: &str) -> String {
    let (endpoint, query) = location.split_once('?').unwrap();
    assert_eq!(endpoint, "https://idp.example/authorize");
    let params = form(query.as_bytes());
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], "web");
    assert_eq!(params["redirect_uri"], "http://app.example/callback");
    assert_eq!(params["scope"], "openid email");
    assert_eq!(params["code_challenge_method"], "S256");
    let code = format!("code-{}", provider.codes.lock().unwrap().len());
    let entry = (params["nonce"].clone(), params["code_challenge"].clone());
    provider.codes.lock().unwrap().insert(code.clone(), entry);
    format!("/callback?code={code}&state={}", params["state"])
}

/// Logs in from `path`: returns the callback path (not yet followed).
async fn start_login(gateway: &Gateway, jar: &mut Jar, provider: &Provider, path: &str) -> String {
    let answer = gateway.send(jar.get(path)).await;
    assert_eq!(answer.status, 302, "{}", answer.text());
    let cookie = answer.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.starts_with("tg-session-state-"), "{cookie}");
    for attribute in ["Path=/callback", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    jar.store(&answer);
    authorize(provider, answer.headers["location"].to_str().unwrap())
}

async fn finish_login(gateway: &Gateway, jar: &mut Jar, callback: &str) -> String {
    let answer = gateway.send(jar.get(callback)).await;
    assert_eq!(answer.status, 302, "{}", answer.text());
    jar.store(&answer);
    answer.headers["location"].to_str().unwrap().to_string()
}

/// The whole flow: redirect, callback, session; the backend gets the
/// request without the gateway's cookies, and authorization read the ID
/// token's claims. Two logins started in one browser both complete.
#[tokio::test]
async fn two_concurrent_logins_complete_and_the_session_reaches_the_backend() {
    let state = Arc::new(Provider::default());
    state.lifetime.store(3600, Ordering::SeqCst);
    let (echo, idp) = (Echo::start("app").await, provider(state.clone()).await);
    let gateway = gateway_with_auth(&echo, config(&idp)).await;
    let mut jar = Jar::default();
    let first = start_login(&gateway, &mut jar, &state, "/app/one?x=1").await;
    let second = start_login(&gateway, &mut jar, &state, "/app/two").await;
    assert_eq!(jar.0.len(), 2, "one state cookie per attempt");
    assert_eq!(finish_login(&gateway, &mut jar, &second).await, "/app/two");
    assert_eq!(
        finish_login(&gateway, &mut jar, &first).await,
        "/app/one?x=1"
    );
    assert_eq!(
        jar.0.keys().collect::<Vec<_>>(),
        ["tg-session"],
        "state cookies cleared"
    );
    let answer = gateway.send(jar.get("/app/one?x=1")).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.echo()["headers"]["cookie"], "theme=dark");
    assert!(echo.received().len() == 1);
    // A replayed callback has no state cookie any more.
    assert_eq!(gateway.send(jar.get(&first)).await.status, 401);
}

/// Requests that are not browser navigations are not redirected; a forged
/// or foreign session cookie is no session.
#[tokio::test]
async fn api_calls_and_forged_sessions_are_not_logged_in() {
    let state = Arc::new(Provider::default());
    let (echo, idp) = (Echo::start("app").await, provider(state.clone()).await);
    let gateway = gateway_with_auth(&echo, config(&idp)).await;
    assert_eq!(gateway.get("app.example", "/app").await.status, 401);
    let mut jar = Jar::default();
    jar.0
        .insert("tg-session".into(), ("AAAAforged".into(), "/".into()));
    assert_eq!(gateway.send(jar.get("/app")).await.status, 302);
    let callback = gateway
        .get("app.example", "/callback?code=x&state=nope")
        .await;
    assert_eq!(callback.status, 401);
    assert!(echo.received().is_empty());
}

/// An expired session with a refresh token is renewed (a 307 back to the
/// same URL with the new cookie), once for all the page's requests that
/// arrive together; logout clears it and goes to the provider's
/// end-session endpoint.
#[tokio::test]
async fn expired_sessions_refresh_and_logout_clears_the_session() {
    let state = Arc::new(Provider::default());
    // Already expired, but inside the 60 s leeway the ID token check allows.
    state.lifetime.store(-5, Ordering::SeqCst);
    let (echo, idp) = (Echo::start("app").await, provider(state.clone()).await);
    let gateway = gateway_with_auth(&echo, config(&idp)).await;
    let mut jar = Jar::default();
    let callback = start_login(&gateway, &mut jar, &state, "/app").await;
    finish_login(&gateway, &mut jar, &callback).await;
    state.lifetime.store(3600, Ordering::SeqCst);
    let page = (0..10).map(|_| gateway.send(jar.get("/app")));
    let renewed = futures_util::future::join_all(page).await;
    assert_eq!(state.refreshes.load(Ordering::SeqCst), 1);
    for answer in &renewed {
        assert_eq!(answer.status, 307, "{}", answer.text());
        assert_eq!(answer.headers["location"], "/app");
        assert_eq!(
            answer.headers["set-cookie"],
            renewed[0].headers["set-cookie"]
        );
    }
    jar.store(&renewed[0]);
    assert_eq!(gateway.send(jar.get("/app")).await.status, 200);
    let out = gateway.send(jar.get("/logout")).await;
    assert_eq!(out.status, 302);
    assert_eq!(
        out.headers["location"],
        "https://idp.example/logout?client_id=web"
    );
    jar.store(&out);
    assert!(jar.0.is_empty());
    assert_eq!(gateway.send(jar.get("/app")).await.status, 302);
    assert_eq!(echo.received().len(), 1);
}
