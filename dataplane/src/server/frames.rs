//! The few HTTP/2 frames the h2c upgrade has to write itself (RFC 9113).
//!
//! After `101 Switching Protocols` the upgraded request is, by RFC 7540
//! §3.2, stream 1 of the new connection, but it arrived as HTTP/1.1. To let
//! hyper's HTTP/2 server answer it like any other stream, the upgrade
//! re-encodes it as a HEADERS frame (plus CONTINUATION and DATA frames as
//! needed) placed right after the client's preface and first SETTINGS.
//! Header fields use HPACK "literal without indexing, new name" with no
//! Huffman coding, so no HPACK table state is created or needed.

use bytes::{BufMut, Bytes, BytesMut};

/// The client connection preface.
pub(crate) const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header.
pub(crate) const FRAME_HEADER_LEN: usize = 9;
/// The SETTINGS frame type.
pub(crate) const TYPE_SETTINGS: u8 = 0x4;
/// Largest frame payload a peer must accept before SETTINGS say otherwise.
const MAX_FRAME: usize = 16_384;

const TYPE_DATA: u8 = 0x0;
const TYPE_HEADERS: u8 = 0x1;
const TYPE_CONTINUATION: u8 = 0x9;
const FLAG_END_STREAM: u8 = 0x1;
const FLAG_END_HEADERS: u8 = 0x4;

/// Encodes one request as frames of stream 1: HEADERS (+ CONTINUATION), then DATA.
///
/// `fields` are `(name, value)` pairs, pseudo-headers first, names lowercase.
pub(crate) fn request_frames<'a>(
    fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    body: &[u8],
) -> Bytes {
    let mut block = BytesMut::new();
    for (name, value) in fields {
        block.put_u8(0x00);
        put_string(&mut block, name);
        put_string(&mut block, value);
    }
    let mut out = BytesMut::with_capacity(block.len() + body.len() + 64);
    let mut chunks = block.chunks(MAX_FRAME).peekable();
    let mut kind = TYPE_HEADERS;
    let mut first_flags = if body.is_empty() { FLAG_END_STREAM } else { 0 };
    // A header block is never empty (it has at least `:method`), but encode
    // an empty HEADERS frame rather than none if it ever were.
    if chunks.peek().is_none() {
        put_frame(&mut out, kind, first_flags | FLAG_END_HEADERS, &[]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        let flags = first_flags | if last { FLAG_END_HEADERS } else { 0 };
        put_frame(&mut out, kind, flags, chunk);
        kind = TYPE_CONTINUATION;
        first_flags = 0;
    }
    let mut data = body.chunks(MAX_FRAME).peekable();
    while let Some(chunk) = data.next() {
        let flags = if data.peek().is_none() {
            FLAG_END_STREAM
        } else {
            0
        };
        put_frame(&mut out, TYPE_DATA, flags, chunk);
    }
    out.freeze()
}

/// Reads a frame header: payload length, type and stream id.
pub(crate) fn parse_frame_header(header: &[u8]) -> Option<(usize, u8, u32)> {
    let h: &[u8; FRAME_HEADER_LEN] = header.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
    let len = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
    let stream = u32::from_be_bytes([h[5], h[6], h[7], h[8]]) & 0x7fff_ffff;
    Some((len, h[3], stream))
}

fn put_frame(out: &mut BytesMut, kind: u8, flags: u8, payload: &[u8]) {
    let len = payload.len();
    // Payloads are cut at MAX_FRAME, so the length fits in 24 bits.
    out.put_slice(&[(len >> 16) as u8, (len >> 8) as u8, len as u8]);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(1);
    out.put_slice(payload);
}

/// An HPACK string literal without Huffman coding (RFC 7541 §5.2).
fn put_string(out: &mut BytesMut, s: &[u8]) {
    put_int(out, 0x00, 7, s.len());
    out.put_slice(s);
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1).
fn put_int(out: &mut BytesMut, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.put_u8(first | value as u8);
        return;
    }
    out.put_u8(first | max as u8);
    value -= max;
    while value >= 128 {
        out.put_u8((value % 128 + 128) as u8);
        value /= 128;
    }
    out.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7541 C.1: integers below the prefix fit in it; larger ones continue
    /// in 7-bit groups.
    #[test]
    fn hpack_integers() {
        for (n, value, want) in [
            (5, 10, vec![0x0a]),
            (5, 1337, vec![0x1f, 0x9a, 0x0a]),
            (8, 42, vec![0x2a]),
            (7, 127, vec![0x7f, 0x00]),
        ] {
            let mut out = BytesMut::new();
            put_int(&mut out, 0, n, value);
            assert_eq!(out.to_vec(), want, "{value} with a {n}-bit prefix");
        }
    }

    /// A request without body is one HEADERS frame on stream 1 with
    /// END_STREAM and END_HEADERS.
    #[test]
    fn a_bodiless_request_is_one_headers_frame() {
        let frames = request_frames([(&b":method"[..], &b"GET"[..])], b"");
        let (len, kind, stream) = parse_frame_header(&frames).unwrap();
        assert_eq!((kind, stream, frames[4]), (TYPE_HEADERS, 1, 0x5));
        assert_eq!(&frames[9..], b"\x00\x07:method\x03GET");
        assert_eq!(len, frames.len() - FRAME_HEADER_LEN);
    }

    /// A large header block continues in CONTINUATION frames; the body
    /// follows in DATA frames and only the last one ends the stream.
    #[test]
    fn large_requests_are_split_into_frames() {
        let big = vec![b'a'; 20_000];
        let body = vec![b'b'; 20_000];
        let frames = request_frames([(&b"x-big"[..], &big[..])], &body);
        let mut seen = Vec::new();
        let mut rest = &frames[..];
        while !rest.is_empty() {
            let (len, kind, _) = parse_frame_header(rest).unwrap();
            seen.push((kind, rest[4], len));
            rest = &rest[FRAME_HEADER_LEN + len..];
        }
        let kinds: Vec<(u8, u8)> = seen.iter().map(|(k, f, _)| (*k, *f)).collect();
        assert_eq!(
            kinds,
            vec![
                (TYPE_HEADERS, 0),
                (TYPE_CONTINUATION, FLAG_END_HEADERS),
                (TYPE_DATA, 0),
                (TYPE_DATA, FLAG_END_STREAM),
            ]
        );
        assert!(seen.iter().all(|(_, _, len)| *len <= MAX_FRAME));
    }
}
