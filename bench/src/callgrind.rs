//! User-space instructions per proxied request, counted by callgrind.
//!
//! Requests per second move with whatever else the machine does; the number
//! of instructions a proxy executes per request does not. So a proxy runs
//! under `valgrind --tool=callgrind` (nginx with `master_process off`, so
//! the one process callgrind follows is the one that serves), a fixed number
//! of keep-alive requests goes through it, it is stopped with SIGTERM, and
//! the total `Ir` of its callgrind file is read. Start-up, the readiness
//! probe, opening the connections, a warm-up, timers ticking and shutting
//! down cost instructions too; a second, idle run does exactly the same
//! except the measured requests, waiting as long as the loaded run sent
//! them, and its total is subtracted. What remains, divided by the request
//! count, is the cost of one request in steady state. Callgrind counts
//! every thread's instructions (Tollgate's worker and its main thread) and
//! none of the kernel's.
//!
//! With TLS files in the tweaks the requests go over TLS (scenario 8), and
//! [`Load::Handshakes`] counts a full handshake instead: each measured
//! request on a new connection (`Connection: close`), as the handshake
//! runs make them.

use crate::error::BenchError;
use crate::peers::{self, Env, Running, Target, Tweaks};
use crate::procs::find_program;
use crate::tls::{self, TlsStream};
use rustls::ClientConfig;
use serde::Serialize;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Keep-alive connections the requests are spread over.
pub const CONNECTIONS: usize = 4;
/// Requests sent in both runs before the measured ones.
const WARMUP: usize = 200;
/// How long a process under valgrind gets to write its file and exit.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

/// One target's count.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Count {
    /// Instructions of the loaded run.
    pub loaded: u64,
    /// Instructions of the idle run.
    pub idle: u64,
    /// Requests measured (the warm-up excluded).
    pub requests: usize,
    /// `(loaded - idle) / requests`.
    pub per_request: f64,
    /// Seconds the loaded run took to send its requests under valgrind.
    pub seconds: f64,
}

/// Whether valgrind is installed.
pub fn available() -> bool {
    find_program("valgrind").is_some()
}

/// Counts the instructions `target` (started with `tweaks`) executes per
/// unit of `load` (a request to `/` over [`CONNECTIONS`] keep-alive
/// connections, or a full TLS handshake with its one request).
///
/// # Errors
///
/// When the target does not start or exit, a request or handshake fails,
/// or the callgrind file cannot be read.
pub fn count(
    env: &Env,
    target: Target,
    backend: SocketAddr,
    tweaks: &Tweaks,
    load: Load,
) -> Result<Count, BenchError> {
    let label = tweaks.label.as_deref().unwrap_or(target.name());
    let loaded_tweaks = under_callgrind(env, tweaks, &format!("{label}-callgrind"))?;
    let (loaded, seconds) = one_run(env, target, backend, &loaded_tweaks, load)?;
    let idle_tweaks = under_callgrind(env, tweaks, &format!("{label}-callgrind-idle"))?;
    let wait = Duration::from_secs_f64(seconds);
    let (idle, _) = one_run(env, target, backend, &idle_tweaks, Load::Wait(wait))?;
    let requests = match load {
        Load::Requests(n) | Load::Handshakes(n) => n,
        Load::Wait(_) => 0,
    };
    let per_request = loaded.saturating_sub(idle) as f64 / requests.max(1) as f64;
    Ok(Count {
        loaded,
        idle,
        requests,
        per_request,
        seconds,
    })
}

/// `tweaks` with valgrind in front, writing into a fresh folder `label`.
fn under_callgrind(env: &Env, tweaks: &Tweaks, label: &str) -> Result<Tweaks, BenchError> {
    let dir = env.dir(&format!("{label}-out"))?;
    let program = find_program("valgrind").unwrap_or_else(|| "valgrind".into());
    let out = dir.join("callgrind.out");
    let mut file = OsString::from("--callgrind-out-file=");
    file.push(out.as_os_str());
    Ok(Tweaks {
        label: Some(label.to_string()),
        wrapper: vec![program.into_os_string(), "--tool=callgrind".into(), file],
        ..tweaks.clone()
    })
}

/// What a run does between warm-up and stop.
#[derive(Clone, Copy, Debug)]
pub enum Load {
    /// Send this many requests.
    Requests(usize),
    /// Send this many requests, each on a new TLS connection.
    Handshakes(usize),
    /// Send nothing for this long.
    Wait(Duration),
}

