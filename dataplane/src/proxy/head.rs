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
        Some((authority, header)) => {
            let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
            let header = match header {
                Some(header) => header,
                None => HeaderValue::from_str(authority.as_str())
                    .map_err(|_| ProxyError::BadRequest("invalid host".into()))?,
            };
            (host, Some(header))
        }
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

/// The authority the request is for: the request target's (absolute-form or
/// HTTP/2 `:authority`), which overrides `Host` (RFC 9112 §3.2.2), else the
/// single `Host` header — returned too, so it is forwarded without a copy.
fn authority(parts: Head<'_>) -> Result<Option<(Authority, Option<HeaderValue>)>, ProxyError> {
    if let Some(authority) = parts.uri.authority() {
        if authority.as_str().contains('@') {
            return Err(ProxyError::BadRequest("userinfo in request target".into()));
        }
        return Ok(Some((authority.clone(), None)));
    }
    let mut hosts = parts.headers.get_all(HOST).iter();
    match (hosts.next(), hosts.next()) {
        (Some(_), Some(_)) => Err(ProxyError::BadRequest("several Host headers".into())),
        (Some(value), None) => {
            let text = value
                .to_str()
                .map_err(|_| ProxyError::BadRequest("invalid Host header".into()))?;
            if text.contains('@') || text.is_empty() {
                return Err(ProxyError::BadRequest("invalid Host header".into()));
            }
            Authority::try_from(text)
                .map(|authority| Some((authority, Some(value.clone()))))
                .map_err(|_| ProxyError::BadRequest("invalid Host header".into()))
        }
        (None, _) if parts.version == Version::HTTP_11 => {
            Err(ProxyError::BadRequest("missing Host header".into()))
        }
        (None, _) => Ok(None),
    }
}
