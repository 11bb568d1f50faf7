//! Scenario 7's goal figure: each telemetry mode side by side with "off"
//! on one core, at the same time.
//!
//! Runs made one after the other on this shared machine move by 5–25%
//! from one to the next, whatever the binary, and the machine's speed
//! drifts within a round too, so even paired rounds leave the median
//! several percent of noise: more than the 3% the goal judges. Two
//! Tollgates serving at once on the same core see the same machine:
//! whatever slows the core slows both alike. Each gets its own `wrk`
//! (the same connections as scenario 1) and the scheduler shares the core
//! between them; each one's requests per second of the CPU time it was
//! given (the scheduler's nanosecond accounting, [`Child::run_nanos`]) is
//! what the core serves with that Tollgate alone, so the ratio of the two
//! is the mode's throughput over "off"'s. Which one starts first and
//! which one the first `wrk` loads alternate by round.
//!
//! The first row is a control: "off" beside another "off". Its rounds
//! show the method's own spread and that neither side of a pair is
//! favoured (a figure away from 1.000 would say the method is biased).
//!
//! [`Child::run_nanos`]: crate::procs::Child::run_nanos

use super::Mode;
use super::sink::Sink;
use crate::error::BenchError;
use crate::peers::{self, Running, Target, Tweaks};
use crate::scenarios::Bench;
use crate::stats::ratio;
use crate::wrk::{self, WrkResult};
use serde::Serialize;
use std::time::{Duration, Instant};

/// One mode's side-by-side rounds with "off".
#[derive(Clone, Debug, Serialize)]
pub struct SharedRow {
    /// The mode beside "off".
    pub mode: Mode,
    /// Per round: the mode's requests per CPU-second over "off"'s.
    pub ratios: Vec<f64>,
    /// Per round: the mode's requests over "off"'s (equal to `ratios`
    /// when the scheduler split the core evenly).
    pub request_ratios: Vec<f64>,
    /// Per round: the mode's share of the CPU time the two used.
    pub shares: Vec<f64>,
    /// Per round: the CPU time the two used together, in core-seconds
    /// per second (near 1.0: the core was the limit).
    pub busy: Vec<f64>,
    /// Non-2xx responses plus socket errors, both processes, all rounds.
    pub failures: u64,
    /// Requests both processes served over all rounds.
    pub requests: u64,
    /// Server spans the OTLP receiver got from the mode's process.
    pub spans: u64,
    /// Spans it dropped because its export queue was full.
    pub dropped: u64,
}

impl SharedRow {
    /// A row with no round yet.
    pub(super) fn new(mode: Mode) -> SharedRow {
        SharedRow {
            mode,
            ratios: vec![],
            request_ratios: vec![],
            shares: vec![],
            busy: vec![],
            failures: 0,
            requests: 0,
            spans: 0,
            dropped: 0,
        }
    }
}

/// What one process served in a side-by-side run.
struct Served {
    load: WrkResult,
    nanos: u64,
}

impl Served {
    fn per_cpu_second(&self) -> f64 {
        ratio(self.load.requests as f64, self.nanos as f64 / 1e9)
    }
}

/// Every mode beside "off" ("off" itself as the control),
/// `telemetry_shared_rounds` times.
pub(super) fn side_by_side(
    bench: &Bench,
    sink: &Sink,
    otlp: &str,
) -> Result<Vec<SharedRow>, BenchError> {
    let modes = [Mode::Off, Mode::Metrics, Mode::Trace1, Mode::Trace100];
    let mut rows: Vec<SharedRow> = modes.iter().map(|&m| SharedRow::new(m)).collect();
    for round in 0..bench.plan.telemetry_shared_rounds {
        for row in &mut rows {
            let flipped = round % 2 == 1;
            let (off, mode) = pair(bench, row.mode, otlp, flipped)?;
            let (served, spans) = sink.counting(&mode, row.mode.ratio().is_some(), || {
                serve_both(bench, &off, &mode, flipped)
            });
            let (off_served, mode_served, wall) = served?;
            row.spans += spans.received;
            row.dropped += spans.dropped;
            record(row, &off_served, &mode_served, wall);
            bench.progress(format!(
                "telemetry side by side {round} {} / off: {:.3} per CPU-second ({} / {} requests)",
                row.mode.name(),
                row.ratios.last().copied().unwrap_or(0.0),
                mode_served.load.requests,
                off_served.load.requests,
            ));
        }
    }
    Ok(rows)
}

