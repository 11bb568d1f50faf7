//! What the request path needs to know of a request's header fields,
//! learned in one pass over them.
//!
//! The boundary check refuses what the parsers (hyper's, h2's, Tollgate's
//! own HTTP/1.1 codec) already refuse, once more, so that a parser change
//! can never let it through to an upstream.
//!
//! The boundary check (no CR, LF or NUL in a value, no ambiguous framing),
//! the body size telemetry records, whether the request is a gRPC call,
//! and whether the client sent a W3C trace context were each a hash
//! lookup of their own, some of them twice: five to seven per request,
//! about 50 instructions each, on a path of a few thousand. One walk over
//! the fields in order answers them all: a standard name compares by its
//! tag, a custom one by its length first.

use crate::h1_wire::has_control;
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, TRANSFER_ENCODING};
use tollgate_telemetry::{TRACEPARENT, TRACESTATE};

/// What one pass over a request's header fields found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct HeadFacts {
    /// Why the request must not reach an upstream, if it must not.
    pub(crate) refusal: Option<&'static str>,
    /// The body length the first `Content-Length` declares (`None` when
    /// absent or not a number): the request body size telemetry records.
    pub(crate) declared_length: Option<u64>,
    /// Whether the first `Content-Type` is gRPC's ([`crate::grpc::is_grpc_type`]).
    pub(crate) grpc: bool,
    /// Whether the client sent `traceparent` or `tracestate`.
    pub(crate) trace_context: bool,
}

impl HeadFacts {
    /// Reads `headers` once.
    pub(crate) fn read(headers: &HeaderMap) -> HeadFacts {
        let mut facts = HeadFacts::default();
        let (mut lengths, mut chunked_field, mut typed, mut split) = (0u32, false, false, false);
        for (name, value) in headers {
            split |= splits(value.as_bytes());
            if name == CONTENT_LENGTH {
                if lengths == 0 {
                    facts.declared_length = declared_length(value);
                }
                lengths += 1;
            } else if name == TRANSFER_ENCODING {
                chunked_field = true;
            } else if name == CONTENT_TYPE {
                if !typed {
                    facts.grpc = crate::grpc::is_grpc_type(value);
                }
                typed = true;
            } else if name == TRACEPARENT || name == TRACESTATE {
                facts.trace_context = true;
            }
        }
        // The same order of reasons as the checks had when each was a
        // lookup of its own.
        facts.refusal = if split {
            Some("CR, LF or NUL in a header value")
        } else if chunked_field && lengths > 0 {
            Some("both Content-Length and Transfer-Encoding")
        } else if lengths > 1 {
            Some("more than one Content-Length")
        } else {
            None
        };
        facts
    }
}

/// Whether `value` could split a request: CR, LF or NUL. The word-at-a-time
/// control-character test passes almost every value; only one holding a
/// control character (a tab, most likely) is looked at byte by byte.
#[inline]
fn splits(bytes: &[u8]) -> bool {
    has_control(bytes) && bytes.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

fn declared_length(value: &HeaderValue) -> Option<u64> {
    value.to_str().ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn facts(req: &Request<()>) -> HeadFacts {
        HeadFacts::read(req.headers())
    }

    /// Ambiguous framing and header values that could split a request are
    /// refused; ordinary requests pass.
    #[test]
    fn boundary_checks() {
        let ok = Request::get("/").header("x-a", "b\tc").body(()).unwrap();
        assert_eq!(facts(&ok).refusal, None);
        let both = Request::post("/")
            .header("content-length", "3")
            .header("transfer-encoding", "chunked")
            .body(())
            .unwrap();
        assert_eq!(
            facts(&both).refusal,
            Some("both Content-Length and Transfer-Encoding")
        );
        let twice = Request::post("/")
            .header("content-length", "3")
            .header("content-length", "3")
            .body(())
            .unwrap();
        assert_eq!(facts(&twice).refusal, Some("more than one Content-Length"));
    }

    /// CR, LF and NUL anywhere in a value are caught (the `http` crate's
    /// checked constructors refuse them, so the bytes are tested as a
    /// lenient parser would hand them over); tabs and other bytes pass.
    #[test]
    fn splitting_bytes() {
        let cases: [(&[u8], bool); 10] = [
            (b"a\rb", true),
            (b"a\nb", true),
            (b"a\0b", true),
            (b"0123456789abcdef\r\n", true),
            (b"\n", true),
            (b"", false),
            (b"a\tb", false),
            (b"\x01\x1f", false),
            (b"0123456789abcdef\xff", false),
            (b"\x7f", false),
        ];
        for (bytes, split) in cases {
            assert_eq!(splits(bytes), split, "{bytes:?}");
        }
    }

    /// The first `Content-Length` and `Content-Type` decide, and the trace
    /// context is noticed by either of its names, in any case.
    #[test]
    fn length_type_and_trace_context() {
        let req = Request::post("/svc/Method")
            .header("Content-Type", "application/grpc+proto")
            .header("content-length", "12")
            .header("TraceState", "a=1")
            .body(())
            .unwrap();
        let found = facts(&req);
        assert_eq!(
            found,
            HeadFacts {
                refusal: None,
                declared_length: Some(12),
                grpc: true,
                trace_context: true,
            }
        );
        let plain = Request::get("/")
            .header("content-type", "application/json")
            .header("content-length", "x")
            .header("x-traceparent", "no")
            .body(())
            .unwrap();
        assert_eq!(facts(&plain), HeadFacts::default());
        assert!(!HeadFacts::read(&http::HeaderMap::new()).grpc);
        let parent = Request::get("/")
            .header("traceparent", "00-0-0-00")
            .body(())
            .unwrap();
        assert!(facts(&parent).trace_context);
    }
}
