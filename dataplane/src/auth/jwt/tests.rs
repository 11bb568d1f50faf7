//! The JWT method on hand-made contexts with inline key sets: provider
//! choice, principal, claim headers, token removal, refusals.

use super::super::test_keys::{TestKey, jwks, now};
use super::claims::scopes;
use super::*;
use crate::context::tests::context;
use crate::upstream::BackendSet;
use serde_json::json;
use tollgate_snapshot::ClaimToHeader;

fn provider(name: &str, issuer: Option<&str>, keys: &[&TestKey]) -> JwtProvider {
    JwtProvider {
        name: name.into(),
        issuer: issuer.map(str::to_string),
        audiences: vec![],
        algorithms: vec![],
        jwks: JwksSource::Inline { jwks: jwks(keys) },
        extract_from: vec![],
        claim_to_headers: vec![],
        forward_token: false,
        clock_skew_seconds: 0,
    }
}

fn build(providers: Vec<JwtProvider>) -> JwtAuth {
    let clients = Arc::default();
    let backends = BackendSet::default();
    let cx = BuildContext {
        clients: &clients,
        backends: &backends,
    };
    JwtAuth::build(
        &Jwt {
            providers,
            optional: false,
        },
        &cx,
    )
}

fn bearer(token: &str) -> RequestContext<'static> {
    context(&[("authorization", &format!("Bearer {token}"))], None)
}

async fn reason(auth: &JwtAuth, token: &str) -> &'static str {
    match auth.check(&mut bearer(token)).await {
        Err(ProxyError::Unauthenticated { reason, challenge }) => {
            let challenge = challenge.unwrap();
            assert_eq!(
                challenge,
                "Bearer realm=\"api.example\", error=\"invalid_token\""
            );
            reason
        }
        Err(other) => panic!("not a 401: {other}"),
        Ok(_) => panic!("accepted"),
    }
}

/// A good token sets the principal (subject, provider, scopes, claims),
/// fills the claim headers over any the client sent, and is removed.
#[tokio::test]
async fn a_good_token_makes_the_principal_and_headers() {
    let key = TestKey::ec("e1");
    let mut config = provider("corp", Some("https://corp"), &[&key]);
    config.claim_to_headers = [
        "sub",
        "realm.role",
        "https://x/tier",
        "n",
        "ok",
        "groups",
        "none",
    ]
    .iter()
    .enumerate()
    .map(|(i, claim)| ClaimToHeader {
        claim: claim.to_string(),
        header: format!("x-c{i}"),
    })
    .collect();
    let auth = build(vec![config]);
    let claims = json!({
        "iss": "https://corp", "sub": "alice", "exp": now() + 60,
        "scp": ["read", "write"], "realm": {"role": "admin"}, "https://x/tier": "gold",
        "n": 7, "ok": true, "groups": ["a", "b"], "none": null,
    });
    let mut ctx = bearer(&key.sign(&claims));
    ctx.headers
        .insert("x-c0", HeaderValue::from_static("mallory"));
    ctx.headers
        .insert("x-c6", HeaderValue::from_static("forged"));
    let Ok(Outcome::Authenticated(principal)) = auth.check(&mut ctx).await else {
        panic!("refused");
    };
    assert_eq!(principal.method, "jwt");
    assert_eq!(principal.provider.as_deref(), Some("corp"));
    assert_eq!(principal.subject.as_deref(), Some("alice"));
    assert_eq!(principal.scopes, ["read", "write"]);
    assert_eq!(principal.claims.unwrap()["n"], 7);
    let headers: Vec<Option<&str>> = (0..7)
        .map(|i| {
            ctx.headers
                .get(format!("x-c{i}"))
                .map(|v| v.to_str().unwrap())
        })
        .collect();
    assert_eq!(
        headers,
        [
            Some("alice"),
            Some("admin"),
            Some("gold"),
            Some("7"),
            Some("true"),
            Some("[\"a\",\"b\"]"),
            None
        ]
    );
    assert!(ctx.headers.get("authorization").is_none());
}

