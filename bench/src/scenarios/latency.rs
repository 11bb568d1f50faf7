//! Scenario 2: open-loop latency at half of nginx's maximum rate.
//!
//! The rate is 50% of nginx's median throughput from scenario 1 (Tollgate's
//! when nginx is not installed), sent on a fixed schedule by
//! [`crate::openloop`] to every target. The figure that matters is the
//! latency a proxy *adds*: its percentile minus direct's. Goals: Tollgate's
//! added p99 ≤ 100 µs and ≤ nginx's added p99.

use super::{Bench, Goal};
use crate::error::BenchError;
use crate::openloop::{self, LatencyResult, OpenLoop, PERCENTILES};
use crate::peers::{self, Running, Target};
use crate::stats::median;
use serde::Serialize;

/// One target's latency.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The target.
    pub target: Target,
    /// Each run's result.
    pub runs: Vec<LatencyResult>,
    /// `(percentile, median over runs in µs)`.
    pub percentiles: Vec<(f64, f64)>,
    /// Failed or non-2xx requests over all runs.
    pub failures: u64,
    /// Worst pacer lag p99 over the runs, µs (generator health).
    pub pacer_lag_p99_us: u64,
}

impl Row {
    /// Median latency at percentile `p`, µs.
    pub fn at(&self, p: f64) -> f64 {
        self.percentiles
            .iter()
            .find(|(q, _)| (*q - p).abs() < 1e-9)
            .map_or(0.0, |(_, v)| *v)
    }
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Latency {
    /// Requests per second sent.
    pub rate: f64,
    /// One row per target.
    pub rows: Vec<Row>,
}

impl Latency {
    /// The row of `target`.
    pub fn row(&self, target: Target) -> Option<&Row> {
        self.rows.iter().find(|r| r.target == target)
    }

    /// `target`'s percentile `p` minus direct's, µs.
    pub fn added(&self, target: Target, p: f64) -> Option<f64> {
        Some(self.row(target)?.at(p) - self.row(Target::Direct)?.at(p))
    }
}

/// Runs every available target at `rate` requests per second.
///
/// # Errors
///
/// When a target does not start or the generator fails.
pub fn run(bench: &Bench, rate: f64) -> Result<Latency, BenchError> {
    let targets = bench.available("latency", &Target::ALL);
    let running: Vec<Running> = targets
        .iter()
        .map(|&t| peers::start(&bench.env, t, bench.backend, 0))
        .collect::<Result<_, _>>()?;
    let mut runs: Vec<Vec<LatencyResult>> = vec![Vec::new(); running.len()];
    for run in 0..bench.plan.runs {
        for (i, r) in running.iter().enumerate() {
            let result = openloop::run(&OpenLoop {
                addr: r.addr,
                path: "/".into(),
                rate,
                duration: bench.plan.latency,
                connections: bench.plan.latency_connections,
            })?;
            bench.progress(format!(
                "latency run {run} {} at {rate:.0} rps: p50 {} µs p99 {} µs",
                r.target.name(),
                result.at(50.0),
                result.at(99.0)
            ));
            runs[i].push(result);
        }
    }
    let rows = running
        .iter()
        .zip(runs)
        .map(|(r, runs)| summarize(r.target, runs))
        .collect();
    Ok(Latency { rate, rows })
}

/// Medians per percentile over runs.
pub fn summarize(target: Target, runs: Vec<LatencyResult>) -> Row {
    let percentiles = PERCENTILES
        .iter()
        .map(|&p| {
            (
                p,
                median(&runs.iter().map(|r| r.at(p) as f64).collect::<Vec<_>>()),
            )
        })
        .collect();
    Row {
        target,
        failures: runs.iter().map(|r| r.errors + r.non_2xx).sum(),
        pacer_lag_p99_us: runs.iter().map(|r| r.pacer_lag_p99_us).max().unwrap_or(0),
        percentiles,
        runs,
    }
}

/// The scenario's goals.
pub fn goals(l: &Latency) -> Vec<Goal> {
    let s = "2 latency";
    let Some(added) = l.added(Target::Tollgate, 99.0) else {
        return vec![];
    };
    let mut goals = vec![Goal::at_most(s, "tollgate added p99", added, 100.0, "µs")];
    if let Some(nginx) = l.added(Target::Nginx, 99.0) {
        goals.push(Goal::at_most(
            s,
            "tollgate added p99 vs nginx added p99",
            added,
            nginx,
            "µs",
        ));
    }
    goals
}
