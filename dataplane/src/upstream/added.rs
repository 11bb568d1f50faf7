//! Header fields added to an upstream request as it is written.
//!
//! Some fields differ on every request (the trace context): inserting
//! them into the request's header map costs a header value's allocation,
//! its validation and the map's insert and growth each time. The HTTP/1.1
//! client writes [`Added`] fields straight into the request head instead;
//! the clients that write from the header map get them inserted first
//! ([`add_fields`]).

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// Lowercase field names and their values. The request's own headers
/// must not hold fields of these names (the caller removes them): the
/// HTTP/1.1 client writes the added fields after the request's own
/// without looking for them, so a request pays nothing per field.
pub type Added<'a> = &'a [(&'static str, &'a [u8])];

/// Inserts `added` into `headers`, replacing fields of the same names. A
/// name or value that is not a valid field is skipped.
pub fn add_fields(headers: &mut HeaderMap, added: Added<'_>) {
    for (name, value) in added {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value),
        ) {
            headers.insert(name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Added fields replace the request's own and skip invalid ones.
    #[test]
    fn added_fields_replace_and_skip_invalid() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("stale"));
        headers.append("traceparent", HeaderValue::from_static("stale-2"));
        add_fields(
            &mut headers,
            &[
                ("traceparent", b"00-fresh"),
                ("bad name", b"x"),
                ("tracestate", b"a=1\r\nx: y"),
            ],
        );
        let values: Vec<_> = headers.get_all("traceparent").iter().collect();
        assert_eq!(values, ["00-fresh"]);
        assert_eq!(headers.len(), 1);
    }
}
