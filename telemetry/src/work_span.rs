//! Spans of a process's own work, not of a request: the controller's
//! compile and the data plane's apply of the snapshot it produced.
//!
//! A configuration change is one trace across processes. The controller's
//! compile span is the root; its W3C `traceparent` travels inside each
//! snapshot it publishes (`Snapshot::traceparent`), and every data plane
//! that applies the snapshot writes its apply span as a child. An
//! operator who wonders why a route took seconds to reach traffic sees the
//! compile, and each pod's build and swap, on one timeline.
//!
//! Work that follows a change without being part of its trace (the
//! controller's status writes, a round at a time for whatever compiles
//! came before) links to the compile it carries out
//! ([`TracesPipeline::root_span_linked`]),
//! as OpenTelemetry links a batch to the requests it serves.
//!
//! These spans are rare (one per change, not per request), so they use the
//! SDK's own pieces as they come: its sampler (the environment's, so
//! `OTEL_TRACES_SAMPLER=always_off` turns them off too), its random ids,
//! and the W3C propagator to read a parent. They are written as
//! [`SpanData`] to the same bounded export queue as the request spans.

use crate::trace_line::TraceIds;
use crate::traces::TracesPipeline;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{
    Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SamplingDecision, ShouldSample, SpanData, SpanEvents, SpanLinks,
};
use std::borrow::Cow;
use std::collections::HashMap;
use std::time::SystemTime;

/// A sampled span of the process's own work, open until [`WorkSpan::end`].
///
/// Only sampled spans exist: [`TracesPipeline::root_span`] and
/// [`TracesPipeline::remote_child`] return `None` when tracing is off or
/// the sampler declines, so callers do no work for a span nobody sees.
#[derive(Debug)]
pub struct WorkSpan {
    context: SpanContext,
    parent: SpanId,
    parent_remote: bool,
    name: Cow<'static, str>,
    start: SystemTime,
    attributes: Vec<KeyValue>,
    links: Vec<Link>,
    status: Status,
}

impl TracesPipeline {
    /// Starts a new trace's root span `name`, when tracing is on and the
    /// environment's sampler samples it.
    pub fn root_span(&self, name: impl Into<Cow<'static, str>>) -> Option<WorkSpan> {
        self.root_span_linked(name, None)
    }

    /// [`TracesPipeline::root_span`], linked to `cause` when given: a span
    /// of another trace whose work this one carries on (the compile whose
    /// statuses a status write writes).
    pub fn root_span_linked(
        &self,
        name: impl Into<Cow<'static, str>>,
        cause: Option<&SpanContext>,
    ) -> Option<WorkSpan> {
        if !self.enabled() {
            return None;
        }
        let name = name.into();
        let trace_id = RandomIdGenerator::default().new_trace_id();
        let links: Vec<Link> = cause
            .map(|c| Link::new(c.clone(), Vec::new(), 0))
            .into_iter()
            .collect();
        let state = self.sample(None, trace_id, &name, &links)?;
        let mut span = WorkSpan::new(trace_id, state, (SpanId::INVALID, false), name);
        span.links = links;
        Some(span)
    }

    /// Starts span `name` as the child of another process's span, given
    /// as a W3C `traceparent` value. The environment's sampler decides with
    /// that parent, so the default (parent-based) follows the other
    /// process's decision. `None` when tracing is off, the parent does not
    /// parse, or it is not sampled.
    pub fn remote_child(
        &self,
        name: impl Into<Cow<'static, str>>,
        traceparent: &str,
    ) -> Option<WorkSpan> {
        if !self.enabled() {
            return None;
        }
        let parent = parse_parent(traceparent)?;
        let remote = parent.span().span_context().clone();
        let name = name.into();
        let state = self.sample(Some(&parent), remote.trace_id(), &name, &[])?;
        Some(WorkSpan::new(
            remote.trace_id(),
            state,
            (remote.span_id(), true),
            name,
        ))
    }

