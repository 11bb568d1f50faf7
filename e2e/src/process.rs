//! Running the real binaries from tests: finding them, starting them, logging
//! and stopping them.
//!
//! End-to-end tests start `tollgate-controller`, `tollgate-dataplane` and
//! `tollgate-echo` as separate processes, like production does. A [`Proc`]
//! owns one such process: its output goes to a log file under the target
//! directory (so parallel tests don't interleave output), it runs in its own
//! process group (so helpers it starts die with it), the whole group is
//! stopped on drop, and a failing test prints the log's tail.

use crate::error::HarnessError;
use rustix::process::{Pid, Signal, kill_process_group};
use std::ffi::OsStr;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Lines of log printed when a test fails while a [`Proc`] is alive.
const TAIL_LINES: usize = 40;

/// How long a process gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// The port is released before returning, so another process could take it
/// first; tests accept that small race for the simplicity of passing ports
/// on command lines.
///
/// # Errors
///
/// When no port can be bound.
pub fn free_port() -> Result<u16, HarnessError> {
    // Each test process walks its own sequence from a start spread by its
    // pid, so two tests running at once do not hand out the same port, and
    // a port is never handed out twice by one process.
    static NEXT: OnceLock<AtomicU32> = OnceLock::new();
    let next =
        NEXT.get_or_init(|| AtomicU32::new(std::process::id().wrapping_mul(97) % PORT_COUNT));
    for _ in 0..PORT_COUNT {
        let offset = next.fetch_add(1, Ordering::Relaxed) % PORT_COUNT;
        let port = FIRST_PORT + offset as u16;
        if TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// First port [`free_port`] hands out. Ports come from 20000..32768, below
/// Linux's ephemeral range (32768..61000): a port the kernel picked for an
/// outgoing connection, or for another process's `bind(0)`, cannot take a
/// port a test was just given before its binary binds it.
const FIRST_PORT: u16 = 20_000;

/// How many ports [`free_port`] cycles through.
const PORT_COUNT: u32 = 12_768;

/// The workspace root (the parent of the `e2e` crate).
pub fn workspace_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative paths taken from
/// the workspace root), else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_dir().join(dir),
        _ => workspace_dir().join("target"),
    }
}

/// The path of workspace binary `name` (`tollgate-controller`,
/// `tollgate-dataplane`, `tollgate-echo`) in the debug profile.
///
/// # Errors
///
/// [`HarnessError::BinaryMissing`], telling to run `cargo build --bins`, when
/// the binary has not been built.
pub fn bin_path(name: &str) -> Result<PathBuf, HarnessError> {
    let path = target_dir()
        .join("debug")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::BinaryMissing {
            name: name.to_string(),
            path,
        })
    }
}

/// Where process logs go: `<target>/tmp/tollgate-e2e/`.
pub fn log_dir() -> PathBuf {
    target_dir().join("tmp").join("tollgate-e2e")
}

/// A running child process owned by a test.
///
/// # Guarantees
///
/// On drop the process group gets SIGTERM, then SIGKILL after a grace
/// period; if the thread is panicking (a failed assertion), the last lines of
/// the log are printed to stderr first.
#[derive(Debug)]
pub struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    /// Starts workspace binary `name` (see [`bin_path`]) with `args` and
    /// extra `envs`.
    ///
    /// # Errors
    ///
    /// When the binary is missing, the log file can't be created, or the
    /// process can't start.
    pub fn spawn<A, K, V>(
        name: &str,
        args: impl IntoIterator<Item = A>,
        envs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Proc, HarnessError>
    where
        A: AsRef<OsStr>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        Proc::spawn_program(&bin_path(name)?, name, args, envs)
    }

    /// Starts any `program`, naming its log after `label`.
    ///
    /// # Errors
    ///
    /// When the log file can't be created or the process can't start.
    pub fn spawn_program<A, K, V>(
        program: &Path,
        label: &str,
        args: impl IntoIterator<Item = A>,
        envs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Proc, HarnessError>
    where
        A: AsRef<OsStr>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        let log = new_log_path(label);
        let spawn_err = |what: &Path| {
            let what = what.display().to_string();
            move |source| HarnessError::Spawn { what, source }
        };
        let dir = log.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(spawn_err(dir))?;
        let stdout = File::create(&log).map_err(spawn_err(&log))?;
        let stderr = stdout.try_clone().map_err(spawn_err(&log))?;
        let child = Command::new(program)
            .args(args)
            .envs(envs)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .map_err(spawn_err(program))?;
        Ok(Proc {
            name: label.to_string(),
            child,
            log,
        })
    }

    /// The process id (also its process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The log file holding stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Everything logged so far (empty when the log can't be read).
    pub fn log(&self) -> String {
        std::fs::read(&self.log)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the process is still running.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Exited`], with the log tail, when it has exited.
    pub fn check_running(&mut self) -> Result<(), HarnessError> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => Err(HarnessError::Exited {
                name: self.name.clone(),
                status: status.to_string(),
                log: self.log.clone(),
                tail: self.tail(TAIL_LINES),
            }),
        }
    }

    /// Stops the process group: SIGTERM, then SIGKILL after a grace period.
    /// Safe to call more than once.
    pub fn stop(&mut self) {
        let group = Pid::from_child(&self.child);
        if matches!(self.child.try_wait(), Ok(None)) {
            // ESRCH (already gone) is fine: stopping is best effort.
            let _ = kill_process_group(group, Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // Also reaches helpers the process started in its group.
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- last {TAIL_LINES} lines of {} ({}) ----\n{}\n---- end of {} ----",
                self.name,
                self.log.display(),
                self.tail(TAIL_LINES),
                self.name
            );
        }
        self.stop();
    }
}

/// `<log_dir>/<label>-<test pid>-<n>.log`, unique within the test binary.
fn new_log_path(label: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    log_dir().join(format!("{label}-{}-{n}.log", std::process::id()))
}
