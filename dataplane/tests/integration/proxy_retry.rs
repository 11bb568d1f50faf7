//! Retries through `proxy::handle`: what a rule's retry policy sends to a
//! backend that fails on purpose, and what the client gets back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tollgate_snapshot::*;

/// How a [`Flaky`] backend fails.
#[derive(Clone, Copy)]
enum Fail {
    /// Answers this status.
    Status(u16),
    /// Answers 200 after this long.
    Slow(Duration),
}

/// A backend that fails its first `fail` requests (all with `None`) the
/// way it is told, then answers 200 with the request body; it records
/// every request's body on arrival.
struct Flaky {
    endpoint: Endpoint,
    bodies: Arc<Mutex<Vec<Bytes>>>,
}

impl Flaky {
    async fn start(fail: Option<usize>, how: Fail) -> Flaky {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let bodies: Arc<Mutex<Vec<Bytes>>> = Arc::default();
        let seen = bodies.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let seen = seen.clone();
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let n = {
                            let mut seen = seen.lock().unwrap();
                            seen.push(body.clone());
                            seen.len()
                        };
                        let failing = fail.is_none_or(|fail| n <= fail);
                        let mut response = Response::new(Full::new(body));
                        match (failing, how) {
                            (true, Fail::Status(status)) => {
                                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                            }
                            (true, Fail::Slow(delay)) => tokio::time::sleep(delay).await,
                            (false, _) => {}
                        }
                        Ok::<_, Infallible>(response)
                    }
                });
                tokio::spawn(
                    auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned(),
                );
            }
        });
        let endpoint = Endpoint {
            address: addr.ip().to_string(),
            port: addr.port(),
        };
        Flaky { endpoint, bodies }
    }

    fn requests(&self) -> usize {
        self.bodies.lock().unwrap().len()
    }
}

fn policy(codes: &[u16], attempts: u32) -> Retry {
    Retry {
        codes: codes.to_vec(),
        attempts,
        backoff_ms: 1,
    }
}

/// A gateway whose one rule retries per `retry` to `endpoints`, with
/// `timeouts` and the Gateway's `budget`.
async fn gateway(
    endpoints: Vec<Endpoint>,
    retry: Retry,
    timeouts: Timeouts,
    budget: RetrySettings,
) -> Gateway {
    Gateway::start(|port| {
        let mut rule = route("flaky", vec![], vec![to(0, 1)]);
        rule.retry = Some(retry);
        rule.timeouts = timeouts;
        let mut s = snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![rule],
            vec![backend("flaky", endpoints)],
        );
        s.settings.retry = budget;
        s
    })
    .await
}

fn post(body: &'static str) -> Request<Full<Bytes>> {
    Request::post("/")
        .header("host", "x")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

/// A listed status is retried until the backend recovers; the backend
/// sees exactly the first attempt plus the retries.
#[tokio::test]
async fn a_listed_status_is_retried_until_success() {
    let flaky = Flaky::start(Some(2), Fail::Status(503)).await;
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[500, 503], 3),
        Timeouts::default(),
        RetrySettings::default(),
    )
    .await;
    assert_eq!(gw.get("x", "/").await.status, StatusCode::OK);
    assert_eq!(flaky.requests(), 3);
}

/// With more failures than attempts, the client gets the last failure
/// after `1 + attempts` requests.
#[tokio::test]
async fn attempts_bound_the_retries() {
    let flaky = Flaky::start(Some(5), Fail::Status(503)).await;
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[503], 2),
        Timeouts::default(),
        RetrySettings::default(),
    )
    .await;
    assert_eq!(
        gw.get("x", "/").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(flaky.requests(), 3);
}

/// A status the rule does not list is passed on at once.
#[tokio::test]
async fn an_unlisted_status_is_not_retried() {
    let flaky = Flaky::start(Some(1), Fail::Status(500)).await;
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[503], 3),
        Timeouts::default(),
        RetrySettings::default(),
    )
    .await;
    assert_eq!(
        gw.get("x", "/").await.status,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(flaky.requests(), 1);
}

