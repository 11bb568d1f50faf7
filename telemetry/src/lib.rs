//! Telemetry for Tollgate's binaries: application logs, traces, metrics
//! and OTLP log records, set up in one place and configured by the
//! standard OpenTelemetry variables (`OTEL_EXPORTER_OTLP_ENDPOINT`,
//! `OTEL_EXPORTER_OTLP_PROTOCOL`, `OTEL_SERVICE_NAME`,
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, `OTEL_PROPAGATORS`,
//! ...).
//!
//! ```text
//!  main ──► Telemetry::init(service) ──► logs     (tracing, stderr, PUT /log-level)
//!                                   ├──► metrics  (Prometheus /metrics; OTLP when configured)
//!                                   ├──► traces   (OTLP when configured; bounded queue:
//!                                   │              request spans, and `WorkSpan`s of a change)
//!                                   ├──► records  (OTLP access-log records when configured)
//!                                   └──► propagation (W3C by default, B3 on request)
//! ```
//!
//! Export never blocks a request: spans and records go through bounded
//! queues whose overflow is counted in `tollgate.telemetry.dropped`.

mod b3;
mod env;
mod export_health;
mod export_proxy;
mod export_reload;
mod export_tls;
mod logs;
mod metrics;
mod propagation;
mod queue;
mod records;
mod resource;
mod trace_line;
mod traces;
mod work_span;

pub use env::{OtelEnv, Signal};
pub use export_health::ExportHealth;
pub use export_proxy::{PROXY_VARIABLES, env_proxies};
pub use logs::{LogControl, LogFormat, LogLevelError, init_logs};
pub use metrics::{MetricsError, MetricsPipeline};
pub use propagation::Propagation;
pub use records::{ACCESS_LOG_SCOPE, RecordsPipeline};
pub use resource::POD_VARIABLES;
use resource::resource;
pub use trace_line::{TRACEPARENT, TRACESTATE, TraceIds, TraceLine};
pub use traces::{SCOPE, SamplerSpec, TracesPipeline, attribute};
pub use work_span::WorkSpan;

