//! External auth (`AuthPolicy.extAuth`, the Gateway API `ExternalAuth`
//! filter): what the auth service is asked, what reaches the backend when
//! it allows, and that its denials reach the client unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::stub::{Seen, Stub, respond};
use crate::common::*;
use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use std::time::Duration;
use tollgate_snapshot::{AuthConfig, Endpoint, ExtAuth, ExtAuthProtocol, Snapshot};

/// An auth service in the oauth2-proxy style: `x-token: good` passes with
/// identity headers, `x-token: slow` answers after 2 s, `/login*` paths are
/// sent to a sign-in page, anything else is a 403 with a body.
async fn auth_service() -> Stub {
    Stub::start(|seen: Seen| {
        Box::pin(async move {
            let path = seen.path().to_string();
            match seen.header("x-token") {
                Some("good") => respond(200, &[("x-auth-user", "alice"), ("x-other", "no")], ""),
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    respond(200, &[], "")
                }
                _ if path.contains("/login") => respond(
                    302,
                    &[
                        ("location", "https://sso.example/start?rd=%2Fapp"),
                        ("set-cookie", "csrf=abc; Path=/; HttpOnly"),
                    ],
                    "",
                ),
                _ => respond(403, &[("x-denied-by", "authz")], "go away"),
            }
        })
    })
    .await
}

fn ext(uri: &str, timeout_ms: u64, fail_open: bool) -> AuthConfig {
    AuthConfig {
        sources: vec!["authpolicy/default/ext".into()],
        ext_auth: vec![ExtAuth {
            target: call_target(uri, timeout_ms),
            protocol: ExtAuthProtocol::Http,
            headers_to_auth: vec![],
            headers_to_backend: vec!["x-auth-user".into()],
            fail_open,
            source: "authpolicy/default/ext".into(),
        }],
        ..AuthConfig::default()
    }
}

fn with_headers(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut builder = Request::get(path).header("host", "app.example");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Full::default()).unwrap()
}

