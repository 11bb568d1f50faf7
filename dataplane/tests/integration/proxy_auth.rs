//! The `auth` stage through the proxy: API keys, Basic, authorization by
//! path, method and client address, challenges, CORS preflights before
//! authentication, and the attacks that must never reach the backend.

use crate::common::*;
use base64::Engine;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use sha2::{Digest, Sha256};
use tollgate_snapshot::*;

fn sha256_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn api_keys() -> ApiKeys {
    ApiKeys {
        keys: vec![
            ApiKey {
                consumer: "ci".into(),
                sha256: sha256_hex("key-ci"),
            },
            ApiKey {
                consumer: "ops".into(),
                sha256: sha256_hex("key-ops"),
            },
        ],
        extract_from: vec![],
        forward_credential: false,
    }
}

fn rule(action: AuthzAction) -> AuthzRule {
    AuthzRule {
        name: None,
        action,
        jwt: None,
        consumers: vec![],
        client_cidrs: vec![],
        methods: vec![],
        path_prefixes: vec![],
    }
}

/// A gateway whose `/` rule requires `auth`; `/public` is open, and a
/// CORS filter on the protected rule.
async fn protected(echo: &Echo, auth: AuthConfig, settings: Settings) -> Gateway {
    let endpoint = echo.endpoint();
    Gateway::start(move |port| {
        let mut guarded = route(
            "guarded",
            vec![Filter::Cors(Cors {
                allow_origins: vec!["https://app.example".into()],
                allow_methods: vec!["GET".into()],
                allow_headers: vec!["x-api-key".into()],
                ..Cors::default()
            })],
            vec![to(0, 1)],
        );
        guarded.auth = Some(0);
        let mut snap = snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/public", 1), prefix("/", 0)])],
            vec![guarded, route("open", vec![], vec![to(0, 1)])],
            vec![backend("echo", vec![endpoint])],
        );
        snap.auth = vec![auth];
        snap.settings = settings;
        snap
    })
    .await
}

fn with(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    get_with("api.example", path, headers)
}

/// The consumer rule: `ci` allowed, another valid key refused
/// (403), an unknown key or none refused (401); the key never reaches the
/// backend.
#[tokio::test]
async fn api_keys_name_consumers_and_authorization_decides() {
    let echo = Echo::start("echo").await;
    let auth = AuthConfig {
        sources: vec!["authpolicy/default/api".into()],
        api_keys: Some(api_keys()),
        authorization: Some(Authorization {
            default_action: AuthzAction::Deny,
            rules: vec![AuthzRule {
                consumers: vec!["ci".into()],
                ..rule(AuthzAction::Allow)
            }],
        }),
        ..AuthConfig::default()
    };
    let gw = protected(&echo, auth, Settings::default()).await;
    let ok = gw.send(with("/x", &[("x-api-key", "key-ci")])).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text());
    assert!(ok.echo()["headers"].get("x-api-key").is_none());
    let other = gw.send(with("/x", &[("x-api-key", "key-ops")])).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert_eq!(other.headers["x-tollgate-error"], "forbidden");
    for bad in [with("/x", &[("x-api-key", "key-cj")]), with("/x", &[])] {
        let answer = gw.send(bad).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        assert_eq!(answer.text(), "401 Unauthorized: authentication required\n");
    }
    // The open rule needs nothing.
    assert_eq!(
        gw.get("api.example", "/public/a").await.status,
        StatusCode::OK
    );
    assert_eq!(
        echo.received().len(),
        2,
        "only the allowed requests arrived"
    );
}

/// Basic: a challenge when nothing is sent, the user as consumer.
#[tokio::test]
async fn basic_auth_challenges_and_passes() {
    let echo = Echo::start("echo").await;
    let hash = bcrypt::hash("s3cret", 4).unwrap();
    let auth = AuthConfig {
        sources: vec!["authpolicy/default/basic".into()],
        basic: Some(BasicAuth {
            htpasswd: Redacted::new(format!("alice:{hash}\n")),
            forward_credential: false,
        }),
        ..AuthConfig::default()
    };
    let gw = protected(&echo, auth, Settings::default()).await;
    let missing = gw.get("api.example", "/x").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        missing.headers[http::header::WWW_AUTHENTICATE],
        "Basic realm=\"api.example\", charset=\"UTF-8\""
    );
    let creds = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let ok = gw
        .send(with("/x", &[("authorization", &format!("Basic {creds}"))]))
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert!(ok.echo()["headers"].get("authorization").is_none());
    let wrong = base64::engine::general_purpose::STANDARD.encode("alice:guess");
    let refused = gw
        .send(with("/x", &[("authorization", &format!("Basic {wrong}"))]))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert_eq!(echo.received().len(), 1);
}

