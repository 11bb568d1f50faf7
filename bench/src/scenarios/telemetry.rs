//! Scenario 7: what request telemetry costs Tollgate.
//!
//! Tollgate against itself in four modes: request telemetry off
//! (`--request-telemetry off`), metrics only (the default: Prometheus
//! instruments, nothing exported), and metrics plus spans exported over
//! OTLP/HTTP sampled at 1% and at 100% (`OTEL_TRACES_SAMPLER=traceidratio`).
//! The spans go to a real OTLP receiver inside this process
//! (`tollgate_e2e::otlp::Receiver`), so they are encoded and sent as in
//! production, and the report can say how many arrived: 1% should be about
//! 1% of the requests. The tracing modes export traces only (OTLP logs and
//! metrics `none`), so the difference to "metrics" is the spans alone.
//!
//! Goal: metrics plus 1% tracing keeps ≥ 97% of the throughput with
//! telemetry off. Three measurements:
//!
//! - **Side by side** (the goal's figure, `shared`): each mode and "off"
//!   serve at once on the one proxy core, a `wrk` each, and the ratio of
//!   their requests per CPU-second is taken, round after round. Both see
//!   the same machine at the same moment, which runs one after the other
//!   never do here.
//! - **One after the other**, as scenario 1 measures (`wrk`, 64
//!   connections, empty bodies): the four modes alternated run by run,
//!   forward on even rounds and backward on odd ones, each run on a
//!   Tollgate started for it. Their requests per second, CPU split and
//!   spans are reported; a run of the same binary moves by 5–25% from one
//!   to the next on this shared machine, so the paired median beside them
//!   ([`TelemetryCost::paired`]) is for information.
//! - **Instructions**: each mode's user-space instructions per request
//!   under callgrind ([`crate::callgrind`]), with nginx's for scale; they
//!   do not move with the machine. The caches are simulated in those runs
//!   too, because the telemetry costs more time than its instructions: a
//!   request's code does not fit the first-level instruction cache, so
//!   every line the telemetry adds is fetched again at every request
//!   ([`crate::callgrind::Misses`]).

mod cost;
mod shared;
mod sink;

pub use cost::{Instructions, ModeRow, TelemetryCost};
pub use shared::SharedRow;

use super::{Bench, Goal};
use crate::callgrind::{self, Caches, Load};
use crate::error::BenchError;
use crate::peers::{self, Target, Tweaks};
use crate::stats::median;
use crate::wrk;
use serde::Serialize;
use sink::Sink;
use std::time::Duration;

/// How long spans of a finished run may take to arrive: the export queue
/// sends at least every second (`OTEL_BSP_SCHEDULE_DELAY`).
const SPAN_SETTLE: Duration = Duration::from_millis(1500);

/// One way of running Tollgate's request telemetry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `--request-telemetry off`.
    Off,
    /// The default: request metrics, no spans.
    Metrics,
    /// Metrics and spans, 1% of requests sampled.
    Trace1,
    /// Metrics and spans, every request sampled.
    Trace100,
}

