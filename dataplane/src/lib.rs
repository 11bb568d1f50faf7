//! Tollgate's data plane: turns a routing snapshot into a runtime and serves
//! traffic with it.
//!
//! [`Dataplane`] is the handle the binary (and the controller's in-process
//! mode) drives: [`Dataplane::apply`] a snapshot, serve the admin endpoints,
//! shut down. [`subscribe`] follows the controller's snapshot stream.

pub mod error;
pub mod filters;
pub mod normalize;
pub mod proxy;
pub mod router;
pub mod runtime;
pub mod upstream;
mod admin;
mod client;
mod server;

pub use client::subscribe;
pub use server::{ApplyError, Dataplane, DataplaneOptions, DataplaneStatus, Rejected};
