//! Scenario 5: routes at scale (10, 1k, 10k HTTPRoutes).
//!
//! - Memory: the data plane's resident memory serving a snapshot of N
//!   routes; per 1k routes is the slope between the smallest and largest N.
//!   Goal ≤ 2 MB.
//! - Change to traffic: with the largest N loaded in the controller, one new
//!   HTTPRoute file is written and its path polled every millisecond until
//!   it answers 200. Goal p99 ≤ 50 ms.
//! - First vs last: throughput to the first and the last route of the
//!   largest snapshot. Goal last ≥ 0.95× first.

use super::{Bench, Goal};
use crate::configs::{self, route_path};
use crate::controller::{self, Manifests};
use crate::error::BenchError;
use crate::peers::{self, Target};
use crate::probe;
use crate::stats::{median, ratio};
use crate::wrk;
use serde::Serialize;
use std::time::{Duration, Instant};

/// How long one change may take before it counts as never served.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Routes {
    /// `(routes, data-plane resident bytes)`.
    pub memory: Vec<(usize, u64)>,
    /// Bytes per 1k routes (slope between the smallest and largest count).
    pub bytes_per_1k: f64,
    /// Routes loaded in the controller for the change timings.
    pub loaded: usize,
    /// Controller (with data plane) start to first traffic, ms.
    pub controller_start_ms: f64,
    /// Controller resident bytes with `loaded` routes.
    pub controller_rss: u64,
    /// Each change's time from file write to first 200, ms.
    pub change_ms: Vec<f64>,
    /// Median requests per second to the first route.
    pub first_rps: f64,
    /// Median requests per second to the last route.
    pub last_rps: f64,
}

impl Routes {
    /// The `p`th percentile (nearest rank) of the change times, ms.
    pub fn change_percentile(&self, p: f64) -> f64 {
        let mut v = self.change_ms.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }
}

/// Runs the scenario.
///
/// # Errors
///
/// When a process does not start or a change is never served.
pub fn run(bench: &Bench) -> Result<Routes, BenchError> {
    let mut out = Routes::default();
    let largest = bench
        .plan
        .route_counts
        .iter()
        .copied()
        .max()
        .unwrap_or(10)
        .max(1);
    for &n in &bench.plan.route_counts {
        let running = peers::start(&bench.env, Target::Tollgate, bench.backend, n)?;
        std::thread::sleep(Duration::from_millis(500));
        out.memory.push((n, running.rss()));
        bench.progress(format!(
            "routes {n}: data plane {} KiB",
            running.rss() / 1024
        ));
        if n == largest && wrk::available() {
            let (first, last) = first_vs_last(bench, &running, n)?;
            (out.first_rps, out.last_rps) = (first, last);
        }
    }
    if let (Some(small), Some(big)) = (out.memory.first(), out.memory.last())
        && big.0 > small.0
    {
        out.bytes_per_1k = (big.1 as f64 - small.1 as f64) / (big.0 - small.0) as f64 * 1000.0;
    }
    changes(bench, largest, &mut out)?;
    Ok(out)
}

fn first_vs_last(
    bench: &Bench,
    running: &peers::Running,
    n: usize,
) -> Result<(f64, f64), BenchError> {
    let (mut first, mut last) = (Vec::new(), Vec::new());
    let conns = bench.plan.throughput_connections;
    for _ in 0..bench.plan.runs {
        let d = bench.plan.throughput;
        first.push(wrk::run(running.addr, &route_path(0), conns, d, bench.env.pin)?.rps);
        last.push(wrk::run(running.addr, &route_path(n - 1), conns, d, bench.env.pin)?.rps);
    }
    bench.progress(format!(
        "routes {n}: first {:.0} rps, last {:.0} rps",
        median(&first),
        median(&last)
    ));
    Ok((median(&first), median(&last)))
}

/// Starts the controller with `n` routes and times `plan.route_changes` additions.
///
/// # Errors
///
/// When the controller does not start or a change is never served.
pub fn changes(bench: &Bench, n: usize, out: &mut Routes) -> Result<(), BenchError> {
    let manifests = Manifests::create(&bench.env, "routes-controller", bench.backend, n)?;
    let started = Instant::now();
    let child = controller::start(&bench.env, &manifests, &route_path(n - 1))?;
    out.controller_start_ms = started.elapsed().as_secs_f64() * 1000.0;
    out.loaded = n;
    for k in 0..bench.plan.route_changes {
        let path = format!("/new-{k}");
        let yaml = configs::routes_yaml([(format!("new-{k}"), path.clone())]);
        let written = Instant::now();
        manifests.write(&format!("new-{k}.yaml"), &yaml)?;
        let every = Duration::from_millis(1);
        if !probe::wait_status_every(manifests.addr(), &path, 200, CHANGE_TIMEOUT, every) {
            return Err(child.not_ready(CHANGE_TIMEOUT));
        }
        out.change_ms.push(written.elapsed().as_secs_f64() * 1000.0);
    }
    out.controller_rss = child.rss_bytes();
    bench.progress(format!(
        "routes {n}: controller start {:.0} ms, change to traffic p50 {:.0} ms p99 {:.0} ms",
        out.controller_start_ms,
        out.change_percentile(50.0),
        out.change_percentile(99.0)
    ));
    Ok(())
}

/// The scenario's goals.
pub fn goals(r: &Routes) -> Vec<Goal> {
    let s = "5 routes at scale";
    let mut goals = vec![
        Goal::at_most(
            s,
            "data-plane memory per 1k routes",
            r.bytes_per_1k / 1e6,
            2.0,
            "MB",
        ),
        Goal::at_most(
            s,
            &format!(
                "manifest change to traffic p99 ({} routes loaded)",
                r.loaded
            ),
            r.change_percentile(99.0),
            50.0,
            "ms",
        ),
    ];
    if r.first_rps > 0.0 {
        let name = "throughput last route / first route";
        goals.push(Goal::at_least(
            s,
            name,
            ratio(r.last_rps, r.first_rps),
            0.95,
            "x",
        ));
    }
    goals
}
