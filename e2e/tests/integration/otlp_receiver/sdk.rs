//! The real OpenTelemetry SDK wired to a [`Receiver`]: providers for
//! traces, metrics and logs over either transport, one round of telemetry
//! ([`emit`]) and the assertion that the receiver decoded exactly that
//! ([`assert_received`]).
//!
//! The providers use the SDK's tokio-runtime processors: the tonic and
//! hyper clients need a tokio context, and the SDK's default thread-based
//! processors run exports outside one.

use std::time::{Duration, Instant};

use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind as ApiSpanKind, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{
    Compression, LogExporter, MetricExporter, Protocol as OtlpProtocol, SpanExporter,
    WithExportConfig as _, WithHttpConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::logs::log_processor_with_async_runtime::BatchLogProcessor;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::metrics::periodic_reader_with_async_runtime::PeriodicReader;
use opentelemetry_sdk::runtime::Tokio;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use serde_json::json;
use tollgate_e2e::otlp::{
    AggregationTemporality, Bucket, MetricKind, PointValue, Protocol, Receiver, SpanKind,
    StatusCode,
};

pub(super) const WAIT: Duration = Duration::from_secs(10);

/// How the SDK reaches the receiver.
#[derive(Clone, Copy, Debug)]
pub(super) enum Transport {
    Grpc,
    Http,
}

pub(super) struct Providers {
    pub(super) traces: SdkTracerProvider,
    pub(super) metrics: SdkMeterProvider,
    pub(super) logs: SdkLoggerProvider,
}

impl Providers {
    pub(super) fn new(
        receiver: &Receiver,
        transport: Transport,
        compression: Option<Compression>,
    ) -> Self {
        let resource = Resource::builder()
            .with_service_name("tollgate-test")
            .with_attribute(KeyValue::new("deployment.environment.name", "test"))
            .build();
        let (spans, metrics, logs) = match transport {
            Transport::Grpc => grpc_exporters(&receiver.grpc_endpoint(), compression),
            Transport::Http => http_exporters(&receiver.http_endpoint(), compression),
        };
        Self {
            traces: SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_span_processor(BatchSpanProcessor::builder(spans, Tokio).build())
                .build(),
            metrics: SdkMeterProvider::builder()
                .with_resource(resource.clone())
                .with_reader(PeriodicReader::builder(metrics, Tokio).build())
                .build(),
            logs: SdkLoggerProvider::builder()
                .with_resource(resource)
                .with_log_processor(BatchLogProcessor::builder(logs, Tokio).build())
                .build(),
        }
    }

    /// Flushes and shuts down all three. The SDK blocks the calling thread
    /// until the export ran on the runtime, so it must not be a worker.
    pub(super) async fn shutdown(self) {
        tokio::task::spawn_blocking(move || {
            self.traces.shutdown().unwrap();
            self.metrics.shutdown().unwrap();
            self.logs.shutdown().unwrap();
        })
        .await
        .unwrap();
    }
}

fn grpc_exporters(
    endpoint: &str,
    compression: Option<Compression>,
) -> (SpanExporter, MetricExporter, LogExporter) {
    let mut spans = SpanExporter::builder().with_tonic().with_endpoint(endpoint);
    let mut metrics = MetricExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint);
    let mut logs = LogExporter::builder().with_tonic().with_endpoint(endpoint);
    if let Some(compression) = compression {
        spans = spans.with_compression(compression);
        metrics = metrics.with_compression(compression);
        logs = logs.with_compression(compression);
    }
    (
        spans.build().unwrap(),
        metrics.build().unwrap(),
        logs.build().unwrap(),
    )
}

fn http_exporters(
    base: &str,
    compression: Option<Compression>,
) -> (SpanExporter, MetricExporter, LogExporter) {
    let binary = OtlpProtocol::HttpBinary;
    let mut spans = SpanExporter::builder()
        .with_http()
        .with_protocol(binary)
        .with_endpoint(format!("{base}/v1/traces"));
    let mut metrics = MetricExporter::builder()
        .with_http()
        .with_protocol(binary)
        .with_endpoint(format!("{base}/v1/metrics"));
    let mut logs = LogExporter::builder()
        .with_http()
        .with_protocol(binary)
        .with_endpoint(format!("{base}/v1/logs"));
    if let Some(compression) = compression {
        spans = spans.with_compression(compression);
        metrics = metrics.with_compression(compression);
        logs = logs.with_compression(compression);
    }
    (
        spans.build().unwrap(),
        metrics.build().unwrap(),
        logs.build().unwrap(),
    )
}

/// What [`emit`] sent, to compare with what arrived.
pub(super) struct Emitted {
    trace_id: String,
    parent_span_id: String,
}

