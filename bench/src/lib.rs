//! Tollgate's benchmark harness: Tollgate side by side with nginx and HAProxy.
//!
//! `make bench` runs the binary `tollgate-bench run`, which starts real
//! processes — the proxies, a minimal hyper [`backend`], `wrk` — pinned to
//! CPUs, runs the nine [`scenarios`] with equivalent [`configs`], and writes
//! `report.md`, `results.json` and PNG charts. Performance is only ever
//! claimed as a ratio against a peer measured in the same run on the same
//! machine. `--smoke` runs every scenario briefly so `make test` keeps the
//! harness from rotting.

pub mod backend;
pub mod callgrind;
pub mod charts;
pub mod configs;
pub mod controller;
pub mod endpoints;
pub mod error;
pub mod grpcload;
pub mod handshakes;
pub mod harness;
pub mod jwt;
pub mod machine;
pub mod openloop;
pub mod peers;
pub mod plan;
pub mod probe;
pub mod procs;
pub mod report;
pub mod results;
pub mod scenarios;
pub mod stats;
pub mod tls;
pub mod wrk;

pub use error::BenchError;
