//! gRPC on the request path: telling a gRPC call from other HTTP, the
//! gateway's own answers in gRPC's shape, and the client's `grpc-timeout`.
//!
//! A gRPC client reads no HTTP status and no body text: a call that fails
//! at the gateway must end in a `grpc-status`, or the client reports an
//! opaque protocol error ("unexpected HTTP status 404", "missing
//! trailers"). So for a gRPC call (`content-type: application/grpc*`) or a
//! request routed to a GRPCRoute rule, [`respond`] turns the answer made
//! by [`crate::error::respond`] into a *trailers-only* response: HTTP 200,
//! `content-type: application/grpc`, `grpc-status` and `grpc-message` in
//! the one HEADERS frame that ends the stream. `x-tollgate-error` stays,
//! so the gateway's answers are recognisable as for HTTP.
//!
//! Status codes follow the gRPC project's HTTP→gRPC mapping
//! (`doc/http-grpc-status-mapping.md`), except where the gateway knows
//! more than the HTTP status says: no route is `UNIMPLEMENTED` (the method
//! is not served here), a timeout is `DEADLINE_EXCEEDED`, and 429 is
//! `RESOURCE_EXHAUSTED` (a rate limit, not an outage).

use crate::body::{ProxyBody, empty};
use crate::error::{ErrorKind, ProxyError};
use http::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use std::time::Duration;

/// The status trailer (or trailers-only header) of every gRPC response.
pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The human-readable status message, percent-encoded.
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The client's deadline for the call.
pub const GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

const GRPC_CONTENT_TYPE: HeaderValue = HeaderValue::from_static("application/grpc");

/// gRPC status codes (`google.rpc.Code`) the gateway answers with.
pub mod code {
    /// The call failed for a reason with no better code.
    pub const UNKNOWN: u16 = 2;
    /// The deadline passed before the call completed.
    pub const DEADLINE_EXCEEDED: u16 = 4;
    /// The caller may not make this call.
    pub const PERMISSION_DENIED: u16 = 7;
    /// A quota or rate limit is used up.
    pub const RESOURCE_EXHAUSTED: u16 = 8;
    /// The method is not served.
    pub const UNIMPLEMENTED: u16 = 12;
    /// Something that should not fail did (a malformed request, a broken
    /// configuration).
    pub const INTERNAL: u16 = 13;
    /// The service cannot be reached now; retrying may help.
    pub const UNAVAILABLE: u16 = 14;
    /// The call carries no valid credentials.
    pub const UNAUTHENTICATED: u16 = 16;
}

/// Whether a `Content-Type` value is a gRPC call's (`application/grpc`,
/// with or without a `+proto`/`+json` suffix, and gRPC-Web's
/// `application/grpc-web*`, whose trailers-only answers have the same
/// shape). Requests are told by their first `Content-Type`, read in the
/// one pass over their fields (`crate::head_facts`).
pub fn is_grpc_type(value: &HeaderValue) -> bool {
    value.to_str().is_ok_and(|v| {
        let v = v.trim_start().as_bytes();
        v.len() >= 16 && v[..16].eq_ignore_ascii_case(b"application/grpc")
    })
}

/// The gRPC status code of the gateway's answer for `kind`.
pub fn code_for(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::Routing => code::UNIMPLEMENTED,
        ErrorKind::UpstreamTimeout | ErrorKind::RequestBodyTimeout => code::DEADLINE_EXCEEDED,
        ErrorKind::Misdirected => code::UNAVAILABLE,
        other => code_for_status(other.status()),
    }
}

/// The gRPC status code for an HTTP status the gateway answers with, by
/// the gRPC project's mapping (429 aside: see the module docs).
pub fn code_for_status(status: StatusCode) -> u16 {
    match status.as_u16() {
        400 | 500 => code::INTERNAL,
        401 => code::UNAUTHENTICATED,
        403 => code::PERMISSION_DENIED,
        404 => code::UNIMPLEMENTED,
        408 | 504 => code::DEADLINE_EXCEEDED,
        429 => code::RESOURCE_EXHAUSTED,
        502 | 503 => code::UNAVAILABLE,
        _ => code::UNKNOWN,
    }
}

/// [`crate::error::respond`] for a gRPC call: the same log line, the same
/// `x-tollgate-error`, as a trailers-only gRPC response.
pub fn respond(error: &ProxyError, source: &str) -> Response<ProxyBody> {
    let http = crate::error::respond(error, source);
    let mut response = Response::new(empty());
    // Everything the HTTP answer carries (`x-tollgate-error`, a
    // `WWW-Authenticate` challenge, `Retry-After`, rate-limit headers)
    // but its body's framing.
    let parts = http.into_parts().0;
    let mut headers = parts.headers;
    headers.remove(http::header::CONTENT_LENGTH);
    headers.insert(CONTENT_TYPE, GRPC_CONTENT_TYPE);
    headers.insert(GRPC_STATUS, HeaderValue::from(code_for(error.kind())));
    // The same words as the HTTP body: a refusal's reason stays in logs.
    if let Ok(message) = HeaderValue::from_str(&encode_message(&error.public_message())) {
        headers.insert(GRPC_MESSAGE, message);
    }
    *response.headers_mut() = headers;
    *response.extensions_mut() = parts.extensions;
    response
}

