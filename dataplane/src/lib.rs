//! Tollgate's data plane: turns a routing snapshot into a runtime and serves
//! traffic with it.
//!
//! [`Dataplane`] is the handle the binary (and the controller's in-process
//! mode) drives: [`Dataplane::apply`] a snapshot, serve the admin endpoints,
//! shut down. [`subscribe`] follows the controller's snapshot stream.

mod admin;
pub mod auth;
pub mod body;
mod boxed;
mod chain;
mod client;
mod clock;
mod context;
pub mod error;
mod fast_hash;
pub mod filters;
pub mod grpc;
mod h1_wire;
mod head_facts;
mod ip_text;
pub mod priority;
pub mod proxy;
mod ratelimit;
mod relay;
pub mod router;
pub mod runtime;
mod server;
mod stage;
mod telemetry;
pub mod tls;
pub mod upstream;

pub use client::{ClientTls, SubscribeOptions, TlsDirError, subscribe, subscribe_with};
pub use server::{
    ApplyError, ConnectionCounts, ControllerLink, Dataplane, DataplaneOptions, DataplaneStatus,
    Rejected,
};
pub use telemetry::{DataplaneTelemetry, GaugeReading, register_gauges};
pub use tls::install_crypto_provider;
