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
//! Throughput is measured as in scenario 1 (`wrk`, 64 connections, empty
//! bodies), the four modes alternated run by run. Goal: metrics plus 1%
//! tracing keeps ≥ 97% of the throughput with telemetry off.
//!
//! A 3% difference is smaller than the spread of single runs here (a run
//! of the same binary moves by 5–10% from one to the next on this shared
//! machine), so the goal is read from paired runs: each round runs every
//! mode once, in forward order on even rounds and backward on odd ones (so
//! a drift of the machine during a round favours no mode), and the goal's
//! figure is the median over rounds of each round's ratio to "off"
//! ([`TelemetryCost::paired`]). The ratio of the modes' medians is
//! reported beside it. Each mode's user-space instructions per request are
//! counted under callgrind as well ([`crate::callgrind`]), with nginx's for
//! scale: they do not move with the machine.

mod sink;

use super::{Bench, Goal};
use crate::callgrind::{self, Count, Load};
use crate::error::BenchError;
use crate::peers::{self, Running, Target, Tweaks};
use crate::stats::{median, ratio};
use crate::wrk;
use serde::Serialize;
use sink::{Sink, dropped_spans};
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

/// One mode's throughput runs.
#[derive(Clone, Debug, Serialize)]
pub struct ModeRow {
    /// The mode.
    pub mode: Mode,
    /// Requests per second of each run.
    pub runs: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// Share of its core Tollgate was busy in each run.
    pub busy: Vec<f64>,
    /// Share of that busy time Tollgate spent in user space, each run.
    pub user_share: Vec<f64>,
    /// Non-2xx responses plus socket errors over all runs.
    pub failures: u64,
    /// Requests completed over all runs.
    pub requests: u64,
    /// Server spans the OTLP receiver got over all runs.
    pub spans: u64,
    /// Spans Tollgate dropped because its export queue was full.
    pub dropped: u64,
}

/// One target's callgrind count.
#[derive(Clone, Debug, Serialize)]
pub struct Instructions {
    /// `off`, `metrics`, ... or `nginx`.
    pub name: String,
    /// The count.
    pub count: Count,
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TelemetryCost {
    /// Connections used by wrk.
    pub connections: usize,
    /// One row per mode.
    pub rows: Vec<ModeRow>,
    /// Instructions per request: the four modes, then nginx.
    pub instructions: Vec<Instructions>,
}

impl TelemetryCost {
    /// The median over rounds of `mode`'s requests per second over "off"'s
    /// in the same round; `None` without both rows.
    pub fn paired(&self, mode: Mode) -> Option<f64> {
        let row = |m: Mode| self.rows.iter().find(|r| r.mode == m);
        let (runs, off) = (row(mode)?, row(Mode::Off)?);
        let ratios: Vec<f64> = runs
            .runs
            .iter()
            .zip(&off.runs)
            .map(|(&a, &b)| ratio(a, b))
            .collect();
        (!ratios.is_empty()).then(|| median(&ratios))
    }

    /// The share of CPU time `mode`'s telemetry adds by its instruction
    /// count: its user-space instructions over "off"'s, minus one, times
    /// the share of "off"'s CPU time spent in user space (the kernel's
    /// share, the sockets, is the same whatever the telemetry). It
    /// assumes a user-space instruction costs the same time in every mode;
    /// unlike requests per second it hardly moves between runs. `None`
    /// without the counts or the CPU split.
    pub fn modeled_cost(&self, mode: Mode) -> Option<f64> {
        let (count, off) = (
            self.per_request(mode.name())?,
            self.per_request(Mode::Off.name())?,
        );
        let shares = &self.rows.iter().find(|r| r.mode == Mode::Off)?.user_share;
        (off > 0.0 && !shares.is_empty()).then(|| (count / off - 1.0) * median(shares))
    }

    /// Median requests per second of `mode`.
    pub fn rps(&self, mode: Mode) -> Option<f64> {
        self.rows.iter().find(|r| r.mode == mode).map(|r| r.median)
    }

