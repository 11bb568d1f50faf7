//! Open-loop latency: requests sent on a fixed schedule, whatever the
//! target's answers do.
//!
//! A closed-loop tool (wait for the answer, then send) slows down exactly
//! when the target stalls, so the slow moments are under-sampled
//! ("coordinated omission"). Here a pacer thread computes each request's
//! intended send time (`start + i / rate`), sleeps until then and hands it
//! to one of the connections (round robin); a connection that is still busy
//! sends it as soon as it can. Latency is measured from the *intended* send
//! time to the end of the response, so a stall counts for every request it
//! delayed. The pacer's own lateness is recorded too, so a report can show
//! the generator kept its schedule.

use crate::error::BenchError;
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Percentiles reported and charted.
pub const PERCENTILES: [f64; 6] = [50.0, 90.0, 99.0, 99.9, 99.99, 100.0];

/// One open-loop run's settings.
#[derive(Clone, Debug)]
pub struct OpenLoop {
    /// Target address.
    pub addr: SocketAddr,
    /// Request path.
    pub path: String,
    /// Requests per second.
    pub rate: f64,
    /// How long to send.
    pub duration: Duration,
    /// Connections the requests are spread over.
    pub connections: usize,
}

/// One open-loop run's outcome. Latencies in microseconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LatencyResult {
    /// Requests per second asked for.
    pub rate: f64,
    /// Requests sent.
    pub sent: u64,
    /// 2xx answers.
    pub ok: u64,
    /// Non-2xx answers.
    pub non_2xx: u64,
    /// Requests that failed (connection errors).
    pub errors: u64,
    /// `(percentile, latency µs)` for each of [`PERCENTILES`].
    pub percentiles: Vec<(f64, u64)>,
    /// 99th percentile of the pacer's own lateness, µs.
    pub pacer_lag_p99_us: u64,
}

impl LatencyResult {
    /// The latency at percentile `p` (one of [`PERCENTILES`]), µs.
    pub fn at(&self, p: f64) -> u64 {
        self.percentiles
            .iter()
            .find(|(q, _)| (*q - p).abs() < 1e-9)
            .map_or(0, |(_, v)| *v)
    }
}

#[derive(Default)]
struct Counts {
    ok: u64,
    non_2xx: u64,
    errors: u64,
}

/// Runs the schedule on a current-thread runtime in the calling thread.
///
/// # Errors
///
/// When the runtime cannot start or a histogram cannot be made.
pub fn run(config: &OpenLoop) -> Result<LatencyResult, BenchError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(BenchError::io("starting the load generator runtime"))?;
    runtime.block_on(drive(config))
}

fn histogram() -> Result<Histogram<u64>, BenchError> {
    Histogram::new_with_bounds(1, 120_000_000, 3).map_err(|e| BenchError::Http {
        what: "making a histogram".into(),
        detail: e.to_string(),
    })
}

async fn drive(config: &OpenLoop) -> Result<LatencyResult, BenchError> {
    let mut senders = Vec::new();
    let mut workers = Vec::new();
    for _ in 0..config.connections.max(1) {
        let (tx, rx) = mpsc::unbounded_channel::<Instant>();
        senders.push(tx);
        let (addr, path, hist) = (config.addr, config.path.clone(), histogram()?);
        workers.push(tokio::spawn(worker(addr, path, rx, hist)));
    }
    let total = (config.rate * config.duration.as_secs_f64()).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / config.rate.max(1.0));
    let mut lag = histogram()?;
    let pacer = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(50);
        for i in 0..total {
            let due = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if due > now + Duration::from_micros(20) {
                std::thread::sleep(due - now);
            }
            let late = Instant::now().saturating_duration_since(due);
            let _ = lag.record(late.as_micros().max(1) as u64);
            let _ = senders[(i as usize) % senders.len()].send(due);
        }
        lag
    });
    let mut merged = histogram()?;
    let mut counts = Counts::default();
    for worker in workers {
        if let Ok((hist, c)) = worker.await {
            let _ = merged.add(&hist);
            counts.ok += c.ok;
            counts.non_2xx += c.non_2xx;
            counts.errors += c.errors;
        }
    }
    let lag = pacer.join().ok();
    Ok(LatencyResult {
        rate: config.rate,
        sent: total,
        ok: counts.ok,
        non_2xx: counts.non_2xx,
        errors: counts.errors,
        percentiles: PERCENTILES
            .iter()
            .map(|&p| (p, merged.value_at_percentile(p)))
            .collect(),
        pacer_lag_p99_us: lag.map_or(0, |h| h.value_at_percentile(99.0)),
    })
}

type Sender = http1::SendRequest<Empty<Bytes>>;

async fn connect(addr: SocketAddr) -> Option<Sender> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

/// One connection: sends each scheduled request when it is free and records
/// latency from the intended time; reconnects after an error.
async fn worker(
    addr: SocketAddr,
    path: String,
    mut rx: mpsc::UnboundedReceiver<Instant>,
    mut hist: Histogram<u64>,
) -> (Histogram<u64>, Counts) {
    let mut counts = Counts::default();
    let mut sender = connect(addr).await;
    while let Some(due) = rx.recv().await {
        let outcome = match sender.as_mut() {
            Some(s) => send(s, &path).await,
            None => None,
        };
        let micros = Instant::now().saturating_duration_since(due).as_micros();
        let _ = hist.record(micros.max(1) as u64);
        match outcome {
            Some(status) if (200..300).contains(&status) => counts.ok += 1,
            Some(_) => counts.non_2xx += 1,
            None => {
                counts.errors += 1;
                sender = connect(addr).await;
            }
        }
    }
    (hist, counts)
}

async fn send(sender: &mut Sender, path: &str) -> Option<u16> {
    sender.ready().await.ok()?;
    let request = Request::get(path)
        .header(http::header::HOST, "bench")
        .body(Empty::new())
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status().as_u16();
    response.into_body().collect().await.ok()?;
    Some(status)
}
