//! JWT validation through the whole data plane: tokens signed by keys the
//! test makes, a JWKS server that counts its fetches and rotates keys, and
//! an echo backend whose request count proves a refused token never
//! reached it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../src/auth/test_keys.rs"]
mod test_keys;

use crate::common::*;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use test_keys::{TestKey, hs256, jwks, now, unsigned};
use tokio::net::TcpListener;
use tollgate_snapshot::*;

const ISSUER: &str = "https://issuer.example";

/// A JWKS endpoint: serves the current document, counts fetches, and can
/// be switched to failing (503).
struct JwksServer {
    addr: SocketAddr,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    down: Arc<AtomicBool>,
    /// How long each answer waits, in milliseconds.
    delay_ms: Arc<AtomicU64>,
}

impl JwksServer {
    async fn start(document: String, max_age: u64) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = JwksServer {
            addr: listener.local_addr().unwrap(),
            document: Arc::new(Mutex::new(document)),
            fetches: Arc::default(),
            down: Arc::default(),
            delay_ms: Arc::default(),
        };
        let (document, fetches, down, delay) = (
            server.document.clone(),
            server.fetches.clone(),
            server.down.clone(),
            server.delay_ms.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (document, fetches, down, delay) = (
                    document.clone(),
                    fetches.clone(),
                    down.clone(),
                    delay.clone(),
                );
                let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                    fetches.fetch_add(1, Ordering::SeqCst);
                    let (status, body) = if down.load(Ordering::SeqCst) {
                        (StatusCode::SERVICE_UNAVAILABLE, String::new())
                    } else {
                        (StatusCode::OK, document.lock().unwrap().clone())
                    };
                    let response = Response::builder()
                        .status(status)
                        .header("cache-control", format!("max-age={max_age}"))
                        .body(Full::new(Bytes::from(body)))
                        .unwrap();
                    let delay = Duration::from_millis(delay.load(Ordering::SeqCst));
                    async move {
                        tokio::time::sleep(delay).await;
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(async move {
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        server
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn serve(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    fn uri(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }
}

fn remote(uri: String) -> JwksSource {
    JwksSource::Remote {
        target: CallTarget {
            uri,
            backend: None,
            ca_pem: None,
            timeout_ms: 2000,
        },
        default_ttl_seconds: 300,
    }
}

fn provider(jwks: JwksSource) -> JwtProvider {
    JwtProvider {
        name: "example".into(),
        issuer: Some(ISSUER.into()),
        audiences: vec!["api".into()],
        algorithms: vec![],
        jwks,
        extract_from: vec![],
        claim_to_headers: vec![
            ClaimToHeader {
                claim: "sub".into(),
                header: "x-jwt-sub".into(),
            },
            ClaimToHeader {
                claim: "org.team".into(),
                header: "x-jwt-team".into(),
            },
        ],
        forward_token: false,
        clock_skew_seconds: 5,
    }
}

/// A gateway sending every request to `echo` behind JWT `jwt`.
async fn gateway(echo: &Echo, jwt: Jwt) -> Gateway {
    let endpoint = echo.endpoint();
    Gateway::start(|port| {
        let mut rule = route("api", vec![], vec![to(0, 1)]);
        rule.auth = Some(0);
        let mut snapshot = snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![rule],
            vec![backend("echo", vec![endpoint])],
        );
        snapshot.auth = vec![AuthConfig {
            sources: vec!["authpolicy/default/api".into()],
            jwt: Some(jwt),
            ..AuthConfig::default()
        }];
        snapshot
    })
    .await
}

fn required(provider: JwtProvider) -> Jwt {
    Jwt {
        providers: vec![provider],
        optional: false,
    }
}

fn claims() -> Value {
    json!({"iss": ISSUER, "aud": "api", "sub": "alice", "exp": now() + 300,
           "org": {"team": "payments"}})
}

async fn with_token(gw: &Gateway, token: &str) -> Answer {
    let request = Request::get("/orders")
        .header("host", "api.example")
        .header("authorization", format!("Bearer {token}"))
        .header("x-jwt-sub", "mallory")
        .body(Full::default())
        .unwrap();
    gw.send(request).await
}

/// Waits (up to 5 s) until the JWKS server has been fetched `n` times.
async fn fetched(jwks: &JwksServer, n: usize) {
    for _ in 0..500 {
        if jwks.fetches() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("JWKS fetched {} times, expected {n}", jwks.fetches());
}

/// RS256 and ES256 tokens pass; the backend gets the claims as headers
/// (the client's own `x-jwt-sub` replaced) and never the token.
#[tokio::test]
async fn claims_reach_the_backend_and_the_token_does_not() {
    let (rsa, ec) = (TestKey::rsa("rsa-1"), TestKey::ec("ec-1"));
    let server = JwksServer::start(jwks(&[&rsa, &ec]), 300).await;
    let echo = Echo::start("echo").await;
    let gw = gateway(&echo, required(provider(remote(server.uri())))).await;
    for key in [&rsa, &ec] {
        let answer = with_token(&gw, &key.sign(&claims())).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {}",
            key.alg(),
            answer.text()
        );
        let seen = answer.echo();
        assert_eq!(seen["headers"]["x-jwt-sub"], "alice");
        assert_eq!(seen["headers"]["x-jwt-team"], "payments");
        assert!(seen["headers"].get("authorization").is_none(), "{seen}");
    }
    // The prefetch at build served both requests.
    assert_eq!(server.fetches(), 1);
}

/// Each attack is a 401 with a Bearer challenge and reaches no backend.
#[tokio::test]
async fn attacks_are_refused_before_the_backend() {
    let rsa = TestKey::rsa("rsa-1");
    let server = JwksServer::start(jwks(&[&rsa]), 300).await;
    let echo = Echo::start("echo").await;
    let gw = gateway(&echo, required(provider(remote(server.uri())))).await;
    let good = claims();
    let at = |f: &dyn Fn(&mut Value)| {
        let mut claims = good.clone();
        f(&mut claims);
        rsa.sign(&claims)
    };
    let t = now();
    let attacks: Vec<(&str, String)> = vec![
        ("alg none", unsigned(&good)),
        (
            "HS256 keyed with the RSA public key",
            hs256(
                &json!({"alg": "HS256", "kid": "rsa-1"}),
                &good,
                &rsa.public_der(),
            ),
        ),
        (
            "HS256 keyed with the JWK's modulus",
            hs256(
                &json!({"alg": "HS256", "kid": "rsa-1"}),
                &good,
                rsa.jwk()["n"].as_str().unwrap().as_bytes(),
            ),
        ),
        ("expired", at(&|c| c["exp"] = json!(t - 60))),
        ("not yet valid", at(&|c| c["nbf"] = json!(t + 600))),
        (
            "wrong issuer",
            at(&|c| c["iss"] = json!("https://evil.example")),
        ),
        ("wrong audience", at(&|c| c["aud"] = json!("other"))),
        (
            "no exp",
            at(&|c| drop(c.as_object_mut().unwrap().remove("exp"))),
        ),
        ("malformed base64", "eyJhbGciOiJSUzI1NiJ9.!!!.c2ln".into()),
        (
            "oversized",
            format!("{}.{}", rsa.sign(&good), "A".repeat(9000)),
        ),
        (
            "signature of another key",
            TestKey::rsa("rsa-1").sign(&good),
        ),
    ];
    for (name, token) in &attacks {
        let answer = with_token(&gw, token).await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            answer.headers["www-authenticate"],
            "Bearer realm=\"api.example\", error=\"invalid_token\"",
            "{name}"
        );
        assert!(!answer.text().contains("expired"), "{name}: body says why");
    }
    // A good token in a query parameter, when only the header is read.
    let answer = gw
        .get(
            "api.example",
            &format!("/orders?access_token={}", rsa.sign(&good)),
        )
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        answer.headers["www-authenticate"],
        "Bearer realm=\"api.example\""
    );
    assert_eq!(echo.received().len(), 0, "an attack reached the backend");
    // The good token still passes, so the refusals were the tokens' fault.
    assert_eq!(
        with_token(&gw, &rsa.sign(&good)).await.status,
        StatusCode::OK
    );
}

/// A rotated key is accepted at once (one refetch); a flood of unknown
/// `kid`s right after costs the endpoint nothing (the refetch budget of
/// the next 10 s is spent).
#[tokio::test]
async fn rotation_is_picked_up_and_unknown_kid_floods_are_bounded() {
    let (old, new) = (TestKey::ec("k1"), TestKey::rsa("k2"));
    let server = JwksServer::start(jwks(&[&old]), 300).await;
    let echo = Echo::start("echo").await;
    let gw = Arc::new(gateway(&echo, required(provider(remote(server.uri())))).await);
    assert_eq!(
        with_token(&gw, &old.sign(&claims())).await.status,
        StatusCode::OK
    );
    fetched(&server, 1).await;
    let old_token = old.sign(&claims());
    assert_eq!(with_token(&gw, &old_token).await.status, StatusCode::OK);
    // The provider rotates: the new key in, the old one out.
    server.serve(jwks(&[&new]));
    let answer = with_token(&gw, &new.sign(&claims())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(server.fetches(), 2);
    // A token of the dropped key, verified (and remembered) before, stops
    // working with the set it was verified by.
    assert_eq!(
        with_token(&gw, &old_token).await.status,
        StatusCode::UNAUTHORIZED
    );

    let before = server.fetches();
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let gw = gw.clone();
            let token = new.sign_with_header(
                &json!({"alg": "RS256", "kid": format!("made-up-{i}")}),
                &claims(),
            );
            tokio::spawn(async move { with_token(&gw, &token).await.status })
        })
        .collect();
    for request in flood {
        assert_eq!(request.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.fetches(), before, "the flood refetched");
    assert_eq!(echo.received().len(), 3);
}

/// 200 tokens with made-up `kid`s at once, against a slow endpoint: one
/// refetch, shared by every request waiting for it.
#[tokio::test]
async fn an_unknown_kid_flood_costs_one_fetch() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(jwks(&[&key]), 300).await;
    let echo = Echo::start("echo").await;
    let gw = Arc::new(gateway(&echo, required(provider(remote(server.uri())))).await);
    fetched(&server, 1).await;
    server.delay_ms.store(300, Ordering::SeqCst);
    let flood: Vec<_> = (0..200)
        .map(|i| {
            let gw = gw.clone();
            let header = json!({"alg": "ES256", "kid": format!("made-up-{i}")});
            let token = key.sign_with_header(&header, &claims());
            tokio::spawn(async move { with_token(&gw, &token).await.status })
        })
        .collect();
    for request in flood {
        assert_eq!(request.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(server.fetches(), 2, "fetches for 200 unknown kids");
    assert_eq!(echo.received().len(), 0);
}

/// Requests arriving before the first fetch ends wait for it and share it.
#[tokio::test]
async fn requests_before_the_first_fetch_share_it() {
    let key = TestKey::rsa("k1");
    let server = JwksServer::start(jwks(&[&key]), 300).await;
    server.delay_ms.store(300, Ordering::SeqCst);
    let echo = Echo::start("echo").await;
    let gw = Arc::new(gateway(&echo, required(provider(remote(server.uri())))).await);
    let token = key.sign(&claims());
    let burst: Vec<_> = (0..50)
        .map(|_| {
            let (gw, token) = (gw.clone(), token.clone());
            tokio::spawn(async move { with_token(&gw, &token).await.status })
        })
        .collect();
    for request in burst {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(server.fetches(), 1);
}

/// With the endpoint down, the keys held keep working (past their
/// lifetime, as the background refresh keeps failing).
#[tokio::test]
async fn stale_keys_are_used_while_the_endpoint_is_down() {
    let key = TestKey::ec("k1");
    let server = JwksServer::start(jwks(&[&key]), 1).await;
    let echo = Echo::start("echo").await;
    let gw = gateway(&echo, required(provider(remote(server.uri())))).await;
    assert_eq!(
        with_token(&gw, &key.sign(&claims())).await.status,
        StatusCode::OK
    );
    server.down.store(true, Ordering::SeqCst);
    // An unknown kid refetches, which fails: still 401, not 503.
    let stranger = TestKey::ec("k9").sign(&claims());
    assert_eq!(
        with_token(&gw, &stranger).await.status,
        StatusCode::UNAUTHORIZED
    );
    let failed = server.fetches();
    // The set (max-age 1 s) is due for refresh after the minimum period.
    fetched(&server, failed + 1).await;
    let answer = with_token(&gw, &key.sign(&claims())).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

/// With no keys ever fetched the gateway fails closed with 503: it cannot
/// tell a good token from a forged one, and it is not the caller's fault.
#[tokio::test]
async fn no_keys_at_all_is_a_dependency_failure() {
    let key = TestKey::ec("k1");
    let nowhere = refused_endpoint().await;
    let uri = format!("http://{}:{}/jwks.json", nowhere.address, nowhere.port);
    let echo = Echo::start("echo").await;
    let gw = gateway(&echo, required(provider(remote(uri)))).await;
    let answer = with_token(&gw, &key.sign(&claims())).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.headers["x-tollgate-error"], "dependency");
    assert_eq!(echo.received().len(), 0);
}

/// An optional provider lets token-less requests through, but a bad token
/// is still refused.
#[tokio::test]
async fn optional_jwt_lets_anonymous_requests_through() {
    let key = TestKey::ec("k1");
    let echo = Echo::start("echo").await;
    let inline = JwksSource::Inline {
        jwks: jwks(&[&key]),
    };
    let jwt = Jwt {
        providers: vec![provider(inline)],
        optional: true,
    };
    let gw = gateway(&echo, jwt).await;
    let anonymous = gw
        .send(
            Request::get("/")
                .header("host", "api.example")
                .header("x-jwt-sub", "admin")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::OK);
    assert!(anonymous.echo()["headers"].get("x-jwt-sub").is_none());
    let forged = TestKey::ec("k1").sign(&claims());
    assert_eq!(
        with_token(&gw, &forged).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(echo.received().len(), 1);
}

/// The key cache outlives a snapshot swap: a runtime built while another
/// names the same JWKS URI fetches nothing, and the cache (with its
/// refresh task) goes with the last runtime naming it.
#[tokio::test]
async fn snapshot_swaps_keep_the_cached_keys() {
    use tollgate_dataplane::runtime::Runtime;
    use tollgate_dataplane::upstream::Clients;
    let key = TestKey::ec("k1");
    let server = JwksServer::start(jwks(&[&key]), 300).await;
    let snapshot = || {
        let mut rule = route("api", vec![], vec![]);
        rule.auth = Some(0);
        let mut snapshot = snapshot(9, 80, vec![], vec![rule], vec![]);
        snapshot.auth = vec![AuthConfig {
            sources: vec!["authpolicy/default/api".into()],
            jwt: Some(required(provider(remote(server.uri())))),
            ..AuthConfig::default()
        }];
        snapshot
    };
    let clients = Clients::new();
    let first = Runtime::build(snapshot(), &clients).unwrap();
    fetched(&server, 1).await;
    let second = Runtime::build(snapshot(), &clients).unwrap();
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(server.fetches(), 1, "the swap refetched the keys");
    drop(second);
    let third = Runtime::build(snapshot(), &clients).unwrap();
    fetched(&server, 2).await;
    drop(third);
}