use opentelemetry::metrics::Counter;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why telemetry could not be set up.
#[derive(Debug, Error)]
pub enum TelemetryError {
    /// The metrics pipeline.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// An OTLP exporter (traces or logs).
    #[error("OTLP exporter: {0}")]
    Otlp(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// Everything a binary reports through.
#[derive(Clone, Debug)]
pub struct Telemetry {
    /// The log filter, changeable at run time.
    pub logs: LogControl,
    /// Instruments and `/metrics`.
    pub metrics: MetricsPipeline,
    /// Spans.
    pub traces: TracesPipeline,
    /// OTLP log records (the access log).
    pub records: RecordsPipeline,
    /// Trace-context propagation.
    pub propagation: Propagation,
    /// `tollgate.telemetry.dropped{signal}`: what any export queue of the
    /// process (spans, OTLP records, the access log) had to drop.
    pub dropped: Counter<u64>,
    /// How export requests to the collector fared
    /// (`tollgate.telemetry.exports{signal,result}`).
    pub exports: Arc<ExportHealth>,
}

impl Telemetry {
    /// Sets up logs (format `format`) and the OpenTelemetry pipelines for
    /// `service` (the default `service.name`; `OTEL_SERVICE_NAME` wins).
    /// Call once, inside the Tokio runtime, first thing in `main`.
    ///
    /// # Errors
    ///
    /// An exporter whose configuration (from `OTEL_*`) is invalid.
    pub fn init(service: &'static str, format: LogFormat) -> Result<Telemetry, TelemetryError> {
        let logs = init_logs(format);
        let env = OtelEnv::from_process();
        let mut telemetry = Telemetry::from_env(service, &env)?;
        telemetry.logs = logs;
        Ok(telemetry)
    }

    /// The pipelines `env` describes, without touching the global log
    /// subscriber (tests, in-process use).
    ///
    /// # Errors
    ///
    /// As [`Telemetry::init`].
    pub fn from_env(service: &'static str, env: &OtelEnv) -> Result<Telemetry, TelemetryError> {
        let resource = resource(service, env);
        let exports = Arc::new(ExportHealth::default());
        let metrics = MetricsPipeline::new(env, resource.clone(), &exports)?;
        let dropped = dropped_counter(&metrics);
        let traces = TracesPipeline::new(env, resource.clone(), dropped.clone(), &exports)?;
        let records = RecordsPipeline::new(env, resource, dropped.clone(), &exports)?;
        Ok(Telemetry {
            logs: LogControl::default(),
            metrics,
            traces,
            records,
            propagation: Propagation::from_env(env),
            dropped,
            exports,
        })
    }

    /// Telemetry that exports nothing: Prometheus metrics only, no spans
    /// or records (tests, benchmarks of the bare proxy).
    pub fn disabled() -> Telemetry {
        let metrics = MetricsPipeline::prometheus_only();
        Telemetry {
            logs: LogControl::default(),
            dropped: dropped_counter(&metrics),
            exports: Arc::new(ExportHealth::default()),
            metrics,
            traces: TracesPipeline::off(SamplerSpec::ParentBasedRatio(1.0)),
            records: RecordsPipeline::off(),
            propagation: Propagation::default(),
        }
    }

    /// Flushes spans, records and metrics, then shuts the pipelines down.
    /// Bounded: a collector that does not answer costs at most `timeout`
    /// in all, not per pipeline.
    pub async fn shutdown(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        // The metrics reader's shutdown (a last push) blocks its thread
        // until the export ends, which a stuck collector makes its own
        // timeout (30 s by default): on a detached thread of its own, it
        // neither holds a runtime worker nor outlives the bound, since the
        // process exits once this returns.
        let (pushed, metrics_done) = tokio::sync::oneshot::channel::<()>();
        let metrics = self.metrics.clone();
        let spawned = std::thread::Builder::new()
            .name("tollgate-metrics-shutdown".into())
            .spawn(move || {
                metrics.shutdown();
                let _ = pushed.send(());
            });
        let all = async {
            tokio::join!(self.traces.flush(timeout), self.records.flush(timeout));
            if spawned.is_ok() {
                let _ = metrics_done.await;
            }
        };
        if tokio::time::timeout_at(deadline, all).await.is_err() {
            tracing::warn!(
                ?timeout,
                "telemetry not flushed in time (collector slow or down); the rest is dropped"
            );
        }
        self.records.shutdown();
    }
}

/// The one counter of everything export queues drop, by `signal`.
fn dropped_counter(metrics: &MetricsPipeline) -> Counter<u64> {
    metrics
        .meter("tollgate-telemetry")
        .u64_counter("tollgate.telemetry.dropped")
        .with_description(
            "Spans, log records and access-log lines dropped because their queue was full (collector or log reader slow or down)",
        )
        .build()
}

impl Default for Telemetry {
    /// [`Telemetry::disabled`].
    fn default() -> Self {
        Telemetry::disabled()
    }
}

/// Largest `PUT /log-level` body read.
const LOG_LEVEL_BODY_LIMIT: usize = 4096;

/// Answers an admin port's `GET`/`PUT /log-level` request `req` (body: a
/// filter in `RUST_LOG` syntax, at most 4 KiB): `(status, text)`.
pub async fn log_level<B>(control: &LogControl, req: http::Request<B>) -> (u16, String)
where
    B: http_body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let method = req.method().clone();
    let limited = http_body_util::Limited::new(req.into_body(), LOG_LEVEL_BODY_LIMIT);
    match http_body_util::BodyExt::collect(limited).await {
        Ok(body) => log_level_request(control, &method, &body.to_bytes()),
        Err(_) => (400, "the filter must be at most 4 KiB\n".to_string()),
    }
}

/// Answers `PUT /log-level` (body: a filter in `RUST_LOG` syntax) and
/// `GET /log-level` on an admin port: `(status, body)`.
pub fn log_level_request(
    control: &LogControl,
    method: &http::Method,
    body: &[u8],
) -> (u16, String) {
    match *method {
        http::Method::GET => (200, format!("{}\n", control.current())),
        http::Method::PUT => match std::str::from_utf8(body) {
            Ok(filter) => match control.set(filter) {
                Ok(()) => {
                    tracing::info!(filter = %control.current(), "log filter changed");
                    (200, format!("{}\n", control.current()))
                }
                Err(e) => (400, format!("{e}\n")),
            },
            Err(_) => (400, "the filter must be UTF-8\n".to_string()),
        },
        _ => (405, "use GET or PUT\n".to_string()),
    }
}
