//! OAuth2 token introspection: what the endpoint is asked, caching of
//! active and inactive answers, one call for concurrent identical tokens,
//! and the declared behaviour when the endpoint is down.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::stub::{Seen, Stub, respond};
use crate::common::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::time::Duration;
use tollgate_snapshot::{
    AuthConfig, Authorization, AuthzAction, AuthzRule, Introspection, Redacted,
};

/// An authorization server: `good-*` tokens are active for `alice` (for
/// `bob` with `bob-*`), anything else inactive; each answer takes 100 ms so
/// concurrent requests overlap.
async fn server() -> Stub {
    Stub::start(|seen: Seen| {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let body = String::from_utf8_lossy(&seen.body).into_owned();
            let token = body
                .split('&')
                .find_map(|p| p.strip_prefix("token="))
                .unwrap_or("");
            let answer = if token.starts_with("good") {
                r#"{"active":true,"sub":"u-1","username":"alice","scope":"read"}"#
            } else if token.starts_with("bob") {
                r#"{"active":true,"sub":"u-2","username":"bob"}"#
            } else {
                r#"{"active":false}"#
            };
            respond(200, &[("content-type", "application/json")], answer)
        })
    })
    .await
}

/// Introspection at `uri`; only `alice` may pass, except under `/public`
/// where anonymous callers may.
fn policy(uri: &str, fail_open: bool) -> AuthConfig {
    AuthConfig {
        sources: vec!["authpolicy/default/opaque".into()],
        introspection: Some(Introspection {
            endpoint: call_target(uri, 500),
            client_id: "gateway".into(),
            client_secret: Redacted::new("s3cret"),
            extract_from: vec![],
            negative_cache_seconds: 30,
            max_cache_seconds: 300,
            fail_open,
        }),
        authorization: Some(Authorization {
            default_action: AuthzAction::Deny,
            rules: vec![
                AuthzRule {
                    name: Some("alice".into()),
                    action: AuthzAction::Allow,
                    jwt: None,
                    consumers: vec!["alice".into()],
                    client_cidrs: vec![],
                    methods: vec![],
                    path_prefixes: vec![],
                },
                AuthzRule {
                    name: Some("public".into()),
                    action: AuthzAction::Allow,
                    jwt: None,
                    consumers: vec![],
                    client_cidrs: vec![],
                    methods: vec![],
                    path_prefixes: vec!["/public".into()],
                },
            ],
        }),
        ..AuthConfig::default()
    }
}

fn bearer(path: &str, token: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", "api.example")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::default())
        .unwrap()
}

/// 50 requests with one token cost one call; the endpoint is asked with a
/// form and the gateway's Basic credentials; the backend never sees the
/// token; the introspected consumer feeds authorization.
#[tokio::test]
async fn an_active_token_is_introspected_once_and_names_the_consumer() {
    let (echo, idp) = (Echo::start("api").await, server().await);
    let gateway = gateway_with_auth(&echo, policy(&idp.uri("/introspect"), false)).await;
    for _ in 0..50 {
        let answer = gateway.send(bearer("/data", "good-1")).await;
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert!(answer.echo()["headers"].get("authorization").is_none());
    }
    assert_eq!(idp.calls(), 1);
    let asked = &idp.seen()[0];
    assert_eq!(asked.parts.method, "POST");
    assert_eq!(asked.path(), "/introspect");
    assert_eq!(
        asked.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // base64("gateway:s3cret")
    assert_eq!(
        asked.header("authorization"),
        Some("Basic Z2F0ZXdheTpzM2NyZXQ=")
    );
    assert_eq!(
        String::from_utf8_lossy(&asked.body),
        "token=good%2D1&token_type_hint=access_token"
    );
    // Active, but not a consumer the rules allow.
    assert_eq!(gateway.send(bearer("/data", "bob-1")).await.status, 403);
}

/// 20 concurrent requests with the same new token share one call.
#[tokio::test]
async fn concurrent_identical_tokens_share_one_call() {
    let (echo, idp) = (Echo::start("api").await, server().await);
    let gateway = gateway_with_auth(&echo, policy(&idp.uri("/"), false)).await;
    let requests = (0..20).map(|_| gateway.send(bearer("/data", "good-2")));
    let answers = futures_util::future::join_all(requests).await;
    assert!(answers.iter().all(|a| a.status == 200));
    assert_eq!(idp.calls(), 1);
}

/// An inactive token is a 401 with `invalid_token`, and the refusal is
/// cached: asking again costs no call.
#[tokio::test]
async fn an_inactive_token_is_refused_and_cached_negatively() {
    let (echo, idp) = (Echo::start("api").await, server().await);
    let gateway = gateway_with_auth(&echo, policy(&idp.uri("/"), false)).await;
    for _ in 0..5 {
        let answer = gateway.send(bearer("/data", "revoked")).await;
        assert_eq!(answer.status, 401);
        let challenge = answer.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.contains("invalid_token"), "{challenge}");
    }
    assert_eq!(idp.calls(), 1);
    assert!(echo.received().is_empty());
}

/// Endpoint down: 503 by default. With `failOpen` the token is ignored:
/// the request is anonymous, refused where a caller is required (401) and
/// let through where anonymous callers may pass.
#[tokio::test]
async fn a_down_endpoint_fails_closed_or_leaves_the_request_anonymous() {
    let echo = Echo::start("api").await;
    let down = refused_endpoint().await;
    let uri = format!("http://127.0.0.1:{}/", down.port);
    let closed = gateway_with_auth(&echo, policy(&uri, false)).await;
    assert_eq!(closed.send(bearer("/data", "good-3")).await.status, 503);
    assert_eq!(closed.send(bearer("/public", "good-3")).await.status, 503);
    let open = gateway_with_auth(&echo, policy(&uri, true)).await;
    assert_eq!(open.send(bearer("/data", "good-3")).await.status, 401);
    let public = open.send(bearer("/public/x", "good-3")).await;
    assert_eq!(public.status, 200);
    assert!(public.echo()["headers"].get("authorization").is_none());
    assert_eq!(echo.received().len(), 1);
}