/// What `grpc-message` may carry unescaped: printable ASCII but `%`
/// (gRPC over HTTP/2, "Responses").
const MESSAGE_ESCAPES: &AsciiSet = &CONTROLS.add(b'%');

fn encode_message(message: &str) -> String {
    utf8_percent_encode(message, MESSAGE_ESCAPES).to_string()
}

/// The client's `grpc-timeout` (`1*8DIGIT` and a unit of `H`, `M`, `S`,
/// `m`, `u` or `n`); `None` when absent or malformed, since a deadline the
/// gateway cannot read is one it must not invent.
pub fn timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(GRPC_TIMEOUT)?.to_str().ok()?;
    let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// The request timeout of a call: the rule's `request_ms` or the client's
/// `grpc-timeout`, whichever is shorter (a sub-millisecond deadline counts
/// as one millisecond, so it is still a deadline).
pub fn request_ms(rule_ms: Option<u64>, grpc_timeout: Option<Duration>) -> Option<u64> {
    let client = grpc_timeout.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1));
    match (rule_ms, client) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::error::ERROR_HEADER;
    use http_body::Body;

    /// Each row: the gateway's failure and the gRPC status it becomes.
    #[test]
    fn each_failure_has_its_grpc_status() {
        let io = || -> crate::body::BoxError { Box::new(std::io::Error::other("x")) };
        let rows: Vec<(ProxyError, u16)> = vec![
            (
                ProxyError::NoRoute {
                    host: "h".into(),
                    path: "/a.B/C".into(),
                },
                code::UNIMPLEMENTED,
            ),
            (ProxyError::NoEndpoints("b".into()), code::UNAVAILABLE),
            (
                ProxyError::UpstreamConnect {
                    endpoint: "e".into(),
                    source: io(),
                },
                code::UNAVAILABLE,
            ),
            (
                ProxyError::UpstreamTimeout {
                    endpoint: "e".into(),
                    after_ms: 5,
                },
                code::DEADLINE_EXCEEDED,
            ),
            (
                ProxyError::UpstreamProtocol {
                    endpoint: "e".into(),
                    source: io(),
                },
                code::UNAVAILABLE,
            ),
            (ProxyError::NoBackend("x".into()), code::INTERNAL),
            (ProxyError::BadRequest("x".into()), code::INTERNAL),
            (ProxyError::RequestBodyTimeout, code::DEADLINE_EXCEEDED),
        ];
        for (error, want) in rows {
            let response = respond(&error, "test");
            assert_eq!(response.status(), StatusCode::OK, "{error}");
            assert_eq!(response.headers()[GRPC_STATUS], want.to_string(), "{error}");
            assert_eq!(response.headers()[CONTENT_TYPE], "application/grpc");
            assert_eq!(response.headers()[ERROR_HEADER], error.kind().label());
            assert!(response.body().is_end_stream(), "trailers-only");
        }
    }

    /// Auth and rate-limit answers map by their HTTP status.
    #[test]
    fn statuses_map_as_grpc_documents() {
        let rows = [
            (401, code::UNAUTHENTICATED),
            (403, code::PERMISSION_DENIED),
            (429, code::RESOURCE_EXHAUSTED),
            (404, code::UNIMPLEMENTED),
            (503, code::UNAVAILABLE),
            (418, code::UNKNOWN),
        ];
        for (status, want) in rows {
            assert_eq!(code_for_status(StatusCode::from_u16(status).unwrap()), want);
        }
    }

    /// The message is percent-encoded where gRPC asks.
    #[test]
    fn message_is_percent_encoded() {
        assert_eq!(encode_message("100% über\n"), "100%25 %C3%BCber%0A");
    }

    #[test]
    fn content_types() {
        let h = |v: &str| HeaderValue::from_str(v).unwrap();
        assert!(is_grpc_type(&h("application/grpc")));
        assert!(is_grpc_type(&h("application/grpc+proto")));
        assert!(is_grpc_type(&h("Application/GRPC-web")));
        assert!(!is_grpc_type(&h("application/json")));
    }

    /// Every unit parses; malformed values are ignored; the shorter of the
    /// rule's timeout and the client's wins.
    #[test]
    fn grpc_timeouts() {
        let t = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(GRPC_TIMEOUT, HeaderValue::from_str(v).unwrap());
            timeout(&m)
        };
        assert_eq!(t("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(t("3M"), Some(Duration::from_secs(180)));
        assert_eq!(t("1S"), Some(Duration::from_secs(1)));
        assert_eq!(t("250m"), Some(Duration::from_millis(250)));
        assert_eq!(t("7u"), Some(Duration::from_micros(7)));
        assert_eq!(t("9n"), Some(Duration::from_nanos(9)));
        for bad in ["", "S", "123456789S", "1s", "-1S", "1.5S"] {
            assert_eq!(t(bad), None, "{bad}");
        }
        assert_eq!(request_ms(Some(500), t("100m")), Some(100));
        assert_eq!(request_ms(Some(50), t("100m")), Some(50));
        assert_eq!(request_ms(None, t("7u")), Some(1));
        assert_eq!(request_ms(Some(5), None), Some(5));
        assert_eq!(request_ms(None, None), None);
    }
}