/// Without a token the method finds nothing, but still strips claim
/// headers a client made up.
#[tokio::test]
async fn no_token_is_no_credential_and_claim_headers_go() {
    let key = TestKey::ec("e1");
    let mut config = provider("corp", None, &[&key]);
    config.claim_to_headers = vec![ClaimToHeader {
        claim: "sub".into(),
        header: "x-sub".into(),
    }];
    let auth = build(vec![config]);
    let mut ctx = context(&[("x-sub", "admin"), ("authorization", "Basic eDp5")], None);
    assert!(matches!(
        auth.check(&mut ctx).await,
        Ok(Outcome::NoCredential)
    ));
    assert!(ctx.headers.get("x-sub").is_none());
    assert_eq!(ctx.headers["authorization"], "Basic eDp5");
}

/// `iss` picks the provider; a token of an unknown issuer goes to the
/// providers that name none, and with none of those it is wrong-issuer.
#[tokio::test]
async fn the_issuer_picks_the_provider() {
    let a = TestKey::rsa("a");
    let b = TestKey::ec("b");
    let anyone = TestKey::ec("c");
    let auth = build(vec![
        provider("a", Some("https://a"), &[&a]),
        provider("b", Some("https://b"), &[&b]),
        provider("open", None, &[&anyone]),
    ]);
    let exp = now() + 60;
    for (key, iss, expected) in [
        (&a, "https://a", "a"),
        (&b, "https://b", "b"),
        (&anyone, "https://z", "open"),
    ] {
        let token = key.sign(&json!({"iss": iss, "exp": exp}));
        let Ok(Outcome::Authenticated(p)) = auth.check(&mut bearer(&token)).await else {
            panic!("{iss} refused");
        };
        assert_eq!(p.provider.as_deref(), Some(expected));
    }
    // b's key claiming to be a: a's keys do not verify it.
    let forged = b.sign(&json!({"iss": "https://a", "exp": exp}));
    assert_eq!(reason(&auth, &forged).await, "unknown-kid");
    let strict = build(vec![provider("a", Some("https://a"), &[&a])]);
    let other = a.sign(&json!({"iss": "https://z", "exp": exp}));
    assert_eq!(reason(&strict, &other).await, "wrong-issuer");
}

/// Every refusal has its label and the RFC 6750 challenge.
#[tokio::test]
async fn refusals_are_labelled() {
    let key = TestKey::rsa("r1");
    let mut config = provider("p", Some("https://p"), &[&key]);
    config.audiences = vec!["api".into()];
    config.algorithms = vec!["RS256".into()];
    let auth = build(vec![config]);
    let t = now();
    let good = json!({"iss": "https://p", "aud": "api", "exp": t + 60});
    assert!(auth.check(&mut bearer(&key.sign(&good))).await.is_ok());
    let stranger = TestKey::rsa("r1");
    let table = [
        (
            key.sign(&json!({"iss": "https://p", "aud": "api", "exp": t - 5})),
            "expired",
        ),
        (
            key.sign(&json!({"iss": "https://p", "aud": "api", "exp": t + 60, "nbf": t + 30})),
            "not-yet-valid",
        ),
        (
            key.sign(&json!({"iss": "https://p", "aud": "web", "exp": t + 60})),
            "wrong-audience",
        ),
        (stranger.sign(&good), "bad-signature"),
        (TestKey::ec("r1").sign(&good), "alg-not-allowed"),
        ("x.y.z".to_string(), "malformed"),
    ];
    for (token, expected) in table {
        assert_eq!(reason(&auth, &token).await, expected);
    }
}

/// An inline set that does not parse fails closed as a dependency.
#[tokio::test]
async fn unusable_keys_are_a_dependency_failure() {
    let key = TestKey::ec("e1");
    let mut config = provider("p", None, &[]);
    config.jwks = JwksSource::Inline { jwks: "{}".into() };
    let auth = build(vec![config]);
    let token = key.sign(&json!({"exp": now() + 60}));
    assert!(matches!(
        auth.check(&mut bearer(&token)).await,
        Err(ProxyError::Dependency { .. })
    ));
}

