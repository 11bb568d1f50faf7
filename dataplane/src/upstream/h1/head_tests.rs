#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use http::Request;
use opentelemetry::trace::{SpanId, TraceId, TraceState};
use tollgate_telemetry::TraceIds;

/// The head written for `request` with the body hints `empty` and
/// `exact`, and the framing chosen.
fn written(request: Request<()>, empty: bool, exact: Option<u64>) -> (String, Framing) {
    let (parts, ()) = request.into_parts();
    let mut dst = BytesMut::new();
    let framing = write_request(&parts, None, (empty, exact), &mut dst).unwrap();
    (String::from_utf8(dst.to_vec()).unwrap(), framing)
}

/// Method, fields, body empty, exact size, fields written, framing.
type Case<'a> = (
    &'a str,
    &'a [(&'a str, &'a str)],
    bool,
    Option<u64>,
    &'a str,
    Framing,
);

fn request(method: &str, headers: &[(&str, &str)]) -> Request<()> {
    let mut builder = Request::builder().method(method).uri("/p?q=1");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap()
}

/// Framing as hyper's client chose it, by body hint and the request's own
/// framing fields.
#[test]
fn request_framing_follows_hyper() {
    let host = ("host", "up");
    let cases: &[Case<'_>] = &[
        // An empty body adds nothing, on any method.
        ("GET", &[host], true, Some(0), "host: up\r\n", Framing::None),
        (
            "POST",
            &[host],
            true,
            Some(0),
            "host: up\r\n",
            Framing::None,
        ),
        // ... and keeps a Content-Length the request has, dropping TE.
        (
            "POST",
            &[
                host,
                ("content-length", "0"),
                ("transfer-encoding", "chunked"),
            ],
            true,
            Some(0),
            "host: up\r\ncontent-length: 0\r\n",
            Framing::None,
        ),
        // A known size becomes Content-Length.
        (
            "POST",
            &[host],
            false,
            Some(5),
            "host: up\r\ncontent-length: 5\r\n",
            Framing::Length(5),
        ),
        // A valid Content-Length of the request's own is trusted and kept.
        (
            "PUT",
            &[host, ("content-length", "7")],
            false,
            None,
            "host: up\r\ncontent-length: 7\r\n",
            Framing::Length(7),
        ),
        // An invalid one is replaced.
        (
            "PUT",
            &[host, ("content-length", "x")],
            false,
            Some(3),
            "host: up\r\ncontent-length: 3\r\n",
            Framing::Length(3),
        ),
        // Unknown size: chunked, except GET, HEAD and CONNECT send no body.
        (
            "POST",
            &[host],
            false,
            None,
            "host: up\r\ntransfer-encoding: chunked\r\n",
            Framing::Chunked,
        ),
        ("GET", &[host], false, None, "host: up\r\n", Framing::None),
        ("HEAD", &[host], false, None, "host: up\r\n", Framing::None),
        // A Transfer-Encoding of the request's own wins over a length.
        (
            "POST",
            &[
                host,
                ("transfer-encoding", "chunked"),
                ("content-length", "4"),
            ],
            false,
            Some(4),
            "host: up\r\ntransfer-encoding: chunked\r\n",
            Framing::Chunked,
        ),
        (
            "POST",
            &[host, ("transfer-encoding", "gzip")],
            false,
            None,
            "host: up\r\ntransfer-encoding: gzip\r\ntransfer-encoding: chunked\r\n",
            Framing::Chunked,
        ),
    ];
    for (method, headers, empty, exact, fields, framing) in cases {
        let (head, chosen) = written(request(method, headers), *empty, *exact);
        let expected = format!("{method} /p?q=1 HTTP/1.1\r\n{fields}\r\n");
        assert_eq!(
            head, expected,
            "{method} {headers:?} empty={empty} exact={exact:?}"
        );
        assert_eq!(chosen, *framing, "{method} {headers:?}");
    }
}

/// Header order and repeated fields are kept as the request has them.
#[test]
fn request_fields_keep_their_order() {
    let request = request(
        "GET",
        &[
            ("host", "up"),
            ("x-b", "1"),
            ("accept", "*/*"),
            ("x-b", "2"),
        ],
    );
    let (head, _) = written(request, true, Some(0));
    // `HeaderMap` groups a name's values at its first position.
    assert_eq!(
        head,
        "GET /p?q=1 HTTP/1.1\r\nhost: up\r\nx-b: 1\r\nx-b: 2\r\naccept: */*\r\n\r\n"
    );
}

