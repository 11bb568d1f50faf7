#![allow(clippy::unwrap_used, clippy::expect_used)]

//! The head the codec writes, compared byte for byte with the head hyper's
//! server writes for the same response (the `date` value aside).

use super::*;
use crate::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a response's body looks like to its writer.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Empty,
    Full(&'static str),
    Stream,
}

fn body(kind: Kind) -> ProxyBody {
    match kind {
        Kind::Empty => Empty::new().map_err(|e| match e {}).boxed_unsync(),
        Kind::Full(text) => Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(|e| match e {})
            .boxed_unsync(),
        Kind::Stream => {
            let frames = futures_util::stream::iter([Ok::<_, BoxError>(http_body::Frame::data(
                Bytes::from_static(b"abc"),
            ))]);
            StreamBody::new(frames).boxed_unsync()
        }
    }
}

fn response(status: u16, fields: &[(&str, &str)], kind: Kind) -> Response<ProxyBody> {
    let mut builder = Response::builder().status(status);
    for (name, value) in fields {
        builder = builder.header(*name, *value);
    }
    builder.body(body(kind)).unwrap()
}

/// The head hyper's server writes for `response` to a `method` request;
/// `close` sends the request with `Connection: close`.
async fn hyper_head(method: &str, close: bool, response: Response<ProxyBody>) -> String {
    let (mut client, server) = tokio::io::duplex(64 * 1024);
    let slot = std::sync::Mutex::new(Some(response));
    let service = hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
        let response = slot.lock().unwrap().take().unwrap();
        async move { Ok::<_, std::convert::Infallible>(response) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(hyper_util::rt::TokioIo::new(server), service);
    let serving = tokio::spawn(conn);
    let connection = if close { "connection: close\r\n" } else { "" };
    let request = format!("{method} / HTTP/1.1\r\nhost: x\r\n{connection}\r\n");
    client.write_all(request.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    serving.abort();
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    normalized(&got[..end])
}

/// The codec's head for the same exchange, and its framing.
fn codec_head(method: &str, close: bool, response: Response<ProxyBody>) -> (String, Encoded) {
    let (mut parts, body) = response.into_parts();
    let length = if http_body::Body::is_end_stream(&body) {
        BodyLength::Empty
    } else {
        http_body::Body::size_hint(&body)
            .exact()
            .map_or(BodyLength::Unknown, BodyLength::Known)
    };
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    let req = Answering {
        method: &method,
        keep_alive: !close,
    };
    let mut dst = BytesMut::new();
    let encoded = write_head(&mut parts, length, req, &mut dst).unwrap();
    (normalized(&dst), encoded)
}

/// The head with the date's value blanked.
fn normalized(head: &[u8]) -> String {
    let text = String::from_utf8(head.to_vec()).unwrap();
    text.split("\r\n")
        .map(|line| match line.strip_prefix("date: ") {
            Some(_) => "date: <now>",
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// Method, request `Connection: close`, status, fields, body.
type Case<'a> = (&'a str, bool, u16, &'a [(&'a str, &'a str)], Kind);

/// Status lines, implicit and explicit framing fields, HEAD, 204 and 304,
/// `Connection` on either side: the codec writes what hyper writes.
#[tokio::test]
async fn heads_match_hyper() {
    let cases: &[Case<'_>] = &[
        ("GET", false, 200, &[], Kind::Empty),
        (
            "GET",
            false,
            200,
            &[("x-a", "1"), ("x-a", "2")],
            Kind::Full("hello"),
        ),
        (
            "GET",
            false,
            404,
            &[("content-type", "text/plain")],
            Kind::Full("no"),
        ),
        ("GET", false, 200, &[], Kind::Stream),
        ("GET", false, 200, &[("content-length", "3")], Kind::Stream),
        (
            "GET",
            false,
            200,
            &[("transfer-encoding", "gzip")],
            Kind::Stream,
        ),
        (
            "GET",
            false,
            200,
            &[("transfer-encoding", "chunked")],
            Kind::Stream,
        ),
        (
            "GET",
            false,
            200,
            &[("content-length", "5")],
            Kind::Full("hello"),
        ),
        ("GET", false, 200, &[("content-length", "0")], Kind::Empty),
        (
            "GET",
            false,
            200,
            &[("date", "Sun, 06 Nov 1994 08:49:37 GMT")],
            Kind::Empty,
        ),
        (
            "GET",
            false,
            200,
            &[("connection", "close")],
            Kind::Full("x"),
        ),
        ("GET", true, 200, &[], Kind::Full("x")),
        (
            "GET",
            true,
            200,
            &[("connection", "keep-alive")],
            Kind::Empty,
        ),
        ("GET", true, 400, &[("connection", "close")], Kind::Empty),
        ("HEAD", false, 200, &[], Kind::Full("hello")),
        ("HEAD", false, 200, &[("content-length", "42")], Kind::Empty),
        ("HEAD", false, 200, &[], Kind::Empty),
        ("HEAD", false, 200, &[], Kind::Stream),
        ("GET", false, 204, &[], Kind::Empty),
        ("GET", false, 204, &[("content-length", "0")], Kind::Empty),
        ("GET", false, 304, &[("etag", "\"a\"")], Kind::Empty),
        ("GET", false, 304, &[("content-length", "7")], Kind::Empty),
        (
            "POST",
            false,
            201,
            &[("location", "/x")],
            Kind::Full("made"),
        ),
        ("GET", false, 599, &[], Kind::Empty),
        ("GET", false, 200, &[("trailer", "x-t")], Kind::Stream),
    ];
    for &(method, close, status, fields, kind) in cases {
        let want = hyper_head(method, close, response(status, fields, kind)).await;
        let (got, encoded) = codec_head(method, close, response(status, fields, kind));
        assert_eq!(
            got, want,
            "{method} {status} {fields:?} {kind:?} close={close}"
        );
        let closes = close
            || fields
                .iter()
                .any(|(n, v)| *n == "connection" && *v == "close");
        assert_eq!(encoded.last, closes, "{method} {status} {fields:?}");
    }
}

/// Framing chosen for each kind of body.
#[test]
fn framing_follows_the_body() {
    let get = |status, fields: &[(&str, &str)], kind| {
        codec_head("GET", false, response(status, fields, kind)).1
    };
    assert_eq!(
        get(200, &[], Kind::Full("hello")).framing,
        Framing::Length(5)
    );
    assert_eq!(get(200, &[], Kind::Stream).framing, Framing::Chunked);
    assert_eq!(get(200, &[], Kind::Empty).framing, Framing::Length(0));
    assert_eq!(get(204, &[], Kind::Stream).framing, Framing::Length(0));
    let head = codec_head("HEAD", false, response(200, &[], Kind::Stream)).1;
    assert_eq!(head.framing, Framing::Length(0));
    let trailer = get(200, &[("trailer", "x-t, x-u")], Kind::Stream);
    let names: Vec<_> = trailer
        .trailers
        .unwrap()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(names, ["x-t", "x-u"]);
}

/// An HTTP/1.0 response of unknown length is close-delimited, as hyper
/// sends it, and a 1xx becomes hyper's 500.
#[test]
fn odd_responses_follow_hyper() {
    let mut old = response(200, &[], Kind::Stream);
    *old.version_mut() = Version::HTTP_10;
    let (text, encoded) = codec_head("GET", false, old);
    assert!(text.starts_with("HTTP/1.0 200 OK\r\n"), "{text}");
    assert_eq!((encoded.framing, encoded.last), (Framing::Close, true));
    let (text, encoded) = codec_head("GET", false, response(103, &[("link", "x")], Kind::Empty));
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert!(!text.contains("link"), "{text}");
    assert!(encoded.last);
}

/// Conflicting lengths on a body of unknown length are refused, and
/// nothing is left written.
#[test]
fn conflicting_lengths_are_refused() {
    let response = response(
        200,
        &[("content-length", "3"), ("content-length", "4")],
        Kind::Stream,
    );
    let (mut parts, _) = response.into_parts();
    let mut dst = BytesMut::from("kept");
    let req = Answering {
        method: &Method::GET,
        keep_alive: true,
    };
    let written = write_head(&mut parts, BodyLength::Unknown, req, &mut dst);
    assert_eq!(written, Err(InvalidHead));
    assert_eq!(&dst[..], b"kept");
}
