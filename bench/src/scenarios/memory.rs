//! Scenario 4: memory at idle and per idle keep-alive connection.
//!
//! Each proxy is started fresh; its resident memory (summed over its process
//! tree, so nginx's master and worker both count) is read at idle, then
//! after the plan's number of client connections have each made one request
//! and stay open idle. The difference divided by the connection count is the
//! cost of one idle keep-alive connection. Goal: Tollgate ≤ 4 KiB each.

use super::{Bench, Goal};
use crate::error::BenchError;
use crate::peers::{self, Target};
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// Time for memory to settle before it is read.
const SETTLE: Duration = Duration::from_millis(500);

/// One proxy's memory.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The proxy.
    pub target: Target,
    /// Resident memory at idle, bytes.
    pub idle_rss: u64,
    /// Resident memory with the idle connections open, bytes.
    pub loaded_rss: u64,
    /// Idle connections held open (some may have failed).
    pub connections: usize,
    /// Bytes per idle connection.
    pub per_connection: f64,
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    /// One row per proxy.
    pub rows: Vec<Row>,
}

/// Runs the scenario.
///
/// # Errors
///
/// When a proxy does not start.
pub fn run(bench: &Bench) -> Result<Memory, BenchError> {
    let mut rows = Vec::new();
    for target in bench.available("memory", &Target::PROXIES) {
        let running = peers::start(&bench.env, target, bench.backend, 0)?;
        std::thread::sleep(SETTLE);
        let idle_rss = running.rss();
        let held = open_idle(running.addr, bench.plan.idle_connections);
        std::thread::sleep(SETTLE);
        let loaded_rss = running.rss();
        let connections = held.len();
        let per_connection = if connections == 0 {
            0.0
        } else {
            (loaded_rss as f64 - idle_rss as f64) / connections as f64
        };
        bench.progress(format!(
            "memory {}: idle {} KiB, {connections} idle conns {:.1} KiB each",
            target.name(),
            idle_rss / 1024,
            per_connection / 1024.0
        ));
        rows.push(Row {
            target,
            idle_rss,
            loaded_rss,
            connections,
            per_connection,
        });
        drop(held);
    }
    Ok(Memory { rows })
}

/// Opens `count` connections that each complete one request and stay open.
fn open_idle(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count).filter_map(|_| one_request(addr)).collect()
}

fn one_request(addr: SocketAddr) -> Option<TcpStream> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n")
        .ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(stream)
}

/// The scenario's goals.
pub fn goals(m: &Memory) -> Vec<Goal> {
    m.rows
        .iter()
        .filter(|r| r.target == Target::Tollgate)
        .map(|r| {
            let kib = r.per_connection / 1024.0;
            Goal::at_most(
                "4 memory",
                "tollgate per idle keep-alive connection",
                kib,
                4.0,
                "KiB",
            )
        })
        .collect()
}