/// The decimal writer at its edges.
#[test]
fn decimal_lengths() {
    for n in [0, 9, 10, 12345, u64::MAX] {
        let mut dst = BytesMut::new();
        put_decimal(&mut dst, n);
        assert_eq!(&dst[..], n.to_string().as_bytes());
    }
}

fn parse(wire: &[u8], method: &Method) -> Result<Option<ResponseHead>, H1Error> {
    parse_response(&mut BytesMut::from(wire), method)
}

fn kind(wire: &str, method: Method) -> Result<(BodyKind, bool), String> {
    match parse(wire.as_bytes(), &method) {
        Ok(Some(head)) => Ok((head.body, head.keep_alive)),
        Ok(None) => Err("partial".into()),
        Err(error) => Err(error.to_string()),
    }
}

/// RFC 9112 §6.3, as hyper's client applied it.
#[test]
fn response_framing() {
    use BodyKind::*;
    let get = || Method::GET;
    let ok = |kind, keep| Ok((kind, keep));
    let cases = [
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            get(),
            ok(Length(5), true),
        ),
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5, 5\r\ncontent-length: 5\r\n\r\n",
            get(),
            ok(Length(5), true),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n",
            get(),
            ok(Chunked, true),
        ),
        // TE wins over CL; TE not ending in chunked reads to close.
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n",
            get(),
            ok(Chunked, true),
        ),
        (
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\n",
            get(),
            ok(Close, true),
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", get(), ok(Close, true)),
        // No body whatever the fields say.
        (
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",
            Method::HEAD,
            ok(Empty, true),
        ),
        (
            "HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n",
            get(),
            ok(Empty, true),
        ),
        (
            "HTTP/1.1 304 Not Modified\r\ntransfer-encoding: chunked\r\n\r\n",
            get(),
            ok(Empty, true),
        ),
        (
            "HTTP/1.1 101 Switching Protocols\r\nupgrade: x\r\n\r\n",
            get(),
            ok(Empty, false),
        ),
        ("HTTP/1.1 200 OK\r\n\r\n", Method::CONNECT, ok(Empty, false)),
        // Keep-alive by version and Connection.
        (
            "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n",
            get(),
            ok(Length(0), false),
        ),
        (
            "HTTP/1.1 200 OK\r\nconnection: close\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n",
            get(),
            ok(Length(0), false),
        ),
        (
            "HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n",
            get(),
            ok(Length(0), false),
        ),
        (
            "HTTP/1.0 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n",
            get(),
            ok(Length(0), true),
        ),
    ];
    for (wire, method, expected) in cases {
        assert_eq!(kind(wire, method.clone()), expected, "{wire:?} to {method}");
    }
}

/// Heads hyper's client refused are refused, each for its reason.
#[test]
fn response_refusals() {
    let refusals: [(&str, &[&str]); 5] = [
        (
            "invalid Content-Length in the response",
            &[
                "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ncontent-length: 6\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: +5\r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: \r\n\r\n",
                "HTTP/1.1 200 OK\r\ncontent-length: 99999999999999999999\r\n\r\n",
            ],
        ),
        (
            "invalid response head",
            &[
                "HTTP/1.1 200 OK\r\nbad header\r\n\r\n",
                "HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n",
            ],
        ),
        (
            "Transfer-Encoding in an HTTP/1.0 response",
            &["HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"],
        ),
        ("invalid response status 99", &["HTTP/1.1 099 Low\r\n\r\n"]),
        ("partial", &["HTTP/1.1 200 OK\r\ncontent-length: 5\r\n"]),
    ];
    for (reason, wires) in refusals {
        for wire in wires {
            assert_eq!(kind(wire, Method::GET), Err(reason.to_string()), "{wire:?}");
        }
    }
}

/// Interim responses are skipped, whether they arrive with the final one
/// or alone.
#[test]
fn interim_responses_are_skipped() {
    let mut buf = BytesMut::from(
        &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"[..],
    );
    let head = parse_response(&mut buf, &Method::POST).unwrap().unwrap();
    assert_eq!(head.response.status(), 200);
    assert!(head.response.headers().get("link").is_none());
    assert_eq!(&buf[..], b"ok");

    let mut buf = BytesMut::from(&b"HTTP/1.1 100 Continue\r\n\r\n"[..]);
    assert!(parse_response(&mut buf, &Method::POST).unwrap().is_none());
    assert!(buf.is_empty());
}

