//! The process's meter provider: one set of instruments, read by a
//! Prometheus exporter (served as text at `/metrics` on the admin port)
//! and, when OTLP metrics are configured, by a periodic OTLP reader too.
//!
//! Instruments are named by the OpenTelemetry semantic conventions
//! (`http.server.request.duration`, seconds) or `tollgate.<component>.*`;
//! the Prometheus exporter turns them into `http_server_request_duration_seconds`
//! and `tollgate_<component>_*` with units and `_total` suffixes.

use crate::env::{OtelEnv, Signal};
use crate::export_health::{ExportHealth, Observed};
use crate::export_reload::Reloading;
use crate::export_tls::otlp_exporter;
use opentelemetry::metrics::{Meter, MeterProvider};
use opentelemetry_otlp::{WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use prometheus::{Encoder, Registry, TextEncoder};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// How often OTLP metrics are pushed unless `OTEL_METRIC_EXPORT_INTERVAL`
/// (milliseconds) says otherwise.
const EXPORT_INTERVAL: Duration = Duration::from_secs(60);

/// Why the metrics pipeline could not be built.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// The Prometheus exporter refused its registry.
    #[error("prometheus exporter: {0}")]
    Prometheus(String),
    /// The OTLP exporter's configuration is invalid.
    #[error("OTLP metrics exporter: {0}")]
    Otlp(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The meter provider and the registry `/metrics` encodes.
#[derive(Clone, Debug)]
pub struct MetricsPipeline {
    provider: SdkMeterProvider,
    registry: Registry,
}

impl MetricsPipeline {
    /// Prometheus always; OTLP too when `env` asks for it. Must run inside
    /// a Tokio runtime when OTLP is on (the reader's timer runs there).
    ///
    /// # Errors
    ///
    /// An exporter that cannot be built from the configuration.
    /// Export results go to `exports`, and its `tollgate.telemetry.exports`
    /// instrument is registered here.
    pub fn new(
        env: &OtelEnv,
        resource: Resource,
        exports: &Arc<ExportHealth>,
    ) -> Result<MetricsPipeline, MetricsError> {
        let registry = Registry::new();
        let prometheus = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .build()
            .map_err(|e| MetricsError::Prometheus(e.to_string()))?;
        let mut builder = SdkMeterProvider::builder()
            .with_resource(resource)
            .with_reader(prometheus);
        if env.exports(Signal::Metrics) {
            let exporter = Reloading::new(env, Signal::Metrics, |env| {
                otlp_exporter!(MetricExporter, env, Signal::Metrics)
            })?;
            let interval = env
                .get("OTEL_METRIC_EXPORT_INTERVAL")
                .and_then(|v| v.parse().ok())
                .map_or(EXPORT_INTERVAL, Duration::from_millis);
            let exporter = Observed {
                inner: exporter,
                health: Arc::clone(exports),
            };
            let reader = PeriodicReader::builder(exporter, Tokio)
                .with_interval(interval)
                .build();
            builder = builder.with_reader(reader);
        }
        let pipeline = MetricsPipeline {
            provider: builder.build(),
            registry,
        };
        exports.register(&pipeline.meter("tollgate-telemetry"));
        Ok(pipeline)
    }

    /// A pipeline with Prometheus only and an empty resource (tests,
    /// in-process helpers).
    pub fn prometheus_only() -> MetricsPipeline {
        // Exports nothing, so only the Prometheus exporter could fail, and
        // with a fresh registry it does not; without it, `/metrics` is empty.
        let exports = Arc::new(ExportHealth::default());
        let resource = Resource::builder_empty().build();
        MetricsPipeline::new(&OtelEnv::default(), resource, &exports).unwrap_or_else(|_| {
            MetricsPipeline {
                provider: SdkMeterProvider::builder().build(),
                registry: Registry::new(),
            }
        })
    }

    /// The meter of instrumentation scope `scope`.
    pub fn meter(&self, scope: &'static str) -> Meter {
        self.provider.meter(scope)
    }

    /// Every metric in the Prometheus text format (version 0.0.4).
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(%error, "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }

    /// Pushes what is pending over OTLP (a no-op with Prometheus only).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Stops the readers; a last OTLP push happens on the way.
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}
