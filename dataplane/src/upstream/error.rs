//! Upstream errors, owned by the layer that raises them.

use crate::body::BoxError;
use thiserror::Error;

/// Why an upstream exchange failed before a response head arrived.
#[derive(Debug)]
pub enum UpstreamError {
    /// No connection could be made.
    Connect(BoxError),
    /// The connection failed or the upstream answered with invalid HTTP.
    Protocol(BoxError),
    /// The TCP connection opened but the TLS handshake failed.
    Tls(BoxError),
}

/// A snapshot endpoint whose address is not an IP address; rejects the
/// snapshot when its backends are built.
#[derive(Debug, Error)]
#[error("backend {backend}: endpoint address {address:?} is not an IP address")]
pub struct InvalidEndpoint {
    /// The backend's source name.
    pub backend: String,
    /// The address.
    pub address: String,
}
