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
        hex(&span.trace_id().to_bytes(), &mut parent[3..35]);
        parent[35] = b'-';
        hex(&span.span_id().to_bytes(), &mut parent[36..52]);
        parent[52] = b'-';
        hex(&[span.trace_flags().to_u8() & 1], &mut parent[53..55]);
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
pub(crate) static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
pub(crate) static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// Writes `bytes` as lowercase hex into `out` (twice as long): one table
/// load per byte (this runs for every proxied request).
#[inline]
fn hex(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair.copy_from_slice(&HEX[usize::from(*b)]);
    }
}

/// The two lowercase hex digits of every byte.
const HEX: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut table = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = [DIGITS[i >> 4], DIGITS[i & 0x0f]];
        i += 1;
    }
    table
};
