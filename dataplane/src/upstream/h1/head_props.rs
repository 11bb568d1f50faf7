//! Property tests of the response-head parser: whatever bytes arrive, in
//! whatever pieces, it never panics, never reads past the head, and reads
//! a well-formed head the same however it was split. `make test` runs the
//! default 256 cases; `PROPTEST_CASES=100000 cargo nextest run -p
//! tollgate-dataplane head::props` runs a longer fuzzing session by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

/// Bytes drawn mostly from what heads are made of, so the parser gets
/// past its first checks often.
fn head_like() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => proptest::sample::select(&b"HTTP/1.01 2045\r\n:; \tabcxyz-Content-Length0chunkedTransfer-Encoding,close"[..]),
        1 => any::<u8>(),
    ];
    proptest::collection::vec(byte, 0..300)
}

/// A well-formed final response head: status, fields (with a
/// `Content-Length` of `length`), and the body bytes after it.
fn valid_head() -> impl Strategy<Value = (u16, Vec<(String, String)>, Vec<u8>)> {
    let status = prop_oneof![200u16..204, 205u16..304, 305u16..600];
    let field = ("x-[a-z]{1,8}", "[a-zA-Z0-9 ;=/,.-]{0,20}");
    let fields = proptest::collection::vec(field, 0..12);
    let body = proptest::collection::vec(any::<u8>(), 0..40);
    (status, fields, body).prop_map(|(status, fields, body)| {
        let fields = fields
            .into_iter()
            .map(|(n, v)| (n, v.trim().to_string()))
            .collect();
        (status, fields, body)
    })
}

fn wire(status: u16, fields: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} X\r\n");
    for (name, value) in fields {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Feeds `bytes` to the parser in pieces ending at `cuts`: the head once
/// it is complete, and what the buffer keeps after it.
fn fed(bytes: &[u8], cuts: &[usize]) -> (Result<Option<ResponseHead>, H1Error>, BytesMut) {
    let mut ends: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    ends.push(bytes.len());
    ends.sort_unstable();
    let mut buf = BytesMut::new();
    let mut at = 0;
    for end in ends {
        buf.extend_from_slice(&bytes[at..end]);
        at = end;
        match parse_response(&mut buf, &Method::GET) {
            Ok(None) => {}
            done => {
                buf.extend_from_slice(&bytes[at..]);
                return (done, buf);
            }
        }
    }
    (Ok(None), buf)
}

proptest! {
    /// Any bytes: no panic, and a head read is never longer than the input.
    #[test]
    fn any_bytes_are_answered_without_panic(
        bytes in head_like(),
        cuts in proptest::collection::vec(any::<usize>(), 0..4),
    ) {
        let (result, rest) = fed(&bytes, &cuts);
        if let Ok(Some(_)) = result {
            prop_assert!(rest.len() < bytes.len());
        }
    }

    /// A well-formed head split anywhere reads as written: status, every
    /// field, the length framing, keep-alive, and the body bytes
    /// left in the buffer.
    #[test]
    fn a_valid_head_reads_the_same_however_split(
        (status, fields, body) in valid_head(),
        cuts in proptest::collection::vec(any::<usize>(), 0..6),
    ) {
        let bytes = wire(status, &fields, &body);
        let (result, rest) = fed(&bytes, &cuts);
        let head = result.unwrap().expect("a complete head");
        prop_assert_eq!(head.response.status().as_u16(), status);
        prop_assert_eq!(head.body, BodyKind::Length(body.len() as u64));
        prop_assert!(head.keep_alive);
        let got: Vec<(String, String)> = head
            .response
            .headers()
            .iter()
            .filter(|(name, _)| *name != http::header::CONTENT_LENGTH)
            .map(|(n, v)| (n.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        // The map groups a repeated name's values: compare as multisets.
        let (mut got, mut want) = (got, fields.clone());
        got.sort();
        want.sort();
        prop_assert_eq!(got, want);
        prop_assert_eq!(&rest[..], &body[..]);
    }
}

proptest! {
    /// The word-at-a-time control-character test agrees with the plain
    /// byte-by-byte one on any bytes, at any length and offset.
    #[test]
    fn has_control_matches_the_bytewise_rule(
        bytes in proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(&b"\t\r\n\x00\x1f\x20\x7f\x80\x9f\xa0\xffa~"[..]),
                4 => 0x20u8..0x7f,
                1 => any::<u8>(),
            ],
            0..40,
        ),
        start in 0usize..8,
    ) {
        let value = bytes.get(start..).unwrap_or(&[]);
        let expected = value.iter().any(|&b| b < 0x20 && b != b'\t');
        prop_assert_eq!(has_control(value), expected);
    }
}
