//! The W3C trace context of an upstream request as its two header
//! fields, made once per attempt without a `Context`, string formatting or
//! a header map: the HTTP/1.1 client writes them straight into the request
//! head (see `Propagation::upstream_line`).
//!
//! What travels with the request is the span's ids ([`TraceIds`], 25
//! bytes), not the field's 55: the digits are made where they are
//! written, so nothing formats them twice or moves them about.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceId, TraceState};

/// What a `traceparent` field says: the trace, the span, and whether it is
/// sampled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace.
    pub trace_id: TraceId,
    /// The span that is the upstream request's parent.
    pub span_id: SpanId,
    /// Whether the trace is sampled (the field's flags).
    pub sampled: bool,
}

impl TraceIds {
    /// The ids of `span`.
    pub fn of(span: &SpanContext) -> TraceIds {
        TraceIds {
            trace_id: span.trace_id(),
            span_id: span.span_id(),
            sampled: span.is_sampled(),
        }
    }

    /// Whether both ids are valid (non-zero), as W3C requires.
    pub fn is_valid(&self) -> bool {
        self.trace_id != TraceId::INVALID && self.span_id != SpanId::INVALID
    }

    /// The `traceparent` value: version `00`, the ids in lowercase hex,
    /// the flags.
    #[inline]
    pub fn traceparent(&self) -> [u8; 55] {
        let mut parent = [0u8; 55];
        parent[..3].copy_from_slice(b"00-");
        let trace = u128::from_be_bytes(self.trace_id.to_bytes());
        parent[3..19].copy_from_slice(&hex16((trace >> 64) as u64));
        parent[19..35].copy_from_slice(&hex16(trace as u64));
        parent[35] = b'-';
        parent[36..52].copy_from_slice(&hex16(u64::from_be_bytes(self.span_id.to_bytes())));
        parent[52] = b'-';
        parent[53..55].copy_from_slice(if self.sampled { b"01" } else { b"00" });
        parent
    }

    /// The whole `traceparent` field of an HTTP/1.1 head, name and line
    /// end included, for a writer to append at once.
    #[inline]
    pub fn field_line(&self) -> [u8; FIELD_LINE] {
        let mut line = [0u8; FIELD_LINE];
        line[..13].copy_from_slice(b"traceparent: ");
        line[13..68].copy_from_slice(&self.traceparent());
        line[68..].copy_from_slice(b"\r\n");
        line
    }
}

/// `tracestate` as a header value (none when empty). Out of line: few
/// clients send one, and the formatting would otherwise sit in the path
/// every proxied request takes.
#[cold]
#[inline(never)]
fn state_value(state: &TraceState) -> Option<HeaderValue> {
    Some(state.header())
        .filter(|s| !s.is_empty())
        .and_then(|s| HeaderValue::from_str(&s).ok())
}

/// The length of [`TraceIds::field_line`]: `traceparent: `, the 55-byte
/// value, CRLF.
const FIELD_LINE: usize = 13 + 55 + 2;

/// A span's W3C trace context as the header fields of an upstream
/// request: its ids (`traceparent`), and `tracestate` when the trace
/// carries one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceLine {
    ids: TraceIds,
    state: Option<HeaderValue>,
}

impl TraceLine {
    /// The fields for the span of `ids` in a trace whose vendor state is
    /// `state`; none for invalid ids.
    pub fn from_ids(ids: TraceIds, state: &TraceState) -> Option<TraceLine> {
        if !ids.is_valid() {
            return None;
        }
        // An empty trace state allocates nothing; test it before
        // formatting.
        let state = if *state == TraceState::NONE {
            None
        } else {
            state_value(state)
        };
        Some(TraceLine { ids, state })
    }

    /// The span's ids, for `traceparent` ([`TraceIds::traceparent`]).
    pub fn ids(&self) -> &TraceIds {
        &self.ids
    }

    /// The `tracestate` value, when the trace carries one. Made from a
    /// `HeaderValue`, so it holds no line break.
    pub fn state(&self) -> Option<&[u8]> {
        self.state.as_ref().map(HeaderValue::as_bytes)
    }

    /// Whether `name` is one of the fields this writes (a writer of
    /// request heads drops the request's own: the line replaces them,
    /// and a `tracestate` without the line's would speak of another
    /// parent).
    #[inline]
    pub fn replaces(name: &HeaderName) -> bool {
        // A length test first: most fields end there.
        let name = name.as_str();
        match name.len() {
            11 => name == TRACEPARENT.as_str(),
            10 => name == TRACESTATE.as_str(),
            _ => false,
        }
    }

