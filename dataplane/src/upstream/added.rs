//! The trace context added to an upstream request as it is written.
//!
//! It differs on every request: inserting it into the request's header
//! map costs a header value's allocation, its validation and the map's
//! insert and growth each time. The HTTP/1.1 client writes the
//! [`Added`] fields straight into the request head instead, formatting
//! the ids there; the clients that write from the header map get them
//! inserted first ([`add_fields`]).

use http::HeaderMap;
use tollgate_telemetry::TraceLine;

/// The W3C trace context fields to write, replacing the request's own
/// `traceparent` and `tracestate` (a line without a trace state removes
/// the client's: it spoke of another parent); `None` adds nothing.
pub type Added<'a> = Option<&'a TraceLine>;

/// Inserts `added` into `headers`, replacing fields of the same names.
pub fn add_fields(headers: &mut HeaderMap, added: Added<'_>) {
    if let Some(line) = added {
        line.insert_into(headers);
    }
}