/// A small POST body is kept and sent again whole.
#[tokio::test]
async fn a_small_body_is_resent_whole() {
    let flaky = Flaky::start(Some(1), Fail::Status(503)).await;
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[503], 1),
        Timeouts::default(),
        RetrySettings::default(),
    )
    .await;
    let answer = gw.send(post("hello")).await;
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (StatusCode::OK, "hello")
    );
    assert_eq!(*flaky.bodies.lock().unwrap(), ["hello", "hello"]);
}

/// A body above `maxBufferedBodyBytes` streams upstream once and the
/// failure goes back to the client.
#[tokio::test]
async fn a_body_above_the_limit_is_sent_once() {
    let flaky = Flaky::start(Some(1), Fail::Status(503)).await;
    let budget = RetrySettings {
        max_buffered_body_bytes: 4,
        ..RetrySettings::default()
    };
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[503], 3),
        Timeouts::default(),
        budget,
    )
    .await;
    let answer = gw.send(post("hello")).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(*flaky.bodies.lock().unwrap(), ["hello"]);
}

/// A refused connection is retried on the backend's other endpoint, so
/// every request succeeds although half the endpoints are gone.
#[tokio::test]
async fn a_refused_connection_retries_on_another_endpoint() {
    let flaky = Flaky::start(Some(0), Fail::Status(503)).await;
    let gone = refused_endpoint().await;
    let gw = gateway(
        vec![gone, flaky.endpoint.clone()],
        policy(&[], 1),
        Timeouts::default(),
        RetrySettings::default(),
    )
    .await;
    for _ in 0..4 {
        assert_eq!(gw.get("x", "/").await.status, StatusCode::OK);
    }
    assert_eq!(flaky.requests(), 4);
}

/// An attempt that passes its `backendRequest` timeout is abandoned and
/// retried.
#[tokio::test]
async fn an_attempt_timeout_is_retried() {
    let flaky = Flaky::start(Some(1), Fail::Slow(Duration::from_secs(5))).await;
    let timeouts = Timeouts {
        request_ms: None,
        backend_request_ms: Some(200),
    };
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[], 2),
        timeouts,
        RetrySettings::default(),
    )
    .await;
    assert_eq!(gw.get("x", "/").await.status, StatusCode::OK);
    assert_eq!(flaky.requests(), 2);
}

/// The request timeout covers every attempt and every backoff: a backend
/// that is always slow gets a few attempts, not `attempts`, and the
/// client's answer comes within the timeout (plus scheduling slack).
#[tokio::test]
async fn the_request_timeout_bounds_all_attempts() {
    let flaky = Flaky::start(None, Fail::Slow(Duration::from_secs(5))).await;
    let timeouts = Timeouts {
        request_ms: Some(500),
        backend_request_ms: Some(150),
    };
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[], 10),
        timeouts,
        RetrySettings::default(),
    )
    .await;
    let started = Instant::now();
    let answer = gw.get("x", "/").await;
    let took = started.elapsed();
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert!(took < Duration::from_millis(900), "{took:?}");
    assert!((2..=4).contains(&flaky.requests()), "{}", flaky.requests());
}

/// Against a backend that always fails, the budget (10% of requests, no
/// reserve) lets through one retry per ten requests instead of three per
/// request.
#[tokio::test]
async fn the_budget_stops_a_retry_storm() {
    let flaky = Flaky::start(None, Fail::Status(503)).await;
    let budget = RetrySettings {
        budget_percent: 10,
        min_retries_per_second: 0,
        ..RetrySettings::default()
    };
    let gw = gateway(
        vec![flaky.endpoint.clone()],
        policy(&[503], 3),
        Timeouts::default(),
        budget,
    )
    .await;
    for _ in 0..50 {
        assert_eq!(
            gw.get("x", "/").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(flaky.requests(), 50 + 5);
}
