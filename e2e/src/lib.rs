//! Tollgate end-to-end test support: the echo backend and test harnesses.
//!
//! The echo backend ([`echo`], binary `tollgate-echo`) answers every request
//! with a JSON description of it, so a test behind the data plane can see
//! what was forwarded.

pub mod echo;
