//! Spans of one request: the server span, and a client span per upstream
//! attempt as its child.
//!
//! Ids and the sampling decision are made when the request is routed, so
//! the upstream request can carry the gateway's own span as parent
//! (`traceparent`) while the span is still open; the span itself is
//! written whole, as [`SpanData`], when the request completes. An
//! unsampled request still gets ids, so its upstream sees a consistent,
//! unsampled trace context; nothing else is done for it.

use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceState,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, Sampler, SamplingDecision, ShouldSample, SpanData, SpanEvents,
    SpanLinks,
};
use std::borrow::Cow;
use std::time::SystemTime;
use tollgate_telemetry::TracesPipeline;

/// The trace position of one span before it is written.
#[derive(Clone, Debug)]
pub(crate) struct Planned {
    /// The span's own context (ids, sampled flag).
    pub(crate) context: SpanContext,
    /// Its parent's id, and whether the parent came from the client.
    pub(crate) parent: SpanId,
    pub(crate) parent_remote: bool,
}

impl Planned {
    /// Whether the span will be written.
    pub(crate) fn sampled(&self) -> bool {
        self.context.is_sampled()
    }
}

/// Plans the server span of a request whose client sent `parent` (an
/// empty context when it sent none), sampled by `sampler`.
/// (The ratio samplers Tollgate uses ignore the span's name, so none is
/// made for them: the name is formatted only for a sampled span.)
pub(crate) fn plan_server(sampler: &Sampler, parent: &Context) -> Planned {
    let ids = RandomIdGenerator::default();
    let span = parent.span();
    let remote = span.span_context();
    let trace_id = if remote.is_valid() {
        remote.trace_id()
    } else {
        ids.new_trace_id()
    };
    let result = sampler.should_sample(Some(parent), trace_id, "", &SpanKind::Server, &[], &[]);
    let sampled = matches!(result.decision, SamplingDecision::RecordAndSample);
    let state = if remote.is_valid() {
        result.trace_state
    } else {
        TraceState::default()
    };
    Planned {
        context: SpanContext::new(
            trace_id,
            ids.new_span_id(),
            TraceFlags::default().with_sampled(sampled),
            false,
            state,
        ),
        parent: if remote.is_valid() {
            remote.span_id()
        } else {
            SpanId::INVALID
        },
        parent_remote: remote.is_valid(),
    }
}

/// Plans a child of `parent` (an upstream attempt), sampled as it is.
pub(crate) fn plan_child(parent: &Planned) -> Planned {
    let p = &parent.context;
    Planned {
        context: SpanContext::new(
            p.trace_id(),
            RandomIdGenerator::default().new_span_id(),
            p.trace_flags(),
            false,
            p.trace_state().clone(),
        ),
        parent: p.span_id(),
        parent_remote: false,
    }
}

/// A finished span, ready to write.
pub(crate) struct Finished {
    pub(crate) planned: Planned,
    pub(crate) kind: SpanKind,
    pub(crate) name: String,
    pub(crate) start: SystemTime,
    pub(crate) end: SystemTime,
    pub(crate) attributes: Vec<KeyValue>,
    /// `Some(description)` when the span failed.
    pub(crate) error: Option<String>,
}

/// Writes `span` to the export queue when it is sampled.
pub(crate) fn write(traces: &TracesPipeline, span: Finished) {
    if !span.planned.sampled() {
        return;
    }
    traces.export(SpanData {
        span_context: span.planned.context,
        parent_span_id: span.planned.parent,
        parent_span_is_remote: span.planned.parent_remote,
        span_kind: span.kind,
        name: Cow::Owned(span.name),
        start_time: span.start,
        end_time: span.end,
        attributes: span.attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: match span.error {
            Some(description) => Status::error(description),
            None => Status::Unset,
        },
        instrumentation_scope: traces.scope().clone(),
    });
}

/// The sampler for a ratio in parts per million, following the parent's
/// decision when it has one (`parentbased_traceidratio`).
pub(crate) fn ratio_sampler(per_million: u32) -> Sampler {
    let ratio = f64::from(per_million) / f64::from(tollgate_snapshot::PER_MILLION);
    Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceId;

    fn is_valid(id: TraceId) -> bool {
        id != TraceId::INVALID
    }

    fn remote(sampled: bool) -> Context {
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap_or(TraceId::INVALID),
            SpanId::from_hex("00f067aa0ba902b7").unwrap_or(SpanId::INVALID),
            TraceFlags::default().with_sampled(sampled),
            true,
            TraceState::default(),
        );
        Context::new().with_remote_span_context(sc)
    }

    /// A client's sampled context is followed whatever the ratio; a new
    /// trace is sampled by the ratio; the child shares the trace.
    #[test]
    fn parent_based_decisions_and_ids() {
        let never = ratio_sampler(0);
        let followed = plan_server(&never, &remote(true));
        assert!(followed.sampled());
        assert_eq!(
            followed.context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(followed.parent.to_string(), "00f067aa0ba902b7");
        assert!(followed.parent_remote);
        assert!(!plan_server(&ratio_sampler(1_000_000), &remote(false)).sampled());
        let root = plan_server(&ratio_sampler(1_000_000), &Context::new());
        assert!(root.sampled() && is_valid(root.context.trace_id()));
        assert_eq!(root.parent, SpanId::INVALID);
        assert!(!plan_server(&never, &Context::new()).sampled());
        let child = plan_child(&root);
        assert_eq!(child.context.trace_id(), root.context.trace_id());
        assert_eq!(child.parent, root.context.span_id());
        assert_ne!(child.context.span_id(), root.context.span_id());
    }
}
