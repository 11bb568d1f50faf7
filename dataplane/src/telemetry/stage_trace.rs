//! Child spans of the request stages that call out: an external auth
//! check, a Redis round trip of the global rate limits. A stage opens a
//! span around its call ([`StageTrace::open`]), puts the span's
//! `traceparent` on what it sends when the protocol carries one, and
//! closes it with what the call's conventions record
//! ([`StageTrace::close`]); the exchange writes the closed spans as
//! children of the request's server span when the stages are done.
//!
//! The request context carries a `StageTrace` only when the server span
//! is sampled, so an unsampled request pays one `None` test per call and
//! nothing else: no ids, no clock reads, no attributes.

use super::sampling;
use crate::clock::Ticks;
use http::HeaderValue;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use std::time::Duration;
use tollgate_telemetry::TraceIds;

/// The sampled server span's stages' spans, while the stages run.
#[derive(Debug)]
pub(crate) struct StageTrace {
    /// The server span's ids: every stage span is its child.
    pub(super) parent: TraceIds,
    pub(super) spans: Vec<StageSpan>,
}

/// A stage span that has started and not ended.
#[derive(Debug)]
#[must_use = "a span that is opened is closed with `StageTrace::close`"]
pub(crate) struct OpenSpan {
    ids: TraceIds,
    started: Ticks,
}

/// One finished stage span, to be written by the exchange.
#[derive(Debug)]
pub(crate) struct StageSpan {
    pub(super) ids: TraceIds,
    pub(super) name: String,
    pub(super) kind: SpanKind,
    pub(super) started: Ticks,
    pub(super) took: Duration,
    pub(super) attributes: Vec<KeyValue>,
    /// `Some(description)` when the call failed.
    pub(super) error: Option<String>,
}

/// How a closed span is described: its name, kind, attributes and, when
/// the call failed, its `error.type`.
#[derive(Debug)]
pub(crate) struct SpanEnd {
    pub(crate) name: String,
    pub(crate) kind: SpanKind,
    pub(crate) attributes: Vec<KeyValue>,
    /// Set on a failed call: the span's `error.type` attribute and the
    /// description of its Error status.
    pub(crate) error: Option<String>,
}

impl StageTrace {
    /// The stage spans of the server span `parent` (sampled).
    pub(super) fn new(parent: TraceIds) -> StageTrace {
        StageTrace {
            parent,
            spans: Vec::new(),
        }
    }

    /// Starts a child span of the server span, now.
    pub(crate) fn open(&self) -> OpenSpan {
        OpenSpan {
            ids: TraceIds {
                span_id: sampling::new_span_id(),
                ..self.parent
            },
            started: Ticks::now(),
        }
    }

    /// Ends `span` now, described by `end`.
    pub(crate) fn close(&mut self, span: OpenSpan, end: SpanEnd) {
        let mut attributes = end.attributes;
        if let Some(kind) = &end.error {
            attributes.push(KeyValue::new("error.type", kind.clone()));
        }
        self.spans.push(StageSpan {
            ids: span.ids,
            name: end.name,
            kind: end.kind,
            started: span.started,
            took: span.started.elapsed(),
            attributes,
            error: end.error,
        });
    }
}

impl OpenSpan {
    /// The `traceparent` value that makes what the stage sends a child of
    /// this span.
    pub(crate) fn traceparent(&self) -> HeaderValue {
        // Hex digits and dashes only: always a valid value.
        HeaderValue::from_bytes(&self.ids.traceparent())
            .unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceId};

    /// Spans share the server span's trace, get ids of their own, and
    /// carry them in `traceparent`.
    #[test]
    fn children_of_the_server_span() {
        let parent = TraceIds {
            trace_id: TraceId::from(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
            span_id: SpanId::from(0x00f0_67aa_0ba9_02b7),
            sampled: true,
        };
        let mut trace = StageTrace::new(parent);
        let first = trace.open();
        let second = trace.open();
        assert_eq!(first.ids.trace_id, parent.trace_id);
        assert_ne!(first.ids.span_id, parent.span_id);
        assert_ne!(first.ids.span_id, second.ids.span_id);
        let header = first.traceparent();
        let text = header.to_str().unwrap_or_default();
        assert!(
            text.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "{text}"
        );
        assert!(text.ends_with("-01"), "{text}");
        let id = first.ids.span_id;
        trace.close(
            first,
            SpanEnd {
                name: "GET".into(),
                kind: SpanKind::Client,
                attributes: vec![],
                error: None,
            },
        );
        assert_eq!(trace.spans.len(), 1);
        assert_eq!(trace.spans[0].ids.span_id, id);
        trace.close(
            second,
            SpanEnd {
                name: "GET".into(),
                kind: SpanKind::Client,
                attributes: vec![],
                error: Some("timeout".into()),
            },
        );
        let failed = &trace.spans[1];
        assert_eq!(failed.error.as_deref(), Some("timeout"));
        let error_type = failed
            .attributes
            .iter()
            .find(|kv| kv.key.as_str() == "error.type");
        assert_eq!(
            error_type
                .map(|kv| kv.value.as_str().into_owned())
                .as_deref(),
            Some("timeout")
        );
    }
}
