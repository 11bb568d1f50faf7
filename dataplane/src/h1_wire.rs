//! Byte-level pieces of HTTP/1.1 that both of Tollgate's own codecs use:
//! the upstream client (`upstream/h1`) and the downstream server
//! (`server/codec`).
//!
//! Kept in one place so both sides read `Content-Length`, `Connection` and
//! `Transfer-Encoding` by the same rules (hyper's, `proto/h1/headers.rs`)
//! and write numbers the same cheap way, without `fmt`.

use bytes::{BufMut, BytesMut};

/// Appends `n` in decimal without going through `fmt`.
pub(crate) fn put_decimal(dst: &mut BytesMut, n: u64) {
    dst.put_slice(decimal(n, &mut [0; 20]));
}

/// The decimal digits of `n`, without leading zeros, written at the end
/// of `digits` (room for any `u64`).
pub(crate) fn decimal(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &digits[at..]
}

/// Appends a chunk size line's hex digits.
pub(crate) fn put_hex(dst: &mut BytesMut, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for shift in (0..digits).rev() {
        dst.put_u8(b"0123456789abcdef"[(n >> (shift * 4)) & 0xf]);
    }
}

/// Where a field lies in the head it was parsed from: name start and end,
/// value start and end.
pub(crate) type Span = [u32; 4];

/// Records where each of `fields`, parsed by `httparse` from `head`, lies
/// in it, so the head can be frozen and the fields taken as slices of it.
pub(crate) fn record_spans(head: &[u8], fields: &[httparse::Header<'_>], spans: &mut [Span]) {
    let start = head.as_ptr() as usize;
    let offset = |s: &[u8]| (s.as_ptr() as usize - start) as u32;
    for (span, field) in spans.iter_mut().zip(fields) {
        let name = offset(field.name.as_bytes());
        let value = offset(field.value);
        *span = [
            name,
            name + field.name.len() as u32,
            value,
            value + field.value.len() as u32,
        ];
    }
}

/// What the `Content-Length` values seen so far say.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Length {
    /// None yet.
    #[default]
    Absent,
    /// All agree on this length.
    One(u64),
    /// One is not a number, or two differ.
    Invalid,
}

impl Length {
    /// Takes in one field value: digits only, commas between copies.
    pub(crate) fn add(&mut self, value: &[u8]) {
        for item in value.split(|&b| b == b',') {
            let item = item.trim_ascii();
            if item.is_empty() || item.len() > 19 || !item.iter().all(u8::is_ascii_digit) {
                *self = Length::Invalid;
                return;
            }
            let n = item.iter().fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
            *self = match *self {
                Length::Absent => Length::One(n),
                Length::One(seen) if seen == n => Length::One(n),
                Length::One(_) | Length::Invalid => Length::Invalid,
            };
        }
    }
}

/// Whether the last transfer coding of `value` is `chunked`.
pub(crate) fn ends_chunked(value: &[u8]) -> bool {
    value
        .rsplit(|&b| b == b',')
        .next()
        .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"))
}

/// Whether the comma-separated `value` lists `token` (any case).
pub(crate) fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|item| item.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether `value` holds a control character other than tab.
///
/// Runs over every header value of every request, so eight bytes at a
/// time: the classic "has a byte less than n" test flags a word in which
/// some byte is below 0x20 (it may also flag other bytes of such a word,
/// never a word without one). The flags of all words are gathered without
/// a branch, the last partial word tested as the overlapping final eight
/// bytes, and only a value with a flag (a tab, most likely) is looked at
/// byte by byte.
#[inline]
pub(crate) fn has_control(value: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const BELOW: u64 = 0x20 * ONES;
    let is_control = |b: &u8| *b < 0x20 && *b != b'\t';
    let Some(last) = value.len().checked_sub(8) else {
        return value.iter().any(is_control);
    };
    let below = |word: &[u8]| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let w = u64::from_ne_bytes(bytes);
        w.wrapping_sub(BELOW) & !w & HIGHS
    };
    let flags = value
        .chunks_exact(8)
        .fold(below(&value[last..]), |flags, word| flags | below(word));
    flags != 0 && value.iter().any(is_control)
}
