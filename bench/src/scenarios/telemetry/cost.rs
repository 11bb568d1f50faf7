//! What scenario 7 measured, and the figures read from it: the paired
//! throughput ratio the goal judges and the cost modeled from the
//! instruction counts.

use super::{Mode, SharedRow};
use crate::callgrind::Count;
use crate::stats::{median, ratio};
use serde::Serialize;

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

impl ModeRow {
    /// A row with no run yet.
    pub fn new(mode: Mode) -> ModeRow {
        ModeRow {
            mode,
            runs: vec![],
            median: 0.0,
            busy: vec![],
            user_share: vec![],
            failures: 0,
            requests: 0,
            spans: 0,
            dropped: 0,
        }
    }
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
    /// One row per mode, run one after the other.
    pub rows: Vec<ModeRow>,
    /// Each mode beside "off" on one core ("off" itself first, the control).
    pub shared: Vec<SharedRow>,
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

    /// The median over side-by-side rounds of `mode`'s requests per
    /// CPU-second over "off"'s: the goal's figure. `None` without rounds.
    pub fn side_by_side(&self, mode: Mode) -> Option<f64> {
        let row = self.shared.iter().find(|r| r.mode == mode)?;
        (!row.ratios.is_empty()).then(|| median(&row.ratios))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::telemetry::goals;

    fn row(mode: Mode, runs: &[f64]) -> ModeRow {
        ModeRow {
            runs: runs.to_vec(),
            median: median(runs),
            ..ModeRow::new(mode)
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
            shared: vec![],
            instructions: vec![],
        };
        let paired = t.paired(Mode::Trace1).unwrap_or_default();
        assert!((paired - 0.98).abs() < 1e-9, "{paired}");
        assert!((ratio(t.rps(Mode::Trace1).unwrap_or_default(), 100.0) - 0.6).abs() < 1e-9);
        assert_eq!(t.paired(Mode::Metrics), None);
    }

    /// The goal reads the side-by-side rounds' median, and only those.
    #[test]
    fn goal_from_side_by_side_rounds() {
        let mut t = TelemetryCost {
            connections: 64,
            rows: vec![row(Mode::Off, &[100.0]), row(Mode::Trace1, &[50.0])],
            shared: vec![],
            instructions: vec![],
        };
        assert!(goals(&t).is_empty());
        let mut side = SharedRow::new(Mode::Trace1);
        side.ratios = vec![0.99, 0.95, 0.98];
        t.shared.push(side);
        assert_eq!(t.side_by_side(Mode::Trace1), Some(0.98));
        assert_eq!(t.side_by_side(Mode::Metrics), None);
        let goals = goals(&t);
        assert_eq!(goals.len(), 1);
        assert_eq!(goals[0].value, 0.98);
        assert!(goals[0].pass);
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
                misses: None,
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
            shared: vec![],
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
