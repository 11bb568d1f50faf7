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

/// Field names and their values, each replacing the request's fields of
/// that name; an empty value only removes them (an empty `tracestate`
/// says what an absent one says). The names are `HeaderName`s so that
/// comparing one with a standard field's name is a tag comparison.
pub type Added<'a> = &'a [(&'a HeaderName, &'a [u8])];

/// Inserts `added` into `headers`, replacing fields of the same names;
/// an empty value removes them. A value that is not a valid field value
/// is skipped.
pub fn add_fields(headers: &mut HeaderMap, added: Added<'_>) {
    for (name, value) in added {
        if value.is_empty() {
            headers.remove(*name);
        } else if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.insert(*name, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Added fields replace the request's own, an empty one removes them,
    /// and invalid values are skipped.
    #[test]
    fn added_fields_replace_and_skip_invalid() {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_static("stale"));
        headers.append("traceparent", HeaderValue::from_static("stale-2"));
        headers.insert("tracestate", HeaderValue::from_static("stale=1"));
        headers.insert("x-kept", HeaderValue::from_static("1"));
        let (parent, state, kept) = (
            HeaderName::from_static("traceparent"),
            HeaderName::from_static("tracestate"),
            HeaderName::from_static("x-kept"),
        );
        add_fields(
            &mut headers,
            &[
                (&parent, b"00-fresh"),
                (&kept, b"a=1\r\nx: y"),
                (&state, b""),
            ],
        );
        let values: Vec<_> = headers.get_all("traceparent").iter().collect();
        assert_eq!(values, ["00-fresh"]);
        assert_eq!(headers["x-kept"], "1");
        assert_eq!(headers.len(), 2);
    }
}
