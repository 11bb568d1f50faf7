//! A real `redis-server` for tests: started on a free port with nothing
//! persisted, killed (SIGKILL), frozen (SIGSTOP) and resumed (SIGCONT) on
//! demand, restarted on the same port.
//!
//! `make test` installs `redis-server`; without it [`RedisServer::start`]
//! fails and says what to install, so a test needing Redis never passes
//! without one.

use crate::error::HarnessError;
use crate::process::{Proc, free_port};
use rustix::process::{Pid, Signal, kill_process_group};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// A running `redis-server`.
pub struct RedisServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    password: Option<String>,
    /// TLS: the folder holding `ca.pem`, `cert.pem` and `key.pem`.
    tls: Option<PathBuf>,
    /// A configuration file, given first (Sentinel needs one).
    conf: Option<PathBuf>,
    /// Extra arguments (cluster, replica or sentinel mode).
    extra: Vec<String>,
    proc: Option<Proc>,
}

impl RedisServer {
    /// Starts a server on a free port.
    ///
    /// # Errors
    ///
    /// When `redis-server` is not installed or does not answer `PING`.
    pub fn start() -> Result<RedisServer, HarnessError> {
        RedisServer::start_with(None)
    }

    /// Starts a server that requires `password`.
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`].
    pub fn start_with(password: Option<&str>) -> Result<RedisServer, HarnessError> {
        let mut server = RedisServer {
            port: free_port()?,
            password: password.map(str::to_string),
            tls: None,
            conf: None,
            extra: Vec::new(),
            proc: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// Starts a server that speaks TLS only, with a certificate for
    /// `127.0.0.1` and `localhost` issued by `ca`.
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`], or when the certificate cannot be made.
    pub fn start_tls(ca: &crate::tls::Ca) -> Result<RedisServer, HarnessError> {
        RedisServer::start_custom(free_port()?, None, Some(ca), Vec::new())
    }

    /// Writes a certificate for `127.0.0.1` and `localhost` issued by `ca`,
    /// its key and the CA into a folder of the test logs.
    fn tls_files(ca: &crate::tls::Ca, port: u16) -> Result<PathBuf, HarnessError> {
        let dir = crate::process::log_dir().join(format!("redis-tls-{port}"));
        let io = |source| HarnessError::Spawn {
            what: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let leaf = ca
            .leaf(&["localhost", "127.0.0.1"], &[])
            .map_err(|e| HarnessError::InvalidRequest(format!("test certificate: {e}")))?;
        std::fs::write(dir.join("ca.pem"), ca.pem()).map_err(io)?;
        std::fs::write(dir.join("cert.pem"), &leaf.chain_pem).map_err(io)?;
        std::fs::write(dir.join("key.pem"), &leaf.key_pem).map_err(io)?;
        Ok(dir)
    }

    /// Starts a server on `port` with a configuration file (given first),
    /// TLS only with a certificate `ca` issued when given, and extra
    /// arguments: a replica (`--replicaof`) or a sentinel (`--sentinel`).
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start_tls`].
    pub(crate) fn start_custom(
        port: u16,
        conf: Option<PathBuf>,
        ca: Option<&crate::tls::Ca>,
        extra: Vec<String>,
    ) -> Result<RedisServer, HarnessError> {
        let tls = match ca {
            Some(ca) => Some(RedisServer::tls_files(ca, port)?),
            None => None,
        };
        let mut server = RedisServer {
            port,
            password: None,
            tls,
            conf,
            extra,
            proc: None,
        };
        server.restart()?;
        Ok(server)
    }

    /// Sets the password [`RedisServer::command`] sends (for a server
    /// started with `--requirepass` among its extra arguments).
    pub(crate) fn set_password(&mut self, password: &str) {
        self.password = Some(password.to_string());
    }

    /// The `rediss://` URL of a TLS server, else the `redis://` one.
    pub fn tls_url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    /// The `redis://` URL of the server (without the password).
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server again on its port (after [`RedisServer::kill`]).
    ///
    /// # Errors
    ///
    /// As [`RedisServer::start`].
    pub fn restart(&mut self) -> Result<(), HarnessError> {
        let program = program("redis-server")?;
        let port = self.port.to_string();
        let mut args: Vec<String> = self.conf.iter().map(|c| c.display().to_string()).collect();
        args.extend(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"].map(String::from));
        match &self.tls {
            Some(dir) => {
                let file = |f: &str| dir.join(f).display().to_string();
                args.extend(["--port".into(), "0".into(), "--tls-port".into(), port]);
                args.extend(["--tls-cert-file".into(), file("cert.pem")]);
                args.extend(["--tls-key-file".into(), file("key.pem")]);
                args.extend(["--tls-ca-cert-file".into(), file("ca.pem")]);
                args.extend(["--tls-auth-clients".into(), "no".into()]);
                // Replicas and sentinels reach their master over TLS too.
                args.extend(["--tls-replication".into(), "yes".into()]);
            }
            None => args.extend(["--port".into(), port]),
        }
        if let Some(password) = &self.password {
            args.extend(["--requirepass".into(), password.clone()]);
        }
        args.extend(self.extra.iter().cloned());
        let proc = Proc::spawn_program(&program, "redis-server", args, [("LANG", "C")])?;
        self.proc = Some(proc);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self
                .command(&["PING"])
                .is_ok_and(|r| r.contains("PONG") || r.contains("NOAUTH"))
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(HarnessError::Timeout {
            url: self.url(),
            timeout: Duration::from_secs(10),
            last: "no PONG".into(),
        })
    }

    /// SIGKILLs the server (it is gone at once, mid-request).
    pub fn kill(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            if let Some(pid) = Pid::from_raw(proc.pid() as i32) {
                let _ = kill_process_group(pid, Signal::KILL);
            }
            proc.stop();
        }
    }

    /// SIGSTOPs the server: connections stay open and nothing answers.
    pub fn freeze(&self) {
        self.signal(Signal::STOP);
    }

    /// SIGCONTs a frozen server.
    pub fn thaw(&self) {
        self.signal(Signal::CONT);
    }

    fn signal(&self, signal: Signal) {
        if let Some(pid) = self
            .proc
            .as_ref()
            .and_then(|p| Pid::from_raw(p.pid() as i32))
        {
            let _ = kill_process_group(pid, signal);
        }
    }

    /// Runs one command with `redis-cli` (TLS and password as the server
    /// needs) and returns its output.
    ///
    /// # Errors
    ///
    /// When `redis-cli` cannot run or fails.
    pub fn command(&self, words: &[&str]) -> std::io::Result<String> {
        let program = program("redis-cli").map_err(std::io::Error::other)?;
        let mut cmd = std::process::Command::new(program);
        cmd.args(["-h", "127.0.0.1", "-p", &self.port.to_string()]);
        if let Some(dir) = &self.tls {
            cmd.arg("--tls").arg("--cacert").arg(dir.join("ca.pem"));
        }
        if let Some(password) = &self.password {
            cmd.args(["-a", password, "--no-auth-warning"]);
        }
        let out = cmd.args(words).output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// How many times `command` (lowercase, e.g. `evalsha`) ran, from
    /// `INFO commandstats`.
    ///
    /// # Errors
    ///
    /// When the server cannot be reached.
    pub fn calls(&self, command: &str) -> std::io::Result<u64> {
        let info = self.command(&["INFO", "commandstats"])?;
        let prefix = format!("cmdstat_{command}:calls=");
        Ok(info
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|rest| rest.split(',').next()?.parse().ok())
            .unwrap_or(0))
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
    }
}

