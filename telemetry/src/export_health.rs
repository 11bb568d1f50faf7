//! How the process's exports to the collector fare.
//!
//! A collector that refuses the exporter (an untrusted certificate, a
//! wrong token, a wrong endpoint) would otherwise lose every span, record
//! and metric without a trace of its own. So every export request is
//! counted in `tollgate.telemetry.exports{signal, result}` (`ok` or
//! `failed`), to alert on, and the log says when a signal's exports start
//! failing (at warn, with the error) and when they recover (at info, with
//! how many failed): once per outage, not once per batch, so a collector
//! down for an hour does not fill the log.

use crate::env::Signal;
use crate::export_reload::Reloading;
use opentelemetry::KeyValue;
use opentelemetry::metrics::Meter;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::Temporality;
use opentelemetry_sdk::metrics::data::ResourceMetrics;
use opentelemetry_sdk::metrics::exporter::PushMetricExporter;
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// One signal's export results.
#[derive(Debug, Default)]
struct SignalHealth {
    ok: AtomicU64,
    failed: AtomicU64,
    /// Failures since the last success (0: healthy).
    failing_for: AtomicU64,
    /// Whether the start of the current outage was logged.
    reported: AtomicBool,
}

/// Every signal's export results: counted in `tollgate.telemetry.exports`,
/// and a start or end of failures logged once.
#[derive(Debug, Default)]
pub struct ExportHealth {
    traces: SignalHealth,
    metrics: SignalHealth,
    logs: SignalHealth,
}

impl ExportHealth {
    fn of(&self, signal: Signal) -> &SignalHealth {
        match signal {
            Signal::Traces => &self.traces,
            Signal::Metrics => &self.metrics,
            Signal::Logs => &self.logs,
        }
    }

    /// Records how one export request of `signal` ended.
    pub(crate) fn record<E: Display>(&self, signal: Signal, result: &Result<(), E>) {
        let health = self.of(signal);
        match result {
            Ok(()) => {
                health.ok.fetch_add(1, Ordering::Relaxed);
                let failed = health.failing_for.swap(0, Ordering::Relaxed);
                if failed > 0 && health.reported.swap(false, Ordering::Relaxed) {
                    tracing::info!(signal = signal.label(), failed, "OTLP export recovered");
                }
            }
            Err(error) => {
                health.failed.fetch_add(1, Ordering::Relaxed);
                health.failing_for.fetch_add(1, Ordering::Relaxed);
                if !health.reported.swap(true, Ordering::Relaxed) {
                    tracing::warn!(
                        signal = signal.label(),
                        %error,
                        "OTLP export failed; what it carried is lost, and further failures \
                         are counted in tollgate_telemetry_exports_total{{result=\"failed\"}} \
                         until one succeeds"
                    );
                }
            }
        }
    }

    /// Export requests of `signal` so far: `(ok, failed)`.
    pub fn counts(&self, signal: Signal) -> (u64, u64) {
        let health = self.of(signal);
        (
            health.ok.load(Ordering::Relaxed),
            health.failed.load(Ordering::Relaxed),
        )
    }

    /// Registers `tollgate.telemetry.exports` on `meter`, read from these
    /// counts when a reader collects.
    pub(crate) fn register(self: &Arc<Self>, meter: &Meter) {
        let health = Arc::clone(self);
        // The instrument lives as long as the meter provider keeps its
        // callback; the handle itself is not needed.
        let _counter = meter
            .u64_observable_counter("tollgate.telemetry.exports")
            .with_unit("{request}")
            .with_description(
                "OTLP export requests to the collector by signal and result (ok, failed); \
                 a failed one loses what it carried",
            )
            .with_callback(move |observer| {
                for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
                    let (ok, failed) = health.counts(signal);
                    for (result, n) in [("ok", ok), ("failed", failed)] {
                        observer.observe(
                            n,
                            &[
                                KeyValue::new("signal", signal.label()),
                                KeyValue::new("result", result),
                            ],
                        );
                    }
                }
            })
            .build();
    }
}

/// A metric exporter, following its TLS files, whose results go to an
/// [`ExportHealth`].
#[derive(Debug)]
pub(crate) struct Observed<E> {
    pub(crate) inner: Reloading<E>,
    pub(crate) health: Arc<ExportHealth>,
}

impl<E: PushMetricExporter> PushMetricExporter for Observed<E> {
    async fn export(&self, metrics: &ResourceMetrics) -> OTelSdkResult {
        let current = self.inner.current();
        let result = current.export(metrics).await;
        self.health.record(Signal::Metrics, &result);
        result
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.current().force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.current().shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> Temporality {
        self.inner.current().temporality()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Results are counted per signal; an outage's failures are counted
    /// from its start to the next success.
    #[test]
    fn results_are_counted_per_signal() {
        let health = ExportHealth::default();
        let ok: Result<(), String> = Ok(());
        let failed: Result<(), String> = Err("refused".into());
        health.record(Signal::Traces, &failed);
        health.record(Signal::Traces, &failed);
        assert_eq!(health.traces.failing_for.load(Ordering::Relaxed), 2);
        assert!(health.traces.reported.load(Ordering::Relaxed));
        health.record(Signal::Traces, &ok);
        assert_eq!(health.traces.failing_for.load(Ordering::Relaxed), 0);
        assert!(!health.traces.reported.load(Ordering::Relaxed));
        health.record(Signal::Logs, &ok);
        assert_eq!(health.counts(Signal::Traces), (1, 2));
        assert_eq!(health.counts(Signal::Logs), (1, 0));
        assert_eq!(health.counts(Signal::Metrics), (0, 0));
    }
}
