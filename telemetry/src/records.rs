//! OTLP log records: the access log, sent to a collector when OTLP logs
//! are configured, through the same kind of bounded queue as spans.
//!
//! Application logs stay on `tracing` and stderr; only records Tollgate
//! emits on purpose (one per request, when the access log is on) travel
//! here, each carrying the request's trace and span id.

use crate::env::{OtelEnv, Signal};
use crate::export_health::ExportHealth;
use crate::export_reload::Reloading;
use crate::export_tls::otlp_exporter;
use crate::queue::{Queue, QueueConfig};
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::metrics::Counter;
use opentelemetry_otlp::{WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter, LogProcessor, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};
use std::sync::Arc;
use std::time::Duration;

/// The instrumentation scope of access-log records.
pub const ACCESS_LOG_SCOPE: &str = "tollgate.access";

type Record = (SdkLogRecord, InstrumentationScope);

/// A logger whose records go to OTLP, or none.
#[derive(Clone, Debug)]
pub struct RecordsPipeline {
    provider: Option<SdkLoggerProvider>,
    queue: Option<Arc<Queue<Record>>>,
}

impl RecordsPipeline {
    /// Exports over OTLP when `env` asks for logs.
    ///
    /// # Errors
    ///
    /// The OTLP exporter's configuration is invalid.
    pub fn new(
        env: &OtelEnv,
        resource: Resource,
        dropped: Counter<u64>,
        exports: &Arc<ExportHealth>,
    ) -> Result<RecordsPipeline, opentelemetry_otlp::ExporterBuildError> {
        if !env.exports(Signal::Logs) {
            return Ok(RecordsPipeline::off());
        }
        let own = resource.clone();
        let exporter = Reloading::new(env, Signal::Logs, move |env| {
            let mut exporter = otlp_exporter!(LogExporter, env, Signal::Logs)?;
            exporter.set_resource(&own);
            Ok(exporter)
        })?;
        let config = QueueConfig {
            capacity: 4096,
            max_batch: 512,
            interval: Duration::from_secs(1),
        };
        Ok(RecordsPipeline::with_exporter(
            exporter,
            resource,
            dropped,
            config,
            Arc::clone(exports),
        ))
    }

    /// Records exported by `exporter`, which has been given the process's
    /// resource (records leave through the queue, not the provider's
    /// processors, so the provider never hands it over).
    fn with_exporter<E: LogExporter + 'static>(
        exporter: Reloading<E>,
        resource: Resource,
        dropped: Counter<u64>,
        config: QueueConfig,
        exports: Arc<ExportHealth>,
    ) -> RecordsPipeline {
        let exporter = Arc::new(exporter);
        let queue = Arc::new(Queue::start(
            config,
            dropped,
            "logs",
            move |batch: Vec<Record>| {
                let exporter = Arc::clone(&exporter);
                let exports = Arc::clone(&exports);
                async move {
                    let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                        batch.iter().map(|(r, s)| (r, s)).collect();
                    let current = exporter.current();
                    let result = current.export(LogBatch::new(&refs)).await;
                    exports.record(Signal::Logs, &result);
                }
            },
        ));
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(Processor(Arc::clone(&queue)))
            .build();
        RecordsPipeline {
            provider: Some(provider),
            queue: Some(queue),
        }
    }

    /// No OTLP log records.
    pub fn off() -> RecordsPipeline {
        RecordsPipeline {
            provider: None,
            queue: None,
        }
    }

    /// The access-log logger, when OTLP logs are on.
    pub fn access_logger(&self) -> Option<SdkLogger> {
        self.provider.as_ref().map(|p| p.logger(ACCESS_LOG_SCOPE))
    }

    /// Exports every record queued so far (bounded by `timeout`).
    pub async fn flush(&self, timeout: Duration) {
        if let Some(queue) = &self.queue {
            queue.flush(timeout).await;
        }
    }

    /// Ends the provider.
    pub fn shutdown(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.shutdown();
        }
    }
}

/// Queues every emitted record.
#[derive(Debug)]
struct Processor(Arc<Queue<Record>>);

impl LogProcessor for Processor {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        self.0.push((record.clone(), scope.clone()));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MetricsPipeline;
    use opentelemetry::logs::{LogRecord as _, Logger as _};
    use std::sync::Mutex;

    /// What [`Capture`] saw: per record, the exporter's `service.name`
    /// and the body.
    type Seen = Arc<Mutex<Vec<(Option<String>, String)>>>;

    /// Keeps the resource's `service.name` and every exported body.
    #[derive(Debug, Default)]
    struct Capture {
        service: Option<String>,
        seen: Seen,
    }

    impl LogExporter for Capture {
        async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            for (record, _) in batch.iter() {
                let body = format!("{:?}", record.body());
                seen.push((self.service.clone(), body));
            }
            Ok(())
        }

        fn set_resource(&mut self, resource: &Resource) {
            self.service = resource
                .get(&opentelemetry::Key::from_static_str("service.name"))
                .map(|v| v.to_string());
        }
    }

    /// Exported records carry the process's resource (`service.name`).
    #[tokio::test]
    async fn records_carry_the_resource() {
        let seen = Seen::default();
        let mut exporter = Capture {
            service: None,
            seen: Arc::clone(&seen),
        };
        let resource = Resource::builder().with_service_name("edge").build();
        exporter.set_resource(&resource);
        let dropped = MetricsPipeline::prometheus_only()
            .meter("test")
            .u64_counter("dropped")
            .build();
        let config = QueueConfig {
            capacity: 16,
            max_batch: 16,
            interval: Duration::from_secs(3600),
        };
        let exports = Arc::new(ExportHealth::default());
        let pipeline = RecordsPipeline::with_exporter(
            Reloading::fixed(exporter),
            resource,
            dropped,
            config,
            Arc::clone(&exports),
        );
        let logger = pipeline.access_logger().unwrap_or_else(|| unreachable!());
        let mut record = logger.create_log_record();
        record.set_body("line".into());
        logger.emit(record);
        pipeline.flush(Duration::from_secs(5)).await;
        let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert_eq!(seen[0].0.as_deref(), Some("edge"));
        assert!(seen[0].1.contains("line"), "{seen:?}");
        assert_eq!(exports.counts(Signal::Logs), (1, 0), "one export, counted");
    }
}
