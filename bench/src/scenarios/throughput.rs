//! Scenario 1: closed-loop throughput over HTTP/1.1 keep-alive.
//!
//! `wrk` with the plan's connection count (64) against every target, with
//! empty and 1 KiB response bodies. Goals: Tollgate ≥ 1.1× nginx, ≥ 0.9×
//! HAProxy and ≥ 0.75× direct-to-backend (empty bodies).

use super::{Bench, Goal};
use crate::backend::ONE_KIB_SUFFIX;
use crate::error::BenchError;
use crate::peers::{self, Running, Target};
use crate::stats::{median, ratio};
use crate::wrk;
use serde::Serialize;

/// Response bodies measured: label and request path.
pub const BODIES: [(&str, &str); 2] = [("0 B", "/"), ("1 KiB", ONE_KIB_SUFFIX)];

/// One target and body size.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The target.
    pub target: Target,
    /// Body size label.
    pub body: String,
    /// Requests per second of each run.
    pub runs: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// Non-2xx responses plus socket errors over all runs.
    pub failures: u64,
    /// Share of one core the proxy was busy in each run (empty for direct).
    pub busy: Vec<f64>,
}

impl Row {
    /// Median share of one core the proxy was busy; `None` for direct.
    pub fn median_busy(&self) -> Option<f64> {
        (!self.busy.is_empty()).then(|| median(&self.busy))
    }
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    /// Connections used.
    pub connections: usize,
    /// One row per target and body.
    pub rows: Vec<Row>,
}

impl Throughput {
    /// Median requests per second of `target` with the empty body.
    pub fn rps(&self, target: Target) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.target == target && r.body == BODIES[0].0)
            .map(|r| r.median)
    }
}

/// Runs the scenario; `None` when `wrk` is missing.
///
/// # Errors
///
/// When a target does not start or `wrk` fails.
pub fn run(bench: &Bench) -> Result<Option<Throughput>, BenchError> {
    if !wrk::available() {
        bench.note("throughput: wrk is not installed; skipped");
        return Ok(None);
    }
    let targets = bench.available("throughput", &Target::ALL);
    let running: Vec<Running> = targets
        .iter()
        .map(|&t| peers::start(&bench.env, t, bench.backend, 0))
        .collect::<Result<_, _>>()?;
    let connections = bench.plan.throughput_connections;
    let mut rows: Vec<Row> = Vec::new();
    for r in &running {
        for (body, _) in BODIES {
            rows.push(Row {
                target: r.target,
                body: body.into(),
                runs: vec![],
                median: 0.0,
                failures: 0,
                busy: vec![],
            });
        }
    }
    for run in 0..bench.plan.runs {
        for (i, r) in running.iter().enumerate() {
            for (j, (_, path)) in BODIES.iter().enumerate() {
                let (result, busy) = r.busy_during(|| {
                    wrk::run(
                        r.addr,
                        path,
                        connections,
                        bench.plan.throughput,
                        bench.env.pin,
                    )
                });
                let result = result?;
                let row = &mut rows[i * BODIES.len() + j];
                row.runs.push(result.rps);
                row.busy.extend(busy);
                row.failures += result.non_2xx + result.socket_errors;
                bench.progress(format!(
                    "throughput run {run} {} {path}: {:.0} rps",
                    r.target.name(),
                    result.rps
                ));
            }
        }
    }
    for row in &mut rows {
        row.median = median(&row.runs);
    }
    Ok(Some(Throughput { connections, rows }))
}

/// The scenario's goals.
pub fn goals(t: &Throughput) -> Vec<Goal> {
    let s = "1 throughput";
    let Some(tollgate) = t.rps(Target::Tollgate) else {
        return vec![];
    };
    let mut goals = Vec::new();
    for (peer, bound) in [
        (Target::Nginx, 1.1),
        (Target::Haproxy, 0.9),
        (Target::Direct, 0.75),
    ] {
        if let Some(rps) = t.rps(peer) {
            let name = format!("tollgate / {} (0 B, {} conns)", peer.name(), t.connections);
            goals.push(Goal::at_least(s, &name, ratio(tollgate, rps), bound, "x"));
        }
    }
    goals
}
