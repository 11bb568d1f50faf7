//! How long and how often each scenario measures.
//!
//! The full plan is what `make bench` runs (5 runs, medians; about ten
//! minutes of measuring on a 2-core machine). The smoke plan runs every
//! scenario once with tiny durations and sizes so `make test` proves the
//! harness still works end to end without measuring anything meaningful.
//! The long plan is the full one with the controller's churn soak
//! stretched to an hour (`tollgate-bench run --long`).

use std::time::Duration;

/// Durations, repetitions and sizes of one harness run.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Smoke mode: results are not meaningful.
    pub smoke: bool,
    /// Repetitions of every measurement; medians are reported.
    pub runs: usize,
    /// Rounds of scenario 7's four modes run one after the other (their
    /// requests per second, CPU split and spans, for information).
    pub telemetry_rounds: usize,
    /// Rounds of scenario 7's side-by-side runs, each mode beside "off"
    /// on one core: the goal's figure (see `scenarios::telemetry`).
    pub telemetry_shared_rounds: usize,
    /// One side-by-side run (whole seconds: wrk takes no less).
    pub telemetry_shared: Duration,
    /// One `wrk` throughput run (whole seconds: wrk takes no less).
    pub throughput: Duration,
    /// Connections for the throughput scenario.
    pub throughput_connections: usize,
    /// One open-loop latency run.
    pub latency: Duration,
    /// Connections the open-loop generator spreads requests over.
    pub latency_connections: usize,
    /// One `wrk` run per connection count in the scaling scenario.
    pub scaling: Duration,
    /// Connection counts of the scaling scenario.
    pub scaling_connections: Vec<usize>,
    /// Idle keep-alive connections opened to measure memory per connection.
    pub idle_connections: usize,
    /// HTTPRoute counts of the route-scale scenario.
    pub route_counts: Vec<usize>,
    /// Route additions timed from manifest change to traffic.
    pub route_changes: usize,
    /// Length of one update-under-load window.
    pub update_window: Duration,
    /// Route edits per update window.
    pub route_edits: usize,
    /// Keep-alive requests counted under callgrind per target (telemetry
    /// scenario); valgrind runs them some 50 times slower than native.
    pub callgrind_requests: usize,
    /// One run of the TLS handshake generator.
    pub tls_handshakes: Duration,
    /// Concurrent clients of the TLS handshake generator.
    pub tls_handshake_connections: usize,
    /// Idle TLS connections opened to measure memory per connection.
    pub tls_idle_connections: usize,
    /// One closed-loop gRPC run.
    pub grpc: Duration,
    /// HTTP/2 connections of the gRPC runs.
    pub grpc_connections: usize,
    /// Concurrent callers of the gRPC runs.
    pub grpc_concurrency: usize,
    /// HTTPRoutes loaded in the controller-memory scenario.
    pub ctl_routes: usize,
    /// Secrets in that cluster.
    pub ctl_secrets: usize,
    /// Of those, the ones listener certificates reference.
    pub ctl_referenced: usize,
    /// Length of the controller's churn soak (after its warm-up).
    pub ctl_soak: Duration,
    /// During the soak, one route is created and one deleted this often.
    pub ctl_churn_every: Duration,
    /// During the soak, resident memory is sampled this often.
    pub ctl_sample_every: Duration,
}

impl Plan {
    /// What `make bench` runs.
    pub fn full() -> Plan {
        Plan {
            smoke: false,
            runs: 5,
            telemetry_rounds: 10,
            telemetry_shared_rounds: 10,
            telemetry_shared: Duration::from_secs(5),
            throughput: Duration::from_secs(3),
            throughput_connections: 64,
            latency: Duration::from_secs(4),
            latency_connections: 16,
            scaling: Duration::from_secs(2),
            scaling_connections: vec![1, 4, 16, 64, 256, 1024],
            idle_connections: 1000,
            route_counts: vec![10, 1_000, 10_000],
            route_changes: 20,
            update_window: Duration::from_secs(6),
            route_edits: 20,
            callgrind_requests: 20_000,
            tls_handshakes: Duration::from_secs(3),
            tls_handshake_connections: 32,
            tls_idle_connections: 2000,
            grpc: Duration::from_secs(3),
            grpc_connections: 4,
            grpc_concurrency: 64,
            ctl_routes: 10_000,
            ctl_secrets: 5_000,
            ctl_referenced: 50,
            ctl_soak: Duration::from_secs(120),
            ctl_churn_every: Duration::from_millis(200),
            ctl_sample_every: Duration::from_secs(1),
        }
    }

    /// [`Plan::full`] with the one-hour controller churn soak.
    pub fn long() -> Plan {
        Plan {
            ctl_soak: Duration::from_secs(3600),
            ctl_sample_every: Duration::from_secs(10),
            ..Plan::full()
        }
    }

    /// What `make test` runs: every scenario once, briefly.
    pub fn smoke() -> Plan {
        Plan {
            smoke: true,
            runs: 1,
            telemetry_rounds: 1,
            telemetry_shared_rounds: 1,
            telemetry_shared: Duration::from_secs(1),
            throughput: Duration::from_secs(1),
            throughput_connections: 8,
            latency: Duration::from_millis(400),
            latency_connections: 4,
            scaling: Duration::from_secs(1),
            scaling_connections: vec![1, 16],
            idle_connections: 20,
            route_counts: vec![10, 100],
            route_changes: 2,
            update_window: Duration::from_millis(1500),
            route_edits: 3,
            callgrind_requests: 100,
            tls_handshakes: Duration::from_millis(500),
            tls_handshake_connections: 4,
            tls_idle_connections: 20,
            grpc: Duration::from_millis(500),
            grpc_connections: 1,
            grpc_concurrency: 4,
            ctl_routes: 20,
            ctl_secrets: 20,
            ctl_referenced: 2,
            ctl_soak: Duration::from_secs(2),
            ctl_churn_every: Duration::from_millis(100),
            ctl_sample_every: Duration::from_millis(200),
        }
    }
}
