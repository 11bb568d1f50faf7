//! The targets of a comparison: Tollgate, nginx, HAProxy, and "direct"
//! (load straight to the backend, the ceiling every proxy is measured against).
//!
//! [`Env`] holds what every scenario needs to start processes: the work
//! folder, where the Tollgate binaries are, whether to pin CPUs. [`start`]
//! brings one target up in front of a running backend with the configs of
//! [`crate::configs`] and waits until it serves.

use crate::configs;
use crate::error::BenchError;
use crate::probe;
use crate::procs::{Child, LOAD_CPU, Launch, PROXY_CPU, find_program, free_port};
use crate::tls::{self, TlsFiles};
use serde::Serialize;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a process gets to start serving.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What every scenario needs to start processes.
#[derive(Clone, Debug)]
pub struct Env {
    /// Folder for configs, snapshots and logs of this run.
    pub work: PathBuf,
    /// Folder holding `tollgate-dataplane`, `tollgate-controller`, `tollgate-bench`.
    pub bins: PathBuf,
    /// Pin processes with `taskset`.
    pub pin: bool,
}

impl Env {
    /// The path of workspace binary `name`.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bins.join(name)
    }

    /// A fresh subfolder of the work folder.
    ///
    /// # Errors
    ///
    /// When it cannot be created.
    pub fn dir(&self, name: &str) -> Result<PathBuf, BenchError> {
        let dir = self.work.join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .map_err(BenchError::io(format!("creating {}", dir.display())))?;
        Ok(dir)
    }
}

/// One thing load is sent to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The backend itself, no proxy.
    Direct,
    /// `tollgate-dataplane --snapshot-file`.
    Tollgate,
    /// nginx with one worker.
    Nginx,
    /// HAProxy with one thread.
    Haproxy,
}

impl Target {
    /// All targets, direct first.
    pub const ALL: [Target; 4] = [
        Target::Direct,
        Target::Tollgate,
        Target::Nginx,
        Target::Haproxy,
    ];

    /// The proxies only.
    pub const PROXIES: [Target; 3] = [Target::Tollgate, Target::Nginx, Target::Haproxy];

    /// Lowercase name.
    pub fn name(self) -> &'static str {
        match self {
            Target::Direct => "direct",
            Target::Tollgate => "tollgate",
            Target::Nginx => "nginx",
            Target::Haproxy => "haproxy",
        }
    }

    /// Whether this target can run here; peers may be missing in smoke runs.
    pub fn available(self) -> bool {
        match self {
            Target::Direct | Target::Tollgate => true,
            Target::Nginx => find_program("nginx").is_some(),
            Target::Haproxy => find_program("haproxy").is_some(),
        }
    }
}

/// A started target: where to send load, and its process if it has one.
#[derive(Debug)]
pub struct Running {
    /// Which target.
    pub target: Target,
    /// Its listening address.
    pub addr: SocketAddr,
    /// The proxy process (`None` for direct).
    pub child: Option<Child>,
    /// The config file the proxy reads (snapshot JSON for Tollgate).
    pub config: Option<PathBuf>,
    /// Tollgate's admin server (`/metrics`); `None` for the others.
    pub admin: Option<SocketAddr>,
}

/// Changes to how [`start_tweaked`] starts a target, for the scenarios
/// that compare one target with itself (telemetry modes, callgrind).
#[derive(Clone, Debug, Default)]
pub struct Tweaks {
    /// Folder and log name instead of the target's name, so several
    /// instances of one target can run side by side.
    pub label: Option<String>,
    /// Extra command-line arguments (Tollgate only).
    pub args: Vec<String>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// Run the proxy under this command (`valgrind --tool=callgrind ...`).
    /// nginx then runs with `master_process off`, so the one process the
    /// wrapper follows is the one that serves.
    pub wrapper: Vec<OsString>,
    /// Terminate TLS with this certificate (TLS scenario); readiness is
    /// then checked over TLS.
    pub tls: Option<TlsFiles>,
    /// Tollgate only: every route requires this authentication (auth
    /// scenario); readiness is then a 401 to a request without credentials.
    pub auth: Option<tollgate_snapshot::AuthConfig>,
    /// Header lines (`name: value`) every load request carries.
    pub headers: Vec<String>,
    /// Proxy gRPC to an h2c backend (gRPC scenario: Tollgate and nginx);
    /// readiness is then a gRPC call.
    pub grpc: bool,
    /// Tollgate only: every route counts against these limits, with this
    /// Redis (rate-limit scenario).
    pub rate_limit: Option<(
        tollgate_snapshot::RateLimits,
        tollgate_snapshot::RedisSettings,
    )>,
    /// nginx only: `limit_req` at this many requests a minute on one zone
    /// every request shares (rate-limit scenario).
    pub nginx_limit_req: Option<u64>,
}

