//! Scenario 7's helpers: the OTLP receiver the tracing modes export to,
//! and the span drops Tollgate reports on its admin port.

use super::SPAN_SETTLE;
use crate::error::BenchError;
use crate::peers::Running;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tollgate_e2e::otlp::{Receiver, SpanKind};

/// What a traced process's run sent: server spans received, spans the
/// process dropped with a full export queue.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct RunSpans {
    pub(super) received: u64,
    pub(super) dropped: u64,
}

/// The OTLP receiver, on a runtime of its own (the harness is blocking).
pub(super) struct Sink {
    pub(super) receiver: Receiver,
    _runtime: tokio::runtime::Runtime,
}

impl Sink {
    pub(super) fn start() -> Result<Sink, BenchError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(BenchError::io("starting the OTLP receiver's runtime"))?;
        let receiver = runtime
            .block_on(Receiver::start())
            .map_err(|e| BenchError::Http {
                what: "starting the OTLP receiver".into(),
                detail: e.to_string(),
            })?;
        Ok(Sink {
            receiver,
            _runtime: runtime,
        })
    }

    /// Server spans (one per sampled request) received since the last
    /// call; forgets them, so memory stays flat at 100%.
    fn take_server_spans(&self) -> u64 {
        let n = self
            .receiver
            .spans()
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .count();
        self.receiver.clear();
        n as u64
    }

    /// Runs `load` against `process`; when it is `traced`, first lets the
    /// readiness probes' spans arrive and discards them (they are not the
    /// run's), then lets the run's spans arrive before counting them, so
    /// the process may be stopped after.
    pub(super) fn counting<T>(
        &self,
        process: &Running,
        traced: bool,
        load: impl FnOnce() -> T,
    ) -> (T, RunSpans) {
        if !traced {
            return (load(), RunSpans::default());
        }
        std::thread::sleep(SPAN_SETTLE);
        self.take_server_spans();
        let out = load();
        std::thread::sleep(SPAN_SETTLE);
        let spans = RunSpans {
            received: self.take_server_spans(),
            dropped: process.admin.map_or(0, dropped_spans),
        };
        (out, spans)
    }
}

/// `tollgate_telemetry_dropped_total{signal="traces"}` from the admin
/// server's `/metrics`; 0 when absent or unreadable.
fn dropped_spans(admin: SocketAddr) -> u64 {
    let Ok(mut stream) = TcpStream::connect_timeout(&admin, Duration::from_secs(2)) else {
        return 0;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let request = "GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
    let mut text = String::new();
    if stream.write_all(request.as_bytes()).is_err() || stream.read_to_string(&mut text).is_err() {
        return 0;
    }
    text.lines()
        .filter(|l| l.starts_with("tollgate_telemetry_dropped_total{"))
        .filter(|l| l.contains("signal=\"traces\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}
