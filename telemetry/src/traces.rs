//! The process's tracer provider, exporting finished spans over OTLP
//! through a bounded queue ([`crate::queue`]): a slow or absent collector
//! costs dropped spans (counted), never a slower request.
//!
//! The sampler named by `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`
//! (default `parentbased_always_on`) is exposed as a [`SamplerSpec`] so
//! callers can decide per request with a per-Gateway or per-route ratio
//! and hand the decision to the span builder: the SDK's provider-wide
//! sampler cannot vary by route.

use crate::env::{OtelEnv, Signal};
use crate::queue::{Queue, QueueConfig};
use opentelemetry::metrics::Counter;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    Sampler, SdkTracer, SdkTracerProvider, Span, SpanData, SpanExporter, SpanProcessor,
};
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

/// Tracing for the process: a tracer whose spans are exported, or none.
#[derive(Clone, Debug)]
pub struct TracesPipeline {
    provider: Option<SdkTracerProvider>,
    queue: Option<Arc<Queue<SpanData>>>,
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
    ) -> Result<TracesPipeline, opentelemetry_otlp::ExporterBuildError> {
        let sampler = SamplerSpec::from_env(env);
        if !env.exports(Signal::Traces) {
            return Ok(TracesPipeline::off(sampler));
        }
        let exporter = Arc::new(opentelemetry_otlp::SpanExporter::builder().build()?);
        let config = queue_config(env);
        let queue = Arc::new(Queue::start(config, dropped, "traces", move |batch| {
            let exporter = Arc::clone(&exporter);
            async move {
                if let Err(error) = exporter.export(batch).await {
                    tracing::debug!(%error, "span export failed");
                }
            }
        }));
        let provider = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(sampler.sampler())
            .with_span_processor(Processor(Arc::clone(&queue)))
            .build();
        Ok(TracesPipeline {
            provider: Some(provider),
            queue: Some(queue),
            sampler,
        })
    }

    /// No tracing.
    pub fn off(sampler: SamplerSpec) -> TracesPipeline {
        TracesPipeline {
            provider: None,
            queue: None,
            sampler,
        }
    }

    /// The tracer for Tollgate's spans, when tracing is on.
    pub fn tracer(&self) -> Option<SdkTracer> {
        self.provider.as_ref().map(|p| p.tracer(SCOPE))
    }

    /// Exports every finished span queued so far (bounded by `timeout`).
    pub async fn flush(&self, timeout: Duration) {
        if let Some(queue) = &self.queue {
            queue.flush(timeout).await;
        }
    }

    /// Ends the provider (spans still queued are flushed first by
    /// [`flush`](Self::flush), which the caller awaits).
    pub fn shutdown(&self) {
        if let Some(provider) = &self.provider {
            let _ = provider.shutdown();
        }
    }
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

/// Queues every sampled span when it ends.
#[derive(Debug)]
struct Processor(Arc<Queue<SpanData>>);

impl SpanProcessor for Processor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if span.span_context.is_sampled() {
            self.0.push(span);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
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
