use super::*;
use http::StatusCode;

fn policy(codes: &[u16], attempts: u32) -> Retry {
    Retry {
        codes: codes.to_vec(),
        attempts,
        backoff_ms: 100,
    }
}

fn answer(status: u16) -> Sent {
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    Ok(response)
}

fn endpoint_error(kind: ErrorKind) -> Sent {
    let endpoint = "10.0.0.1:80".to_string();
    Err(match kind {
        ErrorKind::UpstreamConnect => ProxyError::UpstreamConnect {
            endpoint,
            source: "refused".into(),
        },
        ErrorKind::UpstreamProtocol => ProxyError::UpstreamProtocol {
            endpoint,
            source: "reset".into(),
        },
        ErrorKind::UpstreamTimeout => ProxyError::UpstreamTimeout {
            endpoint,
            after_ms: 200,
        },
        ErrorKind::RequestBodyTimeout => ProxyError::RequestBodyTimeout,
        _ => ProxyError::NoEndpoints("b".into()),
    })
}

/// Listed statuses are retried, others passed on; failures before any
/// response are retried whatever the codes; the client's own failures
/// never are.
#[test]
fn reason_table() {
    let p = policy(&[500, 503], 2);
    let cases = [
        (answer(503), Some(Reason::Status)),
        (answer(500), Some(Reason::Status)),
        (answer(502), None),
        (answer(200), None),
        (answer(404), None),
        (
            endpoint_error(ErrorKind::UpstreamConnect),
            Some(Reason::Connect),
        ),
        (
            endpoint_error(ErrorKind::UpstreamProtocol),
            Some(Reason::Connect),
        ),
        (
            endpoint_error(ErrorKind::UpstreamTimeout),
            Some(Reason::Timeout),
        ),
        (endpoint_error(ErrorKind::RequestBodyTimeout), None),
        (endpoint_error(ErrorKind::NoEndpoints), None),
    ];
    for (sent, want) in cases {
        let shown = format!("{:?}", sent.as_ref().map(|r| r.status()));
        assert_eq!(reason(&p, &sent), want, "{shown}");
    }
    assert_eq!(reason(&policy(&[], 1), &answer(503)), None);
}

/// The refusals apply in the module docs' order: a streamed body first
/// (nothing else could help), then attempts, then the deadline.
#[test]
fn plan_table() {
    let p = policy(&[503], 2);
    let ms = Duration::from_millis;
    let cases = [
        (0, true, ms(100), None, Ok(())),
        (1, true, ms(100), Some(ms(101)), Ok(())),
        (2, true, ms(100), None, Err(Refused::AttemptsExhausted)),
        (0, false, ms(100), None, Err(Refused::BodyNotReplayable)),
        (2, false, ms(100), None, Err(Refused::BodyNotReplayable)),
        (0, true, ms(100), Some(ms(100)), Err(Refused::Deadline)),
        (0, true, ms(100), Some(ms(0)), Err(Refused::Deadline)),
        (
            2,
            true,
            ms(100),
            Some(ms(0)),
            Err(Refused::AttemptsExhausted),
        ),
    ];
    for (done, replayable, delay, remaining, want) in cases {
        assert_eq!(
            plan(&p, done, replayable, delay, remaining),
            want,
            "{done} {replayable} {delay:?} {remaining:?}"
        );
    }
}

/// Backoff doubles per retry up to ten times the rule's, and jitter only
/// ever adds (up to half): never sooner than the configured minimum.
#[test]
fn backoff_table() {
    let ms = Duration::from_millis;
    let cases = [
        (100, 1, 0.0, ms(100)),
        (100, 2, 0.0, ms(200)),
        (100, 3, 0.0, ms(400)),
        (100, 4, 0.0, ms(800)),
        (100, 5, 0.0, ms(1000)),
        (100, 40, 0.0, ms(1000)),
        (100, 1, 1.0, ms(150)),
        (100, 5, 0.5, ms(1250)),
        (0, 3, 1.0, ms(0)),
        (u64::MAX, 3, 1.0, ms(u64::MAX)),
    ];
    for (base, n, jitter, want) in cases {
        assert_eq!(backoff(base, n, jitter), want, "{base} {n} {jitter}");
    }
    for n in 1..20 {
        assert!(backoff(25, n, fastrand::f64()) >= ms(25));
    }
}

/// An empty body and a short one of known length are kept; a longer or
/// chunked one streams once.
#[tokio::test]
async fn bodies_kept_for_retry() {
    let kept = Replay::read(full(Bytes::from_static(b"hello")), 5).await;
    assert!(matches!(kept, Ok(Replay::Kept(b)) if b == "hello"));
    let empty_body = Replay::read(empty(), 0).await;
    assert!(matches!(empty_body, Ok(Replay::Kept(b)) if b.is_empty()));
    let long = Replay::read(full(Bytes::from_static(b"hello!")), 5).await;
    assert!(matches!(long, Ok(Replay::Once(Some(_)))));
    let frames = futures_util::stream::iter([Ok::<_, crate::body::BoxError>(
        http_body::Frame::data(Bytes::from_static(b"x")),
    )]);
    let chunked = http_body_util::StreamBody::new(frames).boxed_unsync();
    let chunked = Replay::read(chunked, 1024).await;
    let Ok(mut chunked) = chunked else {
        panic!("a chunked body is not an error");
    };
    assert!(!chunked.replayable());
    let body = chunked.take().collect().await.unwrap().to_bytes();
    assert_eq!(body, "x");
}
