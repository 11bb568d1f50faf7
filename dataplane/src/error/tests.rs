//! Tests of error kinds, answers and their public messages.

use super::*;
use http_body_util::BodyExt;

/// Every kind maps to its status, and the answer names the kind.
#[test]
fn each_kind_has_its_status_and_label() {
    let io = || -> BoxError { Box::new(std::io::Error::other("x")) };
    let table: Vec<(ProxyError, u16, &str)> = vec![
        (
            ProxyError::NoRoute {
                host: "x".into(),
                path: "/y".into(),
            },
            404,
            "routing",
        ),
        (ProxyError::BadRequest("bad".into()), 400, "bad-request"),
        (
            ProxyError::RequestBody { source: io() },
            400,
            "request-body",
        ),
        (ProxyError::RequestBodyTimeout, 408, "request-body-timeout"),
        (ProxyError::NoBackend("none".into()), 500, "no-backend"),
        (ProxyError::NoEndpoints("b".into()), 503, "no-endpoints"),
        (
            ProxyError::UpstreamConnect {
                endpoint: "e".into(),
                source: io(),
            },
            503,
            "upstream-connect",
        ),
        (
            ProxyError::UpstreamTimeout {
                endpoint: "e".into(),
                after_ms: 5,
            },
            504,
            "upstream-timeout",
        ),
        (
            ProxyError::UpstreamProtocol {
                endpoint: "e".into(),
                source: io(),
            },
            502,
            "upstream-protocol",
        ),
        (
            ProxyError::UpstreamTls {
                endpoint: "e".into(),
                source: io(),
            },
            502,
            "upstream-tls",
        ),
        (
            ProxyError::UpgradeUnsupported {
                backend: "b".into(),
            },
            502,
            "upgrade-unsupported",
        ),
    ];
    let auth: Vec<(ProxyError, u16, &str)> = vec![
        (
            ProxyError::Unauthenticated {
                reason: "expired",
                challenge: None,
            },
            401,
            "unauthenticated",
        ),
        (ProxyError::Forbidden { reason: "rule" }, 403, "forbidden"),
        (
            ProxyError::RateLimited {
                limit: "l".into(),
                retry_after_secs: None,
                standing: None,
            },
            429,
            "rate-limited",
        ),
        (
            ProxyError::Dependency {
                dependency: "jwks".into(),
                source: io(),
            },
            503,
            "dependency",
        ),
    ];
    for (error, status, label) in table.into_iter().chain(auth) {
        let response = respond(&error, "test");
        assert_eq!(response.status().as_u16(), status);
        assert_eq!(response.headers()[ERROR_HEADER], label);
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }
}

/// Only a failure before the connection opened may be retried.
#[test]
fn only_connect_errors_are_retryable() {
    let connect = ProxyError::UpstreamConnect {
        endpoint: "e".into(),
        source: Box::new(std::io::Error::other("refused")),
    };
    assert!(connect.retryable());
    assert_eq!(connect.side(), Side::Upstream);
    let timeout = ProxyError::UpstreamTimeout {
        endpoint: "e".into(),
        after_ms: 1,
    };
    assert!(!timeout.retryable());
    assert_eq!(ProxyError::BadRequest("x".into()).side(), Side::Downstream);
}

/// What `respond` logs for `error`, at every level.
fn logged(error: &ProxyError) -> String {
    use std::sync::{Arc, Mutex};
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let lines = Lines::default();
    let writer = lines.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || respond(error, "test"));
    let bytes = lines.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// A client's broken or slow request body is logged as a refused
/// request, not as a failing upstream.
#[test]
fn request_body_failures_are_logged_as_the_clients() {
    let malformed = ProxyError::RequestBody {
        source: Box::new(std::io::Error::other("invalid chunk size")),
    };
    for error in [malformed, ProxyError::RequestBodyTimeout] {
        assert_eq!(error.side(), Side::Downstream);
        let log = logged(&error);
        assert!(
            log.contains("DEBUG") && log.contains("request refused"),
            "{log}"
        );
        assert!(
            !log.contains("WARN") && !log.contains("request failed"),
            "{log}"
        );
    }
    let upstream = ProxyError::UpstreamProtocol {
        endpoint: "e".into(),
        source: Box::new(std::io::Error::other("reset")),
    };
    assert!(logged(&upstream).contains("WARN"));
}

/// A refusal carries its challenge or `Retry-After`, and its body
/// never says why.
#[tokio::test]
async fn refusals_carry_headers_and_hide_their_reason() {
    let error = ProxyError::Unauthenticated {
        reason: "bad-signature",
        challenge: Some(HeaderValue::from_static(
            "Bearer realm=\"api\", error=\"invalid_token\"",
        )),
    };
    assert_eq!(error.reason(), Some("bad-signature"));
    let response = respond(&error, "test");
    assert_eq!(
        response.headers()[http::header::WWW_AUTHENTICATE],
        "Bearer realm=\"api\", error=\"invalid_token\""
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "401 Unauthorized: authentication required\n");
    let limited = ProxyError::RateLimited {
        limit: "per-user".into(),
        retry_after_secs: Some(7),
        standing: None,
    };
    let response = respond(&limited, "test");
    assert_eq!(response.headers()[http::header::RETRY_AFTER], "7");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(!String::from_utf8_lossy(&body).contains("per-user"));
}

#[tokio::test]
async fn the_body_is_short_plain_text() {
    let error = ProxyError::NoRoute {
        host: "x".into(),
        path: "/y".into(),
    };
    let body = respond(&error, "test").into_body().collect().await.unwrap();
    assert_eq!(
        body.to_bytes(),
        "404 Not Found: no route for host \"x\" path \"/y\"\n"
    );
}