/// Starts "off" and `mode`, both on the proxy core; `flipped` starts
/// `mode` first.
fn pair(
    bench: &Bench,
    mode: Mode,
    otlp: &str,
    flipped: bool,
) -> Result<(Running, Running), BenchError> {
    let start = |tweaks: &Tweaks| {
        peers::start_tweaked(&bench.env, Target::Tollgate, bench.backend, 0, tweaks)
    };
    let off = Mode::Off.tweaks(otlp);
    let mut other = mode.tweaks(otlp);
    if mode == Mode::Off {
        // The control's second "off" needs a folder of its own.
        other.label = Some("tollgate-telemetry-off-beside".into());
    }
    Ok(if flipped {
        let other = start(&other)?;
        (start(&off)?, other)
    } else {
        let off = start(&off)?;
        (off, start(&other)?)
    })
}

/// Loads `off` and `mode` at once, a `wrk` each, and reads the CPU time
/// each was given meanwhile, and the wall-clock time it took.
fn serve_both(
    bench: &Bench,
    off: &Running,
    mode: &Running,
    flipped: bool,
) -> Result<(Served, Served, Duration), BenchError> {
    let nanos = |r: &Running| r.child.as_ref().map_or(0, crate::procs::Child::run_nanos);
    let before = (nanos(off), nanos(mode));
    let started = Instant::now();
    let load = |r: &Running| {
        wrk::run(
            r.addr,
            "/",
            bench.plan.throughput_connections,
            bench.plan.telemetry_shared,
            bench.env.pin,
        )
    };
    let (first, second) = if flipped { (mode, off) } else { (off, mode) };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| load(first));
        let b = load(second);
        (a.join(), b)
    });
    let a = a.map_err(|_| BenchError::ToolOutput {
        tool: "wrk".into(),
        detail: "the thread running it panicked".into(),
    })??;
    let b = b?;
    let wall = started.elapsed();
    let (off_load, mode_load) = if flipped { (b, a) } else { (a, b) };
    Ok((
        Served {
            load: off_load,
            nanos: nanos(off).saturating_sub(before.0),
        },
        Served {
            load: mode_load,
            nanos: nanos(mode).saturating_sub(before.1),
        },
        wall,
    ))
}

/// Adds one round's figures to `row`; the round took `wall`.
fn record(row: &mut SharedRow, off: &Served, mode: &Served, wall: Duration) {
    row.ratios
        .push(ratio(mode.per_cpu_second(), off.per_cpu_second()));
    row.request_ratios
        .push(ratio(mode.load.requests as f64, off.load.requests as f64));
    let both = (mode.nanos + off.nanos) as f64;
    row.shares.push(ratio(mode.nanos as f64, both));
    row.busy.push(ratio(both / 1e9, wall.as_secs_f64()));
    for s in [off, mode] {
        row.failures += s.load.non_2xx + s.load.socket_errors;
        row.requests += s.load.requests;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(requests: u64, nanos: u64) -> Served {
        Served {
            load: WrkResult {
                rps: 0.0,
                requests,
                non_2xx: 1,
                socket_errors: 0,
            },
            nanos,
        }
    }

    /// A round's ratio is per CPU-second: a mode that got less of the
    /// core is not charged for serving fewer requests.
    #[test]
    fn ratio_per_cpu_second() {
        let mut row = SharedRow::new(Mode::Trace1);
        let off = served(100_000, 2_500_000_000);
        let mode = served(90_000, 2_250_000_000);
        record(&mut row, &off, &mode, Duration::from_secs(5));
        assert!((row.ratios[0] - 1.0).abs() < 1e-9, "{:?}", row.ratios);
        assert!((row.request_ratios[0] - 0.9).abs() < 1e-9);
        assert!((row.shares[0] - 2.25 / 4.75).abs() < 1e-9);
        assert!((row.busy[0] - 0.95).abs() < 1e-9);
        assert_eq!((row.failures, row.requests), (2, 190_000));
    }
}
