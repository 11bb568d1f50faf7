//! Everything one harness run found, as one serialisable value.
//!
//! `results.json` is this value; `report.md` and the charts are drawn from
//! it, so a reader can recompute any figure of the report from the JSON.

use crate::machine::Machine;
use crate::scenarios::Goal;
use crate::scenarios::grpc::GrpcBench;
use crate::scenarios::latency::Latency;
use crate::scenarios::memory::Memory;
use crate::scenarios::routes::Routes;
use crate::scenarios::scaling::Scaling;
use crate::scenarios::telemetry::TelemetryCost;
use crate::scenarios::throughput::Throughput;
use crate::scenarios::tls::TlsBench;
use crate::scenarios::updates::Updates;
use serde::Serialize;

/// One run of the harness.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Results {
    /// When the run started (RFC 3339).
    pub started: String,
    /// Whether this was a smoke run (figures not meaningful).
    pub smoke: bool,
    /// Repetitions per measurement.
    pub runs: usize,
    /// Whether processes were pinned with `taskset`.
    pub pinned: bool,
    /// The machine and peer versions.
    pub machine: Machine,
    /// The peers' configs, with example ports.
    pub configs: Vec<(String, String)>,
    /// Scenario 1.
    pub throughput: Option<Throughput>,
    /// Scenario 2.
    pub latency: Option<Latency>,
    /// Scenario 3.
    pub scaling: Option<Scaling>,
    /// Scenario 4.
    pub memory: Option<Memory>,
    /// Scenario 5.
    pub routes: Option<Routes>,
    /// Scenario 6.
    pub updates: Option<Updates>,
    /// Scenario 7.
    pub telemetry: Option<TelemetryCost>,
    /// Scenario 8.
    pub tls: Option<TlsBench>,
    /// Scenario 9.
    pub grpc: Option<GrpcBench>,
    /// Scenario 10.
    pub auth: Option<crate::scenarios::auth::AuthCost>,
    /// Scenario 11.
    #[serde(default)]
    pub ratelimit: Option<crate::scenarios::ratelimit::RateLimitCost>,
    /// Scenario 12.
    #[serde(default)]
    pub ctl_memory: Option<crate::scenarios::ctl_memory::CtlMemory>,
    /// Every goal, evaluated.
    pub goals: Vec<Goal>,
    /// Skipped parts and other remarks.
    pub notes: Vec<String>,
    /// Chart files written next to the report.
    pub charts: Vec<String>,
    /// Seconds each scenario took, in order, measuring included setup.
    pub durations: Vec<(String, f64)>,
}