/// Starts, warms up, loads (or waits), stops; the run's total instructions
/// and how many seconds the load took.
fn one_run(
    env: &Env,
    target: Target,
    backend: SocketAddr,
    tweaks: &Tweaks,
    load: Load,
) -> Result<(u64, f64), BenchError> {
    let mut running = peers::start_tweaked(env, target, backend, 0, tweaks)?;
    let client = tweaks
        .tls
        .as_ref()
        .map(|_| tls::client_config())
        .transpose()?;
    let mut connections = (0..CONNECTIONS)
        .map(|_| Conn::open(running.addr, client.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    let head = request_head(&tweaks.headers);
    send(&mut connections, WARMUP, &head)?;
    let started = Instant::now();
    match (load, &client) {
        (Load::Requests(n), _) => send(&mut connections, n, &head)?,
        (Load::Handshakes(n), Some(client)) => handshakes(running.addr, client, n)?,
        (Load::Handshakes(_), None) => {
            return Err(BenchError::Http {
                what: "counting handshakes".into(),
                detail: "the target has no TLS files".into(),
            });
        }
        (Load::Wait(duration), _) => std::thread::sleep(duration),
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(connections);
    stop(&mut running)?;
    let out = tweaks
        .wrapper
        .iter()
        .find_map(|a| a.to_str()?.strip_prefix("--callgrind-out-file="))
        .map(Path::new)
        .ok_or_else(|| BenchError::ToolOutput {
            tool: "callgrind".into(),
            detail: "no output file named".into(),
        })?;
    Ok((total(out)?, seconds))
}

/// SIGTERM, then waits for the process (and callgrind's file) to finish.
fn stop(running: &mut Running) -> Result<(), BenchError> {
    let Some(child) = running.child.as_mut() else {
        return Ok(());
    };
    child.signal(rustix::process::Signal::TERM);
    if child.wait_exit(EXIT_TIMEOUT) {
        Ok(())
    } else {
        Err(child.not_ready(EXIT_TIMEOUT))
    }
}

/// A keep-alive connection of the load: plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<TlsStream>),
}

impl Conn {
    /// Connects to `addr`, over TLS with `client` (a full handshake).
    fn open(addr: SocketAddr, client: Option<&Arc<ClientConfig>>) -> Result<Conn, BenchError> {
        if let Some(client) = client {
            return Ok(Conn::Tls(Box::new(tls::connect(client, addr)?)));
        }
        let stream =
            TcpStream::connect(addr).map_err(BenchError::io("connecting for callgrind"))?;
        stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(Duration::from_secs(30))))
            .map_err(BenchError::io("setting up a callgrind connection"))?;
        Ok(Conn::Plain(stream))
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// `n` requests, each on a new TLS connection with `Connection: close`,
/// from [`CONNECTIONS`] threads in parallel.
fn handshakes(addr: SocketAddr, client: &Arc<ClientConfig>, n: usize) -> Result<(), BenchError> {
    let one = || -> Result<(), BenchError> {
        let mut stream = tls::connect(client, addr)?;
        match tls::get(&mut stream, true)? {
            200 => Ok(()),
            status => Err(BenchError::Http {
                what: "a handshake under callgrind".into(),
                detail: format!("answer {status}"),
            }),
        }
    };
    spread(vec![(); CONNECTIONS], n, |(), share| {
        (0..share).try_for_each(|_| one())
    })
}

/// Sends `n` requests spread over `connections`, each connection one
/// request at a time, in parallel.
fn send(connections: &mut [Conn], n: usize, head: &[u8]) -> Result<(), BenchError> {
    spread(connections.iter_mut().collect(), n, |stream, share| {
        (0..share).try_for_each(|_| request(stream, head))
    })
}

/// Runs `work(state, share)` on a thread per state, the `n` units shared
/// out among them.
fn spread<S: Send>(
    states: Vec<S>,
    n: usize,
    work: impl Fn(S, usize) -> Result<(), BenchError> + Sync,
) -> Result<(), BenchError> {
    let threads = states.len().max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = states
            .into_iter()
            .enumerate()
            .map(|(i, state)| {
                let share = n / threads + usize::from(i < n % threads);
                let work = &work;
                scope.spawn(move || work(state, share))
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join().unwrap_or_else(|_| {
                Err(BenchError::Http {
                    what: "a callgrind client thread".into(),
                    detail: "panicked".into(),
                })
            })
        })
    })
}

/// `GET /` with `headers` (`name: value` lines).
fn request_head(headers: &[String]) -> Vec<u8> {
    let mut head = String::from("GET / HTTP/1.1\r\nHost: bench\r\n");
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// One request (`head`) on a keep-alive connection; the answer must be a
/// 200 whose body is read to its `content-length`.
fn request(stream: &mut Conn, head: &[u8]) -> Result<(), BenchError> {
    let fail = |detail: String| BenchError::Http {
        what: "a request under callgrind".into(),
        detail,
    };
    stream
        .write_all(head)
        .map_err(BenchError::io("sending a request under callgrind"))?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 512];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream
            .read(&mut chunk)
            .map_err(BenchError::io("reading an answer under callgrind"))?;
        if n == 0 {
            return Err(fail("connection closed before the answer".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if !head.starts_with("http/1.1 200") {
        return Err(fail(format!("answer {:?}", head.lines().next())));
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let mut have = buf.len() - head_end;
    while have < length {
        let n = stream
            .read(&mut chunk)
            .map_err(BenchError::io("reading a body under callgrind"))?;
        if n == 0 {
            return Err(fail("connection closed in the body".into()));
        }
        have += n;
    }
    Ok(())
}

/// The total `Ir` of a callgrind output file (its `summary:` or
/// `totals:` line).
///
/// # Errors
///
/// When the file cannot be read or has neither line.
pub fn total(path: &Path) -> Result<u64, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(BenchError::io(format!("reading {}", path.display())))?;
    parse_total(&text).ok_or_else(|| BenchError::ToolOutput {
        tool: "callgrind".into(),
        detail: format!("no summary or totals line in {}", path.display()),
    })
}

fn parse_total(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("summary:").or(l.strip_prefix("totals:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::parse_total;

    /// The first event (Ir) of the summary line is the total.
    #[test]
    fn reads_the_summary() {
        let text = "version: 1\nevents: Ir\nfn=main\n3 10\nsummary: 123456\ntotals: 123456\n";
        assert_eq!(parse_total(text), Some(123_456));
        assert_eq!(parse_total("events: Ir\n"), None);
    }
}
