//! Scenario 7's helpers: the OTLP receiver the tracing modes export to,
//! and the span drops Tollgate reports on its admin port.

use crate::error::BenchError;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;
use tollgate_e2e::otlp::{Receiver, SpanKind};

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
    pub(super) fn take_server_spans(&self) -> u64 {
        let n = self
            .receiver
            .spans()
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .count();
        self.receiver.clear();
        n as u64
    }
}

/// `tollgate_telemetry_dropped_total{signal="traces"}` from the admin
/// server's `/metrics`; 0 when absent or unreadable.
pub(super) fn dropped_spans(admin: SocketAddr) -> u64 {
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
