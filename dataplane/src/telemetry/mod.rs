//! Request telemetry: metrics, spans and the access log of every request,
//! recorded through one [`Exchange`] per request.
//!
//! ```text
//!  dispatch ── Exchange::begin ─► pipeline: routed ─► attempt(s) ─► respond ─► body ends: finish
//!              (clock, in-flight,   (route labels,     (client span,  (status,    (duration, sizes,
//!               client context)      sampling, ids)     upstream time) error.type) server span, access log)
//! ```
//!
//! Process-wide handles ([`DataplaneTelemetry`]: instruments, the span and
//! log-record pipelines, propagation, the access-log writer) are made once
//! and shared by every data plane of the process; what varies per Gateway
//! or route (sampling ratio, access log on/off, recorded headers, label
//! values) is prepared by `Runtime::build` from the snapshot
//! ([`RuntimeTelemetry`]), so a snapshot swap never drops a pipeline.

mod access_log;
mod active;
mod body;
mod bound;
mod exchange;
mod gauges;
mod instruments;
mod labels;
mod runtime;
mod sampling;
mod spans;
mod stage_trace;

pub(crate) use body::ObservedBody;
pub(crate) use exchange::{Exchange, RequestHead};
pub use gauges::{GaugeReading, register_gauges};
pub(crate) use labels::{RouteLabels, shared};
pub(crate) use runtime::RuntimeTelemetry;
pub(crate) use sampling::RatioSampler;
pub(crate) use stage_trace::{OpenSpan, SpanEnd, StageTrace};

use access_log::AccessLog;
use instruments::Instruments;
use opentelemetry::KeyValue;
use opentelemetry_sdk::logs::SdkLogger;
use std::sync::Arc;
use tollgate_snapshot::Snapshot;
use tollgate_telemetry::{Propagation, Telemetry, TracesPipeline, WorkSpan};

/// The instrumentation scope of the data plane's instruments.
const SCOPE: &str = "tollgate-dataplane";

/// The process's request telemetry, shared by every data plane in it.
#[derive(Clone, Debug)]
pub struct DataplaneTelemetry {
    inner: Option<Arc<Observability>>,
}

/// What the request path records into.
#[derive(Debug)]
pub(crate) struct Observability {
    pub(crate) instruments: Instruments,
    /// `http.server.active_requests`, per method and scheme.
    pub(crate) active: active::ActiveRequests,
    pub(crate) traces: TracesPipeline,
    /// The environment's sampler, for Gateways and routes without a ratio.
    pub(crate) sampler: RatioSampler,
    pub(crate) propagation: Propagation,
    pub(crate) access_log: AccessLog,
    /// OTLP log records, when OTLP logs are configured.
    pub(crate) records: Option<SdkLogger>,
}

impl DataplaneTelemetry {
    /// Request telemetry reporting through `telemetry`'s pipelines; access
    /// log lines go to standard output.
    pub fn new(telemetry: &Telemetry) -> DataplaneTelemetry {
        let meter = telemetry.metrics.meter(SCOPE);
        let instruments = Instruments::new(&meter);
        DataplaneTelemetry {
            inner: Some(Arc::new(Observability {
                active: active::ActiveRequests::new(&meter),
                instruments,
                traces: telemetry.traces.clone(),
                sampler: RatioSampler::from_spec(telemetry.traces.sampler),
                propagation: telemetry.propagation.clone(),
                access_log: AccessLog::stdout(telemetry.dropped.clone()),
                records: telemetry.records.access_logger(),
            })),
        }
    }

    /// No request telemetry at all (the bare proxy in tests and benches).
    pub fn disabled() -> DataplaneTelemetry {
        DataplaneTelemetry { inner: None }
    }

    /// The shared handles, when telemetry is on.
    pub(crate) fn observability(&self) -> Option<&Arc<Observability>> {
        self.inner.as_ref()
    }

    /// Starts the span of applying `snapshot`, when the controller's
    /// compile that made it was traced (`Snapshot::traceparent`) and this
    /// process exports spans: it joins the compile's trace.
    pub(crate) fn apply_span(&self, snapshot: &Snapshot) -> Option<WorkSpan> {
        let obs = self.inner.as_ref()?;
        let parent = snapshot.traceparent.as_deref()?;
        obs.traces.remote_child("apply snapshot", parent)
    }

    /// Records snapshot `version` of `gateway` applied (`Ok`: how long
    /// build and swap took) or rejected, and ends its apply `span`.
    pub(crate) fn snapshot(
        &self,
        gateway: &str,
        version: u64,
        outcome: Result<std::time::Duration, &dyn std::fmt::Display>,
        span: Option<WorkSpan>,
    ) {
        let Some(obs) = &self.inner else {
            return;
        };
        let gateway = KeyValue::new("tollgate.gateway", gateway.to_string());
        let result = if outcome.is_ok() {
            "applied"
        } else {
            "rejected"
        };
        let attrs = [gateway, KeyValue::new("result", result)];
        obs.instruments.snapshots.add(1, &attrs);
        if let Ok(took) = outcome {
            obs.instruments
                .snapshot_apply_duration
                .record(took.as_secs_f64(), &attrs[..1]);
        }
        if let Some(mut span) = span {
            let [gateway, _] = attrs;
            span.set(gateway);
            span.set(KeyValue::new("tollgate.snapshot.version", version as i64));
            span.set(KeyValue::new("tollgate.snapshot.result", result));
            if let Err(error) = outcome {
                span.fail("snapshot-rejected", error.to_string());
            }
            span.end(&obs.traces);
        }
    }
}

impl DataplaneTelemetry {
    /// Counts a TLS handshake that failed, by `error.type` (`timeout`,
    /// `eof`, `handshake`, `no_listener`).
    pub(crate) fn tls_handshake_failed(&self, error_type: &'static str) {
        if let Some(obs) = &self.inner {
            let attrs = [opentelemetry::KeyValue::new("error.type", error_type)];
            obs.instruments.tls_handshake_failures.add(1, &attrs);
        }
    }

    /// Counts a connection on a TLS listener (TLSRoute) by `result`
    /// (`relayed`, `unknown_sni`, `no_backend`, `connect_failed`,
    /// `client_hello`, `handshake`).
    pub(crate) fn relay_connection(&self, result: &'static str) {
        if let Some(obs) = &self.inner {
            let attrs = [opentelemetry::KeyValue::new("result", result)];
            obs.instruments.relay_connections.add(1, &attrs);
        }
    }

    /// Counts the bytes one relay moved: `up` from client to backend,
    /// `down` back.
    pub(crate) fn relay_bytes(&self, up: u64, down: u64) {
        if let Some(obs) = &self.inner {
            for (direction, n) in [("upstream", up), ("downstream", down)] {
                let attrs = [opentelemetry::KeyValue::new("direction", direction)];
                obs.instruments.relay_bytes.add(n, &attrs);
            }
        }
    }
}

impl Default for DataplaneTelemetry {
    fn default() -> Self {
        DataplaneTelemetry::disabled()
    }
}