    /// Callgrind instructions per request of `name`.
    pub fn per_request(&self, name: &str) -> Option<f64> {
        self.instructions
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.count.per_request)
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
    if callgrind::available() {
        out.instructions = instructions(bench, &otlp)?;
    } else {
        bench.note("telemetry: valgrind is not installed; no instruction counts");
    }
    Ok(Some(out))
}

/// The four modes' wrk runs, alternated.
fn throughput(bench: &Bench, sink: &Sink, otlp: &str) -> Result<Vec<ModeRow>, BenchError> {
    let running: Vec<(Mode, Running)> = Mode::ALL
        .iter()
        .map(|&m| {
            let r = peers::start_tweaked(
                &bench.env,
                Target::Tollgate,
                bench.backend,
                0,
                &m.tweaks(otlp),
            );
            r.map(|r| (m, r))
        })
        .collect::<Result<_, _>>()?;
    // The readiness probes' spans.
    std::thread::sleep(SPAN_SETTLE);
    sink.take_server_spans();
    let mut rows: Vec<ModeRow> = Mode::ALL
        .iter()
        .map(|&mode| ModeRow {
            mode,
            runs: vec![],
            median: 0.0,
            busy: vec![],
            user_share: vec![],
            failures: 0,
            requests: 0,
            spans: 0,
            dropped: 0,
        })
        .collect();
    for run in 0..bench.plan.telemetry_rounds {
        let mut order: Vec<usize> = (0..running.len()).collect();
        if run % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let ((mode, r), row) = (&running[i], &mut rows[i]);
            let (result, cpu) = r.cpu_during(|| {
                wrk::run(
                    r.addr,
                    "/",
                    bench.plan.throughput_connections,
                    bench.plan.throughput,
                    bench.env.pin,
                )
            });
            let result = result?;
            row.runs.push(result.rps);
            row.busy.extend(cpu.map(|c| c.busy));
            row.user_share.extend(cpu.map(|c| c.user_share));
            row.failures += result.non_2xx + result.socket_errors;
            row.requests += result.requests;
            if mode.ratio().is_some() {
                // Let this run's spans arrive before the next run starts.
                std::thread::sleep(SPAN_SETTLE);
                row.spans += sink.take_server_spans();
            }
            bench.progress(format!(
                "telemetry run {run} {}: {:.0} rps",
                mode.name(),
                result.rps
            ));
        }
    }
    for ((_, r), row) in running.iter().zip(rows.iter_mut()) {
        row.median = median(&row.runs);
        row.dropped = r.admin.map_or(0, dropped_spans);
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
/// throughput with telemetry off, as the median of paired rounds.
pub fn goals(t: &TelemetryCost) -> Vec<Goal> {
    match t.paired(Mode::Trace1) {
        Some(paired) => vec![Goal::at_least(
            "7 telemetry",
            &format!(
                "throughput metrics + 1% tracing / telemetry off, median of {} paired rounds (0 B, {} conns)",
                t.rows.first().map_or(0, |r| r.runs.len()),
                t.connections
            ),
            paired,
            0.97,
            "x",
        )],
        None => vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mode: Mode, runs: &[f64]) -> ModeRow {
        ModeRow {
            mode,
            runs: runs.to_vec(),
            median: median(runs),
            busy: vec![],
            user_share: vec![],
            failures: 0,
            requests: 0,
            spans: 0,
            dropped: 0,
        }
    }

    /// The paired figure is the median of the rounds' ratios, which a
    /// slow round lowers for both modes alike; the ratio of medians is
    /// not paired.
    #[test]
    fn paired_rounds() {
        let t = TelemetryCost {
            connections: 64,
            rows: vec![
                row(Mode::Off, &[100.0, 50.0, 100.0]),
                row(Mode::Trace1, &[98.0, 49.0, 60.0]),
            ],
            instructions: vec![],
        };
        let paired = t.paired(Mode::Trace1).unwrap_or_default();
        assert!((paired - 0.98).abs() < 1e-9, "{paired}");
        assert!((ratio(t.rps(Mode::Trace1).unwrap_or_default(), 100.0) - 0.6).abs() < 1e-9);
        assert_eq!(t.paired(Mode::Metrics), None);
        let goals = goals(&t);
        assert_eq!(goals.len(), 1);
    }

    fn counted(name: &str, per_request: f64) -> Instructions {
        Instructions {
            name: name.into(),
            count: Count {
                loaded: 0,
                idle: 0,
                requests: 1,
                per_request,
                seconds: 0.0,
            },
        }
    }

    /// The modeled cost scales the instructions added by the user-space
    /// share of "off"'s CPU time, and needs both.
    #[test]
    fn modeled_cost_from_instructions_and_user_share() {
        let mut off = row(Mode::Off, &[100.0, 100.0, 100.0]);
        off.user_share = vec![0.2, 0.25, 0.3];
        let mut t = TelemetryCost {
            connections: 64,
            rows: vec![off, row(Mode::Trace1, &[97.0])],
            instructions: vec![
                counted("off", 20_000.0),
                counted("metrics + 1% tracing", 22_000.0),
            ],
        };
        let cost = t.modeled_cost(Mode::Trace1).unwrap_or_default();
        assert!((cost - 0.025).abs() < 1e-9, "{cost}");
        assert_eq!(t.modeled_cost(Mode::Metrics), None);
        t.rows[0].user_share.clear();
        assert_eq!(t.modeled_cost(Mode::Trace1), None);
    }
}
