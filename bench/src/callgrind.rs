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
    /// Simulated cache misses per request, when the runs simulated the
    /// caches ([`Caches::Simulated`]); idle run subtracted as for `Ir`.
    pub misses: Option<Misses>,
}

/// Simulated first-level cache misses per request (callgrind's
/// `--cache-sim=yes`: `I1mr`, and `D1mr` + `D1mw`).
///
/// A request's code and data are re-fetched into the first-level caches
/// at every request when they do not fit them, so these say how many
/// lines a change adds to what every request touches, which instruction
/// counts cannot. They move with the binary's layout (a change in one
/// function shifts which others share cache sets) by about ten a
/// request, so a small change is judged by running it, not by them.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Misses {
    /// Instruction-cache misses per request.
    pub instructions: f64,
    /// Data-cache misses (reads and writes) per request.
    pub data: f64,
}

/// Whether valgrind is installed.
pub fn available() -> bool {
    find_program("valgrind").is_some()
}

/// Whether callgrind simulates the caches too, which gives
/// [`Count::misses`] and makes the runs about twice as long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caches {
    /// Instructions only.
    Off,
    /// Instructions and simulated first-level cache misses.
    Simulated,
}

/// Counts the instructions `target` (started with `tweaks`) executes per
/// unit of `load` (a request to `/` over [`CONNECTIONS`] keep-alive
/// connections, or a full TLS handshake with its one request), and the
/// cache misses when `caches` asks for them.
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
    caches: Caches,
) -> Result<Count, BenchError> {
    let label = tweaks.label.as_deref().unwrap_or(target.name());
    let loaded_tweaks = under_callgrind(env, tweaks, &format!("{label}-callgrind"), caches)?;
    let (loaded, seconds) = one_run(env, target, backend, &loaded_tweaks, load)?;
    let idle_tweaks = under_callgrind(env, tweaks, &format!("{label}-callgrind-idle"), caches)?;
    let wait = Duration::from_secs_f64(seconds);
    let (idle, _) = one_run(env, target, backend, &idle_tweaks, Load::Wait(wait))?;
    let requests = match load {
        Load::Requests(n) | Load::Handshakes(n) => n,
        Load::Wait(_) => 0,
    };
    let per = |loaded: u64, idle: u64| loaded.saturating_sub(idle) as f64 / requests.max(1) as f64;
    let misses = match (loaded.misses, idle.misses) {
        (Some(l), Some(i)) => Some(Misses {
            instructions: per(l.instructions, i.instructions),
            data: per(l.data, i.data),
        }),
        _ => None,
    };
    Ok(Count {
        loaded: loaded.ir,
        idle: idle.ir,
        requests,
        per_request: per(loaded.ir, idle.ir),
        seconds,
        misses,
    })
}

/// `tweaks` with valgrind in front, writing into a fresh folder `label`,
/// simulating the caches as `caches` asks.
fn under_callgrind(
    env: &Env,
    tweaks: &Tweaks,
    label: &str,
    caches: Caches,
) -> Result<Tweaks, BenchError> {
    let dir = env.dir(&format!("{label}-out"))?;
    let program = find_program("valgrind").unwrap_or_else(|| "valgrind".into());
    let out = dir.join("callgrind.out");
    let mut file = OsString::from("--callgrind-out-file=");
    file.push(out.as_os_str());
    let mut wrapper = vec![program.into_os_string(), "--tool=callgrind".into(), file];
    if caches == Caches::Simulated {
        wrapper.push("--cache-sim=yes".into());
    }
    Ok(Tweaks {
        label: Some(label.to_string()),
        wrapper,
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

/// Starts, warms up, loads (or waits), stops; the run's totals and how
/// many seconds the load took.
fn one_run(
    env: &Env,
    target: Target,
    backend: SocketAddr,
    tweaks: &Tweaks,
    load: Load,
) -> Result<(Totals, f64), BenchError> {
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
    Ok((totals(out)?, seconds))
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

/// A callgrind file's totals (its `summary:` or `totals:` line):
/// instructions, and the simulated misses when the caches were simulated.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Totals {
    ir: u64,
    misses: Option<RunMisses>,
}

/// A run's simulated first-level misses: `I1mr`, and `D1mr` + `D1mw`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RunMisses {
    instructions: u64,
    data: u64,
}

fn totals(path: &Path) -> Result<Totals, BenchError> {
    let text = std::fs::read_to_string(path)
        .map_err(BenchError::io(format!("reading {}", path.display())))?;
    parse_totals(&text).ok_or_else(|| BenchError::ToolOutput {
        tool: "callgrind".into(),
        detail: format!(
            "no events line, or no summary or totals line, in {}",
            path.display()
        ),
    })
}

/// The last `summary:` or `totals:` line, its values named by the
/// `events:` line (`Ir` first; `I1mr`, `D1mr`, `D1mw` with the caches
/// simulated).
fn parse_totals(text: &str) -> Option<Totals> {
    let events: Vec<&str> = text
        .lines()
        .find_map(|l| l.strip_prefix("events:"))?
        .split_whitespace()
        .collect();
    let values: Vec<u64> = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("summary:").or(l.strip_prefix("totals:")))?
        .split_whitespace()
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let event = |name: &str| {
        let at = events.iter().position(|e| *e == name)?;
        // A trailing zero may be left out of a cost line.
        Some(values.get(at).copied().unwrap_or(0))
    };
    let misses = match (event("I1mr"), event("D1mr"), event("D1mw")) {
        (Some(i), Some(r), Some(w)) => Some(RunMisses {
            instructions: i,
            data: r + w,
        }),
        _ => None,
    };
    Some(Totals {
        ir: event("Ir")?,
        misses,
    })
}

#[cfg(test)]
mod tests {
    use super::{RunMisses, Totals, parse_totals};

    /// The first event (Ir) of the summary line is the total; without the
    /// cache events there are no misses.
    #[test]
    fn reads_the_summary() {
        let text = "version: 1\nevents: Ir\nfn=main\n3 10\nsummary: 123456\ntotals: 123456\n";
        let totals = parse_totals(text).expect("totals");
        assert_eq!(totals.ir, 123_456);
        assert_eq!(totals.misses, None);
        assert_eq!(parse_totals("events: Ir\n"), None);
        assert_eq!(parse_totals("summary: 12\n"), None);
    }

    /// With the caches simulated, the misses are read by their event
    /// names, data reads and writes together.
    #[test]
    fn reads_the_simulated_misses() {
        let text = "events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\nfn=main\n3 10\nsummary: 1000 300 200 40 7 5 1 2 3\n";
        assert_eq!(
            parse_totals(text),
            Some(Totals {
                ir: 1000,
                misses: Some(RunMisses {
                    instructions: 40,
                    data: 12,
                }),
            })
        );
        // A cost line may leave its trailing zeros out.
        let short = "events: Ir Dr Dw I1mr D1mr D1mw\nsummary: 1000 300 200 40\n";
        let totals = parse_totals(short).expect("totals");
        assert_eq!(
            totals.misses,
            Some(RunMisses {
                instructions: 40,
                data: 0,
            })
        );
    }
}
