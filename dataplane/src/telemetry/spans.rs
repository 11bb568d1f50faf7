//! Spans of one request: the server span, and a client span per upstream
//! attempt as its child.
//!
//! Ids and the sampling decision are made when the request is routed, so
//! the upstream request can carry the gateway's own span as parent
//! (`traceparent`) while the span is still open; the span itself is
//! written whole, as [`SpanData`], when the request completes.
//!
//! An unsampled request still gets a trace id and one span id, and its
//! upstream gets them as an unsampled `traceparent` (flags `00`), as Envoy
//! does: the gateway is where most traces start, and a downstream service
//! with a parent-based sampler then follows the gateway's decision instead
//! of starting (and sampling) traces of its own, and can still log the
//! trace id. Nothing else is done for it: its attempts carry the server
//! span's context instead of child span ids nobody will see.

use super::sampling::{self, RatioSampler};
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::time::SystemTime;
use tollgate_telemetry::{TraceIds, TracesPipeline};

/// The trace position of one span before it is written: its ids, its
/// parent's. Kept as ids, not as a `SpanContext` (whose vendor state
/// would be cloned into every span and moved with every request): the
/// state is the client's, read from its context when a span is written.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Planned {
    /// The span's own ids and sampled flag.
    pub(crate) ids: TraceIds,
    /// Its parent's id, and whether the parent came from the client.
    pub(crate) parent: SpanId,
    pub(crate) parent_remote: bool,
}

impl Planned {
    /// Whether the span will be written.
    #[inline]
    pub(crate) fn sampled(&self) -> bool {
        self.ids.sampled
    }

    /// The span's context in the trace the client's context `client`
    /// carries on (its vendor state comes along).
    pub(crate) fn context(&self, client: &Context) -> SpanContext {
        let flags = TraceFlags::default().with_sampled(self.ids.sampled);
        let span = client.span();
        let state = span.span_context().trace_state().clone();
        SpanContext::new(self.ids.trace_id, self.ids.span_id, flags, false, state)
    }
}

/// Plans the server span of a request whose client sent `parent` (an
/// empty context when it sent none), sampled by `sampler`.
pub(crate) fn plan_server(sampler: &RatioSampler, parent: &Context) -> Planned {
    let span = parent.span();
    let remote = Some(span.span_context()).filter(|r| r.is_valid());
    let trace_id = remote.map_or_else(sampling::new_trace_id, SpanContext::trace_id);
    Planned {
        ids: TraceIds {
            trace_id,
            span_id: sampling::new_span_id(),
            sampled: sampler.samples(trace_id, remote),
        },
        parent: remote.map_or(SpanId::INVALID, SpanContext::span_id),
        parent_remote: remote.is_some(),
    }
}

/// Plans a child of `parent` (an upstream attempt), sampled as it is.
pub(crate) fn plan_child(parent: &Planned) -> Planned {
    Planned {
        ids: TraceIds {
            span_id: sampling::new_span_id(),
            ..parent.ids
        },
        parent: parent.ids.span_id,
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

/// Writes `span`, of the trace the client's context `client` carries
/// on, to the export queue when it is sampled.
pub(crate) fn write(traces: &TracesPipeline, span: Finished, client: &Context) {
    if !span.planned.sampled() {
        return;
    }
    traces.export(SpanData {
        span_context: span.planned.context(client),
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

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{TraceId, TraceState};

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
        let never = RatioSampler::per_million(0);
        let followed = plan_server(&never, &remote(true));
        assert!(followed.sampled());
        assert_eq!(
            followed.ids.trace_id.to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(followed.parent.to_string(), "00f067aa0ba902b7");
        assert!(followed.parent_remote);
        assert!(!plan_server(&RatioSampler::per_million(1_000_000), &remote(false)).sampled());
        let root = plan_server(&RatioSampler::per_million(1_000_000), &Context::new());
        assert!(root.sampled() && is_valid(root.ids.trace_id));
        assert_eq!(root.parent, SpanId::INVALID);
        assert!(!plan_server(&never, &Context::new()).sampled());
        let child = plan_child(&root);
        assert_eq!(child.ids.trace_id, root.ids.trace_id);
        assert_eq!(child.parent, root.ids.span_id);
        assert_ne!(child.ids.span_id, root.ids.span_id);
    }

    /// A span's context carries the client's vendor state, its own ids
    /// and flags.
    #[test]
    fn context_carries_the_clients_state() {
        let state = TraceState::from_key_value([("vendor", "1")]).unwrap_or_default();
        let client = remote(true);
        let sc = client.span().span_context().clone();
        let client = Context::new().with_remote_span_context(SpanContext::new(
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags(),
            true,
            state,
        ));
        let planned = plan_server(&RatioSampler::per_million(0), &client);
        let context = planned.context(&client);
        assert_eq!(context.trace_state().header(), "vendor=1");
        assert_eq!(context.span_id(), planned.ids.span_id);
        assert!(context.is_sampled() && !context.is_remote());
        let root = plan_server(&RatioSampler::per_million(0), &Context::new());
        let context = root.context(&Context::new());
        assert_eq!(context.trace_state().header(), "");
        assert!(!context.is_sampled());
    }
}