impl Running {
    /// Resident memory of the proxy's process tree in bytes (0 for direct).
    pub fn rss(&self) -> u64 {
        self.child.as_ref().map_or(0, Child::rss_bytes)
    }

    /// Runs `load` and returns its result with the share of one core the
    /// proxy's processes were busy meanwhile (`None` for direct). Near 1.0
    /// the proxy was the limit; well below, something else was (the load
    /// generator or the backend on the other core).
    pub fn busy_during<T>(&self, load: impl FnOnce() -> T) -> (T, Option<f64>) {
        let (result, used) = self.cpu_during(load);
        (result, used.map(|u| u.busy))
    }

    /// [`Running::busy_during`], with the share of that CPU time spent in
    /// user space.
    pub fn cpu_during<T>(&self, load: impl FnOnce() -> T) -> (T, Option<CpuUse>) {
        let before = self.child.as_ref().map(Child::cpu_time);
        let started = std::time::Instant::now();
        let result = load();
        let wall = started.elapsed().as_secs_f64();
        let used = match (&self.child, before) {
            (Some(child), Some(before)) if wall > 0.0 => {
                let used = child.cpu_time().since(before);
                Some(CpuUse {
                    busy: used.total() / wall,
                    user_share: used.user / used.total().max(f64::MIN_POSITIVE),
                })
            }
            _ => None,
        };
        (result, used)
    }
}

/// How a proxy used its CPU during a load.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CpuUse {
    /// Share of one core it was busy.
    pub busy: f64,
    /// Share of that busy time spent in user space (the rest: the kernel,
    /// on its behalf: sockets, epoll).
    pub user_share: f64,
}

/// Starts the benchmark backend on a free port, pinned to the load CPU.
///
/// # Errors
///
/// When it does not start or serve.
pub fn start_backend(env: &Env) -> Result<(Child, SocketAddr), BenchError> {
    let port = free_port()?;
    let launch = Launch::new("backend", env.bin("tollgate-bench"))
        .args(["backend", "--port", &port.to_string()])
        .cpu(LOAD_CPU);
    let mut child = Child::spawn(&launch, &env.work, env.pin)?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    child.wait_port(addr, READY_TIMEOUT)?;
    Ok((child, addr))
}

/// Starts `target` forwarding to `backend` with `routes` routes (see
/// [`configs::snapshot`]; peers always get one catch-all), and waits until a
/// request through it succeeds.
///
/// # Errors
///
/// When its config cannot be written or it does not start serving.
pub fn start(
    env: &Env,
    target: Target,
    backend: SocketAddr,
    routes: usize,
) -> Result<Running, BenchError> {
    start_tweaked(env, target, backend, routes, &Tweaks::default())
}

/// [`start`] with `tweaks` applied.
///
/// # Errors
///
/// As [`start`].
pub fn start_tweaked(
    env: &Env,
    target: Target,
    backend: SocketAddr,
    routes: usize,
    tweaks: &Tweaks,
) -> Result<Running, BenchError> {
    if target == Target::Direct {
        return Ok(Running {
            target,
            addr: backend,
            child: None,
            config: None,
            admin: None,
        });
    }
    let port = free_port()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let dir = env.dir(tweaks.label.as_deref().unwrap_or(target.name()))?;
    let (launch, config, admin) = launch(env, target, port, backend.port(), routes, &dir, tweaks)?;
    let launch = tweaks
        .envs
        .iter()
        .fold(launch, |l, (k, v)| l.env(k, v))
        .args(if target == Target::Tollgate {
            tweaks.args.clone()
        } else {
            Vec::new()
        })
        .under(&tweaks.wrapper)
        .cpu(PROXY_CPU);
    let mut child = Child::spawn(&launch, &dir, env.pin)?;
    child.wait_port(addr, READY_TIMEOUT)?;
    let path = if routes == 0 {
        "/".to_string()
    } else {
        configs::route_path(routes - 1)
    };
    let ready = if tweaks.tls.is_some() {
        tls::wait_ready(addr, READY_TIMEOUT)
    } else if tweaks.grpc {
        crate::grpcload::wait_ready(addr, READY_TIMEOUT)
    } else {
        let code = if tweaks.auth.is_some() { 401 } else { 200 };
        probe::wait_status(addr, &path, code, READY_TIMEOUT)
    };
    if !ready {
        return Err(child.not_ready(READY_TIMEOUT));
    }
    Ok(Running {
        target,
        addr,
        child: Some(child),
        config: Some(config),
        admin,
    })
}

