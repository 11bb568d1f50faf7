//! Scenario 3: connection scaling from 1 to 1024 connections.
//!
//! `wrk` at each connection count of the plan against every proxy. A proxy
//! "collapses" when throughput at some count past its peak falls below 90%
//! of the peak. Goal: Tollgate's lowest throughput at or after its peak is
//! ≥ 0.9× its peak.

use super::{Bench, Goal};
use crate::error::BenchError;
use crate::peers::{self, Running, Target};
use crate::stats::{median, ratio};
use crate::wrk;
use serde::Serialize;

/// One target's curve.
#[derive(Clone, Debug, Serialize)]
pub struct Curve {
    /// The target.
    pub target: Target,
    /// `(connections, median requests per second)`.
    pub points: Vec<(usize, f64)>,
    /// Non-2xx responses plus socket errors over all runs.
    pub failures: u64,
    /// Median share of one core the proxy was busy at each point (`None`
    /// for direct).
    pub busy: Vec<Option<f64>>,
}

impl Curve {
    /// The highest median throughput.
    pub fn peak(&self) -> f64 {
        self.points.iter().map(|p| p.1).fold(0.0, f64::max)
    }

    /// The lowest throughput at or after the peak, divided by the peak.
    pub fn after_peak_ratio(&self) -> f64 {
        let peak = self.peak();
        let start = self.points.iter().position(|p| p.1 == peak).unwrap_or(0);
        let low = self.points[start..]
            .iter()
            .map(|p| p.1)
            .fold(f64::INFINITY, f64::min);
        if low.is_finite() {
            ratio(low, peak)
        } else {
            0.0
        }
    }
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Scaling {
    /// One curve per proxy.
    pub curves: Vec<Curve>,
}

/// Runs the scenario; `None` when `wrk` is missing.
///
/// # Errors
///
/// When a target does not start or `wrk` fails.
pub fn run(bench: &Bench) -> Result<Option<Scaling>, BenchError> {
    if !wrk::available() {
        bench.note("connection scaling: wrk is not installed; skipped");
        return Ok(None);
    }
    let targets = bench.available("connection scaling", &Target::PROXIES);
    let running: Vec<Running> = targets
        .iter()
        .map(|&t| peers::start(&bench.env, t, bench.backend, 0))
        .collect::<Result<_, _>>()?;
    let counts = &bench.plan.scaling_connections;
    let mut samples = vec![vec![Vec::new(); counts.len()]; running.len()];
    let mut busy = vec![vec![Vec::new(); counts.len()]; running.len()];
    let mut failures = vec![0u64; running.len()];
    for run in 0..bench.plan.runs {
        for (c, &connections) in counts.iter().enumerate() {
            for (i, r) in running.iter().enumerate() {
                let (result, cpu) = r.busy_during(|| {
                    wrk::run(r.addr, "/", connections, bench.plan.scaling, bench.env.pin)
                });
                let result = result?;
                samples[i][c].push(result.rps);
                busy[i][c].extend(cpu);
                failures[i] += result.non_2xx + result.socket_errors;
            }
        }
        bench.progress(format!("connection scaling run {run} done"));
    }
    let curves = running
        .iter()
        .zip(samples)
        .zip(failures)
        .zip(busy)
        .map(|(((r, per_count), failures), busy)| Curve {
            target: r.target,
            points: counts
                .iter()
                .copied()
                .zip(per_count.iter().map(|s| median(s)))
                .collect(),
            failures,
            busy: busy
                .iter()
                .map(|b| (!b.is_empty()).then(|| median(b)))
                .collect(),
        })
        .collect();
    Ok(Some(Scaling { curves }))
}

/// The scenario's goals.
pub fn goals(s: &Scaling) -> Vec<Goal> {
    s.curves
        .iter()
        .filter(|c| c.target == Target::Tollgate)
        .map(|c| {
            let name = "tollgate lowest after peak / peak (1..1024 conns)";
            Goal::at_least("3 connection scaling", name, c.after_peak_ratio(), 0.9, "x")
        })
        .collect()
}