/// An allowed request reaches the backend with the service's identity
/// header (replacing the client's forged copy) and nothing else of its
/// answer; the service saw the method, the prefixed path and query, the
/// client's headers and the gateway's `X-Forwarded-*`.
#[tokio::test]
async fn an_allowed_request_carries_the_services_headers() {
    let (echo, auth) = (Echo::start("app").await, auth_service().await);
    let gateway = gateway_with_auth(&echo, ext(&auth.uri("/check/"), 1000, false)).await;
    let request = with_headers(
        "/app/page?x=1",
        &[
            ("x-token", "good"),
            ("x-auth-user", "mallory"),
            ("x-forwarded-for", "6.6.6.6"),
        ],
    );
    let answer = gateway.send(request).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let headers = &answer.echo()["headers"];
    assert_eq!(headers["x-auth-user"], "alice");
    assert!(headers.get("x-other").is_none());
    let asked = &auth.seen()[0];
    assert_eq!(asked.parts.method, "GET");
    assert_eq!(asked.path(), "/check/app/page?x=1");
    assert_eq!(asked.header("x-token"), Some("good"));
    assert_eq!(asked.header("x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(asked.header("x-forwarded-host"), Some("app.example"));
    assert_eq!(asked.header("x-forwarded-uri"), Some("/app/page?x=1"));
    assert_eq!(asked.header("x-forwarded-method"), Some("GET"));
    assert!(asked.body.is_empty());
}

/// `headersToAuth` limits what the service sees.
#[tokio::test]
async fn only_the_selected_headers_go_to_the_service() {
    let (echo, auth) = (Echo::start("app").await, auth_service().await);
    let mut config = ext(&auth.uri("/"), 1000, false);
    config.ext_auth[0].headers_to_auth = vec!["x-token".into()];
    let gateway = gateway_with_auth(&echo, config).await;
    let request = with_headers("/", &[("x-token", "good"), ("x-secret", "s")]);
    assert_eq!(gateway.send(request).await.status, 200);
    let asked = &auth.seen()[0];
    assert_eq!(asked.header("x-token"), Some("good"));
    assert_eq!(asked.header("x-secret"), None);
    assert_eq!(asked.header("x-forwarded-proto"), Some("http"));
}

/// A 403 and a 302 sign-in redirect reach the client as the service sent
/// them (status, body, `Location`, `Set-Cookie`); the backend sees nothing.
#[tokio::test]
async fn denials_and_sign_in_redirects_reach_the_client_unchanged() {
    let (echo, auth) = (Echo::start("app").await, auth_service().await);
    let gateway = gateway_with_auth(&echo, ext(&auth.uri("/"), 1000, false)).await;
    let denied = gateway.get("app.example", "/app").await;
    assert_eq!(denied.status, 403);
    assert_eq!(denied.text(), "go away");
    assert_eq!(denied.headers["x-denied-by"], "authz");
    let redirected = gateway.get("app.example", "/login").await;
    assert_eq!(redirected.status, 302);
    assert_eq!(
        redirected.headers["location"],
        "https://sso.example/start?rd=%2Fapp"
    );
    assert_eq!(
        redirected.headers["set-cookie"],
        "csrf=abc; Path=/; HttpOnly"
    );
    assert!(echo.received().is_empty());
}

/// A service that does not answer in time, or cannot be reached, fails
/// closed with a 503 (nothing reaches the backend) unless `failOpen`.
#[tokio::test]
async fn an_unavailable_service_fails_closed_unless_fail_open() {
    let (echo, auth) = (Echo::start("app").await, auth_service().await);
    let gateway = gateway_with_auth(&echo, ext(&auth.uri("/"), 200, false)).await;
    let slow = gateway
        .send(with_headers("/", &[("x-token", "slow")]))
        .await;
    assert_eq!(slow.status, 503);
    let down = refused_endpoint().await;
    let down_uri = format!("http://127.0.0.1:{}/", down.port);
    let gateway = gateway_with_auth(&echo, ext(&down_uri, 200, false)).await;
    assert_eq!(gateway.get("app.example", "/").await.status, 503);
    assert!(echo.received().is_empty());
    let open = gateway_with_auth(&echo, ext(&down_uri, 200, true)).await;
    let passed = open
        .send(with_headers("/", &[("x-auth-user", "mallory")]))
        .await;
    assert_eq!(passed.status, 200);
    // Failing open vouches for nobody: the forged identity is not kept.
    assert!(passed.echo()["headers"].get("x-auth-user").is_none());
}

/// A service behind a `backendRef` speaking TLS with a private CA: trusted
/// through the target's CA bundle (dialled at the endpoint, SNI and `Host`
/// from the URI), and refused (fail closed) when only the system roots are
/// trusted.
#[tokio::test]
async fn a_tls_service_is_trusted_through_its_ca_bundle() {
    use tollgate_e2e::tls::{Ca, TlsEcho};
    let ca = Ca::new("auth-ca").unwrap();
    let leaf = ca.leaf(&["auth.internal"], &[]).unwrap();
    let service = TlsEcho::start(&leaf, &["http/1.1"], None).await.unwrap();
    let echo = Echo::start("app").await;
    let start = |ca_pem: Option<String>| {
        let (app, auth) = (echo.endpoint(), service.addr);
        Gateway::start(move |port| {
            let mut protected = route("all", vec![], vec![to(0, 1)]);
            protected.auth = Some(0);
            let mut target = call_target("https://auth.internal/verify", 1000);
            target.backend = Some(1);
            target.ca_pem = ca_pem;
            let mut config = ext("https://unused/", 1000, false);
            config.ext_auth[0].target = target;
            Snapshot {
                auth: vec![config],
                ..snapshot(
                    port,
                    80,
                    vec![vhost("*", vec![prefix("/", 0)])],
                    vec![protected],
                    vec![
                        backend("echo", vec![app]),
                        backend(
                            "auth",
                            vec![Endpoint {
                                address: "127.0.0.1".into(),
                                port: auth.port(),
                            }],
                        ),
                    ],
                )
            }
        })
    };
    let trusted = start(Some(ca.pem())).await;
    assert_eq!(trusted.get("app.example", "/").await.status, 200);
    assert_eq!(service.handshakes(), 1);
    let untrusted = start(None).await;
    assert_eq!(untrusted.get("app.example", "/").await.status, 503);
    assert_eq!(echo.received().len(), 1);
}
