//! Scenario 8: TLS termination — new handshakes, HTTPS keep-alive
//! throughput, and memory per idle TLS connection.
//!
//! Tollgate, nginx and HAProxy terminate TLS 1.3 with the same ECDSA P-256
//! certificate ([`crate::tls::generate`]) in front of the same backend,
//! each configured so that a new connection is always a full handshake
//! (nginx and HAProxy without session cache or tickets, Tollgate with
//! `sessionResumption: false`; the client never resumes either). Three
//! measurements, targets alternated run by run:
//!
//! - **handshakes per second**: closed loop of new connections, one
//!   request each with `Connection: close` ([`crate::handshakes`]);
//! - **HTTPS keep-alive requests per second**: `wrk` on an `https://` URL
//!   with the throughput scenario's 64 connections;
//! - **memory per idle TLS connection**: each proxy fresh, resident memory
//!   before and after the plan's idle TLS connections (2,000) have each
//!   made one request and stay open, as scenario 4 does in plain HTTP.
//!
//! Goals: Tollgate ≥ 1.2× nginx's handshakes and ≥ 1.0× nginx's HTTPS
//! throughput. Memory is reported beside nginx's and HAProxy's without a
//! bound. The proxy's CPU use is recorded with every rate: the handshake
//! client shares the load CPU with the backend, so a proxy well below 100%
//! was not the limit. And since rates swing on a shared machine, each
//! proxy's user-space instructions per HTTPS keep-alive request and per
//! full handshake are counted under callgrind (not in a smoke run).

use super::{Bench, Goal};
use crate::callgrind::{self, Caches, Count, Load};
use crate::error::BenchError;
use crate::handshakes;
use crate::peers::{self, Running, Target, Tweaks};
use crate::stats::{median, ratio};
use crate::tls::{self, TlsFiles};
use crate::wrk;
use rustls::ClientConfig;
use serde::Serialize;
use std::sync::Arc;
use std::time::Duration;

/// Time for memory to settle before it is read.
const SETTLE: Duration = Duration::from_millis(500);

/// One proxy's rates.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    /// The proxy.
    pub target: Target,
    /// Full handshakes per second, per run.
    pub handshakes: Vec<f64>,
    /// Their median.
    pub handshakes_median: f64,
    /// Share of one core the proxy was busy in each handshake run.
    pub handshakes_busy: Vec<f64>,
    /// Failed handshakes or requests over all handshake runs.
    pub handshake_failures: u64,
    /// HTTPS keep-alive requests per second, per run (empty without wrk).
    pub rps: Vec<f64>,
    /// Their median.
    pub rps_median: f64,
    /// Share of one core the proxy was busy in each keep-alive run.
    pub rps_busy: Vec<f64>,
    /// Non-2xx answers and socket errors over all keep-alive runs.
    pub rps_failures: u64,
}

