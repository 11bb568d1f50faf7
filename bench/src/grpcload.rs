//! The gRPC load generator of scenario 9, and the gRPC backend it calls.
//!
//! Closed loop, like `wrk`: `concurrency` callers share `connections`
//! HTTP/2 connections (prior knowledge), each making unary `Say` calls back
//! to back for the run's duration, on one thread. Every call's latency goes
//! into a histogram, so the run reports calls per second and percentiles;
//! a failed call is counted, not timed. The client and the backend are the
//! end-to-end tests' tonic echo ([`tollgate_e2e::grpc`]).

use crate::error::BenchError;
use hdrhistogram::Histogram;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tollgate_e2e::grpc::{GrpcClient, GrpcEcho};

/// Longest latency the histogram holds, in microseconds.
const MAX_MICROS: u64 = 60_000_000;

/// What one run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct GrpcLoad {
    /// Calls answered OK.
    pub calls: u64,
    /// Calls that failed (any non-OK status or a broken connection).
    pub failures: u64,
    /// OK calls per second.
    pub rps: f64,
    /// Median latency, µs.
    pub p50_us: f64,
    /// 99th percentile latency, µs.
    pub p99_us: f64,
}

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("starting a tokio runtime"))
}

/// Serves the gRPC echo backend on `addr` until the process is stopped.
///
/// # Errors
///
/// When the address cannot be bound.
pub fn serve_backend(addr: SocketAddr) -> Result<(), BenchError> {
    runtime()?.block_on(async {
        let _echo = GrpcEcho::start_at("bench", addr)
            .await
            .map_err(BenchError::io(format!(
                "binding the gRPC backend on {addr}"
            )))?;
        std::future::pending::<()>().await;
        Ok(())
    })
}

/// Whether a unary call to `addr` succeeds within `timeout`.
pub fn wait_ready(addr: SocketAddr, timeout: Duration) -> bool {
    let Ok(rt) = runtime() else {
        return false;
    };
    rt.block_on(async {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Ok(mut client) = GrpcClient::connect(addr, "grpc.bench").await
                && client.say("ready?").await.is_ok()
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    })
}

/// One closed-loop run against `addr`.
///
/// # Errors
///
/// When no connection can be opened.
pub fn run(
    addr: SocketAddr,
    connections: usize,
    concurrency: usize,
    duration: Duration,
) -> Result<GrpcLoad, BenchError> {
    runtime()?.block_on(async move {
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            let client = GrpcClient::connect(addr, "grpc.bench")
                .await
                .map_err(BenchError::io(format!("connecting to {addr}")))?;
            clients.push(client);
        }
        let started = Instant::now();
        let deadline = started + duration;
        let mut callers = Vec::new();
        for i in 0..concurrency.max(1) {
            let client = clients[i % clients.len()].clone();
            callers.push(tokio::spawn(caller(client, deadline, histogram()?)));
        }
        let mut total = histogram()?;
        let (mut calls, mut failures) = (0, 0);
        for caller in callers {
            let (latencies, ok, failed) = caller.await.map_err(|e| BenchError::Http {
                what: "a gRPC caller".into(),
                detail: e.to_string(),
            })?;
            let _ = total.add(&latencies);
            calls += ok;
            failures += failed;
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(GrpcLoad {
            calls,
            failures,
            rps: if seconds > 0.0 {
                calls as f64 / seconds
            } else {
                0.0
            },
            p50_us: total.value_at_quantile(0.5) as f64,
            p99_us: total.value_at_quantile(0.99) as f64,
        })
    })
}

fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).map_err(|e| BenchError::Http {
        what: "making a latency histogram".into(),
        detail: e.to_string(),
    })
}

/// One caller: calls until `deadline`, recording into `latencies`; returns
/// them with the OK and failed counts.
async fn caller(
    mut client: GrpcClient,
    deadline: Instant,
    mut latencies: Histogram<u64>,
) -> (Histogram<u64>, u64, u64) {
    let (mut ok, mut failed) = (0, 0);
    while Instant::now() < deadline {
        let start = Instant::now();
        match client.say("").await {
            Ok(_) => {
                ok += 1;
                let micros = u64::try_from(start.elapsed().as_micros()).unwrap_or(MAX_MICROS);
                let _ = latencies.record(micros.clamp(1, MAX_MICROS));
            }
            Err(_) => failed += 1,
        }
    }
    (latencies, ok, failed)
}
