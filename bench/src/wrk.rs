//! Closed-loop throughput with `wrk`.
//!
//! `wrk` keeps every connection busy (send, wait, send again), so requests
//! per second is the most a target can serve at that concurrency. It runs
//! with one thread pinned to the load CPU, like the backend, leaving the
//! proxy's CPU to the proxy.

use crate::error::BenchError;
use crate::procs::{LOAD_CPU, Launch, find_program};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

/// One `wrk` run's outcome.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct WrkResult {
    /// Requests per second.
    pub rps: f64,
    /// Requests completed.
    pub requests: u64,
    /// Responses that were not 2xx or 3xx.
    pub non_2xx: u64,
    /// Connect, read, write errors and timeouts.
    pub socket_errors: u64,
}

/// Whether `wrk` is installed.
pub fn available() -> bool {
    find_program("wrk").is_some()
}

/// Runs `wrk` against `http://addr{path}` with `connections` for `duration`.
///
/// # Errors
///
/// When `wrk` cannot run or its output has no `Requests/sec` line.
pub fn run(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    duration: Duration,
    pin: bool,
) -> Result<WrkResult, BenchError> {
    run_url(&format!("http://{addr}{path}"), connections, duration, pin)
}

/// [`run`] against any `url` (`https://127.0.0.1:PORT/` in the TLS scenario:
/// wrk then keeps each connection, and its one handshake, for the whole run).
///
/// # Errors
///
/// As [`run`].
pub fn run_url(
    url: &str,
    connections: usize,
    duration: Duration,
    pin: bool,
) -> Result<WrkResult, BenchError> {
    run_with_headers(url, connections, duration, pin, &[])
}

/// [`run_url`] with `headers` (`name: value`) on every request.
///
/// # Errors
///
/// As [`run`].
pub fn run_with_headers(
    url: &str,
    connections: usize,
    duration: Duration,
    pin: bool,
    headers: &[String],
) -> Result<WrkResult, BenchError> {
    let program = find_program("wrk").unwrap_or_else(|| "wrk".into());
    // wrk takes whole seconds only.
    let seconds = duration.as_secs_f64().ceil().max(1.0) as u64;
    let launch = Launch::new("wrk", program)
        .args(["-t1", &format!("-c{connections}"), &format!("-d{seconds}s")])
        .args(headers.iter().flat_map(|h| ["-H".to_string(), h.clone()]))
        .args(["--timeout", "5s", url])
        .cpu(LOAD_CPU);
    let output = launch
        .command(pin)
        .output()
        .map_err(BenchError::io("running wrk"))?;
    parse(&String::from_utf8_lossy(&output.stdout))
}

/// Reads `Requests/sec`, `N requests in`, `Non-2xx or 3xx responses` and `Socket errors` from
/// wrk's text output.
///
/// # Errors
///
/// [`BenchError::ToolOutput`] when there is no `Requests/sec` line.
pub fn parse(text: &str) -> Result<WrkResult, BenchError> {
    let mut result = WrkResult::default();
    let mut seen = false;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            result.rps = v.trim().parse().unwrap_or(0.0);
            seen = true;
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            result.requests = n.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            result.non_2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Socket errors:") {
            result.socket_errors = v
                .split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        }
    }
    if seen {
        Ok(result)
    } else {
        Err(BenchError::ToolOutput {
            tool: "wrk".into(),
            detail: format!("no Requests/sec line in {text:?}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    /// All four figures are read from wrk's summary.
    #[test]
    fn reads_summary() {
        let text = "Running 1s test @ http://127.0.0.1:1/\n  1 threads and 64 connections\n\
            \x20 12346 requests in 1.00s, 1.00MB read\n\
            \x20 Socket errors: connect 0, read 2, write 0, timeout 3\n\
            \x20 Non-2xx or 3xx responses: 7\nRequests/sec:  12345.67\nTransfer/sec: 1MB\n";
        let r = parse(text).unwrap();
        assert!((r.rps - 12345.67).abs() < 1e-6);
        assert_eq!((r.requests, r.non_2xx, r.socket_errors), (12346, 7, 5));
        assert!(parse("garbage").is_err());
    }
}