    /// The environment sampler's decision for span `name` of `trace_id`
    /// under `parent`, with `links`: its trace state when sampled.
    fn sample(
        &self,
        parent: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        links: &[Link],
    ) -> Option<TraceState> {
        let decision = self.sampler.sampler().should_sample(
            parent,
            trace_id,
            name,
            &SpanKind::Internal,
            &[],
            links,
        );
        (decision.decision == SamplingDecision::RecordAndSample).then_some(decision.trace_state)
    }
}

/// A valid `traceparent` as a remote parent.
fn parse_parent(traceparent: &str) -> Option<Context> {
    let fields = HashMap::from([("traceparent".to_string(), traceparent.to_string())]);
    let context = TraceContextPropagator::new().extract(&fields);
    context.span().span_context().is_valid().then_some(context)
}

impl WorkSpan {
    fn new(
        trace_id: TraceId,
        state: TraceState,
        (parent, parent_remote): (SpanId, bool),
        name: Cow<'static, str>,
    ) -> WorkSpan {
        let span_id = RandomIdGenerator::default().new_span_id();
        WorkSpan {
            context: SpanContext::new(trace_id, span_id, TraceFlags::SAMPLED, false, state),
            parent,
            parent_remote,
            name,
            start: SystemTime::now(),
            attributes: Vec::new(),
            links: Vec::new(),
            status: Status::Unset,
        }
    }

    /// A child span `name` of this one, starting now.
    pub fn child(&self, name: impl Into<Cow<'static, str>>) -> WorkSpan {
        WorkSpan::new(
            self.context.trace_id(),
            self.context.trace_state().clone(),
            (self.context.span_id(), false),
            name.into(),
        )
    }

    /// This span as a W3C `traceparent` value, for another process to
    /// continue the trace from.
    pub fn traceparent(&self) -> String {
        String::from_utf8_lossy(&TraceIds::of(&self.context).traceparent()).into_owned()
    }

    /// The trace this span is part of (for log lines, so logs and traces
    /// meet).
    pub fn trace_id(&self) -> TraceId {
        self.context.trace_id()
    }

    /// This span's context, for later work in another trace to link to
    /// ([`TracesPipeline::root_span_linked`]).
    pub fn context(&self) -> &SpanContext {
        &self.context
    }

    /// Adds an attribute.
    pub fn set(&mut self, attribute: KeyValue) {
        self.attributes.push(attribute);
    }

    /// Marks the span failed with `description` (status `Error`) and sets
    /// `error.type` to `error_type`.
    pub fn fail(&mut self, error_type: &'static str, description: impl Into<Cow<'static, str>>) {
        self.attributes
            .push(KeyValue::new("error.type", error_type));
        self.status = Status::error(description);
    }

