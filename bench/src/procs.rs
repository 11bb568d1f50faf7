//! Child processes of a benchmark: proxies, backends and load generators.
//!
//! Each measured process runs pinned to one CPU with `taskset` (the proxy
//! alone on CPU 0; backend and load generator on CPU 1) so that proxies get
//! the same single core and never compete with the load they serve. A
//! [`Child`] writes its output to a log file in the run's work folder, is
//! killed on drop, and can report its resident memory, summed over its
//! process tree (nginx's master plus worker).

use crate::error::BenchError;
use std::ffi::OsString;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The CPU the proxy under test runs on.
pub const PROXY_CPU: u32 = 0;
/// The CPU backend and load generators run on.
pub const LOAD_CPU: u32 = 1;

/// How a process is started: program, arguments, environment, CPU.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Label used for the log file and messages.
    pub name: String,
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// Pin to this CPU with `taskset`, when pinning is on.
    pub cpu: Option<u32>,
}

impl Launch {
    /// A launch of `program` labelled `name` with no arguments.
    pub fn new(name: &str, program: impl Into<PathBuf>) -> Launch {
        Launch {
            name: name.to_string(),
            program: program.into(),
            args: Vec::new(),
            envs: Vec::new(),
            cpu: None,
        }
    }

    /// Adds arguments.
    pub fn args<I, A>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Launch {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// Runs the program under `wrapper` (e.g. `valgrind --tool=callgrind`):
    /// the wrapper's program and arguments come first, then this program
    /// and its arguments. Environment and CPU stay as they are.
    pub fn under(mut self, wrapper: &[OsString]) -> Launch {
        let Some((program, args)) = wrapper.split_first() else {
            return self;
        };
        let mut all: Vec<OsString> = args.to_vec();
        all.push(self.program.into_os_string());
        all.append(&mut self.args);
        self.program = PathBuf::from(program);
        self.args = all;
        self
    }

    /// Pins to `cpu` (ignored when the run does not pin).
    pub fn cpu(mut self, cpu: u32) -> Launch {
        self.cpu = Some(cpu);
        self
    }

    /// The command, wrapped in `taskset -c CPU` when `pin` is on.
    pub fn command(&self, pin: bool) -> Command {
        let mut command = match (pin, self.cpu) {
            (true, Some(cpu)) => {
                let mut c = Command::new("taskset");
                c.arg("-c").arg(cpu.to_string()).arg(&self.program);
                c
            }
            _ => Command::new(&self.program),
        };
        command.args(&self.args);
        command.envs(self.envs.iter().map(|(k, v)| (k, v)));
        command
    }
}

/// A running child process, killed (with its process tree) on drop.
#[derive(Debug)]
pub struct Child {
    name: String,
    child: std::process::Child,
    log: PathBuf,
}

impl Child {
    /// Starts `launch`, output to `<work>/<name>.log`.
    ///
    /// # Errors
    ///
    /// When the log file cannot be created or the program cannot start.
    pub fn spawn(launch: &Launch, work: &Path, pin: bool) -> Result<Child, BenchError> {
        let log = work.join(format!("{}.log", launch.name));
        let out =
            File::create(&log).map_err(BenchError::io(format!("creating {}", log.display())))?;
        let err = out
            .try_clone()
            .map_err(BenchError::io("cloning a log handle"))?;
        let child = launch
            .command(pin)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(BenchError::io(format!(
                "starting {}",
                launch.program.display()
            )))?;
        Ok(Child {
            name: launch.name.clone(),
            child,
            log,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `addr` accepts TCP connections, at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`BenchError::NotReady`] when it does not, or the process exited.
    pub fn wait_port(&mut self, addr: SocketAddr, timeout: Duration) -> Result<(), BenchError> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_ok() {
                return Ok(());
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self.not_ready(timeout))
    }

    /// The error saying this process did not become ready.
    pub fn not_ready(&self, waited: Duration) -> BenchError {
        BenchError::NotReady {
            name: self.name.clone(),
            seconds: waited.as_secs(),
            log: self.log.clone(),
        }
    }

    /// Resident memory of the process and its descendants, in bytes.
    pub fn rss_bytes(&self) -> u64 {
        tree(self.pid()).into_iter().map(rss_of).sum()
    }

    /// The process's own peak resident memory (`VmHWM`), in bytes.
    pub fn peak_rss_bytes(&self) -> u64 {
        status_kib(self.pid(), "VmHWM:") * 1024
    }

    /// CPU time the process and its descendants have used, user and
    /// system apart.
    pub fn cpu_time(&self) -> CpuTime {
        let (user, system) = tree(self.pid())
            .into_iter()
            .map(cpu_ticks_of)
            .fold((0, 0), |(u, s), (du, ds)| (u + du, s + ds));
        let hz = rustix::param::clock_ticks_per_second() as f64;
        CpuTime {
            user: user as f64 / hz,
            system: system as f64 / hz,
        }
    }

    /// CPU time the process's threads and its descendants' have run, in
    /// nanoseconds, from the scheduler's own accounting
    /// (`/proc/PID/task/TID/schedstat`): [`Child::cpu_time`] counts clock
    /// ticks (10 ms), too coarse to compare two processes sharing a core
    /// for a few seconds within a percent. Threads that have exited are
    /// not counted (Tollgate's live as long as the process).
    pub fn run_nanos(&self) -> u64 {
        tree(self.pid()).into_iter().map(run_nanos_of).sum()
    }

    /// Waits at most `timeout` for the process to exit; whether it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `signal` to the process.
    pub fn signal(&self, signal: rustix::process::Signal) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid() as i32) {
            let _ = rustix::process::kill_process(pid, signal);
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        for pid in tree(self.pid()).into_iter().rev() {
            if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
                let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// # Errors
///
/// When no port can be bound.
pub fn free_port() -> Result<u16, BenchError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(BenchError::io("finding a free port"))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(BenchError::io("finding a free port"))
}

/// `pid` followed by all its descendants (parents before children).
fn tree(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(child) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = parent_of(child) {
                parents.push((child, ppid));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let current = out[i];
        out.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == current)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    out
}

/// The parent pid from `/proc/PID/stat` (the field after the `)` of the name).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)?.parse().ok()
}

/// `utime` and `stime` of one process from `/proc/PID/stat`, in clock
/// ticks; zeros when it is gone.
fn cpu_ticks_of(pid: u32) -> (u64, u64) {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or((0, 0), |stat| user_system(&stat))
}

/// The nanoseconds on a CPU of every thread of `pid`; 0 when it is gone.
fn run_nanos_of(pid: u32) -> u64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .map(|text| on_cpu_nanos(&text))
        .sum()
}

/// The first field of a `schedstat` line: time spent on a CPU, in ns.
fn on_cpu_nanos(schedstat: &str) -> u64 {
    schedstat
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0)
}

