//! One upstream attempt of an exchange: its client span planned and its
//! trace context handed to the upstream client when it starts, its
//! duration recorded (and its span written, when sampled) when it ends.

use super::{Exchange, Upstream};
use crate::clock::Ticks;
use crate::ip_text::ip_string;
use crate::telemetry::Observability;
use crate::telemetry::bound::ClientKey;
use crate::telemetry::instruments::Instruments;
use crate::telemetry::labels;
use crate::telemetry::spans::{self, Finished, Planned};
use http::HeaderMap;
use opentelemetry::trace::{SpanKind, TraceContextExt};
use opentelemetry::{KeyValue, Value};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};
use tollgate_telemetry::TraceLine;

/// One upstream attempt, while it runs.
#[derive(Debug)]
pub(crate) struct Attempt {
    /// When it started.
    pub(super) started: Ticks,
    /// Its client span, when the request is sampled.
    pub(super) span: Option<Planned>,
    /// How many times the request was sent before (`http.request.resend_count`).
    pub(super) resend_count: u32,
    /// The trace context fields the upstream request carries, when the
    /// client writes them itself.
    pub(super) trace: Option<TraceLine>,
}

impl Attempt {
    /// The trace context fields for the upstream client to write into the
    /// request head (`None`: nothing to add, or already in the headers).
    pub(crate) fn trace(&self) -> Option<&TraceLine> {
        self.trace.as_ref()
    }
}

impl Exchange {
    /// Starts an upstream attempt: plans its client span and puts it into
    /// the upstream request's `headers` as parent. An unsampled request's
    /// attempt has no span of its own: the upstream gets the server span's
    /// (unsampled) context, as no span id of it is ever written anywhere.
    ///
    /// With W3C propagation the fields come back as the attempt's
    /// [`Attempt::trace`] for the upstream client to write, instead of
    /// going into `headers` (see [`Propagation::take_for_upstream`]).
    ///
    /// [`Propagation::take_for_upstream`]: tollgate_telemetry::Propagation::take_for_upstream
    pub(crate) fn attempt(&self, headers: &mut HeaderMap) -> Attempt {
        let server = self.server_span.as_ref();
        let span = server.filter(|s| s.sampled()).map(spans::plan_child);
        let trace = match (&self.obs, span.as_ref().or(server)) {
            (Some(obs), Some(parent)) => {
                let client = self.parent.span();
                let state = client.span_context().trace_state();
                obs.propagation
                    .upstream_line(parent.ids, state, &self.parent, headers)
            }
            _ => None,
        };
        Attempt {
            started: Ticks::now(),
            span,
            resend_count: 0,
            trace,
        }
    }

    /// Records an upstream attempt to `endpoint` of `backend` that ended
    /// with `status` (response headers) or failed with `error`. `url`
    /// makes the span's `url.full` (given whether the query may be
    /// recorded), and is called only for a sampled attempt.
    pub(crate) fn attempted(
        &mut self,
        attempt: Attempt,
        (backend_index, backend): (usize, &Value),
        endpoint: SocketAddr,
        outcome: Result<u16, &'static str>,
        url: impl FnOnce(bool) -> String,
    ) {
        self.attempts += 1;
        // A sampled attempt's span starts on the server span's wall clock.
        let sampled = attempt.span.as_ref().is_some_and(Planned::sampled);
        let anchor = sampled.then(|| self.wall_start());
        let (Some(obs), Some(t)) = (&self.obs, self.telemetry()) else {
            return;
        };
        let started = attempt.started;
        let took = started.elapsed();
        let attributes = || {
            let mut attrs = vec![
                self.method_attribute(),
                KeyValue::new("tollgate.backend", backend.clone()),
                KeyValue::new("tollgate.gateway", t.gateway.clone()),
            ];
            match outcome {
                Ok(status) => {
                    attrs.push(KeyValue::new(
                        "http.response.status_code",
                        i64::from(status),
                    ));
                    // A client counts 4xx as failures too (the HTTP
                    // conventions' client span status); the status is
                    // the `error.type`.
                    if status >= 400 {
                        attrs.push(KeyValue::new("error.type", status.to_string()));
                    }
                }
                Err(error) => attrs.push(KeyValue::new("error.type", error)),
            }
            attrs
        };
        let key = ClientKey {
            backend: u32::try_from(backend_index).unwrap_or(u32::MAX),
            method: self.method_index,
            status: outcome.unwrap_or(0),
            error: labels::error_index(outcome.err()),
        };
        t.bound.client(key, &obs.instruments, attributes, |h| {
            h.record(took.as_secs_f64());
        });
        if outcome == Err("upstream-connect") {
            connect_error(&obs.instruments, attributes);
        }
        if let (Some(span), Some(anchor)) = (attempt.span.filter(Planned::sampled), anchor) {
            let start = anchor + started.since(self.started);
            let sent = SentAttempt {
                span,
                start,
                took,
                endpoint,
                resend_count: attempt.resend_count,
                outcome,
            };
            self.write_attempt(obs, sent, attributes, || url(t.record_query));
        }
        self.upstream = Some(Upstream {
            backend: backend_index,
            endpoint,
            took,
        });
    }

    /// Writes a sampled attempt's client span: its metric `attributes`,
    /// the endpoint and the `url`. Out of line and cold for the same
    /// reason as the server span's (`Exchange::write_records`); the
    /// attributes are built in here, not in the caller, for that reason.
    #[cold]
    #[inline(never)]
    fn write_attempt(
        &self,
        obs: &Observability,
        sent: SentAttempt,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        url: impl FnOnce() -> String,
    ) {
        let SentAttempt {
            span,
            start,
            took,
            endpoint,
            resend_count,
            outcome,
        } = sent;
        let mut attrs = attributes();
        attrs.push(KeyValue::new("server.address", ip_string(endpoint.ip())));
        attrs.push(KeyValue::new("server.port", i64::from(endpoint.port())));
        if resend_count > 0 {
            attrs.push(KeyValue::new(
                "http.request.resend_count",
                i64::from(resend_count),
            ));
        }
        attrs.push(KeyValue::new("url.full", url()));
        spans::write(
            &obs.traces,
            Finished {
                planned: span,
                kind: SpanKind::Client,
                name: self.method.to_string(),
                start,
                end: start + took,
                attributes: attrs,
                error: match outcome {
                    Ok(status) => (status >= 400).then(|| status.to_string()),
                    Err(error) => Some(error.to_string()),
                },
            },
            &self.parent,
        );
    }
}

/// What a sampled attempt's span is written from.
struct SentAttempt {
    span: Planned,
    start: SystemTime,
    took: Duration,
    endpoint: SocketAddr,
    resend_count: u32,
    outcome: Result<u16, &'static str>,
}

/// Counts a failed connection to an upstream endpoint, by the backend and
/// gateway of the attempt's `attributes` (rare, so out of line with them).
#[cold]
#[inline(never)]
fn connect_error(instruments: &Instruments, attributes: impl FnOnce() -> Vec<KeyValue>) {
    let attributes = attributes();
    instruments
        .connect_errors
        .add(1, attributes.get(1..3).unwrap_or_default());
}