/// A server span with a child, a counter, a histogram and a log record in
/// the server span.
pub(super) fn emit(providers: &Providers) -> Emitted {
    let tracer = providers.traces.tracer("tollgate-test-tracer");
    let parent = tracer
        .span_builder("GET /a")
        .with_kind(ApiSpanKind::Server)
        .with_attributes([
            KeyValue::new("http.route", "/a"),
            KeyValue::new("http.response.status_code", 200_i64),
            KeyValue::new("tollgate.retried", false),
        ])
        .start(&tracer);
    let cx = Context::current_with_span(parent);
    let mut child = tracer
        .span_builder("upstream")
        .with_kind(ApiSpanKind::Client)
        .with_attributes([KeyValue::new("server.address", "echo-v1")])
        .start_with_context(&tracer, &cx);
    child.add_event("first byte", vec![KeyValue::new("bytes", 12_i64)]);
    child.end();

    let meter = providers.metrics.meter("tollgate-test-meter");
    let counter = meter.u64_counter("tollgate.requests").build();
    counter.add(3, &[KeyValue::new("route", "/a")]);
    counter.add(2, &[KeyValue::new("route", "/a")]);
    counter.add(1, &[KeyValue::new("route", "/b")]);
    let histogram = meter
        .f64_histogram("tollgate.request.duration")
        .with_unit("s")
        .with_boundaries(vec![0.1, 0.5, 1.0])
        .build();
    for seconds in [0.05, 0.3, 2.0] {
        histogram.record(seconds, &[KeyValue::new("route", "/a")]);
    }

    let span_context = cx.span().span_context().clone();
    let logger = providers.logs.logger("tollgate-test-logger");
    let mut record = logger.create_log_record();
    record.set_body(AnyValue::from("request done"));
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.add_attribute("http.route", "/a");
    record.set_trace_context(
        span_context.trace_id(),
        span_context.span_id(),
        Some(span_context.trace_flags()),
    );
    logger.emit(record);
    cx.span().end();

    Emitted {
        trace_id: span_context.trace_id().to_string(),
        parent_span_id: span_context.span_id().to_string(),
    }
}

/// Asserts the receiver decoded exactly what [`emit`] sent.
pub(super) async fn assert_received(receiver: &Receiver, sent: &Emitted, protocol: Protocol) {
    let spans = receiver.wait_for_spans(2, WAIT).await;
    assert_eq!(spans.len(), 2, "{}", receiver.summary());
    let parent = spans.iter().find(|s| s.name == "GET /a").unwrap();
    let child = spans.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(parent.origin.protocol, protocol);
    assert_eq!(parent.origin.service_name(), Some("tollgate-test"));
    assert_eq!(
        parent.origin.resource["deployment.environment.name"],
        json!("test")
    );
    assert_eq!(parent.origin.scope, "tollgate-test-tracer");
    assert_eq!(parent.kind, SpanKind::Server);
    assert_eq!(parent.status, StatusCode::Unset);
    assert_eq!(parent.trace_id, sent.trace_id);
    assert_eq!(parent.trace_id.len(), 32);
    assert_eq!(parent.span_id, sent.parent_span_id);
    assert_eq!(parent.parent_span_id, None);
    let expected = [
        ("http.response.status_code".to_owned(), json!(200)),
        ("http.route".to_owned(), json!("/a")),
        ("tollgate.retried".to_owned(), json!(false)),
    ];
    assert_eq!(parent.attributes, expected.into_iter().collect());
    assert!(parent.end_time_unix_nano >= parent.start_time_unix_nano);
    assert!(child.is_child_of(parent), "{child:?} of {parent:?}");
    assert_eq!(child.kind, SpanKind::Client);
    assert_eq!(child.str_attr("server.address"), Some("echo-v1"));
    assert_eq!(child.events.len(), 1);
    assert_eq!(child.events[0].name, "first byte");
    assert_eq!(child.events[0].attributes["bytes"], json!(12));

    let counter = receiver
        .wait_for_metric("tollgate.requests", &[("route", "/a")], WAIT)
        .await;
    assert_eq!(counter.origin.protocol, protocol);
    assert_eq!(counter.origin.scope, "tollgate-test-meter");
    assert_eq!(counter.kind, MetricKind::Sum);
    assert!(counter.monotonic);
    assert_eq!(counter.temporality, AggregationTemporality::Cumulative);
    assert_eq!(counter.value, PointValue::Int(5));
    let other = receiver
        .latest_metric("tollgate.requests", &[("route", "/b")])
        .unwrap();
    assert_eq!(other.value.as_f64(), Some(1.0));
    assert_eq!(
        receiver
            .metrics()
            .iter()
            .filter(|p| p.name == "tollgate.requests")
            .count(),
        2
    );

    let histogram = receiver
        .latest_metric("tollgate.request.duration", &[])
        .unwrap();
    assert_eq!(histogram.kind, MetricKind::Histogram);
    assert_eq!(histogram.unit, "s");
    let h = histogram.value.as_histogram().unwrap();
    assert_eq!(h.count, 3);
    assert!((h.sum.unwrap() - 2.35).abs() < 1e-9, "{h:?}");
    assert_eq!((h.min, h.max), (Some(0.05), Some(2.0)));
    let bucket = |upper_bound, count| Bucket { upper_bound, count };
    let expected = vec![
        bucket(0.1, 1),
        bucket(0.5, 1),
        bucket(1.0, 0),
        bucket(f64::INFINITY, 1),
    ];
    assert_eq!(h.buckets, expected);
    assert_eq!(h.cumulative(1.0), Some(2));

    let logs = receiver.wait_for_logs(1, WAIT).await;
    assert_eq!(logs.len(), 1, "{}", receiver.summary());
    let log = &logs[0];
    assert_eq!(log.origin.protocol, protocol);
    assert_eq!(log.origin.scope, "tollgate-test-logger");
    assert_eq!(log.body_str(), Some("request done"));
    assert_eq!(
        (log.severity_number, log.severity_text.as_str()),
        (9, "INFO")
    );
    assert_eq!(log.str_attr("http.route"), Some("/a"));
    assert_eq!(log.trace_id.as_deref(), Some(sent.trace_id.as_str()));
    assert_eq!(log.span_id.as_deref(), Some(sent.parent_span_id.as_str()));
}

/// Emits 600 rounds of [`emit`] (1,200 spans: two full batches are
/// exported while emitting); returns how long that took.
pub(super) fn emit_many(providers: &Providers) -> Duration {
    let started = Instant::now();
    for _ in 0..600 {
        emit(providers);
    }
    started.elapsed()
}
