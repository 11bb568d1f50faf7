//! Received log exports, flattened to one [`LogRecord`] per record.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{self as proto};
use serde_json::Value;

use super::value::{Attributes, Origin, Protocol, attributes, optional_id, to_json};

/// One received log record.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Its resource, scope and transport.
    pub origin: Origin,
    /// When the event happened, nanoseconds since the Unix epoch (0 if unset).
    pub time_unix_nano: u64,
    /// When it was observed, nanoseconds since the Unix epoch.
    pub observed_time_unix_nano: u64,
    /// The OTLP severity number (9 is INFO, 13 WARN, 17 ERROR).
    pub severity_number: i32,
    /// The severity as text, empty when not set.
    pub severity_text: String,
    /// The body as JSON (`null` when absent); a string body is a JSON string.
    pub body: Value,
    /// The record's attributes.
    pub attributes: Attributes,
    /// The trace it was emitted in, as hex, if any.
    pub trace_id: Option<String>,
    /// The span it was emitted in, as hex, if any.
    pub span_id: Option<String>,
    /// The event name, empty when not set.
    pub event_name: String,
}

impl LogRecord {
    /// The body as a string, if it is one.
    pub fn body_str(&self) -> Option<&str> {
        self.body.as_str()
    }

    /// The attribute `key` as a string, if present and a string.
    pub fn str_attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).and_then(Value::as_str)
    }
}

/// The log records of one request, in the order they were sent.
pub(crate) fn flatten(protocol: Protocol, request: &ExportLogsServiceRequest) -> Vec<LogRecord> {
    let mut out = Vec::new();
    for resource_logs in &request.resource_logs {
        for scope_logs in &resource_logs.scope_logs {
            let origin = Origin::new(
                protocol,
                resource_logs.resource.as_ref(),
                scope_logs.scope.as_ref(),
            );
            out.extend(
                scope_logs
                    .log_records
                    .iter()
                    .map(|record| convert(&origin, record)),
            );
        }
    }
    out
}

fn convert(origin: &Origin, record: &proto::LogRecord) -> LogRecord {
    LogRecord {
        origin: origin.clone(),
        time_unix_nano: record.time_unix_nano,
        observed_time_unix_nano: record.observed_time_unix_nano,
        severity_number: record.severity_number,
        severity_text: record.severity_text.clone(),
        body: record.body.as_ref().map(to_json).unwrap_or(Value::Null),
        attributes: attributes(&record.attributes),
        trace_id: optional_id(&record.trace_id),
        span_id: optional_id(&record.span_id),
        event_name: record.event_name.clone(),
    }
}
