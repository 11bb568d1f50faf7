//! Property tests of the request-head parser: whatever bytes arrive, in
//! whatever pieces, it never panics, leaves the buffer untouched unless it
//! takes a request, takes exactly the head and its `Content-Length` body,
//! reads a well-formed request the same however it was split, and never
//! takes a request hyper's server would read differently. `make test` runs
//! the default cases; `PROPTEST_CASES=100000 cargo nextest run -p
//! tollgate-dataplane codec::request::props` runs a longer session by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use bytes::Bytes;
use http_body_util::BodyExt;
use proptest::prelude::*;

const LIMITS: Limits = Limits {
    headers: 100,
    head: 64 * 1024,
};

/// Bytes drawn mostly from what request heads are made of.
fn head_like() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => proptest::sample::select(
            &b"GET POST HTTP/1.01 /a?\r\n:; \tabxyz-Content-Length03chunkedTransfer-Encoding,close"[..]
        ),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..200)
}

/// A well-formed request: method, target, fields, body (sent with a
/// `Content-Length` when not empty).
fn valid_request() -> impl Strategy<Value = (String, String, Vec<(String, String)>, Vec<u8>)> {
    let method = proptest::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]);
    let target = "/[a-z0-9/._~-]{0,20}(\\?[a-z0-9=&]{0,10})?";
    let field = (
        "x-[a-z]{1,8}",
        "[a-zA-Z0-9;=/,.-]([a-zA-Z0-9 ;=/,.-]{0,18}[a-zA-Z0-9;=/,.-])?",
    );
    let fields = proptest::collection::vec(field, 0..12);
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    (method, target, fields, body).prop_map(|(m, t, f, b)| (m.to_string(), t, f, b))
}

fn wire(method: &str, target: &str, fields: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nhost: x\r\n");
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Feeds `bytes` in pieces ending at `cuts`, as reads would: the first
/// answer that is not `Partial`, and the buffer after it.
fn fed(bytes: &[u8], cuts: &[usize]) -> (Parsed, BytesMut) {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    ends.push(bytes.len());
    ends.sort_unstable();
    let mut buf = BytesMut::new();
    let mut at = 0;
    for end in ends {
        buf.extend_from_slice(&bytes[at..end]);
        at = end;
        if buf.is_empty() {
            continue;
        }
        let before = buf.clone();
        match parse(&mut buf, LIMITS) {
            Parsed::Partial => assert_eq!(buf, before, "Partial changed the buffer"),
            Parsed::Rare => {
                assert_eq!(buf, before, "Rare changed the buffer");
                return (Parsed::Rare, buf);
            }
            plain => return (plain, buf),
        }
    }
    (Parsed::Partial, buf)
}

fn body_bytes(plain: Plain) -> Bytes {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async {
        plain
            .request
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
    })
}

/// The request hyper's server reads from `bytes`: method, target, fields
/// and body; `None` if it serves none.
fn hyper_reads(bytes: &[u8]) -> Option<(Method, String, HeaderMap, Bytes)> {
    use tokio::io::AsyncWriteExt;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let service = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            let tx = tx.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.map(|b| b.to_bytes());
                let _ = tx.send((parts, body));
                Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
            }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(server), service);
        let serving = tokio::spawn(conn);
        // Not shut down: hyper drops a request whose client has gone.
        client.write_all(bytes).await.unwrap();
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), rx.recv()).await;
        serving.abort();
        let (parts, body) = got.ok()??;
        Some((
            parts.method,
            parts.uri.to_string(),
            parts.headers,
            body.ok()?,
        ))
    })
}

proptest! {
    /// Any bytes in any pieces: no panic; a request taken is exactly its
    /// head and `Content-Length` body, the rest left in place.
    #[test]
    fn any_bytes_are_safe(bytes in head_like(), cuts in proptest::collection::vec(any::<usize>(), 0..4)) {
        let (parsed, rest) = fed(&bytes, &cuts);
        if let Parsed::Plain(plain) = parsed {
            let body = body_bytes(plain);
            prop_assert!(bytes.ends_with(&rest));
            let taken = bytes.len() - rest.len();
            prop_assert!(taken >= body.len());
            prop_assert_eq!(&bytes[taken - body.len()..taken], &body[..]);
        }
    }

    /// A well-formed request reads the same however it is split, and the
    /// bytes after it stay for the next one.
    #[test]
    fn valid_requests_read_whole(
        (method, target, fields, body) in valid_request(),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let mut bytes = wire(&method, &target, &fields, &body);
        bytes.extend_from_slice(b"GET /next");
        let (parsed, rest) = fed(&bytes, &cuts);
        // Cut before the whole body arrived, a request is hyper's to stream.
        let Parsed::Plain(plain) = parsed else {
            prop_assert!(matches!(parsed, Parsed::Rare) && !body.is_empty(), "{:?}", parsed);
            return Ok(());
        };
        let req = &plain.request;
        prop_assert_eq!(req.method().as_str(), method.as_str());
        prop_assert_eq!(req.uri().to_string(), target);
        for (name, value) in &fields {
            prop_assert!(req.headers().get_all(name.as_str()).iter().any(|v| v == value.as_str()));
        }
        // What arrived after the request stays for the next one.
        prop_assert!(b"GET /next".starts_with(&rest), "{:?}", rest);
        prop_assert_eq!(&body_bytes(plain)[..], &body[..]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever the codec takes, hyper's server reads the same way: same
    /// method, target, fields and body. The bytes are a well-formed
    /// request with head-like bytes spliced in, so many are still taken.
    #[test]
    fn what_the_codec_takes_hyper_reads_the_same(
        (method, target, fields, body) in valid_request(),
        at in any::<usize>(),
        splice in proptest::collection::vec(head_like(), 1..2),
    ) {
        let mut bytes = wire(&method, &target, &fields, &body);
        let at = at % (bytes.len() + 1);
        let splice: Vec<u8> = splice.concat().into_iter().take(8).collect();
        bytes.splice(at..at, splice);
        let mut buf = BytesMut::from(&bytes[..]);
        let Parsed::Plain(plain) = parse(&mut buf, LIMITS) else {
            return Ok(());
        };
        let (method, target, headers) = (
            plain.request.method().clone(),
            plain.request.uri().to_string(),
            plain.request.headers().clone(),
        );
        let body = body_bytes(plain);
        let theirs = hyper_reads(&bytes);
        prop_assert_eq!(theirs, Some((method, target, headers, body)));
    }

    /// Well-formed requests too (random bytes rarely make one).
    #[test]
    fn valid_requests_read_as_hyper_reads_them((method, target, fields, body) in valid_request()) {
        let bytes = wire(&method, &target, &fields, &body);
        let mut buf = BytesMut::from(&bytes[..]);
        let Parsed::Plain(plain) = parse(&mut buf, LIMITS) else {
            prop_assert!(false, "not taken: {:?}", String::from_utf8_lossy(&bytes));
            return Ok(());
        };
        let (m, t, h) = (
            plain.request.method().clone(),
            plain.request.uri().to_string(),
            plain.request.headers().clone(),
        );
        let ours = Some((m, t, h, body_bytes(plain)));
        prop_assert_eq!(hyper_reads(&bytes), ours);
    }
}