/// The launch of `target`, its config file and (Tollgate) admin address.
/// With a wrapper in `tweaks`, nginx runs without a master process; with
/// TLS files, every proxy terminates TLS with them.
fn launch(
    env: &Env,
    target: Target,
    port: u16,
    backend_port: u16,
    routes: usize,
    dir: &Path,
    tweaks: &Tweaks,
) -> Result<(Launch, PathBuf, Option<SocketAddr>), BenchError> {
    let single = !tweaks.wrapper.is_empty();
    let tls = tweaks.tls.as_ref();
    let write = |name: &str, text: &str| -> Result<PathBuf, BenchError> {
        let path = dir.join(name);
        std::fs::write(&path, text)
            .map_err(BenchError::io(format!("writing {}", path.display())))?;
        Ok(path)
    };
    Ok(match target {
        Target::Tollgate => {
            let mut snapshot = match tls {
                Some(t) => configs::snapshot_tls(port, backend_port, &t.chain_pem, &t.key_pem),
                None if tweaks.grpc => configs::snapshot_grpc(port, backend_port),
                None => configs::snapshot(port, backend_port, routes),
            };
            if let Some(auth) = &tweaks.auth {
                configs::require_auth(&mut snapshot, auth.clone());
            }
            if let Some((limits, redis)) = &tweaks.rate_limit {
                configs::limit_rate(&mut snapshot, limits.clone(), redis.clone());
            }
            let json = serde_json::to_string(&snapshot).map_err(|source| BenchError::Json {
                what: "the snapshot".into(),
                source,
            })?;
            let file = write("snapshot.json", &json)?;
            let admin = SocketAddr::from(([127, 0, 0, 1], free_port()?));
            let launch = Launch::new("tollgate", env.bin("tollgate-dataplane"))
                .args(["--snapshot-file".into(), file.clone().into_os_string()])
                .args(["--admin-address", &admin.to_string()])
                .env("TOKIO_WORKER_THREADS", "1")
                .env("RUST_LOG", "warn");
            (launch, file, Some(admin))
        }
        Target::Nginx => {
            let work = dir.display().to_string();
            let mut text = match tls {
                Some(t) => {
                    let (cert, key) = (t.cert.display(), t.key.display());
                    configs::nginx_tls(
                        port,
                        backend_port,
                        &work,
                        &cert.to_string(),
                        &key.to_string(),
                    )
                }
                None if tweaks.grpc => configs::nginx_grpc(port, backend_port, &work),
                None => match tweaks.nginx_limit_req {
                    Some(per_minute) => {
                        configs::nginx_limit_req(port, backend_port, &work, per_minute)
                    }
                    None => configs::nginx(port, backend_port, &work),
                },
            };
            if single {
                text.insert_str(0, "master_process off;\n");
            }
            let file = write("nginx.conf", &text)?;
            let program = find_program("nginx").unwrap_or_else(|| "nginx".into());
            let launch = Launch::new("nginx", program)
                .args([
                    "-p".into(),
                    dir.as_os_str().to_owned(),
                    "-c".into(),
                    file.clone().into_os_string(),
                ])
                .args(["-e".into(), dir.join("nginx-error.log").into_os_string()]);
            (launch, file, None)
        }
        Target::Haproxy => {
            let text = match tls {
                Some(t) => {
                    configs::haproxy_tls(port, backend_port, &t.combined.display().to_string())
                }
                None => configs::haproxy(port, backend_port),
            };
            let file = write("haproxy.cfg", &text)?;
            let program = find_program("haproxy").unwrap_or_else(|| "haproxy".into());
            let launch = Launch::new("haproxy", program).args([
                "-db".into(),
                "-f".into(),
                file.clone().into_os_string(),
            ]);
            (launch, file, None)
        }
        // `start` returns before asking for a direct launch; `true` keeps
        // the match total without a panic.
        Target::Direct => (Launch::new("direct", "true"), PathBuf::new(), None),
    })
}
