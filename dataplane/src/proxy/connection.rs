//! What the proxy knows about the connection a request arrived on, made
//! once per connection by the listener.

use super::hygiene::ClientForwarding;
use http::HeaderValue;
use std::net::SocketAddr;
use std::sync::Arc;

/// What the listener knows about the connection a request arrived on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// The client's address.
    pub peer: SocketAddr,
    /// The bound socket address (`address:bind_port`), which selects the
    /// socket's router.
    pub local: SocketAddr,
    /// The scheme clients use on this socket (`http`).
    pub scheme: &'static str,
    /// Forwarding header values for this client, made once per connection.
    pub(crate) forwarding: ClientForwarding,
    /// On a TLS connection, the listener its SNI selected: a request whose
    /// Host selects another listener is answered 421.
    pub(crate) sni_listener: Option<Arc<str>>,
    /// On a mutual-TLS connection, the details of the client certificate
    /// the gateway verified, as the value of the configured header.
    pub(crate) client_cert: Option<HeaderValue>,
}

impl ConnInfo {
    /// What a connection from `peer` accepted on `local` records.
    pub fn new(peer: SocketAddr, local: SocketAddr, scheme: &'static str) -> ConnInfo {
        ConnInfo {
            peer,
            local,
            scheme,
            forwarding: ClientForwarding::new(peer.ip(), scheme),
            sni_listener: None,
            client_cert: None,
        }
    }

    /// A TLS connection (`https`) whose handshake selected `listener`.
    pub(crate) fn tls(peer: SocketAddr, local: SocketAddr, listener: Arc<str>) -> ConnInfo {
        ConnInfo {
            sni_listener: Some(listener),
            ..ConnInfo::new(peer, local, "https")
        }
    }
}
