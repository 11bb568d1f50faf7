//! The process's span export: finished spans go over OTLP through a
//! bounded queue ([`crate::queue`]), so a slow or absent collector costs
//! dropped spans (counted), never a slower request.
//!
//! The sampler named by `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`
//! (default `parentbased_always_on`) is exposed as a [`SamplerSpec`] so
//! callers can decide per request with a per-Gateway or per-route ratio
//! and hand the decision to the span builder: the SDK's provider-wide
//! sampler cannot vary by route.

use crate::env::{OtelEnv, Signal};
use crate::export_health::ExportHealth;
use crate::export_reload::Reloading;
use crate::export_tls::otlp_exporter;
use crate::queue::{Queue, QueueConfig};
use opentelemetry::metrics::Counter;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SpanData, SpanExporter};
use std::sync::Arc;
use std::time::Duration;

/// The instrumentation scope of Tollgate's spans.
pub const SCOPE: &str = "tollgate";

/// Which sampler, and its ratio where it has one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum SamplerSpec {
    /// Follow the parent's decision; sample roots at `ratio` (1.0: all).
    ParentBasedRatio(f64),
    /// Ignore the parent; sample at `ratio`.
    Ratio(f64),
}

impl SamplerSpec {
    /// The sampler the standard variables name; unknown names fall back to
    /// the default, `parentbased_always_on`.
    pub fn from_env(env: &OtelEnv) -> SamplerSpec {
        let arg = env
            .get("OTEL_TRACES_SAMPLER_ARG")
            .and_then(|a| a.parse::<f64>().ok())
            .filter(|r| (0.0..=1.0).contains(r));
        let ratio = arg.unwrap_or(1.0);
        match env
            .get("OTEL_TRACES_SAMPLER")
            .unwrap_or("parentbased_always_on")
        {
            "always_on" => SamplerSpec::Ratio(1.0),
            "always_off" => SamplerSpec::Ratio(0.0),
            "traceidratio" => SamplerSpec::Ratio(ratio),
            "parentbased_always_off" => SamplerSpec::ParentBasedRatio(0.0),
            "parentbased_traceidratio" => SamplerSpec::ParentBasedRatio(ratio),
            _ => SamplerSpec::ParentBasedRatio(1.0),
        }
    }

    /// The same kind of sampler with another ratio (a Gateway's or route's
    /// override).
    pub fn with_ratio(self, ratio: f64) -> SamplerSpec {
        let ratio = ratio.clamp(0.0, 1.0);
        match self {
            SamplerSpec::ParentBasedRatio(_) => SamplerSpec::ParentBasedRatio(ratio),
            SamplerSpec::Ratio(_) => SamplerSpec::Ratio(ratio),
        }
    }

    /// The SDK sampler for this spec.
    pub fn sampler(self) -> Sampler {
        match self {
            SamplerSpec::ParentBasedRatio(r) => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(r)))
            }
            SamplerSpec::Ratio(r) => Sampler::TraceIdRatioBased(r),
        }
    }
}

/// Tracing for the process: finished spans go to an OTLP exporter through
/// a bounded queue, or nowhere.
///
/// Callers build [`SpanData`] themselves rather than through an SDK
/// tracer: a gateway must put its span's id into the upstream request
/// before the span ends, and choose the sampler per route; the SDK tracer
/// allows neither (it draws ids and samples by itself).
#[derive(Clone, Debug)]
pub struct TracesPipeline {
    queue: Option<Arc<Queue<SpanData>>>,
    scope: InstrumentationScope,
    /// The environment's sampler.
    pub sampler: SamplerSpec,
}

impl TracesPipeline {
    /// Exports over OTLP when `env` asks for it; otherwise spans are not
    /// recorded at all. Must run inside a Tokio runtime when exporting.
    ///
    /// # Errors
    ///
    /// The OTLP exporter's configuration is invalid.
    pub fn new(
        env: &OtelEnv,
        resource: Resource,
        dropped: Counter<u64>,
        exports: &Arc<ExportHealth>,
    ) -> Result<TracesPipeline, opentelemetry_otlp::ExporterBuildError> {
        let sampler = SamplerSpec::from_env(env);
        if !env.exports(Signal::Traces) {
            return Ok(TracesPipeline::off(sampler));
        }
        let exporter = Arc::new(Reloading::new(env, Signal::Traces, move |env| {
            let mut exporter = otlp_exporter!(SpanExporter, env, Signal::Traces)?;
            exporter.set_resource(&resource);
            Ok(exporter)
        })?);
        let config = queue_config(env);
        let exports = Arc::clone(exports);
        let queue = Arc::new(Queue::start(config, dropped, "traces", move |batch| {
            let exporter = Arc::clone(&exporter);
            let exports = Arc::clone(&exports);
            async move {
                let current = exporter.current();
                let result = current.export(batch).await;
                exports.record(Signal::Traces, &result);
            }
        }));
        Ok(TracesPipeline {
            queue: Some(queue),
            scope: scope(),
            sampler,
        })
    }

    /// No tracing.
    pub fn off(sampler: SamplerSpec) -> TracesPipeline {
        TracesPipeline {
            queue: None,
            scope: scope(),
            sampler,
        }
    }

    /// Whether spans are exported at all.
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// The instrumentation scope to put on Tollgate's spans.
    pub fn scope(&self) -> &InstrumentationScope {
        &self.scope
    }

    /// Queues a finished, sampled span for export; drops (and counts) it
    /// when the queue is full. Never waits.
    pub fn export(&self, span: SpanData) {
        if let Some(queue) = &self.queue
            && span.span_context.is_sampled()
        {
            queue.push(span);
        }
    }

    /// Exports every finished span queued so far (bounded by `timeout`).
    pub async fn flush(&self, timeout: Duration) {
        if let Some(queue) = &self.queue {
            queue.flush(timeout).await;
        }
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope::builder(SCOPE)
        .with_version(env!("CARGO_PKG_VERSION"))
        .build()
}

/// `OTEL_BSP_*` sizing, as the batch span processor names it.
fn queue_config(env: &OtelEnv) -> QueueConfig {
    let number = |name: &str, default: usize| {
        env.get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    QueueConfig {
        capacity: number("OTEL_BSP_MAX_QUEUE_SIZE", 2048),
        max_batch: number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512),
        interval: Duration::from_millis(number("OTEL_BSP_SCHEDULE_DELAY", 1000) as u64),
    }
}

/// A `KeyValue` list's value of `key` (tests and log records).
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a opentelemetry::Value> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The standard sampler names map to specs; bad ratios fall back.
    #[test]
    fn samplers_from_env() {
        let spec = |pairs: &[(&str, &str)]| {
            SamplerSpec::from_env(&OtelEnv::from_pairs(pairs.iter().copied()))
        };
        assert_eq!(spec(&[]), SamplerSpec::ParentBasedRatio(1.0));
        assert_eq!(
            spec(&[
                ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "0.01")
            ]),
            SamplerSpec::ParentBasedRatio(0.01)
        );
        assert_eq!(
            spec(&[
                ("OTEL_TRACES_SAMPLER", "traceidratio"),
                ("OTEL_TRACES_SAMPLER_ARG", "7")
            ]),
            SamplerSpec::Ratio(1.0)
        );
        assert_eq!(
            spec(&[("OTEL_TRACES_SAMPLER", "always_off")]),
            SamplerSpec::Ratio(0.0)
        );
        assert_eq!(
            SamplerSpec::ParentBasedRatio(1.0).with_ratio(0.25),
            SamplerSpec::ParentBasedRatio(0.25)
        );
    }
}
