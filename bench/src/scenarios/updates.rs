//! Scenario 6: configuration updates under load.
//!
//! Open-loop load at the latency scenario's rate (50% of nginx's maximum)
//! runs for one window without changes (baseline) and one window with them:
//!
//! - `tollgate snapshot swap`: the data plane's snapshot file is rewritten
//!   with different content and SIGHUP sent every second (a full swap);
//! - `tollgate route edits`: the controller's manifest folder gets the
//!   plan's number of HTTPRoute edits spread over the window;
//! - `nginx reload`: nginx's configuration is reloaded (SIGHUP) every second.
//!
//! Goals for Tollgate: zero failed or non-2xx requests while changing, and
//! p99 at most 10% above the baseline window's.

use super::latency::{Row, summarize};
use super::{Bench, Goal};
use crate::configs;
use crate::controller::{self, Manifests};
use crate::error::BenchError;
use crate::openloop::{self, OpenLoop};
use crate::peers::{self, Target};
use crate::procs::Child;
use crate::stats::ratio;
use rustix::process::Signal;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// One kind of change, measured against its own baseline.
#[derive(Clone, Debug, Serialize)]
pub struct Variant {
    /// What changes.
    pub name: String,
    /// Latency without changes.
    pub baseline: Row,
    /// Latency while changing.
    pub changing: Row,
    /// Changes made over all change windows.
    pub changes: usize,
}

impl Variant {
    /// Relative p99 increase of the changing windows over the baseline.
    pub fn p99_increase(&self) -> f64 {
        ratio(self.changing.at(99.0), self.baseline.at(99.0)) - 1.0
    }
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Updates {
    /// Requests per second during the windows.
    pub rate: f64,
    /// One entry per kind of change.
    pub variants: Vec<Variant>,
}

/// What one change does.
type Change<'a> = Box<dyn Fn(usize) -> Result<(), BenchError> + Sync + 'a>;

/// Runs the scenario at `rate` requests per second.
///
/// # Errors
///
/// When a process does not start or a change cannot be written.
pub fn run(bench: &Bench, rate: f64) -> Result<Updates, BenchError> {
    let mut variants = Vec::new();
    let second = Duration::from_secs(1);

    {
        let tollgate = peers::start(&bench.env, Target::Tollgate, bench.backend, 0)?;
        let (port, backend_port) = (tollgate.addr.port(), bench.backend.port());
        let file = tollgate.config.clone().unwrap_or_default();
        let child = tollgate.child.as_ref();
        let swap: Change<'_> = Box::new(move |k| {
            let mut snapshot = configs::snapshot(port, backend_port, 0);
            snapshot.routes[0].name = format!("httproute/bench/swap-{k}/rule/0");
            let json = serde_json::to_string(&snapshot).map_err(|source| BenchError::Json {
                what: "a swap snapshot".into(),
                source,
            })?;
            std::fs::write(&file, json).map_err(BenchError::io("rewriting the snapshot file"))?;
            if let Some(c) = child {
                c.signal(Signal::HUP);
            }
            Ok(())
        });
        variants.push(measure(
            bench,
            "tollgate snapshot swap",
            Target::Tollgate,
            tollgate.addr,
            rate,
            second,
            &swap,
        )?);
    }

    {
        let manifests = Manifests::create(&bench.env, "updates-controller", bench.backend, 0)?;
        let controller = controller::start(&bench.env, &manifests, "/")?;
        let every = bench
            .plan
            .update_window
            .div_f64(bench.plan.route_edits.max(1) as f64 + 1.0);
        let edit: Change<'_> = Box::new(|k| {
            let yaml = configs::routes_yaml([(format!("edit-{k}"), format!("/edit-{k}"))]);
            manifests.write("edit.yaml", &yaml)
        });
        variants.push(measure(
            bench,
            "tollgate route edits",
            Target::Tollgate,
            manifests.addr(),
            rate,
            every,
            &edit,
        )?);
        drop(controller);
    }

    if bench
        .available("updates", &[Target::Nginx])
        .contains(&Target::Nginx)
    {
        let nginx = peers::start(&bench.env, Target::Nginx, bench.backend, 0)?;
        let master: Option<&Child> = nginx.child.as_ref();
        let reload: Change<'_> = Box::new(move |_| {
            if let Some(c) = master {
                c.signal(Signal::HUP);
            }
            Ok(())
        });
        variants.push(measure(
            bench,
            "nginx reload",
            Target::Nginx,
            nginx.addr,
            rate,
            second,
            &reload,
        )?);
    }
    Ok(Updates { rate, variants })
}

/// Baseline and changing windows, `plan.runs` times each, changes every `every`.
fn measure(
    bench: &Bench,
    name: &str,
    target: Target,
    addr: SocketAddr,
    rate: f64,
    every: Duration,
    change: &Change<'_>,
) -> Result<Variant, BenchError> {
    let load = OpenLoop {
        addr,
        path: "/".into(),
        rate,
        duration: bench.plan.update_window,
        connections: bench.plan.latency_connections,
    };
    let (mut baseline, mut changing) = (Vec::new(), Vec::new());
    let made = AtomicUsize::new(0);
    for run in 0..bench.plan.runs {
        baseline.push(openloop::run(&load)?);
        let stop = AtomicBool::new(false);
        let result = std::thread::scope(|scope| {
            let changer = scope.spawn(|| -> Result<(), BenchError> {
                while !sleep_unless(&stop, every) {
                    change(made.fetch_add(1, Ordering::Relaxed))?;
                }
                Ok(())
            });
            let result = openloop::run(&load);
            stop.store(true, Ordering::Relaxed);
            let changed = changer.join().unwrap_or(Ok(()));
            changed.and(result)
        })?;
        bench.progress(format!(
            "{name} run {run}: p99 {} µs baseline, {} µs changing, {} failed",
            baseline.last().map_or(0, |r| r.at(99.0)),
            result.at(99.0),
            result.errors + result.non_2xx
        ));
        changing.push(result);
    }
    Ok(Variant {
        name: name.into(),
        baseline: summarize(target, baseline),
        changing: summarize(target, changing),
        changes: made.load(Ordering::Relaxed),
    })
}

/// Sleeps `total` in small steps; whether `stop` was set meanwhile.
fn sleep_unless(stop: &AtomicBool, total: Duration) -> bool {
    let step = Duration::from_millis(10);
    let mut slept = Duration::ZERO;
    while slept < total {
        if stop.load(Ordering::Relaxed) {
            return true;
        }
        std::thread::sleep(step.min(total - slept));
        slept += step;
    }
    stop.load(Ordering::Relaxed)
}

/// The scenario's goals.
pub fn goals(u: &Updates) -> Vec<Goal> {
    let s = "6 updates under load";
    let mut goals = Vec::new();
    for v in u.variants.iter().filter(|v| v.name.starts_with("tollgate")) {
        let failed = v.changing.failures as f64;
        goals.push(Goal::at_most(
            s,
            &format!("{}: failed or non-2xx", v.name),
            failed,
            0.0,
            "requests",
        ));
        let increase = v.p99_increase() * 100.0;
        goals.push(Goal::at_most(
            s,
            &format!("{}: p99 increase", v.name),
            increase,
            10.0,
            "%",
        ));
    }
    goals
}
