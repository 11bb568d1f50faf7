//! Upstream connections, backends and load balancing.
//!
//! [`Clients`] is the process-wide registry of upstream connections. It is
//! created once per process and shared by every [`Runtime`](crate::runtime::Runtime),
//! so connections survive snapshot swaps: a runtime build asks it for an
//! [`Endpoint`] per backend address, and an endpoint whose address is in both
//! the old and the new snapshot keeps its pool. HTTP/1.1 endpoints get a
//! pool of their own (`http1`); h2c endpoints share one multiplexing
//! HTTP/2 client per connect timeout; TLS endpoints (BackendTLSPolicy) one
//! HTTPS client per TLS setting (`tls`). [`BackendSet`] and [`Balancer`] are
//! the per-snapshot side: resolved endpoints and the weighted/round-robin
//! selection built once in `Runtime::build`. [`RetryBudget`]s are
//! process-wide like connections: a rule keeps its budget across swaps.
//! An HTTP upgrade (WebSocket) gets a connection of its own, never pooled (`upgrade`).

mod added;
mod backend;
mod balance;
mod budget;
mod clients;
mod error;
mod h1;
mod http1;
mod tls;
pub(crate) use tls::{TlsClient, TlsKey, tls_client};
mod upgrade;

pub use added::{Added, add_fields};
pub use backend::{BackendSet, BuiltBackend};
pub use balance::{Balancer, RoundRobin};
pub use budget::RetryBudget;
pub use clients::{Clients, Endpoint, UpstreamTls};
pub use error::{InvalidEndpoint, UpstreamError};
