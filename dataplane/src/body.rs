//! The body types every layer of the data plane shares.
//!
//! A leaf: request and response bodies cross the server, the proxy, the
//! filters, error responses and the upstream clients as one boxed type, so
//! the type lives below all of them and imports nothing of the crate.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

/// The error type of bodies flowing through the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request and response bodies as the proxy streams them.
pub type ProxyBody = http_body_util::combinators::UnsyncBoxBody<Bytes, BoxError>;

/// A complete in-memory body as a [`ProxyBody`].
pub(crate) fn full(bytes: Bytes) -> ProxyBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// An empty body.
pub(crate) fn empty() -> ProxyBody {
    full(Bytes::new())
}
