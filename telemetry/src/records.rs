//! OTLP log records: the access log, sent to a collector when OTLP logs
//! are configured, through the same kind of bounded queue as spans.
//!
//! Application logs stay on `tracing` and stderr; only records Tollgate
//! emits on purpose (one per request, when the access log is on) travel
//! here, each carrying the request's trace and span id.

use crate::env::{OtelEnv, Signal};
use crate::queue::{Queue, QueueConfig};
use opentelemetry::InstrumentationScope;
use opentelemetry::logs::LoggerProvider as _;
use opentelemetry::metrics::Counter;
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
    ) -> Result<RecordsPipeline, opentelemetry_otlp::ExporterBuildError> {
        if !env.exports(Signal::Logs) {
            return Ok(RecordsPipeline::off());
        }
        let exporter = Arc::new(opentelemetry_otlp::LogExporter::builder().build()?);
        let config = QueueConfig {
            capacity: 4096,
            max_batch: 512,
            interval: Duration::from_secs(1),
        };
        let queue = Arc::new(Queue::start(
            config,
            dropped,
            "logs",
            move |batch: Vec<Record>| {
                let exporter = Arc::clone(&exporter);
                async move {
                    let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
                        batch.iter().map(|(r, s)| (r, s)).collect();
                    if let Err(error) = exporter.export(LogBatch::new(&refs)).await {
                        tracing::debug!(%error, "log record export failed");
                    }
                }
            },
        ));
        let provider = SdkLoggerProvider::builder()
            .with_resource(resource)
            .with_log_processor(Processor(Arc::clone(&queue)))
            .build();
        Ok(RecordsPipeline {
            provider: Some(provider),
            queue: Some(queue),
        })
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
