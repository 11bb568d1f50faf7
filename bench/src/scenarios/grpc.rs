//! Scenario 9: gRPC unary calls through Tollgate and nginx `grpc_pass`.
//!
//! One tonic echo backend (h2c, its own process on the load CPU) behind
//! Tollgate (a GRPCRoute-style catch-all rule to an h2c backend) and nginx
//! (`listen ... http2` + `grpc_pass` with upstream keep-alive), and called
//! directly. The closed-loop generator ([`crate::grpcload`]) makes unary
//! calls over the plan's HTTP/2 connections and callers, targets
//! alternated run by run. Reported: calls per second, p50 and p99 latency,
//! and the p99 each proxy adds over direct; the proxy's CPU use beside
//! each rate. Goal: Tollgate ≥ 1.0× nginx's calls per second.

use super::{Bench, Goal};
use crate::error::BenchError;
use crate::grpcload;
use crate::peers::{self, Running, Target, Tweaks};
use crate::procs::{Child, LOAD_CPU, Launch, free_port};
use crate::stats::{median, ratio};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

/// How long the backend gets to start.
const BACKEND_READY: Duration = Duration::from_secs(30);

/// One target's figures.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The target.
    pub target: Target,
    /// OK calls per second, per run.
    pub rps: Vec<f64>,
    /// Their median.
    pub rps_median: f64,
    /// Median latency per run, µs.
    pub p50_us: Vec<f64>,
    /// 99th percentile latency per run, µs.
    pub p99_us: Vec<f64>,
    /// Median of `p99_us`.
    pub p99_median: f64,
    /// Failed calls over all runs.
    pub failures: u64,
    /// Share of one core the proxy was busy in each run (empty for direct).
    pub busy: Vec<f64>,
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GrpcBench {
    /// HTTP/2 connections per run.
    pub connections: usize,
    /// Concurrent callers per run.
    pub concurrency: usize,
    /// One row per target.
    pub rows: Vec<Row>,
}

impl GrpcBench {
    /// `target`'s row.
    pub fn row(&self, target: Target) -> Option<&Row> {
        self.rows.iter().find(|r| r.target == target)
    }

    /// The p99 `target` adds over calling the backend directly, µs.
    pub fn added_p99(&self, target: Target) -> Option<f64> {
        Some(self.row(target)?.p99_median - self.row(Target::Direct)?.p99_median)
    }
}

/// Starts the gRPC backend (`tollgate-bench grpc-backend`) on the load CPU.
fn start_backend(bench: &Bench) -> Result<(Child, SocketAddr), BenchError> {
    let port = free_port()?;
    let launch = Launch::new("grpc-backend", bench.env.bin("tollgate-bench"))
        .args(["grpc-backend", "--port", &port.to_string()])
        .cpu(LOAD_CPU);
    let mut child = Child::spawn(&launch, &bench.env.work, bench.env.pin)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    child.wait_port(addr, BACKEND_READY)?;
    if !grpcload::wait_ready(addr, BACKEND_READY) {
        return Err(child.not_ready(BACKEND_READY));
    }
    Ok((child, addr))
}

/// Runs the scenario.
///
/// # Errors
///
/// When the backend or a proxy does not start, or no connection opens.
pub fn run(bench: &Bench) -> Result<GrpcBench, BenchError> {
    let (_backend, backend) = start_backend(bench)?;
    let targets = bench.available("grpc", &[Target::Direct, Target::Tollgate, Target::Nginx]);
    let running: Vec<Running> = targets
        .iter()
        .map(|&t| {
            let tweaks = Tweaks {
                label: Some(format!("grpc-{}", t.name())),
                grpc: true,
                ..Tweaks::default()
            };
            peers::start_tweaked(&bench.env, t, backend, 0, &tweaks)
        })
        .collect::<Result<_, _>>()?;
    let plan = &bench.plan;
    let mut rows: Vec<Row> = running
        .iter()
        .map(|r| Row {
            target: r.target,
            rps: Vec::new(),
            rps_median: 0.0,
            p50_us: Vec::new(),
            p99_us: Vec::new(),
            p99_median: 0.0,
            failures: 0,
            busy: Vec::new(),
        })
        .collect();
    for run in 0..plan.runs {
        for (r, row) in running.iter().zip(rows.iter_mut()) {
            let (load, busy) = r.busy_during(|| {
                grpcload::run(
                    r.addr,
                    plan.grpc_connections,
                    plan.grpc_concurrency,
                    plan.grpc,
                )
            });
            let load = load?;
            row.rps.push(load.rps);
            row.p50_us.push(load.p50_us);
            row.p99_us.push(load.p99_us);
            row.failures += load.failures;
            row.busy.extend(busy);
            bench.progress(format!(
                "grpc run {run} {}: {:.0} calls/s, p99 {:.0} µs",
                r.target.name(),
                load.rps,
                load.p99_us
            ));
        }
    }
    for row in &mut rows {
        row.rps_median = median(&row.rps);
        row.p99_median = median(&row.p99_us);
    }
    Ok(GrpcBench {
        connections: plan.grpc_connections,
        concurrency: plan.grpc_concurrency,
        rows,
    })
}

/// The scenario's goal: Tollgate's calls per second ≥ 1.0× nginx's.
pub fn goals(g: &GrpcBench) -> Vec<Goal> {
    match (g.row(Target::Tollgate), g.row(Target::Nginx)) {
        (Some(tollgate), Some(nginx)) => {
            let name = format!(
                "unary calls/s tollgate / nginx grpc_pass ({} conns, {} callers)",
                g.connections, g.concurrency
            );
            let value = ratio(tollgate.rps_median, nginx.rps_median);
            vec![Goal::at_least("9 grpc", &name, value, 1.0, "x")]
        }
        _ => Vec::new(),
    }
}
