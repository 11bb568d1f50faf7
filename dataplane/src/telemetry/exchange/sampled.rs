//! A sampled exchange's spans, made by the span exporter when their batch
//! is sent ([`DeferredSpans`]): the request path records an attempt as a
//! few numbers ([`ClientSpan`]) and hands the finished exchange over
//! whole; names, attributes and strings are made off the request path,
//! many spans at a time.

use super::Exchange;
use crate::ip_text::ip_string;
use crate::telemetry::spans::{self, Finished, Planned};
use opentelemetry::trace::SpanKind;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::SpanData;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tollgate_telemetry::DeferredSpans;

/// A sampled upstream attempt, as recorded when it ended.
#[derive(Debug)]
pub(super) struct ClientSpan {
    pub(super) planned: Planned,
    /// When it started, after the exchange did.
    pub(super) offset: Duration,
    pub(super) took: Duration,
    pub(super) endpoint: SocketAddr,
    pub(super) resend_count: u32,
    /// The backend's index in the runtime (its label is there).
    pub(super) backend: usize,
    /// The response status, or the failure's `error.type`.
    pub(super) outcome: Result<u16, &'static str>,
}

/// A finished, sampled exchange: its server span starts at `start`
/// (wall clock) and took `took`.
pub(super) struct Sampled {
    pub(super) exchange: Exchange,
    pub(super) start: SystemTime,
    pub(super) took: Duration,
}

impl DeferredSpans for Sampled {
    fn count(&self) -> u64 {
        let server = self.exchange.server_span.is_some_and(|s| s.sampled());
        self.exchange.client_spans.len() as u64 + u64::from(server)
    }

    fn build(self: Box<Self>, out: &mut Vec<SpanData>) {
        let Sampled {
            exchange,
            start,
            took,
        } = *self;
        let Some(scope) = exchange.obs.as_ref().map(|o| o.traces.scope()) else {
            return;
        };
        for attempt in &exchange.client_spans {
            out.push(exchange.client_span(attempt, start, scope));
        }
        if let Some(span) = exchange.server_span.filter(Planned::sampled) {
            out.push(exchange.server_span(span, start, took, scope));
        }
    }
}

impl Exchange {
    /// The span of `attempt`, the server span having started at `start`.
    fn client_span(
        &self,
        attempt: &ClientSpan,
        start: SystemTime,
        scope: &InstrumentationScope,
    ) -> SpanData {
        let begun = start + attempt.offset;
        let mut attrs = self.client_attributes(attempt.backend, attempt.outcome);
        attrs.push(KeyValue::new(
            "server.address",
            ip_string(attempt.endpoint.ip()),
        ));
        attrs.push(KeyValue::new(
            "server.port",
            i64::from(attempt.endpoint.port()),
        ));
        if attempt.resend_count > 0 {
            attrs.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(attempt.resend_count),
            ));
        }
        let finished = Finished {
            planned: attempt.planned,
            kind: SpanKind::Client,
            name: self.method.to_string(),
            start: begun,
            end: begun + attempt.took,
            attributes: attrs,
            error: attempt.outcome.err().map(str::to_string),
        };
        spans::data(finished, &self.parent, scope)
    }
}
