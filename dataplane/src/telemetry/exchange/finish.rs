//! The end of an exchange: the server span and the access-log line, built
//! from what the exchange gathered, only when they are wanted (a sampled
//! span, a drawn log line).

use super::{Detail, Exchange, split_host};
use crate::ip_text::{ip_string, socket_string};
use crate::telemetry::Observability;
use crate::telemetry::access_log::AccessRecord;
use crate::telemetry::labels::{self, SCHEMES, push_opt};
use crate::telemetry::spans::{self, Finished, Planned};
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{KeyValue, Value};
use std::time::{Duration, SystemTime};

impl Exchange {
    pub(super) fn write_span(
        &self,
        obs: &Observability,
        mut attrs: Vec<KeyValue>,
        start: SystemTime,
        took: Duration,
    ) {
        let Some(span) = self.server_span.filter(Planned::sampled) else {
            return;
        };
        // Absent only for a request answered before it was read (a bad head).
        if let Some(detail) = &self.detail {
            self.push_detail(&mut attrs, detail);
        }
        if let Some(client) = self.client_address() {
            attrs.push(KeyValue::new("client.address", ip_string(client)));
        }
        self.push_identity(&mut attrs);
        if let Some(labels) = self.route_labels() {
            attrs.push(KeyValue::new("tollgate.rule", labels.rule));
            push_opt(&mut attrs, "tollgate.rule.name", labels.rule_name.as_ref());
        }
        push_opt(&mut attrs, "tollgate.backend", self.backend_label());
        if let Some(call) = &self.grpc {
            call.push_span_attributes(&mut attrs);
        }
        if let Some(runtime) = &self.settings {
            attrs.push(KeyValue::new(
                "tollgate.snapshot.version",
                runtime.snapshot().version as i64,
            ));
        }
        let name = match (&self.grpc, &self.routed) {
            (Some(call), _) => call.span_name(),
            (None, Some(r)) => format!("{} {}", self.method, r.template),
            (None, None) => self.method.to_string(),
        };
        let grpc_failed = self.grpc.as_ref().is_some_and(|c| c.server_error());
        let failed = self.error.is_some() || self.status >= 500 || grpc_failed;
        spans::write(
            &obs.traces,
            Finished {
                planned: span,
                kind: SpanKind::Server,
                name,
                start,
                end: start + took,
                attributes: attrs,
                error: failed.then(|| self.error.unwrap_or("error").to_string()),
            },
            &self.parent,
        );
    }

    /// The span attributes of what was copied from the request.
    fn push_detail(&self, attrs: &mut Vec<KeyValue>, detail: &Detail) {
        attrs.push(KeyValue::new("url.path", detail.path.clone()));
        let (address, port) = split_host(&detail.host);
        if !address.is_empty() {
            attrs.push(KeyValue::new("server.address", address.to_string()));
            let default_port = if SCHEMES.get(usize::from(self.scheme_index)) == Some(&"https") {
                443
            } else {
                80
            };
            attrs.push(KeyValue::new(
                "server.port",
                i64::from(port.unwrap_or(default_port)),
            ));
        }
        if let Some(query) = &detail.query {
            attrs.push(KeyValue::new("url.query", query.clone()));
        }
        if let Some(agent) = &detail.user_agent {
            attrs.push(KeyValue::new("user_agent.original", agent.clone()));
        }
        if let Some(runtime) = &self.settings {
            let t = runtime.telemetry();
            push_headers(
                attrs,
                "http.request.header",
                &t.request_headers,
                &detail.request_headers,
            );
            push_headers(
                attrs,
                "http.response.header",
                &t.response_headers,
                &detail.response_headers,
            );
        }
    }

    pub(super) fn write_log(
        &self,
        obs: &Observability,
        sent: u64,
        start: SystemTime,
        took: Duration,
    ) {
        let (Some(detail), Some(runtime)) = (&self.detail, &self.settings) else {
            return;
        };
        let t = runtime.telemetry();
        let text = |v: &Value| v.as_str().into_owned();
        let span = self.server_span.as_ref().map(|s| &s.ids);
        // Without a span of its own (tracing off), the line still carries
        // the client's trace id, so logs and the client's traces meet.
        let parent = self.parent.span();
        let client = parent.span_context();
        let trace_id = match span {
            Some(s) => Some(s.trace_id.to_string()),
            None => client.is_valid().then(|| client.trace_id().to_string()),
        };
        let gateway = runtime.snapshot().gateway.as_str();
        let record = AccessRecord {
            log: "access",
            time: jiff::Timestamp::try_from(start)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            trace_id,
            span_id: span.map(|s| s.span_id.to_string()),
            gateway,
            listener: None,
            protocol: labels::protocol_version(self.version),
            method: self.method.as_str(),
            host: &detail.host,
            path: &detail.path,
            query: detail.query.as_deref(),
            route: self.route_labels().map(|l| text(&l.route)),
            rule: self.route_labels().map(|l| l.rule),
            rule_name: self
                .route_labels()
                .and_then(|l| l.rule_name.as_ref().map(text)),
            http_route: None,
            backend: None,
            endpoint: self.upstream.as_ref().map(|u| socket_string(u.endpoint)),
            status: self.status,
            grpc_status: self.grpc.as_ref().and_then(|c| c.status()),
            bytes_in: self.bytes_received(),
            bytes_out: sent,
            duration_ms: took.as_secs_f64() * 1000.0,
            attempts: self.attempts,
            upstream_duration_ms: self
                .upstream
                .as_ref()
                .map(|u| u.took.as_secs_f64() * 1000.0),
            client_address: self.client_address().map(ip_string).unwrap_or_default(),
            auth_method: self.identity.as_ref().and_then(|i| i.method),
            principal: self.identity.as_ref().and_then(|i| i.user.as_deref()),
            auth_reason: self.identity.as_ref().and_then(|i| i.reason),
            user_agent: detail.user_agent.as_deref(),
            error_type: self.error,
            request_headers: named(&t.request_headers, &detail.request_headers),
            response_headers: named(&t.response_headers, &detail.response_headers),
        };
        let listener = self.listener_label().map(text);
        let template = self.routed.as_ref().map(|r| r.template.to_string());
        let backend = self.backend_label().map(text);
        let record = AccessRecord {
            listener: listener.as_deref(),
            http_route: template.as_deref(),
            backend: backend.as_deref(),
            ..record
        };
        let logger = obs.records.as_ref().filter(|_| t.access_log_otlp);
        obs.access_log.write(&record, start, span, logger);
    }
}

/// Appends recorded header values as `<prefix>.<name>` string arrays, as
/// the HTTP semantic conventions name them.
fn push_headers(
    attrs: &mut Vec<KeyValue>,
    prefix: &str,
    names: &[http::HeaderName],
    values: &[(usize, String)],
) {
    for (i, value) in values {
        if let Some(name) = names.get(*i) {
            let array = opentelemetry::Array::String(vec![value.clone().into()]);
            attrs.push(KeyValue::new(
                format!("{prefix}.{name}"),
                Value::Array(array),
            ));
        }
    }
}

/// The recorded headers of `values` with their names, for the log line.
fn named<'a>(list: &'a [http::HeaderName], values: &[(usize, String)]) -> Vec<(&'a str, String)> {
    values
        .iter()
        .filter_map(|(i, v)| Some((list.get(*i)?.as_str(), v.clone())))
        .collect()
}
