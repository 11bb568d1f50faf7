//! Downstream serving: sockets, connections, HTTP/1.1, HTTP/2 and h2c, and
//! the [`Dataplane`] handle that ties them to the current runtime.
//!
//! The flow: [`Dataplane::apply`] builds a runtime and binds sockets
//! (`handle`, `listener`); each accepted connection picks its protocol and
//! limits (`conn`, then `h1`, `h2`, `h2c`) and ends as `lifecycle` says;
//! a TLS socket first runs the handshake (`tls`), and parked connections
//! wait on their stream without reading (`transport`);
//! each request is counted for the idle timeout
//! (`activity`), checked and handed to the proxy with the runtime loaded
//! once (`service`). `drain` carries shutdown and socket-removal signals.
//! An accepted WebSocket upgrade is relayed byte for byte (`tunnel`); so
//! is a connection on a TLS listener (TLSRoute), routed by SNI
//! (`passthrough`, then `tcp_relay`).

mod activity;
mod codec;
mod conn;
mod conn_settings;
mod delegate;
mod drain;
mod frames;
mod framing;
mod gate;
mod h1;
mod h2;
mod h2c;
mod handle;
mod headclock;
mod lifecycle;
mod listener;
mod passthrough;
mod prefixed;
mod proxy_protocol;
mod rest;
mod service;
mod status;
mod tcp_relay;
mod tls;
mod transport;
mod tunnel;

pub use handle::{ApplyError, Dataplane, DataplaneOptions};
pub use status::{ConnectionCounts, ControllerLink, DataplaneStatus, Rejected};
