//! Downstream serving: sockets, connections, HTTP/1.1, HTTP/2 and h2c, and
//! the [`Dataplane`] handle that ties them to the current runtime.
//!
//! The flow: [`Dataplane::apply`] builds a runtime and binds sockets
//! (`handle`, `listener`); each accepted connection picks its protocol and
//! limits (`conn`, `h2c`); each request is counted for the idle timeout
//! (`activity`), checked and handed to the proxy with the runtime loaded
//! once (`service`). `drain` carries shutdown and socket-removal signals.

mod activity;
mod conn;
mod drain;
mod frames;
mod framing;
mod h2c;
mod handle;
mod listener;
mod prefixed;
mod service;
mod status;

pub use handle::{ApplyError, Dataplane, DataplaneOptions};
pub use status::{DataplaneStatus, Rejected};

/// The request pipeline the server hands requests to.
mod pipeline {
    pub(crate) use crate::proxy::{ConnInfo, ProxyBody, handle};
    pub(crate) use crate::runtime::Runtime;
    pub(crate) use crate::upstream::Clients;
}