/// A provider reading a cookie does not see a bearer header, and a kept
/// token stays in the request.
#[tokio::test]
async fn sources_and_forwarding() {
    let key = TestKey::ec("e1");
    let mut config = provider("p", None, &[&key]);
    config.extract_from = vec![CredentialSource::Cookie { name: "at".into() }];
    config.forward_token = true;
    let auth = build(vec![config]);
    let token = key.sign(&json!({"exp": now() + 60}));
    assert!(matches!(
        auth.check(&mut bearer(&token)).await,
        Ok(Outcome::NoCredential)
    ));
    let cookie = format!("a=1; at={token}");
    let mut ctx = context(&[("cookie", &cookie)], None);
    assert!(matches!(
        auth.check(&mut ctx).await,
        Ok(Outcome::Authenticated(_))
    ));
    assert_eq!(ctx.headers["cookie"], cookie.as_str());
}

/// A verified token is remembered (and served again from memory with the
/// same principal and headers); a refused one never is.
#[tokio::test]
async fn verified_tokens_are_remembered_refusals_are_not() {
    let key = TestKey::ec("e1");
    let mut config = provider("p", None, &[&key]);
    config.claim_to_headers = vec![ClaimToHeader {
        claim: "sub".into(),
        header: "x-sub".into(),
    }];
    let auth = build(vec![config]);
    let token = key.sign(&json!({"sub": "alice", "exp": now() + 60}));
    for _ in 0..2 {
        let mut ctx = bearer(&token);
        let Ok(Outcome::Authenticated(p)) = auth.check(&mut ctx).await else {
            panic!("refused");
        };
        assert_eq!(p.subject.as_deref(), Some("alice"));
        assert_eq!(ctx.headers["x-sub"], "alice");
        assert!(ctx.headers.get("authorization").is_none());
    }
    assert_eq!(auth.cache.len(), 1);
    let forged = TestKey::ec("e1").sign(&json!({"sub": "alice", "exp": now() + 60}));
    for _ in 0..2 {
        assert_eq!(reason(&auth, &forged).await, "bad-signature");
    }
    assert_eq!(auth.cache.len(), 1);
}

/// A remembered token is only reused from a source its provider reads:
/// the same token in a cookie read by another provider is checked by that
/// one (whose keys do not have it).
#[tokio::test]
async fn remembered_tokens_keep_to_their_provider_sources() {
    let (header_key, cookie_key) = (TestKey::ec("h"), TestKey::ec("c"));
    let by_header = provider("header", None, &[&header_key]);
    let mut by_cookie = provider("cookie", None, &[&cookie_key]);
    by_cookie.extract_from = vec![CredentialSource::Cookie { name: "at".into() }];
    let auth = build(vec![by_header, by_cookie]);
    let token = header_key.sign(&json!({"exp": now() + 60}));
    assert!(matches!(
        auth.check(&mut bearer(&token)).await,
        Ok(Outcome::Authenticated(_))
    ));
    let cookie = format!("at={token}");
    let mut ctx = context(&[("cookie", &cookie)], None);
    assert!(matches!(
        auth.check(&mut ctx).await,
        Err(ProxyError::Unauthenticated {
            reason: "unknown-kid",
            ..
        })
    ));
}

#[test]
fn scopes_from_scope_or_scp() {
    let read = |v: Value| scopes(v.as_object().unwrap());
    assert_eq!(read(json!({"scope": "a  b"})), ["a", "b"]);
    assert_eq!(read(json!({"scp": "a b"})), ["a", "b"]);
    assert_eq!(read(json!({"scp": ["a", 1, "b"]})), ["a", "b"]);
    assert_eq!(read(json!({"scope": "a", "scp": ["b"]})), ["a"]);
    assert!(read(json!({"scope": 5})).is_empty());
}
