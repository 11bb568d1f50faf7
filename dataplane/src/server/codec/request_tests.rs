#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use http_body_util::BodyExt;
use tollgate_snapshot::Settings;

const LIMITS: Limits = Limits {
    headers: 100,
    head: 64 * 1024,
};

fn parsed(bytes: &str, limits: Limits) -> (Parsed, BytesMut) {
    let mut buf = BytesMut::from(bytes);
    let parsed = parse(&mut buf, limits);
    (parsed, buf)
}

fn plain_of(bytes: &str) -> (Plain, BytesMut) {
    match parsed(bytes, LIMITS) {
        (Parsed::Plain(plain), rest) => (plain, rest),
        (other, _) => panic!("{other:?} for {bytes:?}"),
    }
}

async fn body_of(plain: Plain) -> Vec<u8> {
    let body = plain.request.into_body();
    body.collect().await.unwrap().to_bytes().to_vec()
}

/// A plain GET becomes the request hyper would have made, and only its
/// bytes leave the buffer.
#[tokio::test]
async fn a_plain_get_is_split_off() {
    let (plain, rest) =
        plain_of("GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nx-two: 2\r\n\r\nGET /next");
    let req = &plain.request;
    assert_eq!(req.method(), Method::GET);
    assert_eq!(req.uri(), "/a?b=c");
    assert_eq!(req.version(), Version::HTTP_11);
    assert_eq!(req.headers()["host"], "x");
    let twos: Vec<_> = req.headers().get_all("x-two").iter().collect();
    assert_eq!(twos, ["1", "2"]);
    assert!(plain.keep_alive && !plain.trailers);
    assert_eq!(&rest[..], b"GET /next");
    assert!(body_of(plain).await.is_empty());
}

/// A body whose `Content-Length` bytes are all here travels with the head.
#[tokio::test]
async fn a_whole_body_comes_with_its_head() {
    let (plain, rest) = plain_of("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET");
    assert_eq!(plain.request.headers()["content-length"], "3");
    assert_eq!(&rest[..], b"GET");
    assert_eq!(body_of(plain).await, b"abc");
    let (plain, _) = plain_of("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
    assert!(http_body::Body::is_end_stream(plain.request.body()));
}

/// `Connection: close` (in any field, any case) ends keep-alive, and
/// `TE: trailers` is noted, as hyper reads them.
#[test]
fn connection_and_te_are_read() {
    let (p, _) =
        plain_of("GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\nTE: trailers\r\n\r\n");
    assert!(!p.keep_alive && p.trailers);
    let (p, _) = plain_of("GET / HTTP/1.1\r\nConnection: upgrade\r\nConnection: close\r\n\r\n");
    assert!(!p.keep_alive);
    let (p, _) = plain_of("GET / HTTP/1.1\r\nConnection: keep-alive\r\n\r\n");
    assert!(p.keep_alive);
}

/// Everything the fast path leaves to hyper, and the buffer left whole
/// for it.
#[test]
fn rare_requests_go_to_hyper_untouched() {
    let cases = [
        "GET / HTTP/1.0\r\nHost: x\r\n\r\n",
        "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\na",
        "POST / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nContent-Length: +3\r\n\r\nabc",
        // The body is not all here yet: hyper streams it.
        "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
        // Malformed heads: hyper answers them.
        "GET / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
        "GET / HTTP/1.1\r\nX-A: a\rX-B: b\r\n\r\n",
        "GET / HTTP/1.1\r\nX A: a\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/2.0\r\n\r\n",
        "\0\0\0",
    ];
    for case in cases {
        let (parsed, rest) = parsed(case, LIMITS);
        assert!(matches!(parsed, Parsed::Rare), "{parsed:?} for {case:?}");
        assert_eq!(&rest[..], case.as_bytes(), "{case:?}");
    }
}

/// Heads over the header-count or size limit are hyper's to refuse (431).
#[test]
fn heads_over_the_limits_go_to_hyper() {
    let small = Limits {
        headers: 2,
        head: 64,
    };
    let three = "GET / HTTP/1.1\r\na: 1\r\nb: 2\r\nc: 3\r\n\r\n";
    assert!(matches!(parsed(three, small).0, Parsed::Rare));
    let two = "GET / HTTP/1.1\r\na: 1\r\nb: 2\r\n\r\n";
    assert!(matches!(parsed(two, small).0, Parsed::Plain(_)));
    let long = format!("GET / HTTP/1.1\r\nx: {}\r\n\r\n", "a".repeat(60));
    assert!(matches!(parsed(&long, small).0, Parsed::Rare));
    // Partial past the limit: no point waiting for the rest.
    let partial = format!("GET / HTTP/1.1\r\nx: {}", "a".repeat(60));
    assert!(matches!(parsed(&partial, small).0, Parsed::Rare));
    assert!(matches!(parsed(&partial, LIMITS).0, Parsed::Partial));
}

/// The limits never let the fast path take more than hyper would.
#[test]
fn limits_follow_the_settings() {
    let limits_for = |headers, bytes| {
        let settings = Settings {
            max_request_headers: headers,
            max_request_header_bytes: bytes,
            ..Settings::default()
        };
        Limits::from_settings(&ConnSettings::from(&settings))
    };
    assert_eq!(limits_for(0, 0), LIMITS);
    let limits = limits_for(10, 4096);
    assert_eq!((limits.headers, limits.head), (10, 4096));
    assert_eq!(limits_for(500, 1 << 20), LIMITS);
}

/// Incomplete heads wait for more bytes and leave the buffer alone.
#[test]
fn partial_heads_wait() {
    for case in ["G", "GET / HTTP/1.1\r\n", "GET / HTTP/1.1\r\nHost: x\r\n"] {
        let (parsed, rest) = parsed(case, LIMITS);
        assert!(matches!(parsed, Parsed::Partial), "{case:?}");
        assert_eq!(&rest[..], case.as_bytes());
    }
}