/// One proxy's memory with idle TLS connections.
#[derive(Clone, Debug, Serialize)]
pub struct MemoryRow {
    /// The proxy.
    pub target: Target,
    /// Resident memory at idle, bytes.
    pub idle_rss: u64,
    /// Resident memory with the idle TLS connections open, bytes.
    pub loaded_rss: u64,
    /// Idle TLS connections held open (some may have failed).
    pub connections: usize,
    /// Bytes per idle TLS connection.
    pub per_connection: f64,
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsBench {
    /// Concurrent clients of the handshake runs.
    pub handshake_connections: usize,
    /// Connections of the keep-alive runs.
    pub keepalive_connections: usize,
    /// One row per proxy.
    pub rows: Vec<Row>,
    /// Memory per proxy.
    pub memory: Vec<MemoryRow>,
    /// Instructions per proxy (empty without valgrind or in a smoke run).
    pub instructions: Vec<TlsInstructions>,
}

/// One proxy's callgrind counts over TLS.
#[derive(Clone, Debug, Serialize)]
pub struct TlsInstructions {
    /// The proxy.
    pub target: Target,
    /// Per HTTPS keep-alive request.
    pub request: Count,
    /// Per full handshake (with its one `Connection: close` request).
    pub handshake: Count,
}

impl Row {
    fn new(target: Target) -> Row {
        Row {
            target,
            handshakes: Vec::new(),
            handshakes_median: 0.0,
            handshakes_busy: Vec::new(),
            handshake_failures: 0,
            rps: Vec::new(),
            rps_median: 0.0,
            rps_busy: Vec::new(),
            rps_failures: 0,
        }
    }
}

impl TlsBench {
    /// `target`'s row.
    pub fn row(&self, target: Target) -> Option<&Row> {
        self.rows.iter().find(|r| r.target == target)
    }
}

/// Runs the scenario.
///
/// # Errors
///
/// When the certificate cannot be made, a proxy does not start or `wrk`
/// fails.
pub fn run(bench: &Bench) -> Result<TlsBench, BenchError> {
    let files = tls::generate(&bench.env.dir("tls-cert")?)?;
    let client = tls::client_config()?;
    let targets = bench.available("tls", &Target::PROXIES);
    let mut out = TlsBench {
        handshake_connections: bench.plan.tls_handshake_connections,
        keepalive_connections: bench.plan.throughput_connections,
        ..TlsBench::default()
    };
    {
        let running: Vec<Running> = targets
            .iter()
            .map(|&t| start(bench, t, &files))
            .collect::<Result<_, _>>()?;
        out.rows = running.iter().map(|r| Row::new(r.target)).collect();
        let with_wrk = wrk::available();
        if !with_wrk {
            bench.note("tls: wrk is not installed; HTTPS keep-alive throughput skipped");
        }
        for run in 0..bench.plan.runs {
            for (r, row) in running.iter().zip(&mut out.rows) {
                handshake_run(bench, &client, r, row, run);
            }
            if with_wrk {
                for (r, row) in running.iter().zip(&mut out.rows) {
                    keepalive_run(bench, r, row, run)?;
                }
            }
        }
    }
    for row in &mut out.rows {
        row.handshakes_median = median(&row.handshakes);
        row.rps_median = median(&row.rps);
    }
    for &target in &targets {
        out.memory.push(memory(bench, &client, target, &files)?);
    }
    out.instructions = instructions(bench, &targets, &files)?;
    Ok(out)
}

fn tweaks(target: Target, files: &TlsFiles) -> Tweaks {
    Tweaks {
        label: Some(format!("{}-tls", target.name())),
        tls: Some(files.clone()),
        ..Tweaks::default()
    }
}

fn start(bench: &Bench, target: Target, files: &TlsFiles) -> Result<Running, BenchError> {
    peers::start_tweaked(&bench.env, target, bench.backend, 0, &tweaks(target, files))
}

/// Each proxy's instructions per HTTPS keep-alive request and per full
/// handshake (a twentieth as many handshakes as requests: each costs tens
/// of requests under valgrind).
fn instructions(
    bench: &Bench,
    targets: &[Target],
    files: &TlsFiles,
) -> Result<Vec<TlsInstructions>, BenchError> {
    if bench.plan.smoke || !callgrind::available() {
        return Ok(Vec::new());
    }
    let (env, backend) = (&bench.env, bench.backend);
    let requests = bench.plan.callgrind_requests;
    let mut out = Vec::new();
    for &target in targets {
        let tweaks = tweaks(target, files);
        let request = callgrind::count(
            env,
            target,
            backend,
            &tweaks,
            Load::Requests(requests),
            Caches::Off,
        )?;
        let handshake = callgrind::count(
            env,
            target,
            backend,
            &tweaks,
            Load::Handshakes(requests / 20),
            Caches::Off,
        )?;
        bench.progress(format!(
            "tls callgrind {}: {:.0} instructions per HTTPS request, {:.0} per handshake",
            target.name(),
            request.per_request,
            handshake.per_request
        ));
        out.push(TlsInstructions {
            target,
            request,
            handshake,
        });
    }
    Ok(out)
}

fn handshake_run(
    bench: &Bench,
    client: &Arc<ClientConfig>,
    r: &Running,
    row: &mut Row,
    run: usize,
) {
    let connections = bench.plan.tls_handshake_connections;
    let (result, busy) =
        r.busy_during(|| handshakes::run(client, r.addr, connections, bench.plan.tls_handshakes));
    row.handshakes.push(result.rate);
    row.handshakes_busy.extend(busy);
    row.handshake_failures += result.failures;
    bench.progress(format!(
        "tls run {run} {}: {:.0} handshakes/s ({} failed)",
        r.target.name(),
        result.rate,
        result.failures
    ));
}

fn keepalive_run(bench: &Bench, r: &Running, row: &mut Row, run: usize) -> Result<(), BenchError> {
    let url = format!("https://{}/", r.addr);
    let connections = bench.plan.throughput_connections;
    let (result, busy) =
        r.busy_during(|| wrk::run_url(&url, connections, bench.plan.throughput, bench.env.pin));
    let result = result?;
    row.rps.push(result.rps);
    row.rps_busy.extend(busy);
    row.rps_failures += result.non_2xx + result.socket_errors;
    bench.progress(format!(
        "tls run {run} {} keep-alive: {:.0} rps",
        r.target.name(),
        result.rps
    ));
    Ok(())
}

/// A fresh `target`'s resident memory before and after the idle TLS
/// connections are opened.
fn memory(
    bench: &Bench,
    client: &Arc<ClientConfig>,
    target: Target,
    files: &TlsFiles,
) -> Result<MemoryRow, BenchError> {
    let running = start(bench, target, files)?;
    std::thread::sleep(SETTLE);
    let idle_rss = running.rss();
    let held = handshakes::open_idle(client, running.addr, bench.plan.tls_idle_connections);
    std::thread::sleep(SETTLE);
    let loaded_rss = running.rss();
    let connections = held.len();
    let per_connection = if connections == 0 {
        0.0
    } else {
        (loaded_rss as f64 - idle_rss as f64) / connections as f64
    };
    bench.progress(format!(
        "tls memory {}: idle {} KiB, {connections} idle TLS conns {:.1} KiB each",
        target.name(),
        idle_rss / 1024,
        per_connection / 1024.0
    ));
    drop(held);
    Ok(MemoryRow {
        target,
        idle_rss,
        loaded_rss,
        connections,
        per_connection,
    })
}

/// The scenario's goals: handshakes ≥ 1.2× nginx, HTTPS keep-alive ≥ 1.0×
/// nginx.
pub fn goals(t: &TlsBench) -> Vec<Goal> {
    let s = "8 tls";
    let (Some(tollgate), Some(nginx)) = (t.row(Target::Tollgate), t.row(Target::Nginx)) else {
        return vec![];
    };
    let mut goals = vec![Goal::at_least(
        s,
        &format!(
            "tollgate / nginx full TLS 1.3 handshakes/s ({} clients)",
            t.handshake_connections
        ),
        ratio(tollgate.handshakes_median, nginx.handshakes_median),
        1.2,
        "x",
    )];
    if !tollgate.rps.is_empty() && !nginx.rps.is_empty() {
        goals.push(Goal::at_least(
            s,
            &format!(
                "tollgate / nginx HTTPS keep-alive rps ({} conns)",
                t.keepalive_connections
            ),
            ratio(tollgate.rps_median, nginx.rps_median),
            1.0,
            "x",
        ));
    }
    goals
}