    /// Ends the span now and queues it for export on `traces`.
    pub fn end(self, traces: &TracesPipeline) {
        let mut links = SpanLinks::default();
        links.links = self.links;
        traces.export(SpanData {
            span_context: self.context,
            parent_span_id: self.parent,
            parent_span_is_remote: self.parent_remote,
            span_kind: SpanKind::Internal,
            name: self.name,
            start_time: self.start,
            end_time: SystemTime::now(),
            attributes: self.attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links,
            status: self.status,
            instrumentation_scope: traces.scope().clone(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::traces::SamplerSpec;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    /// An exporting pipeline (to a port nothing listens on) that samples
    /// by `spec`: the tests read the spans' fields directly.
    fn pipeline(spec: SamplerSpec) -> TracesPipeline {
        let env =
            crate::OtelEnv::from_pairs([("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")]);
        let dropped = crate::MetricsPipeline::prometheus_only()
            .meter("test")
            .u64_counter("dropped")
            .build();
        let resource = opentelemetry_sdk::Resource::builder_empty().build();
        let exports = std::sync::Arc::new(crate::ExportHealth::default());
        match TracesPipeline::new(&env, resource, dropped, &exports) {
            Ok(mut traces) => {
                traces.sampler = spec;
                traces
            }
            Err(e) => panic!("pipeline: {e}"),
        }
    }

    /// A root span is its own trace's root; its child shares the trace
    /// and names it as parent; `traceparent` round-trips into a remote
    /// child in the other process.
    #[tokio::test]
    async fn roots_children_and_remote_children() {
        let traces = pipeline(SamplerSpec::ParentBasedRatio(1.0));
        let Some(root) = traces.root_span("compile") else {
            panic!("always sampled");
        };
        assert_eq!(root.parent, SpanId::INVALID);
        assert!(root.context.is_sampled() && root.context.is_valid());
        let child = root.child("publish");
        assert_eq!(child.trace_id(), root.trace_id());
        assert_eq!(child.parent, root.context.span_id());
        assert!(!child.parent_remote);
        let Some(remote) = traces.remote_child("apply", &root.traceparent()) else {
            panic!("sampled parent is followed");
        };
        assert_eq!(remote.trace_id(), root.trace_id());
        assert_eq!(remote.parent, root.context.span_id());
        assert!(remote.parent_remote);
        assert_ne!(remote.context.span_id(), root.context.span_id());
    }

    /// Parent-based sampling follows the parent's flag; a ratio of 0
    /// starts no root; a malformed parent starts nothing; tracing off
    /// starts nothing.
    #[tokio::test]
    async fn sampling_follows_the_environment() {
        let never_roots = pipeline(SamplerSpec::ParentBasedRatio(0.0));
        assert!(never_roots.root_span("compile").is_none());
        assert!(never_roots.remote_child("apply", PARENT).is_some());
        let unsampled = PARENT.replace("-01", "-00");
        assert!(never_roots.remote_child("apply", &unsampled).is_none());
        assert!(never_roots.remote_child("apply", "00-zz-yy-01").is_none());
        let off = TracesPipeline::off(SamplerSpec::ParentBasedRatio(1.0));
        assert!(off.root_span("compile").is_none());
        assert!(off.remote_child("apply", PARENT).is_none());
        let ignores_parent = pipeline(SamplerSpec::Ratio(0.0));
        assert!(ignores_parent.remote_child("apply", PARENT).is_none());
    }

    /// `traceparent` names the trace, the span and the sampled flag.
    #[tokio::test]
    async fn traceparent_is_w3c() {
        let traces = pipeline(SamplerSpec::ParentBasedRatio(1.0));
        let Some(span) = traces.remote_child("apply", PARENT) else {
            panic!("sampled parent is followed");
        };
        assert_eq!(
            span.traceparent(),
            format!(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
                span.context.span_id()
            )
        );
    }

    /// A link names the other trace's span.
    #[tokio::test]
    async fn links_name_the_cause() {
        let traces = pipeline(SamplerSpec::ParentBasedRatio(1.0));
        let Some(compile) = traces.root_span("compile") else {
            panic!("always sampled");
        };
        let Some(write) = traces.root_span_linked("write status", Some(compile.context())) else {
            panic!("always sampled");
        };
        let unlinked = traces.root_span_linked("write status", None);
        assert!(unlinked.is_some_and(|s| s.links.is_empty()));
        assert_ne!(write.trace_id(), compile.trace_id());
        assert_eq!(write.links.len(), 1);
        assert_eq!(&write.links[0].span_context, compile.context());
    }

    /// A failed span has status Error and `error.type`.
    #[tokio::test]
    async fn failure_sets_status_and_error_type() {
        let traces = pipeline(SamplerSpec::ParentBasedRatio(1.0));
        let Some(mut span) = traces.root_span("apply") else {
            panic!("always sampled");
        };
        span.fail("rejected", "schema 9.0 is not supported");
        assert!(matches!(span.status, Status::Error { .. }));
        assert_eq!(
            crate::attribute(&span.attributes, "error.type").map(|v| v.as_str().into_owned()),
            Some("rejected".to_string())
        );
    }
}
