//! One-off HTTP requests of the harness itself: readiness checks and the
//! "time from manifest change to traffic" probe.
//!
//! Blocking, one connection per request, `Connection: close`, so a probe
//! never reuses a connection that still routes by an older snapshot.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The status code of `GET path` on `addr`, or `None` when the request fails.
pub fn status(addr: SocketAddr, path: &str) -> Option<u16> {
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    stream.set_nodelay(true).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 16];
    let mut filled = 0;
    while filled < head.len() {
        match stream.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    let line = std::str::from_utf8(&head[..filled]).ok()?;
    line.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

/// The body of `GET path` on `addr` when it answers 200, read to the end
/// of the connection; `None` when the request fails.
pub fn body(addr: SocketAddr, path: &str) -> Option<String> {
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).ok()?;
    stream.set_read_timeout(Some(timeout)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// Polls `GET path` every `interval` until it answers `code`; whether it did
/// within `timeout`.
pub fn wait_status_every(
    addr: SocketAddr,
    path: &str,
    code: u16,
    timeout: Duration,
    interval: Duration,
) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if status(addr, path) == Some(code) {
            return true;
        }
        std::thread::sleep(interval);
    }
    false
}

/// [`wait_status_every`] polling every 20 ms.
pub fn wait_status(addr: SocketAddr, path: &str, code: u16, timeout: Duration) -> bool {
    wait_status_every(addr, path, code, timeout, Duration::from_millis(20))
}
