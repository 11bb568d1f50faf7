//! What an exchange reads from the request and the response: the details
//! copied for a sampled span or a log line, and the small conversions of
//! request values into labels and cache keys.

use crate::clock::Ticks;
use crate::telemetry::runtime::{RuntimeTelemetry, recorded_value};
use http::header::USER_AGENT;
use http::{HeaderMap, Version};
use opentelemetry::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// What is copied from the request when a span or log line needs it.
#[derive(Debug, Default)]
pub(super) struct Detail {
    pub(super) host: String,
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) user_agent: Option<String>,
    pub(super) request_headers: Vec<(usize, String)>,
    pub(super) response_headers: Vec<(usize, String)>,
    /// The bytes of a request body of undeclared length, counted as it
    /// goes upstream (`Exchange::count_request_body`).
    pub(super) counted_in: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl Detail {
    /// What span and log line record of `head`, under settings `t`, boxed.
    /// Out of line and cold: only sampled or logged requests copy it, and
    /// its code would otherwise sit in the path every request runs.
    #[cold]
    #[inline(never)]
    pub(super) fn boxed(head: &RequestHead<'_>, t: &RuntimeTelemetry) -> Box<Detail> {
        Box::new(Detail::new(head, t))
    }

    /// Copies the response `headers` the settings `t` record. Cold, as
    /// [`Detail::boxed`].
    #[cold]
    #[inline(never)]
    pub(super) fn record_response_headers(&mut self, t: &RuntimeTelemetry, headers: &HeaderMap) {
        self.response_headers = t
            .response_headers
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, recorded_value(n, headers)?)))
            .collect();
    }

    fn new(head: &RequestHead<'_>, t: &RuntimeTelemetry) -> Detail {
        let request_headers = t
            .request_headers
            .iter()
            .enumerate()
            .filter_map(|(i, n)| Some((i, recorded_value(n, head.headers)?)))
            .collect();
        Detail {
            host: head
                .host
                .map(str::to_string)
                .or_else(|| head.host_header.map(lossy))
                .unwrap_or_default(),
            path: head.path.to_string(),
            query: head.query.filter(|_| t.record_query).map(str::to_string),
            user_agent: head.headers.get(USER_AGENT).map(lossy),
            request_headers,
            response_headers: Vec::new(),
            counted_in: None,
        }
    }
}

/// The request as the pipeline has read it, lent to the exchange so it
/// copies only what a sampled span needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestHead<'a> {
    /// The authority of an absolute URI (HTTP/2, absolute-form).
    pub(crate) host: Option<&'a str>,
    /// The `Host` header, when there is no authority.
    pub(crate) host_header: Option<&'a http::HeaderValue>,
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
    pub(crate) headers: &'a HeaderMap,
}

/// The wall-clock time of `at`, a moment in the past: read only for what
/// is written out (a sampled span, a log line), so a request reads the
/// wall clock once at most instead of at every start. Both clocks are
/// read here, not the poll's cached moment (`crate::clock`), so the two
/// readings are taken together.
pub(super) fn wall_clock_at(at: Ticks) -> SystemTime {
    let now = SystemTime::now();
    now.checked_sub(Ticks::read().since(at)).unwrap_or(now)
}

/// A small number for an HTTP version, for cache keys.
pub(super) fn version_index(version: Version) -> u8 {
    match version {
        Version::HTTP_09 => 0,
        Version::HTTP_10 => 1,
        Version::HTTP_2 => 3,
        Version::HTTP_3 => 4,
        _ => 2,
    }
}

/// A string attribute value sharing `text`.
pub(super) fn shared_str(text: &Arc<str>) -> Value {
    Value::String(opentelemetry::StringValue::from(Arc::clone(text)))
}

/// `server.address` and `server.port` of a `Host` value: the name (an
/// IPv6 address without its brackets) and the port, when one is given.
pub(crate) fn split_host(host: &str) -> (&str, Option<u16>) {
    if let Some(rest) = host.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, port)) => (ip, port.strip_prefix(':').and_then(|p| p.parse().ok())),
            None => (host, None),
        };
    }
    match host.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (host, None),
        },
        _ => (host, None),
    }
}

pub(super) fn lossy(v: &http::HeaderValue) -> String {
    String::from_utf8_lossy(v.as_bytes()).into_owned()
}

/// The `error.type` of a 5xx the backend sent: its status code.
pub(super) fn status_label(status: u16) -> &'static str {
    match status {
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        505 => "505",
        507 => "507",
        508 => "508",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::split_host;

    /// `Host` splits into the semantic conventions' address and port.
    #[test]
    fn host_into_address_and_port() {
        assert_eq!(split_host("example.com"), ("example.com", None));
        assert_eq!(split_host("example.com:8080"), ("example.com", Some(8080)));
        assert_eq!(split_host("127.0.0.1:80"), ("127.0.0.1", Some(80)));
        assert_eq!(split_host("[::1]:443"), ("::1", Some(443)));
        assert_eq!(split_host("[::1]"), ("::1", None));
        assert_eq!(split_host("::1"), ("::1", None));
        assert_eq!(split_host("host:bad"), ("host:bad", None));
        assert_eq!(split_host(""), ("", None));
    }
}
