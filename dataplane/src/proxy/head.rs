//! Reading the downstream request head: which host it names and which path
//! routing sees.
//!
//! This is the first stage, before routing, because everything after it
//! trusts its output: the host comes from the absolute-form target or
//! `:authority` when present, else from exactly one valid `Host` header
//! (required on HTTP/1.1); the path is normalized once, so routing, filters
//! and the upstream all see the same path and `%2e%2e` or `//` cannot
//! reach a route the plain path would not.
//!
//! An `Upgrade: h2c` offer passes the same checks before it is accepted
//! ([`crate::proxy::head_is_valid`]): once upgraded, the request carries
//! `:authority` instead of `Host`, and HTTP/2 neither requires a host nor
//! has duplicate `Host` lines to refuse.

use crate::error::ProxyError;
use http::header::{HOST, HeaderValue};
use http::uri::Authority;
use http::{HeaderMap, Uri, Version};
use tollgate_http_core::normalize::normalize_path;

/// The parts of a request head the checks read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Head<'a> {
    /// The request target.
    pub(crate) uri: &'a Uri,
    /// The request headers.
    pub(crate) headers: &'a HeaderMap,
    /// The protocol version it arrived with.
    pub(crate) version: Version,
}

/// What the head names, checked.
#[derive(Debug)]
pub(crate) struct Target {
    /// Host for routing: lowercase, without port; empty when none was named.
    pub(crate) host: String,
    /// The authority as received, sent upstream as `Host`.
    pub(crate) host_header: Option<HeaderValue>,
    /// Normalized path.
    pub(crate) path: String,
    /// Query string as received.
    pub(crate) query: Option<String>,
}

/// Checks the head and extracts the [`Target`].
///
/// # Errors
///
/// [`ProxyError::BadRequest`] for a missing `Host` on HTTP/1.1, several or
/// invalid `Host` headers, or a path normalization refuses (such as `%2F`
/// when encoded slashes are not allowed).
pub(crate) fn read(parts: Head<'_>, allow_encoded_slashes: bool) -> Result<Target, ProxyError> {
    let (host, host_header) = match authority(parts)? {
        Some((host, header)) => (host, Some(header)),
        None => (String::new(), None),
    };
    let path = normalize_path(parts.uri.path(), allow_encoded_slashes)
        .map_err(|e| ProxyError::BadRequest(format!("invalid path: {e}")))?
        .into_owned();
    Ok(Target {
        host,
        host_header,
        path,
        query: parts.uri.query().map(str::to_string),
    })
}

/// The host routing matches: lowercase, without a trailing dot.
fn routing_host(host: &str) -> String {
    let bytes = host.as_bytes();
    let end = bytes.iter().rposition(|&b| b != b'.').map_or(0, |i| i + 1);
    host[..end].to_ascii_lowercase()
}

/// The authority the request is for, as the host routing matches and the
/// value sent upstream as `Host`: the request target's (absolute-form or
/// HTTP/2 `:authority`), which overrides `Host` (RFC 9112 §3.2.2), else the
/// single `Host` header, forwarded without a copy.
fn authority(parts: Head<'_>) -> Result<Option<(String, HeaderValue)>, ProxyError> {
    if let Some(authority) = parts.uri.authority() {
        if authority.as_str().contains('@') {
            return Err(ProxyError::BadRequest("userinfo in request target".into()));
        }
        let header = HeaderValue::from_str(authority.as_str())
            .map_err(|_| ProxyError::BadRequest("invalid host".into()))?;
        return Ok(Some((routing_host(authority.host()), header)));
    }
    let invalid = || ProxyError::BadRequest("invalid Host header".into());
    let mut hosts = parts.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(ProxyError::BadRequest("several Host headers".into())),
        (Some(value), None) => {
            let text = value.to_str().map_err(|_| invalid())?;
            // A plain host has neither `@` nor emptiness to refuse.
            let host = match plain_host(text) {
                Some(host) => routing_host(host),
                None if text.contains('@') || text.is_empty() => return Err(invalid()),
                None => routing_host(Authority::try_from(text).map_err(|_| invalid())?.host()),
            };
            Ok(Some((host, value.clone())))
        }
        (None, _) if parts.version == Version::HTTP_11 => {
            Err(ProxyError::BadRequest("missing Host header".into()))
        }
        (None, _) => Ok(None),
    }
}

/// The host of a `Host` value that is a plain name or IPv4 address with an
/// optional port (`[A-Za-z0-9.-]+(:[0-9]{1,5})?`), almost every request's:
/// such a value is a valid authority whose host is exactly that part, so
/// it needs no parse (which copies the value). Anything else is `None`,
/// for the full parse to judge.
///
/// One pass over the bytes: a `Host` value is a few bytes long, too short
/// for a `memchr` search to pay for its set-up.
fn plain_host(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let end = bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')))
        .unwrap_or(bytes.len());
    let port_ok = match bytes.get(end..) {
        Some([]) => true,
        Some([b':', port @ ..]) => {
            (1..=5).contains(&port.len()) && port.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    };
    (end > 0 && port_ok).then(|| &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever the fast path takes, the full parse takes too, with
        /// the same host.
        #[test]
        fn plain_hosts_parse_as_authorities(text in "[A-Za-z0-9.:\\-\\[\\]@%_]{0,24}") {
            if let Some(host) = plain_host(&text) {
                let authority = Authority::try_from(text.as_str());
                prop_assert!(authority.is_ok(), "{text:?}");
                prop_assert_eq!(authority.map(|a| a.host().to_string()).ok(), Some(host.to_string()));
            }
        }

        /// The byte scans say what the plainly written rules say.
        #[test]
        fn byte_scans_keep_the_rules(text in "[A-Za-z0-9.:\\-@%_\u{e9}]{0,24}") {
            let (host, port) = text.split_once(':').map_or((text.as_str(), None), |(h, p)| (h, Some(p)));
            let name = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
            let port_ok = port.is_none_or(|p| (1..=5).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
            let plain = (!host.is_empty() && host.bytes().all(name) && port_ok).then_some(host);
            prop_assert_eq!(plain_host(&text), plain);
            prop_assert_eq!(routing_host(&text), text.trim_end_matches('.').to_ascii_lowercase());
        }
    }

    #[test]
    fn plain_and_other_hosts() {
        assert_eq!(plain_host("Example.com:8080"), Some("Example.com"));
        assert_eq!(plain_host("127.0.0.1"), Some("127.0.0.1"));
        for other in [
            "", ":80", "a:", "a:123456", "a:8x", "[::1]:80", "a_b", "a:1:2",
        ] {
            assert_eq!(plain_host(other), None, "{other:?}");
        }
    }
}
