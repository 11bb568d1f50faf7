//! Tollgate's data plane: turns a routing snapshot into a runtime and serves
//! traffic with it.

pub mod router;
