//! The access log: one JSON line per request on standard output, and the
//! same record as an OTLP log record when configured.
//!
//! Lines are handed to a writer thread through a bounded queue: a reader
//! that does not keep up with stdout (a stalled log shipper, a full pipe)
//! costs dropped lines, counted in `tollgate.telemetry.dropped{signal="access_log"}`,
//! never a slower request. Application logs stay on stderr, so stdout
//! carries only access-log lines.

use super::exchange::split_host;
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::metrics::Counter;
use opentelemetry::trace::TraceFlags;
use opentelemetry_sdk::logs::SdkLogger;
use serde::Serialize;
use std::io::Write;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::SystemTime;
use tollgate_telemetry::TraceIds;

/// Lines held for the writer at most.
const QUEUE: usize = 8192;

/// One request, as logged. Field names are short and stable: they are
/// what log queries are written against.
#[derive(Debug, Serialize)]
pub(crate) struct AccessRecord<'a> {
    /// Always `"access"`, so the lines are easy to pick out.
    pub(crate) log: &'static str,
    /// When the request arrived (RFC 3339, UTC).
    pub(crate) time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) span_id: Option<String>,
    pub(crate) gateway: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) listener: Option<&'a str>,
    pub(crate) protocol: &'static str,
    pub(crate) method: &'a str,
    pub(crate) host: &'a str,
    pub(crate) path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) query: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) route: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) http_route: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backend: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) endpoint: Option<String>,
    pub(crate) status: u16,
    /// A gRPC call's `grpc-status` (its outcome; `status` is mostly 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) grpc_status: Option<u16>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    pub(crate) duration_ms: f64,
    /// Upstream attempts made: 0 for a request answered by the gateway,
    /// more than 1 when it was retried.
    pub(crate) attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) upstream_duration_ms: Option<f64>,
    pub(crate) client_address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) user_agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error_type: Option<&'a str>,
    /// How the caller was authenticated (`jwt`, `api-key`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth_method: Option<&'static str>,
    /// The authenticated caller: consumer, else subject.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) principal: Option<&'a str>,
    /// Why auth refused the request (`expired`, `bad-signature`,
    /// `denied`, ...): the detail the response never gives.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) request_headers: Vec<(&'a str, String)>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) response_headers: Vec<(&'a str, String)>,
}

/// Where access-log lines go.
#[derive(Clone, Debug)]
pub(crate) struct AccessLog {
    tx: SyncSender<String>,
    dropped: Counter<u64>,
}

impl AccessLog {
    /// Lines written to standard output by a thread of their own.
    pub(crate) fn stdout(dropped: Counter<u64>) -> AccessLog {
        AccessLog::to(Box::new(std::io::stdout()), dropped)
    }

    /// Lines written to `out` (tests capture them).
    pub(crate) fn to(out: Box<dyn Write + Send>, dropped: Counter<u64>) -> AccessLog {
        let (tx, rx) = sync_channel(QUEUE);
        let spawned = std::thread::Builder::new()
            .name("tollgate-access-log".into())
            .spawn(move || write_lines(&rx, out));
        if let Err(error) = spawned {
            tracing::warn!(%error, "access log writer not started; lines will be dropped");
        }
        AccessLog { tx, dropped }
    }

    /// Queues one record's line (and sends its OTLP record through
    /// `logger`); drops and counts it when the writer is behind.
    pub(crate) fn write(
        &self,
        record: &AccessRecord<'_>,
        time: SystemTime,
        span: Option<&TraceIds>,
        logger: Option<&SdkLogger>,
    ) {
        let Ok(line) = serde_json::to_string(record) else {
            return;
        };
        if let Some(logger) = logger {
            emit(logger, record, time, span, line.clone());
        }
        match self.tx.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped
                    .add(1, &[KeyValue::new("signal", "access_log")]);
            }
        }
    }
}

/// The writer thread: one line per record, flushed whenever the queue
/// runs dry.
fn write_lines(rx: &Receiver<String>, out: Box<dyn Write + Send>) {
    let mut out = std::io::BufWriter::new(out);
    while let Ok(line) = rx.recv() {
        let _ = writeln!(out, "{line}");
        while let Ok(line) = rx.try_recv() {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }
}

/// A body size as an attribute value (sizes beyond `i64` saturate).
fn body_size(bytes: u64) -> AnyValue {
    i64::try_from(bytes).unwrap_or(i64::MAX).into()
}

/// Sends `record` as an OTLP log record: the JSON line as body, the
/// fields under their semantic-convention names as attributes.
fn emit(
    logger: &SdkLogger,
    r: &AccessRecord<'_>,
    time: SystemTime,
    span: Option<&TraceIds>,
    line: String,
) {
    let mut record = logger.create_log_record();
    record.set_event_name("tollgate.access");
    record.set_timestamp(time);
    record.set_observed_timestamp(SystemTime::now());
    record.set_severity_number(Severity::Info);
    record.set_severity_text("INFO");
    record.set_body(AnyValue::String(line.into()));
    let mut attrs: Vec<(&'static str, AnyValue)> = vec![
        ("http.request.method", r.method.to_string().into()),
        ("url.path", r.path.to_string().into()),
        ("client.address", r.client_address.clone().into()),
        ("network.protocol.version", r.protocol.into()),
        ("http.request.body.size", body_size(r.bytes_in)),
        ("http.response.body.size", body_size(r.bytes_out)),
        ("tollgate.gateway", r.gateway.to_string().into()),
    ];
    // `host` is the `Host` value: the conventions split name and port.
    let (address, port) = split_host(r.host);
    if !address.is_empty() {
        attrs.push(("server.address", address.to_string().into()));
    }
    if let Some(port) = port {
        attrs.push(("server.port", i64::from(port).into()));
    }
    // No status when the client went away before the response.
    if r.status != 0 {
        attrs.push(("http.response.status_code", i64::from(r.status).into()));
    }
    let optional = [
        ("url.query", r.query),
        ("http.route", r.http_route),
        ("user_agent.original", r.user_agent),
        ("error.type", r.error_type),
        ("tollgate.backend", r.backend),
        ("tollgate.listener", r.listener),
        ("tollgate.auth.method", r.auth_method),
        ("tollgate.auth.reason", r.auth_reason),
        ("user.id", r.principal),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            attrs.push((key, value.to_string().into()));
        }
    }
    if let Some(route) = &r.route {
        attrs.push(("tollgate.route", route.clone().into()));
    }
    record.add_attributes(attrs);
    if let Some(ids) = span.filter(|s| s.is_valid()) {
        let flags = TraceFlags::default().with_sampled(ids.sampled);
        record.set_trace_context(ids.trace_id, ids.span_id, Some(flags));
    }
    logger.emit(record);
}
