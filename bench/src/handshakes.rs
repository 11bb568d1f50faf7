//! Closed-loop load of new TLS connections: full handshakes per second.
//!
//! Neither `wrk` nor `h2load` can open a new connection for every request
//! in a closed loop (h2load's clients keep their connection for all their
//! requests), so the harness does it itself: `connections` threads, each
//! in a loop until the deadline — connect, full TLS 1.3 handshake (no
//! resumption, see [`crate::tls`]), `GET /` with `Connection: close`, read
//! the answer to the end of the connection — so every completed request is
//! one full handshake and one proxied request. The threads run where the
//! harness runs (the load CPU, with the backend), and block on the network;
//! nothing is sent anywhere but the target on 127.0.0.1, and every thread
//! stops at the deadline by itself.

use crate::tls::{self, TlsStream};
use rustls::ClientConfig;
use serde::Serialize;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One run's outcome.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct HandshakeResult {
    /// Full handshakes that ended in a 200 answer.
    pub completed: u64,
    /// Connections, handshakes or requests that failed, and non-200 answers.
    pub failures: u64,
    /// Completed per second of the run's wall time.
    pub rate: f64,
}

/// Runs `connections` closed-loop clients against `addr` for `duration`.
pub fn run(
    config: &Arc<ClientConfig>,
    addr: SocketAddr,
    connections: usize,
    duration: Duration,
) -> HandshakeResult {
    let started = Instant::now();
    let deadline = started + duration;
    let counts: Vec<(u64, u64)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..connections.max(1))
            .map(|_| scope.spawn(|| client(config, addr, deadline)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or((0, 1)))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let completed: u64 = counts.iter().map(|c| c.0).sum();
    HandshakeResult {
        completed,
        failures: counts.iter().map(|c| c.1).sum(),
        rate: if seconds > 0.0 {
            completed as f64 / seconds
        } else {
            0.0
        },
    }
}

/// One client's loop; (completed, failed).
fn client(config: &Arc<ClientConfig>, addr: SocketAddr, deadline: Instant) -> (u64, u64) {
    let (mut completed, mut failed) = (0, 0);
    while Instant::now() < deadline {
        match tls::connect(config, addr).and_then(|mut s| tls::get(&mut s, true)) {
            Ok(200) => completed += 1,
            _ => {
                failed += 1;
                // A refused or reset connection fails fast; don't spin.
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    (completed, failed)
}

/// Opens `count` TLS connections that each complete one keep-alive request
/// and stay open, idle; the ones that failed are left out.
pub fn open_idle(config: &Arc<ClientConfig>, addr: SocketAddr, count: usize) -> Vec<TlsStream> {
    (0..count)
        .filter_map(|_| {
            let mut stream = tls::connect(config, addr).ok()?;
            matches!(tls::get(&mut stream, false), Ok(200)).then_some(stream)
        })
        .collect()
}
