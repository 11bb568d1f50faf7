//! Scenario 1: closed-loop throughput over HTTP/1.1 keep-alive.
//!
//! `wrk` with the plan's connection count (64) against every target, with
//! empty and 1 KiB response bodies. Goals: Tollgate ≥ 1.1× nginx, ≥ 0.9×
//! HAProxy and ≥ 0.75× direct-to-backend (empty bodies).
//!
//! Requests per second swing with whatever else the machine runs, so each
//! proxy's user-space instructions per request are counted too (callgrind,
//! `crate::callgrind`): the figure that stays put between runs, with the
//! goal Tollgate ≤ nginx.

use super::modes::{self, Instructions};
use super::{Bench, Goal};
use crate::backend::ONE_KIB_SUFFIX;
use crate::callgrind::{self, Caches, Load};
use crate::error::BenchError;
use crate::peers::{self, Running, Target, Tweaks};
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
    /// Share of that busy time the proxy spent in user space, each run
    /// (empty for direct); the rest is the kernel's, on its sockets.
    pub user_share: Vec<f64>,
}

impl Row {
    /// Median share of one core the proxy was busy; `None` for direct.
    pub fn median_busy(&self) -> Option<f64> {
        (!self.busy.is_empty()).then(|| median(&self.busy))
    }

    /// Median share of the proxy's CPU time spent in user space; `None`
    /// for direct.
    pub fn median_user_share(&self) -> Option<f64> {
        (!self.user_share.is_empty()).then(|| median(&self.user_share))
    }
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Throughput {
    /// Connections used.
    pub connections: usize,
    /// One row per target and body.
    pub rows: Vec<Row>,
    /// Instructions per request of each proxy (empty without valgrind or
    /// in a smoke run).
    pub instructions: Vec<Instructions<Target>>,
}

impl Throughput {
    /// Median requests per second of `target` with the empty body.
    pub fn rps(&self, target: Target) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.target == target && r.body == BODIES[0].0)
            .map(|r| r.median)
    }

    /// Callgrind instructions per request of `target`.
    pub fn per_request(&self, target: Target) -> Option<f64> {
        modes::per_request(&self.instructions, &target)
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
                user_share: vec![],
            });
        }
    }
    for run in 0..bench.plan.runs {
        for (i, r) in running.iter().enumerate() {
            for (j, (_, path)) in BODIES.iter().enumerate() {
                let (result, cpu) = r.cpu_during(|| {
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
                row.busy.extend(cpu.map(|c| c.busy));
                row.user_share.extend(cpu.map(|c| c.user_share));
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
    drop(running);
    let instructions = instructions(bench, &targets)?;
    Ok(Some(Throughput {
        connections,
        rows,
        instructions,
    }))
}

/// Each proxy's instructions per keep-alive request to `/` (nginx with
/// `master_process off`, HAProxy in the foreground). A smoke run skips
/// them: scenario 7 already drives the callgrind path once, and a debug
/// build under valgrind is slow to start.
fn instructions(
    bench: &Bench,
    targets: &[Target],
) -> Result<Vec<Instructions<Target>>, BenchError> {
    if bench.plan.smoke {
        return Ok(Vec::new());
    }
    if !callgrind::available() {
        bench.note("throughput: valgrind is not installed; instructions per request not counted");
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for &target in targets.iter().filter(|&&t| t != Target::Direct) {
        let n = bench.plan.callgrind_requests;
        let count = callgrind::count(
            &bench.env,
            target,
            bench.backend,
            &Tweaks::default(),
            Load::Requests(n),
            Caches::Off,
        )?;
        bench.progress(format!(
            "throughput callgrind {}: {:.0} instructions per request",
            target.name(),
            count.per_request
        ));
        out.push(Instructions {
            mode: target,
            count,
        });
    }
    Ok(out)
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
    if let (Some(own), Some(nginx)) = (
        t.per_request(Target::Tollgate),
        t.per_request(Target::Nginx),
    ) {
        let name = "tollgate / nginx instructions per request (callgrind)";
        goals.push(Goal::at_most(s, name, ratio(own, nginx), 1.0, "x"));
    }
    goals
}