/// Path tricks around a protected prefix are normalized before the rules
/// see the path: `/%61dmin`, `//admin`, `/public/../admin` are `/admin`.
#[tokio::test]
async fn path_tricks_do_not_escape_a_protected_prefix() {
    let echo = Echo::start("echo").await;
    let auth = AuthConfig {
        sources: vec!["authpolicy/default/admin".into()],
        authorization: Some(Authorization {
            default_action: AuthzAction::Allow,
            rules: vec![AuthzRule {
                path_prefixes: vec!["/admin".into()],
                ..rule(AuthzAction::Deny)
            }],
        }),
        ..AuthConfig::default()
    };
    let gw = protected(&echo, auth, Settings::default()).await;
    for path in [
        "/admin",
        "/%61dmin/users",
        "//admin",
        "/public/../admin/x",
        "/admin/./x",
        "/ADMIN/../admin",
    ] {
        let answer = gw.get("api.example", path).await;
        assert!(
            answer.status == StatusCode::UNAUTHORIZED || answer.status == StatusCode::BAD_REQUEST,
            "{path}: {}",
            answer.status
        );
    }
    assert_eq!(
        gw.get("api.example", "/administrator").await.status,
        StatusCode::OK
    );
    assert_eq!(echo.received().len(), 1, "nothing under /admin arrived");
}

/// Authorization by client address: a forged `X-Forwarded-For` is
/// ignored unless proxies are trusted, and then only the entries they
/// wrote count.
#[tokio::test]
async fn forged_forwarded_for_does_not_pass_an_address_rule() {
    let echo = Echo::start("echo").await;
    let office = || AuthConfig {
        sources: vec!["authpolicy/default/office".into()],
        authorization: Some(Authorization {
            default_action: AuthzAction::Deny,
            rules: vec![AuthzRule {
                client_cidrs: vec!["203.0.113.0/24".into()],
                ..rule(AuthzAction::Allow)
            }],
        }),
        ..AuthConfig::default()
    };
    let gw = protected(&echo, office(), Settings::default()).await;
    let forged = gw
        .send(with("/x", &[("x-forwarded-for", "203.0.113.5")]))
        .await;
    assert_eq!(forged.status, StatusCode::UNAUTHORIZED);
    // One trusted hop: the balancer's entry (the last) is the client; what
    // the client wrote before it is not.
    let settings = Settings {
        client_address: ClientAddress {
            trusted_hops: 1,
            trusted_cidrs: vec![],
        },
        ..Settings::default()
    };
    let behind = protected(&echo, office(), settings).await;
    let real = behind
        .send(with("/x", &[("x-forwarded-for", "10.9.9.9, 203.0.113.5")]))
        .await;
    assert_eq!(real.status, StatusCode::OK);
    let spoofed = behind
        .send(with("/x", &[("x-forwarded-for", "203.0.113.5, 10.9.9.9")]))
        .await;
    assert_eq!(spoofed.status, StatusCode::UNAUTHORIZED);
    assert_eq!(echo.received().len(), 1);
}

/// A CORS preflight carries no credentials, so it is answered before
/// authentication; the actual request still needs its key.
#[tokio::test]
async fn cors_preflight_is_answered_before_authentication() {
    let echo = Echo::start("echo").await;
    let auth = AuthConfig {
        sources: vec!["authpolicy/default/api".into()],
        api_keys: Some(api_keys()),
        ..AuthConfig::default()
    };
    let gw = protected(&echo, auth, Settings::default()).await;
    let mut preflight = with(
        "/x",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "x-api-key"),
        ],
    );
    *preflight.method_mut() = Method::OPTIONS;
    let answer = gw.send(preflight).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text());
    assert_eq!(
        answer.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let real = gw
        .send(with("/x", &[("origin", "https://app.example")]))
        .await;
    assert_eq!(real.status, StatusCode::UNAUTHORIZED);
    assert!(echo.received().is_empty());
}
