//! The W3C trace context of an upstream request as its two header
//! fields, made once per attempt without a `Context`, string formatting or
//! a header map: the HTTP/1.1 client writes them straight into the request
//! head (see `Propagation::take_for_upstream`).

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::trace::SpanContext;

/// A span's W3C trace context as the header fields of an upstream
/// request: `traceparent` as its 55 bytes, `tracestate` when the span
/// carries one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    parent: [u8; 55],
    state: Option<HeaderValue>,
}

impl TraceLine {
    /// The fields for `span`; none for an invalid span context.
    pub(crate) fn new(span: &SpanContext) -> Option<TraceLine> {
        if !span.is_valid() {
            return None;
        }
        let mut parent = [0u8; 55];
        parent[..3].copy_from_slice(b"00-");
        let trace = u128::from_be_bytes(span.trace_id().to_bytes());
        parent[3..19].copy_from_slice(&hex16((trace >> 64) as u64));
        parent[19..35].copy_from_slice(&hex16(trace as u64));
        parent[35] = b'-';
        parent[36..52].copy_from_slice(&hex16(u64::from_be_bytes(span.span_id().to_bytes())));
        parent[52] = b'-';
        parent[53..55].copy_from_slice(if span.trace_flags().is_sampled() {
            b"01"
        } else {
            b"00"
        });
        let state = span.trace_state();
        // An empty trace state allocates nothing; test it before
        // formatting.
        let state = (*state != opentelemetry::trace::TraceState::NONE)
            .then(|| state.header())
            .filter(|s| !s.is_empty())
            .and_then(|s| HeaderValue::from_str(&s).ok());
        Some(TraceLine { parent, state })
    }

    /// The fields as names and values, for a writer of request heads
    /// that replaces the request's fields of the same names:
    /// `traceparent`, then `tracestate`, empty when the span carries none
    /// (the client's is removed and nothing written).
    pub fn fields(&self) -> Fields<'_> {
        let state = self.state.as_ref().map_or(&[][..], HeaderValue::as_bytes);
        Fields {
            items: [(&TRACEPARENT, &self.parent[..]), (&TRACESTATE, state)],
        }
    }

    /// Inserts the fields into `headers`, replacing any of the same names.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        // The 55 bytes are hex digits and dashes: always a valid value.
        if let Ok(value) = HeaderValue::from_bytes(&self.parent) {
            headers.insert(TRACEPARENT.clone(), value);
        }
        match &self.state {
            Some(state) => headers.insert(TRACESTATE.clone(), state.clone()),
            None => headers.remove(&TRACESTATE),
        };
    }
}

/// [`TraceLine::fields`]: the `(name, value)` pairs.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    items: [(&'static HeaderName, &'a [u8]); 2],
}

impl<'a> Fields<'a> {
    /// The pairs, in the order they are written.
    pub fn as_slice(&self) -> &[(&'a HeaderName, &'a [u8])] {
        &self.items
    }
}

// Statics, not consts: `fields` hands out `'static` references to them.
/// The W3C trace context's parent field.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The W3C trace context's vendor state field.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The 16 lowercase hex digits of `v`, most significant first, computed
/// eight at a time in a word (this runs for every proxied request: a
/// digit-by-digit table loop cost about 150 instructions per line).
#[inline]
fn hex16(v: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&hex8((v >> 32) as u32));
    out[8..].copy_from_slice(&hex8(v as u32));
    out
}

/// The eight hex digits of `v`: each nibble spread into a byte of its
/// own, then every byte turned into its digit at once.
#[inline]
fn hex8(v: u32) -> [u8; 8] {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut x = u64::from(v);
    x = ((x & 0xffff_0000) << 16) | (x & 0xffff);
    x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // 1 in each byte whose nibble is 10 or more: it becomes a letter.
    let letters = ((x + 6 * ONES) >> 4) & ONES;
    (x + b'0' as u64 * ONES + letters * u64::from(b'a' - b'0' - 10)).to_be_bytes()
}

#[cfg(test)]
mod hex_tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The word-at-a-time digits are `format!`'s.
        #[test]
        fn hex16_is_lowercase_hex(v in any::<u64>()) {
            let expected = format!("{v:016x}");
            prop_assert_eq!(&hex16(v)[..], expected.as_bytes());
        }
    }

    #[test]
    fn hex16_edges() {
        for v in [0, u64::MAX, 0x0123_4567_89ab_cdef, 0xa0a0_0909_f0f0_1010] {
            assert_eq!(&hex16(v)[..], format!("{v:016x}").as_bytes());
        }
    }
}
