//! The scenarios of the comparison, one file each, and what they share:
//! the [`Bench`] context (processes, plan, the running backend) and
//! [`Goal`], a pass/fail line of the report stated as a ratio or a bound.
//!
//! Every scenario measures Tollgate and its peers in the same run, on the
//! same machine, interleaving the targets run by run so drift (thermal,
//! other load) spreads evenly across them.

pub mod auth;
pub mod ctl_memory;
pub mod grpc;
pub mod latency;
pub mod memory;
pub mod modes;
pub mod ratelimit;
pub mod routes;
pub mod scaling;
pub mod telemetry;
pub mod throughput;
pub mod tls;
pub mod updates;

use crate::peers::{Env, Target};
use crate::plan::Plan;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Mutex;

/// What every scenario needs.
#[derive(Debug)]
pub struct Bench {
    /// Processes and folders.
    pub env: Env,
    /// Durations and sizes.
    pub plan: Plan,
    /// The running backend.
    pub backend: SocketAddr,
    notes: Mutex<Vec<String>>,
}

impl Bench {
    /// A context for `plan` with the backend at `backend`.
    pub fn new(env: Env, plan: Plan, backend: SocketAddr) -> Bench {
        Bench {
            env,
            plan,
            backend,
            notes: Mutex::new(Vec::new()),
        }
    }

    /// Prints `text` and keeps it for the report.
    pub fn note(&self, text: impl Into<String>) {
        let text = text.into();
        println!("note: {text}");
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(text);
        }
    }

    /// The notes so far.
    pub fn notes(&self) -> Vec<String> {
        self.notes.lock().map(|n| n.clone()).unwrap_or_default()
    }

    /// `targets` that are installed here; a notice for each skipped one.
    pub fn available(&self, scenario: &str, targets: &[Target]) -> Vec<Target> {
        targets
            .iter()
            .copied()
            .filter(|t| {
                let ok = t.available();
                if !ok {
                    self.note(format!(
                        "{scenario}: {} is not installed; skipped",
                        t.name()
                    ));
                }
                ok
            })
            .collect()
    }

    /// Prints progress.
    pub fn progress(&self, text: impl AsRef<str>) {
        println!("  {}", text.as_ref());
    }
}

/// One goal of the issue, evaluated.
#[derive(Clone, Debug, Serialize)]
pub struct Goal {
    /// Scenario number and name.
    pub scenario: String,
    /// What is compared, e.g. `throughput tollgate / nginx`.
    pub name: String,
    /// The bound, e.g. `>= 1.10`.
    pub bound: String,
    /// The measured value.
    pub value: f64,
    /// Unit of value and bound (`x`, `µs`, `KiB`...).
    pub unit: String,
    /// Whether the goal is met.
    pub pass: bool,
    /// How far from the bound, signed, in percent of the bound.
    pub margin_percent: f64,
}

impl Goal {
    /// A goal met when `value >= bound`.
    pub fn at_least(scenario: &str, name: &str, value: f64, bound: f64, unit: &str) -> Goal {
        Goal::make(scenario, name, value, bound, unit, true)
    }

    /// A goal met when `value <= bound`.
    pub fn at_most(scenario: &str, name: &str, value: f64, bound: f64, unit: &str) -> Goal {
        Goal::make(scenario, name, value, bound, unit, false)
    }

    fn make(scenario: &str, name: &str, value: f64, bound: f64, unit: &str, min: bool) -> Goal {
        let pass = if min { value >= bound } else { value <= bound };
        let margin = if bound == 0.0 {
            0.0
        } else if min {
            (value - bound) / bound.abs() * 100.0
        } else {
            (bound - value) / bound.abs() * 100.0
        };
        Goal {
            scenario: scenario.to_string(),
            name: name.to_string(),
            bound: format!("{} {bound}", if min { ">=" } else { "<=" }),
            value,
            unit: unit.to_string(),
            pass,
            margin_percent: margin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Goal;

    /// A goal's margin is positive when met and says by how much it is missed otherwise.
    #[test]
    fn margins() {
        let g = Goal::at_least("1", "t", 0.99, 1.1, "x");
        assert!(!g.pass);
        assert!((g.margin_percent + 10.0).abs() < 1e-9);
        let g = Goal::at_most("2", "p99", 50.0, 100.0, "µs");
        assert!(g.pass);
        assert!((g.margin_percent - 50.0).abs() < 1e-9);
    }
}
