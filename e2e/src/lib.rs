//! Tollgate end-to-end test support: the echo backend and test harnesses.
//!
//! The echo backend ([`echo`], binary `tollgate-echo`) answers every request
//! with a JSON description of it, so a test behind the data plane can see
//! what was forwarded. The harness runs the real binaries as tests see them
//! in production: [`Proc`] starts a workspace binary ([`bin_path`]) with its
//! output in a log file and stops its process group on drop; [`Echo`] starts
//! an echo backend on a [`free_port`]; [`HttpClient`] and [`wait_http_ok`]
//! talk to them. [`apiserver::ApiServer`] is an in-memory Kubernetes API
//! server (binary `tollgate-test-apiserver`) that the controller's kube
//! client and the real `kubectl` run against.
//! [`otlp::Receiver`] is an OTLP collector double (gRPC and HTTP) that
//! keeps the traces, metrics and logs exported to it, and
//! [`prometheus::parse`] reads a `/metrics` page. [`grpc`] has a tonic echo
//! backend (h2c or TLS) and client for the gRPC routing tests. [`tls`] has a test CA
//! (rcgen) and a TLS backend that reports what it saw of each connection.
//! [`controller::start_controller_at`] runs a standalone controller on
//! ports a restart can reuse, [`dataplane::DataplaneProc`] runs a data plane following a controller,
//! [`balancer::Balancer`] is a readiness-aware TCP load balancer in front
//! of several, and [`load::Load`] keeps requests flowing through it.
//!
//! Binaries are not built by the tests: run `cargo build --bins` first
//! (`make test` does).

pub mod apiserver;
mod backend;
pub mod balancer;
mod connect_proxy;
pub use connect_proxy::{ConnectProxy, TunnelRequest};
mod client;
pub mod controller;
pub mod dataplane;
pub mod echo;
mod error;
pub mod grpc;
pub mod load;
pub mod otlp;
mod process;
pub mod prometheus;
pub mod redis;
pub mod redis_sentinel;
pub mod tls;

pub use backend::Echo;
pub use client::{HttpClient, Reply, get, wait_http_ok};
pub use error::HarnessError;
pub use process::{Proc, bin_path, free_port, log_dir, target_dir, workspace_dir};
