//! Tollgate's controller: reads Gateway API objects from a provider,
//! compiles them into one routing snapshot per Gateway, publishes the
//! snapshots to data planes and reports status.
//!
//! ```text
//! provider ──► Resources ──► compile ──► Compiled { snapshots, statuses }
//!                                           │             │
//!                                      publisher     status (admin /status)
//! ```

pub mod admin;
pub mod controller;
pub mod inprocess;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod pki;
pub mod provider;
pub mod publisher;
pub mod reports;
pub mod serve;
pub mod serving;
pub mod status;
pub mod writer;