/// `name` (`redis-server`, `redis-cli`) on `PATH`.
fn program(name: &str) -> Result<PathBuf, HarnessError> {
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| HarnessError::Spawn {
            what: format!(
                "{name} (install it: `make test` does, or apt-get install redis-server redis-tools)"
            ),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })
}

/// A Redis Cluster of masters on 127.0.0.1, made by `redis-cli --cluster
/// create`, no replicas.
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` servers in cluster mode and joins them, waiting
    /// until the cluster reports `cluster_state:ok`.
    ///
    /// # Errors
    ///
    /// When a server does not start or the cluster does not form.
    pub fn start(masters: usize) -> Result<RedisCluster, HarnessError> {
        let mut nodes = Vec::new();
        for _ in 0..masters {
            let port = free_port()?;
            // The cluster bus defaults to the port + 10000, which can land
            // on a port some other connection holds (seen: a node that
            // could not start); take a free one like the client port.
            let bus = free_port()?;
            let conf = crate::process::log_dir().join(format!("redis-cluster-{port}.conf"));
            let _ = std::fs::remove_file(&conf);
            let mut node = RedisServer {
                port,
                password: None,
                tls: None,
                conf: None,
                extra: vec![
                    "--cluster-enabled".into(),
                    "yes".into(),
                    "--cluster-config-file".into(),
                    conf.display().to_string(),
                    "--cluster-node-timeout".into(),
                    "2000".into(),
                    "--cluster-port".into(),
                    bus.to_string(),
                ],
                proc: None,
            };
            node.restart()?;
            nodes.push(node);
        }
        let mut args: Vec<String> = vec!["--cluster".into(), "create".into()];
        args.extend(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)));
        args.extend(["--cluster-replicas", "0", "--cluster-yes"].map(String::from));
        let out = std::process::Command::new(program("redis-cli")?)
            .args(&args)
            .output()
            .map_err(|source| HarnessError::Spawn {
                what: "redis-cli --cluster create".into(),
                source,
            })?;
        if !out.status.success() {
            return Err(HarnessError::InvalidRequest(format!(
                "redis-cli --cluster create: {}",
                String::from_utf8_lossy(&out.stdout)
            )));
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = nodes.iter().all(|n| {
                n.command(&["CLUSTER", "INFO"])
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
            });
            if ok {
                return Ok(RedisCluster { nodes });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(HarnessError::Timeout {
            url: "redis cluster".into(),
            timeout: Duration::from_secs(20),
            last: "cluster_state not ok".into(),
        })
    }

    /// `redis://` URLs of every node (seeds for a cluster client).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// How many times `command` ran, summed over the nodes.
    ///
    /// # Errors
    ///
    /// When a node cannot be reached.
    pub fn calls(&self, command: &str) -> std::io::Result<u64> {
        self.nodes.iter().map(|n| n.calls(command)).sum()
    }

    /// How many keys each node holds (`DBSIZE`).
    pub fn key_counts(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .map(|n| {
                n.command(&["DBSIZE"])
                    .ok()
                    .and_then(|o| o.trim().parse().ok())
                    .unwrap_or(0)
            })
            .collect()
    }
}
