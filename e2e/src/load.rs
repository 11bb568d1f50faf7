//! [`Load`]: a steady stream of HTTP/1.1 requests, each on its own
//! connection, counting every answer and every failure.
//!
//! Each worker opens a TCP connection, sends one `GET` with
//! `Connection: close`, reads until the server closes, and starts over at
//! once. There is no retry of any kind: a refused or reset connection, a
//! connection closed before a complete answer, a timeout or a status other
//! than the expected one is a failure, recorded with what happened. This
//! is stricter than browsers and proxies, which retry an idempotent
//! request whose connection closed before any response byte.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

/// Longest time one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Failures kept verbatim (the count goes on).
const KEPT_FAILURES: usize = 20;

/// What a finished load saw.
#[derive(Clone, Debug, Default)]
pub struct LoadReport {
    /// Requests answered with the expected status.
    pub ok: usize,
    /// Requests that failed.
    pub failed: usize,
    /// The first failures, described.
    pub failures: Vec<String>,
}

#[derive(Debug, Default)]
struct Counters {
    stop: AtomicBool,
    ok: AtomicUsize,
    failed: AtomicUsize,
    failures: Mutex<Vec<String>>,
}

impl Counters {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut kept = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() < KEPT_FAILURES {
            kept.push(what);
        }
    }
}

/// A running load; [`Load::stop`] ends it and reports.
#[derive(Debug)]
pub struct Load {
    counters: Arc<Counters>,
    workers: Vec<JoinHandle<()>>,
}

impl Load {
    /// Starts `concurrency` workers sending `GET path` (with `Host: host`)
    /// to `target`, expecting status `expect`.
    pub fn start(
        target: SocketAddr,
        host: &str,
        path: &str,
        expect: u16,
        concurrency: usize,
    ) -> Load {
        let counters = Arc::new(Counters::default());
        let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        let workers = (0..concurrency)
            .map(|_| {
                let (counters, request) = (counters.clone(), request.clone());
                tokio::spawn(async move {
                    while !counters.stop.load(Ordering::Relaxed) {
                        match tokio::time::timeout(REQUEST_TIMEOUT, once(target, &request)).await {
                            Ok(Ok(status)) if status == expect => {
                                counters.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Ok(status)) => counters.fail(format!("status {status}")),
                            Ok(Err(error)) => counters.fail(error),
                            Err(_) => counters.fail(format!("no answer in {REQUEST_TIMEOUT:?}")),
                        }
                    }
                })
            })
            .collect();
        Load { counters, workers }
    }

    /// Requests answered so far.
    pub fn ok(&self) -> usize {
        self.counters.ok.load(Ordering::Relaxed)
    }

    /// Stops the workers after their current request and reports.
    pub async fn stop(self) -> LoadReport {
        self.counters.stop.store(true, Ordering::Relaxed);
        for worker in self.workers {
            let _ = worker.await;
        }
        let failures = self
            .counters
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        LoadReport {
            ok: self.counters.ok.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            failures,
        }
    }
}

/// One request on a fresh connection; the answer's status code.
async fn once(target: SocketAddr, request: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(target)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .map_err(|e| format!("read after {} bytes: {e}", answer.len()))?;
    complete_status(&answer)
}

/// The status of a complete `Connection: close` answer: a status line,
/// headers, and a body as long as `Content-Length` says (or, chunked,
/// ending with the last chunk).
fn complete_status(answer: &[u8]) -> Result<u16, String> {
    let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Err(format!("closed after {} bytes, no full head", answer.len()));
    };
    let head = String::from_utf8_lossy(&answer[..end]);
    let body = &answer[end + 4..];
    let status = head
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line: {}", head.lines().next().unwrap_or("")))?;
    let header = |name: &str| {
        head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim()
                .eq_ignore_ascii_case(name)
                .then(|| value.trim().to_ascii_lowercase())
        })
    };
    let complete = match (header("content-length"), header("transfer-encoding")) {
        (Some(length), _) => length.parse::<usize>().ok() == Some(body.len()),
        (None, Some(coding)) if coding.contains("chunked") => body.ends_with(b"0\r\n\r\n"),
        _ => true, // delimited by the close itself
    };
    if complete {
        Ok(status)
    } else {
        Err(format!("status {status} but the body was cut short"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_answers_count() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi";
        assert_eq!(complete_status(ok), Ok(200));
        let short = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhi";
        assert!(complete_status(short).is_err());
        assert!(complete_status(b"").is_err());
        let chunked = b"HTTP/1.1 503 x\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n";
        assert_eq!(complete_status(chunked), Ok(503));
    }
}