/// `utime` and `stime` from the text of `/proc/PID/stat`.
fn user_system(stat: &str) -> (u64, u64) {
    let Some(close) = stat.rfind(')') else {
        return (0, 0);
    };
    // After the name: state, ppid, ... with utime and stime 12th and 13th.
    let mut fields = stat[close + 1..].split_whitespace().skip(11);
    let mut next = || {
        fields
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (next(), next())
}

/// CPU time in seconds, user space and kernel apart.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    /// In user space (`utime`).
    pub user: f64,
    /// In the kernel on the process's behalf (`stime`).
    pub system: f64,
}

impl CpuTime {
    /// User and system together.
    pub fn total(self) -> f64 {
        self.user + self.system
    }

    /// What was used after `earlier`.
    pub fn since(self, earlier: CpuTime) -> CpuTime {
        CpuTime {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }
}

/// `VmRSS` of one process in bytes; 0 when it is gone.
fn rss_of(pid: u32) -> u64 {
    status_kib(pid, "VmRSS:") * 1024
}

/// A KiB field (`VmRSS:`, `VmHWM:`) of `/proc/PID/status`; 0 when the
/// process is gone.
fn status_kib(pid: u32, field: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Whether `program` can be found on `PATH` or in `/usr/sbin`.
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two fields are read after the last `)`, so a name holding
    /// spaces and parentheses does not shift them.
    #[test]
    fn user_and_system_ticks_from_stat() {
        let stat =
            "4242 (tollgate (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 178 582 0 0 20 0 2 0";
        assert_eq!(user_system(stat), (178, 582));
        assert_eq!(user_system("garbage"), (0, 0));
        let used = CpuTime {
            user: 3.0,
            system: 5.0,
        }
        .since(CpuTime {
            user: 1.0,
            system: 1.5,
        });
        assert_eq!(
            used,
            CpuTime {
                user: 2.0,
                system: 3.5
            }
        );
        assert_eq!(used.total(), 5.5);
    }

    /// `schedstat`'s first field is the time on a CPU; a process's own
    /// threads add up to more than nothing.
    #[test]
    fn on_cpu_nanoseconds_from_schedstat() {
        assert_eq!(on_cpu_nanos("1234567 89 10\n"), 1_234_567);
        assert_eq!(on_cpu_nanos(""), 0);
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(20) {
            std::hint::black_box(0u64);
        }
        assert!(run_nanos_of(std::process::id()) >= 10_000_000);
    }
}
