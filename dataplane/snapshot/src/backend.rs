//! Backends: a Service port resolved to its ready endpoints.

use crate::backend_tls::BackendTls;
use serde::{Deserialize, Serialize};

/// One upstream cluster: a Service port and the endpoints behind it.
///
/// A backend with no endpoints is kept (not dropped) so that requests routed
/// to it get 503, as the Gateway API asks for a Service with no ready
/// endpoints.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backend {
    /// Source name, `service/<ns>/<name>/port/<port>`.
    pub name: String,
    /// Wire protocol spoken to the endpoints.
    #[serde(default)]
    pub protocol: BackendProtocol,
    /// Ready endpoints, in a stable order.
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
    /// TLS to the endpoints, from the BackendTLSPolicy that targets the
    /// Service port; `None` speaks cleartext.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTls>,
}

/// How the data plane talks to a backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum BackendProtocol {
    /// HTTP/1.1 with keep-alive (the default).
    #[default]
    Http1,
    /// HTTP/2 over cleartext with prior knowledge (`appProtocol: kubernetes.io/h2c`).
    H2c,
}

/// One endpoint address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    /// IP address (v4 or v6, without brackets).
    pub address: String,
    /// TCP port.
    pub port: u16,
}
