//! What the proxy knows about the connection a request arrived on, made
//! once per connection by the listener.

use super::hygiene::ClientForwarding;
use std::net::SocketAddr;

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
}

impl ConnInfo {
    /// What a connection from `peer` accepted on `local` records.
    pub fn new(peer: SocketAddr, local: SocketAddr, scheme: &'static str) -> ConnInfo {
        ConnInfo {
            peer,
            local,
            scheme,
            forwarding: ClientForwarding::new(peer.ip(), scheme),
        }
    }
}
