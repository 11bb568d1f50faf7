//! Received trace exports, flattened to one [`Span`] per span.
//!
//! An `ExportTraceServiceRequest` nests spans under resources and scopes;
//! tests mostly ask "was there a span named X with attribute Y, and what is
//! its parent", so each span carries its [`Origin`] and ids as hex strings.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
pub use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{self as proto};
use serde_json::Value;

use super::value::{Attributes, Origin, Protocol, attributes, hex, optional_id};

/// One received span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Its resource, scope and transport.
    pub origin: Origin,
    /// The trace id, 32 lowercase hex digits.
    pub trace_id: String,
    /// The span id, 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, `None` for a root span.
    pub parent_span_id: Option<String>,
    /// The W3C trace state, empty when not set.
    pub trace_state: String,
    /// The span name.
    pub name: String,
    /// Server, client, internal, ...
    pub kind: SpanKind,
    /// Start time, nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// End time, nanoseconds since the Unix epoch.
    pub end_time_unix_nano: u64,
    /// The span's own attributes.
    pub attributes: Attributes,
    /// Events recorded on the span, in order.
    pub events: Vec<SpanEvent>,
    /// Links to other spans.
    pub links: Vec<SpanLink>,
    /// The status code (unset, ok, error).
    pub status: StatusCode,
    /// The status message, empty when not set.
    pub status_message: String,
}

/// An event recorded on a span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// The event name.
    pub name: String,
    /// When it happened, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: Attributes,
}

/// A link from a span to another span.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanLink {
    /// The linked trace id, as hex.
    pub trace_id: String,
    /// The linked span id, as hex.
    pub span_id: String,
    /// The link's attributes.
    pub attributes: Attributes,
}

impl Span {
    /// The attribute `key` as a string, if present and a string.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }

    /// The attribute `key` as an integer, if present and an integer.
    pub fn int_attr(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }

    /// Whether this span's parent is `parent` (same trace, parent id).
    pub fn is_child_of(&self, parent: &Span) -> bool {
        self.trace_id == parent.trace_id
            && self.parent_span_id.as_deref() == Some(parent.span_id.as_str())
    }

    /// How long the span lasted, in nanoseconds (0 if it ends before it starts).
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano)
    }
}

/// The spans of one request, in the order they were sent.
pub(crate) fn flatten(protocol: Protocol, request: &ExportTraceServiceRequest) -> Vec<Span> {
    let mut out = Vec::new();
    for resource_spans in &request.resource_spans {
        for scope_spans in &resource_spans.scope_spans {
            let origin = Origin::new(
                protocol,
                resource_spans.resource.as_ref(),
                scope_spans.scope.as_ref(),
            );
            out.extend(scope_spans.spans.iter().map(|span| convert(&origin, span)));
        }
    }
    out
}

fn convert(origin: &Origin, span: &proto::Span) -> Span {
    let status = span.status.as_ref();
    Span {
        origin: origin.clone(),
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: optional_id(&span.parent_span_id),
        trace_state: span.trace_state.clone(),
        name: span.name.clone(),
        kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: attributes(&span.attributes),
        events: span
            .events
            .iter()
            .map(|event| SpanEvent {
                name: event.name.clone(),
                time_unix_nano: event.time_unix_nano,
                attributes: attributes(&event.attributes),
            })
            .collect(),
        links: span
            .links
            .iter()
            .map(|link| SpanLink {
                trace_id: hex(&link.trace_id),
                span_id: hex(&link.span_id),
                attributes: attributes(&link.attributes),
            })
            .collect(),
        status: status
            .and_then(|s| StatusCode::try_from(s.code).ok())
            .unwrap_or(StatusCode::Unset),
        status_message: status.map(|s| s.message.clone()).unwrap_or_default(),
    }
}
