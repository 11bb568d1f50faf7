//! What scenarios that compare modes of one proxy share (auth, rate
//! limits): a row of alternated throughput runs per mode, and a callgrind
//! count per mode.

use crate::callgrind::Count;
use crate::stats::median;
use crate::wrk::WrkResult;
use serde::Serialize;

/// One mode's throughput runs.
#[derive(Clone, Debug, Serialize)]
pub struct ModeRow<M> {
    /// The mode.
    pub mode: M,
    /// Requests per second of each run.
    pub runs: Vec<f64>,
    /// Their median.
    pub median: f64,
    /// Share of its core the proxy was busy in each run.
    pub busy: Vec<f64>,
    /// Non-2xx responses plus socket errors over all runs.
    pub failures: u64,
    /// Requests completed over all runs.
    pub requests: u64,
}

impl<M> ModeRow<M> {
    /// A row with no run yet.
    pub fn new(mode: M) -> ModeRow<M> {
        ModeRow {
            mode,
            runs: vec![],
            median: 0.0,
            busy: vec![],
            failures: 0,
            requests: 0,
        }
    }

    /// Adds one wrk run and how busy the proxy was meanwhile.
    pub fn record(&mut self, result: &WrkResult, busy: Option<f64>) {
        self.runs.push(result.rps);
        self.busy.extend(busy);
        self.failures += result.non_2xx + result.socket_errors;
        self.requests += result.requests;
        self.median = median(&self.runs);
    }
}

/// One mode's callgrind count.
#[derive(Clone, Debug, Serialize)]
pub struct Instructions<M> {
    /// The mode.
    pub mode: M,
    /// The count.
    pub count: Count,
}

/// Median requests per second of `mode` among `rows`.
pub fn rps<M: PartialEq>(rows: &[ModeRow<M>], mode: &M) -> Option<f64> {
    rows.iter().find(|r| r.mode == *mode).map(|r| r.median)
}

/// Instructions per request of `mode` among `counts`.
pub fn per_request<M: PartialEq>(counts: &[Instructions<M>], mode: &M) -> Option<f64> {
    counts
        .iter()
        .find(|i| i.mode == *mode)
        .map(|i| i.count.per_request)
}
