//! What the receiver has received, and how it is told to misbehave.
//!
//! Both transports decode a request and hand it to [`Shared::admit`] then
//! [`Shared::record`]: one place applies the test's controls (delay, fail)
//! and keeps every accepted request, and a watch channel wakes whoever
//! waits for data.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use tokio::sync::watch;

use super::value::Protocol;

/// One accepted export request, as decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Export {
    /// The transport that carried it.
    pub protocol: Protocol,
    /// Its HTTP headers or gRPC metadata, lowercase names; a repeated
    /// header keeps its last value.
    pub headers: BTreeMap<String, String>,
    /// The decoded request.
    pub payload: Payload,
}

/// The decoded body of an export request, by signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `/v1/traces` or `TraceService/Export`.
    Traces(ExportTraceServiceRequest),
    /// `/v1/metrics` or `MetricsService/Export`.
    Metrics(ExportMetricsServiceRequest),
    /// `/v1/logs` or `LogsService/Export`.
    Logs(ExportLogsServiceRequest),
}

impl Payload {
    /// The signal's name: `traces`, `metrics` or `logs`.
    pub fn signal(&self) -> &'static str {
        match self {
            Self::Traces(_) => "traces",
            Self::Metrics(_) => "metrics",
            Self::Logs(_) => "logs",
        }
    }
}

/// Why a request was not accepted: the test made the receiver fail.
#[derive(Debug)]
pub(crate) struct Refused;

#[derive(Debug, Default)]
struct State {
    exports: Vec<Export>,
    rejected: usize,
    delay: Duration,
    failing: bool,
}

/// The state both transports share with the [`Receiver`](super::Receiver).
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Bumped on every accepted or rejected request.
    changes: watch::Sender<u64>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            changes: watch::Sender::new(0),
        }
    }

    /// A panicking test thread must not hide what was received from the
    /// next assertion, so a poisoned lock is used as is.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies the controls to a request about to be accepted: waits the
    /// configured delay, then refuses it if the receiver is failing.
    ///
    /// # Errors
    ///
    /// [`Refused`] when the test called `set_failing(true)`; the transport
    /// answers 503 or `UNAVAILABLE`.
    pub(crate) async fn admit(&self) -> Result<(), Refused> {
        let delay = self.lock().delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let refused = {
            let mut state = self.lock();
            if state.failing {
                state.rejected += 1;
            }
            state.failing
        };
        if refused {
            self.changes.send_modify(|n| *n += 1);
            return Err(Refused);
        }
        Ok(())
    }

    /// Keeps an accepted request and wakes the waiters.
    pub(crate) fn record(&self, export: Export) {
        self.lock().exports.push(export);
        self.changes.send_modify(|n| *n += 1);
    }

    pub(crate) fn exports(&self) -> Vec<Export> {
        self.lock().exports.clone()
    }

    pub(crate) fn rejected(&self) -> usize {
        self.lock().rejected
    }

    pub(crate) fn clear(&self) {
        let mut state = self.lock();
        state.exports.clear();
        state.rejected = 0;
    }

    pub(crate) fn set_delay(&self, delay: Duration) {
        self.lock().delay = delay;
    }

    pub(crate) fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}