impl Mode {
    /// Every mode, in the order they run.
    pub const ALL: [Mode; 4] = [Mode::Off, Mode::Metrics, Mode::Trace1, Mode::Trace100];

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Metrics => "metrics",
            Mode::Trace1 => "metrics + 1% tracing",
            Mode::Trace100 => "metrics + 100% tracing",
        }
    }

    /// The sampling ratio, for the tracing modes.
    pub fn ratio(self) -> Option<&'static str> {
        match self {
            Mode::Trace1 => Some("0.01"),
            Mode::Trace100 => Some("1.0"),
            Mode::Off | Mode::Metrics => None,
        }
    }

    /// How Tollgate starts in this mode; spans go to `otlp` (a base URL).
    pub fn tweaks(self, otlp: &str) -> Tweaks {
        let label = match self {
            Mode::Off => "tollgate-telemetry-off",
            Mode::Metrics => "tollgate-metrics",
            Mode::Trace1 => "tollgate-trace-1",
            Mode::Trace100 => "tollgate-trace-100",
        };
        let mut tweaks = Tweaks {
            label: Some(label.into()),
            ..Tweaks::default()
        };
        if self == Mode::Off {
            tweaks.args = vec!["--request-telemetry".into(), "off".into()];
        }
        if let Some(ratio) = self.ratio() {
            tweaks.envs = [
                ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", ratio),
                ("OTEL_LOGS_EXPORTER", "none"),
                ("OTEL_METRICS_EXPORTER", "none"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        }
        tweaks
    }
}

/// Runs the scenario; `None` when `wrk` is missing.
///
/// # Errors
///
/// When Tollgate or nginx does not start, `wrk` fails, or a callgrind run fails.
pub fn run(bench: &Bench) -> Result<Option<TelemetryCost>, BenchError> {
    if !wrk::available() {
        bench.note("telemetry: wrk is not installed; skipped");
        return Ok(None);
    }
    let sink = Sink::start()?;
    let otlp = sink.receiver.http_endpoint();
    let mut out = TelemetryCost {
        connections: bench.plan.throughput_connections,
        ..TelemetryCost::default()
    };
    out.rows = throughput(bench, &sink, &otlp)?;
    out.shared = shared::side_by_side(bench, &sink, &otlp)?;
    if callgrind::available() {
        out.instructions = instructions(bench, &otlp)?;
    } else {
        bench.note("telemetry: valgrind is not installed; no instruction counts");
    }
    Ok(Some(out))
}

/// The four modes' wrk runs, alternated. Each run gets a Tollgate of its
/// own, started for it and stopped after it. A process can run slow for
/// minutes for reasons outside its code (a profile once showed the
/// kernel's copy of its sends several times slower than nginx's, then
/// not, for the same binary), and with one long-lived process per mode
/// that lands on one mode's every run: in `results/2026-12-07-telemetry-7/`
/// the 1% tracing process read 0.68–0.85× of "off" in five rounds of
/// twenty while its instructions said 2.3%. A fresh process per run
/// spreads such a state over the modes instead of pinning it on one.
fn throughput(bench: &Bench, sink: &Sink, otlp: &str) -> Result<Vec<ModeRow>, BenchError> {
    let mut rows: Vec<ModeRow> = Mode::ALL.iter().map(|&m| ModeRow::new(m)).collect();
    for run in 0..bench.plan.telemetry_rounds {
        let mut order: Vec<usize> = (0..rows.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let row = &mut rows[i];
            let mode = row.mode;
            let r = peers::start_tweaked(
                &bench.env,
                Target::Tollgate,
                bench.backend,
                0,
                &mode.tweaks(otlp),
            )?;
            let ((result, cpu), spans) = sink.counting(&r, mode.ratio().is_some(), || {
                r.cpu_during(|| {
                    wrk::run(
                        r.addr,
                        "/",
                        bench.plan.throughput_connections,
                        bench.plan.throughput,
                        bench.env.pin,
                    )
                })
            });
            let result = result?;
            row.runs.push(result.rps);
            row.busy.extend(cpu.map(|c| c.busy));
            row.user_share.extend(cpu.map(|c| c.user_share));
            row.failures += result.non_2xx + result.socket_errors;
            row.requests += result.requests;
            row.spans += spans.received;
            row.dropped += spans.dropped;
            bench.progress(format!(
                "telemetry run {run} {}: {:.0} rps",
                mode.name(),
                result.rps
            ));
        }
    }
    for row in &mut rows {
        row.median = median(&row.runs);
    }
    Ok(rows)
}

/// Callgrind counts of the four modes, then nginx's. A smoke run counts
/// only "off" and nginx: a debug build starts slowly under valgrind, and
/// one mode proves the path works.
fn instructions(bench: &Bench, otlp: &str) -> Result<Vec<Instructions>, BenchError> {
    let n = bench.plan.callgrind_requests;
    let modes: &[Mode] = if bench.plan.smoke {
        &[Mode::Off]
    } else {
        &Mode::ALL
    };
    let mut out = Vec::new();
    for &mode in modes {
        let count = callgrind::count(
            &bench.env,
            Target::Tollgate,
            bench.backend,
            &mode.tweaks(otlp),
            Load::Requests(n),
            Caches::Simulated,
        )?;
        bench.progress(format!(
            "telemetry callgrind {}: {:.0} instructions per request",
            mode.name(),
            count.per_request
        ));
        out.push(Instructions {
            name: mode.name().into(),
            count,
        });
    }
    if Target::Nginx.available() {
        let count = callgrind::count(
            &bench.env,
            Target::Nginx,
            bench.backend,
            &Tweaks::default(),
            Load::Requests(n),
            Caches::Simulated,
        )?;
        bench.progress(format!(
            "telemetry callgrind nginx: {:.0} instructions per request",
            count.per_request
        ));
        out.push(Instructions {
            name: Target::Nginx.name().into(),
            count,
        });
    } else {
        bench.note("telemetry: nginx is not installed; no instruction count to compare with");
    }
    Ok(out)
}

/// The scenario's goal: metrics plus 1% tracing keeps ≥ 97% of the
/// throughput with telemetry off, side by side on one core.
pub fn goals(t: &TelemetryCost) -> Vec<Goal> {
    match t.side_by_side(Mode::Trace1) {
        Some(figure) => vec![Goal::at_least(
            "7 telemetry",
            &format!(
                "throughput per CPU-second, metrics + 1% tracing / telemetry off, side by side on one core, median of {} rounds (0 B, {} conns each)",
                t.shared.first().map_or(0, |r| r.ratios.len()),
                t.connections
            ),
            figure,
            0.97,
            "x",
        )],
        None => vec![],
    }
}