/// Fields come out in order with their values; a reason phrase that is
/// not the standard one is kept for the server side.
#[test]
fn response_fields_and_reason() {
    let wire = b"HTTP/1.1 200 Fine\r\nServer: up\r\nx-a: 1\r\nx-a: 2\r\nx-empty:\r\n\r\nbody";
    let head = parse(wire, &Method::GET).unwrap().unwrap();
    let response = head.response;
    assert_eq!(response.version(), Version::HTTP_11);
    assert_eq!(response.headers()["server"], "up");
    let values: Vec<_> = response.headers().get_all("x-a").iter().collect();
    assert_eq!(values, ["1", "2"]);
    assert_eq!(response.headers()["x-empty"], "");
    let reason = response
        .extensions()
        .get::<hyper::ext::ReasonPhrase>()
        .unwrap();
    assert_eq!(reason.as_bytes(), b"Fine");

    let head = parse(b"HTTP/1.1 200 OK\r\n\r\n", &Method::GET)
        .unwrap()
        .unwrap();
    assert!(
        head.response
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .is_none()
    );
}

/// A head over the limit is refused, whether it is complete or still
/// arriving; so are more than 100 fields.
#[test]
fn oversize_heads_are_refused() {
    let long = format!("HTTP/1.1 200 OK\r\nx: {}\r\n", "a".repeat(MAX_HEAD));
    assert_eq!(
        kind(&long, Method::GET),
        Err("response head over 65536 bytes".into())
    );
    let complete = format!("{long}\r\n");
    assert_eq!(
        kind(&complete, Method::GET),
        Err("response head over 65536 bytes".into())
    );
    let many: String = (0..=MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    let wire = format!("HTTP/1.1 200 OK\r\n{many}\r\n");
    assert_eq!(
        kind(&wire, Method::GET),
        Err("invalid response head".into())
    );
    let fits: String = (0..MAX_HEADERS).map(|i| format!("x-{i}: v\r\n")).collect();
    let wire = format!("HTTP/1.1 200 OK\r\n{fits}content-length: 0\r\n\r\n");
    assert!(kind(&wire, Method::GET).is_err(), "101 fields");
    let wire = format!("HTTP/1.1 200 OK\r\n{fits}\r\n");
    assert_eq!(kind(&wire, Method::GET), Ok((BodyKind::Close, true)));
}

/// The trace context follows the request's own fields and replaces its
/// `traceparent` and `tracestate`: a line without a trace state removes
/// the client's; one with a state writes it.
#[test]
fn the_trace_context_replaces_the_request_fields() {
    let fields = [
        ("host", "up"),
        ("traceparent", "client"),
        ("tracestate", "client=1"),
        ("user-agent", "ua"),
        ("x-kept", "1"),
    ];
    let (parts, ()) = request("GET", &fields).into_parts();
    let ids = TraceIds {
        trace_id: TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        span_id: SpanId::from(0x00f0_67aa_0ba9_02b7),
        sampled: true,
    };
    let parent = "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n";
    let bare = TraceLine::from_ids(ids, &TraceState::NONE).unwrap();
    let mut dst = BytesMut::new();
    write_request(&parts, Some(&bare), (true, Some(0)), &mut dst).unwrap();
    assert_eq!(
        String::from_utf8(dst.to_vec()).unwrap(),
        format!("GET /p?q=1 HTTP/1.1\r\nhost: up\r\nuser-agent: ua\r\nx-kept: 1\r\n{parent}\r\n")
    );
    let state = TraceState::from_key_value([("vendor", "1")]).unwrap();
    let stated = TraceLine::from_ids(ids, &state).unwrap();
    let mut dst = BytesMut::new();
    write_request(&parts, Some(&stated), (true, Some(0)), &mut dst).unwrap();
    assert!(String::from_utf8(dst.to_vec()).unwrap().ends_with(&format!(
        "x-kept: 1\r\n{parent}tracestate: vendor=1\r\n\r\n"
    )));
}

/// The control-character test that keeps a field from splitting the
/// request: line breaks and NUL anywhere, tab allowed, high bytes allowed.
#[test]
fn control_characters_are_found_anywhere() {
    assert!(!has_control(b""));
    assert!(!has_control(
        b"a plain value, longer than one word\t\x80\xff"
    ));
    assert!(has_control(b"0123456789abcdef\r\nx-injected: 1"));
    assert!(has_control(b"\n"));
    assert!(has_control(b"0123456\x00"));
    assert!(has_control(b"01234567\x1f"));
}