    /// Inserts the fields into `headers`, replacing any of the same names.
    pub fn insert_into(&self, headers: &mut HeaderMap) {
        // The 55 bytes are hex digits and dashes: always a valid value.
        if let Ok(value) = HeaderValue::from_bytes(&self.ids.traceparent()) {
            headers.insert(TRACEPARENT.clone(), value);
        }
        match &self.state {
            Some(state) => headers.insert(TRACESTATE.clone(), state.clone()),
            None => headers.remove(&TRACESTATE),
        };
    }
}

// Statics, not consts: one `HeaderName` each, not one built at every use.
/// The W3C trace context's parent field.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// The W3C trace context's vendor state field.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");

/// The 16 lowercase hex digits of `v`, most significant first, computed
/// all at once in a 128-bit word: each nibble spread into a byte of its
/// own, then every byte turned into its digit (this runs three times for
/// every proxied request: a digit-by-digit table loop cost about 150
/// instructions per line).
///
/// The word is a `u128`, not two `u64` halves, because the compiler
/// turned the halves into SSE code whose ten mask constants sat on as
/// many read-only data lines, each a data-cache miss at every request;
/// a `u128`'s masks are immediates in the instructions. Never inlined:
/// one copy is a few instruction-cache lines where three were a dozen,
/// which a request's path (larger than the cache) pays for at every
/// request.
#[inline(never)]
fn hex16(v: u64) -> [u8; 16] {
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    let mut x = u128::from(v);
    x = ((x & 0xffff_ffff_0000_0000) << 32) | (x & 0xffff_ffff);
    x = ((x & 0x0000_0000_ffff_0000_0000_0000_ffff_0000) << 16)
        | (x & 0x0000_0000_0000_ffff_0000_0000_0000_ffff);
    x = ((x & 0x0000_ff00_0000_ff00_0000_ff00_0000_ff00) << 8)
        | (x & 0x0000_00ff_0000_00ff_0000_00ff_0000_00ff);
    x = ((x & 0x00f0_00f0_00f0_00f0_00f0_00f0_00f0_00f0) << 4)
        | (x & 0x000f_000f_000f_000f_000f_000f_000f_000f);
    // 1 in each byte whose nibble is 10 or more: it becomes a letter.
    let letters = ((x + 6 * ONES) >> 4) & ONES;
    (x + u128::from(b'0') * ONES + letters * u128::from(b'a' - b'0' - 10)).to_be_bytes()
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

#[cfg(test)]
mod line_tests {
    use super::*;
    use http::header::{CONTENT_TYPE, USER_AGENT};

    /// The writer drops exactly the two trace fields, whatever their
    /// neighbours' lengths.
    #[test]
    fn replaces_only_the_trace_fields() {
        assert!(TraceLine::replaces(&TRACEPARENT));
        assert!(TraceLine::replaces(&TRACESTATE));
        for other in ["user-agent", "x-trace-id", "traceparents", "baggage"] {
            let name = HeaderName::from_bytes(other.as_bytes()).expect("a valid name");
            assert!(!TraceLine::replaces(&name), "{other}");
        }
        assert!(!TraceLine::replaces(&USER_AGENT));
        assert!(!TraceLine::replaces(&CONTENT_TYPE));
    }

    /// `traceparent` is version, ids and flags; invalid ids give no line.
    #[test]
    fn traceparent_of_ids() {
        let ids = TraceIds {
            trace_id: TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            span_id: SpanId::from(0x00f0_67aa_0ba9_02b7),
            sampled: false,
        };
        assert_eq!(
            &ids.traceparent()[..],
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
        assert_eq!(
            &ids.field_line()[..],
            b"traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00\r\n"
        );
        let invalid = TraceIds {
            span_id: SpanId::INVALID,
            ..ids
        };
        assert!(TraceLine::from_ids(invalid, &TraceState::NONE).is_none());
        let line = TraceLine::from_ids(ids, &TraceState::NONE).expect("valid ids");
        assert_eq!(line.state(), None);
        let mut headers = HeaderMap::new();
        headers.insert(TRACESTATE.clone(), HeaderValue::from_static("stale=1"));
        line.insert_into(&mut headers);
        assert_eq!(headers.len(), 1);
        assert_eq!(
            headers[&TRACEPARENT],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
        );
    }
}
