//! Waiting for telemetry to arrive.
//!
//! Exporters batch and send on their own schedule, so a test cannot assert
//! right after the request that caused a span. These helpers re-check a
//! condition every time the receiver accepts or refuses a request (no
//! polling interval to tune) and, on timeout, panic with a summary of what
//! did arrive: the failure message then shows "got spans [a, b]" rather
//! than only "timed out". They panic like `assert!`, being assertions.

use std::fmt::Write as _;
use std::time::Duration;

use super::{LogRecord, MetricPoint, Receiver, Span};

impl Receiver {
    /// Waits until `check` returns `Some`, re-running it after every
    /// request the receiver handles, and returns its value.
    ///
    /// # Panics
    ///
    /// When `timeout` passes first; the message names `what` and lists what
    /// was received.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Receiver) -> Option<T>,
    ) -> T {
        let mut changes = self.shared.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            changes.borrow_and_update();
            if let Some(found) = check(self) {
                return found;
            }
            // The sender lives in `self.shared`, so `changed` only ends on a
            // change; the deadline ends the wait otherwise.
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                if let Some(found) = check(self) {
                    return found;
                }
                panic!(
                    "timed out after {timeout:?} waiting for {what}; {}",
                    self.summary()
                );
            }
        }
    }

    /// Waits until at least `n` spans have arrived; returns all of them.
    ///
    /// # Panics
    ///
    /// On timeout, listing what was received.
    pub async fn wait_for_spans(&self, n: usize, timeout: Duration) -> Vec<Span> {
        self.wait_until(&format!("{n} spans"), timeout, |r| {
            let spans = r.spans();
            (spans.len() >= n).then_some(spans)
        })
        .await
    }

    /// Waits for a span named `name`; returns the first one.
    ///
    /// # Panics
    ///
    /// On timeout, listing what was received.
    pub async fn wait_for_span(&self, name: &str, timeout: Duration) -> Span {
        self.wait_until(&format!("a span named {name:?}"), timeout, |r| {
            r.spans().into_iter().find(|s| s.name == name)
        })
        .await
    }

    /// Waits for a data point of metric `name` whose attributes include
    /// every `(key, value)` given; returns the latest such point.
    ///
    /// # Panics
    ///
    /// On timeout, listing what was received.
    pub async fn wait_for_metric(
        &self,
        name: &str,
        attributes: &[(&str, &str)],
        timeout: Duration,
    ) -> MetricPoint {
        let what = format!("metric {name:?} with attributes {attributes:?}");
        self.wait_until(&what, timeout, |r| r.latest_metric(name, attributes))
            .await
    }

    /// Waits until at least `n` log records have arrived; returns them all.
    ///
    /// # Panics
    ///
    /// On timeout, listing what was received.
    pub async fn wait_for_logs(&self, n: usize, timeout: Duration) -> Vec<LogRecord> {
        self.wait_until(&format!("{n} log records"), timeout, |r| {
            let logs = r.logs();
            (logs.len() >= n).then_some(logs)
        })
        .await
    }

    /// One paragraph on what was received: span names, metric names with
    /// attributes, log bodies, refused requests. Used in panic messages.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let spans = self.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        let _ = write!(out, "received {} spans {names:?}", spans.len());
        let points = self.metrics();
        let metrics: Vec<String> = points
            .iter()
            .map(|p| format!("{}{:?}={:?}", p.name, p.attributes, p.value))
            .collect();
        let _ = write!(out, ", {} metric points {metrics:?}", points.len());
        let logs = self.logs();
        let bodies: Vec<String> = logs.iter().map(|l| l.body.to_string()).collect();
        let _ = write!(out, ", {} log records {bodies:?}", logs.len());
        let _ = write!(out, ", {} refused requests", self.rejected());
        out
    }
}
