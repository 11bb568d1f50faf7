//! [`DataplaneProc`]: a `tollgate-dataplane` process following a
//! controller, as a pod of a Gateway's Deployment runs it.

use crate::client::{HttpClient, wait_http_ok};
use crate::error::HarnessError;
use crate::process::{Proc, free_port};
use rustix::process::{Pid, Signal, kill_process};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How to start one data plane.
#[derive(Clone, Debug)]
pub struct DataplaneArgs {
    /// The controller's snapshot base URL (`http://127.0.0.1:PORT`).
    pub controller: String,
    /// The Gateway, `namespace/name`.
    pub gateway: String,
    /// `--listener-port-offset`.
    pub port_offset: u16,
    /// `--state-dir`, if any.
    pub state_dir: Option<PathBuf>,
    /// `--drain-delay-seconds`.
    pub drain_delay_seconds: u64,
    /// Environment beside `RUST_LOG=info` (`OTEL_*`, say).
    pub env: Vec<(String, String)>,
}

/// A running data plane with its admin address; stopped on drop.
#[derive(Debug)]
pub struct DataplaneProc {
    proc: Proc,
    admin: SocketAddr,
}

impl DataplaneProc {
    /// Starts `tollgate-dataplane` with `args` and a fresh admin port (not
    /// waiting for it to be ready).
    ///
    /// # Errors
    ///
    /// When the binary is missing or the process cannot start.
    pub fn spawn(args: &DataplaneArgs) -> Result<DataplaneProc, HarnessError> {
        let admin = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?));
        let mut argv = vec![
            "--controller".to_string(),
            args.controller.clone(),
            "--gateway".into(),
            args.gateway.clone(),
            "--admin-address".into(),
            admin.to_string(),
            "--listener-port-offset".into(),
            args.port_offset.to_string(),
            "--drain-delay-seconds".into(),
            args.drain_delay_seconds.to_string(),
        ];
        if let Some(dir) = &args.state_dir {
            argv.push("--state-dir".into());
            argv.push(dir.display().to_string());
        }
        let env = [("RUST_LOG", "info")]
            .into_iter()
            .chain(args.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let proc = Proc::spawn("tollgate-dataplane", argv, env)?;
        Ok(DataplaneProc { proc, admin })
    }

    /// [`DataplaneProc::spawn`], then waits until `/readyz` answers 200.
    ///
    /// # Errors
    ///
    /// As `spawn`, or when it is not ready within `timeout` (with its log).
    pub async fn start(
        args: &DataplaneArgs,
        timeout: Duration,
    ) -> Result<DataplaneProc, HarnessError> {
        let mut dp = DataplaneProc::spawn(args)?;
        dp.wait_ready(timeout).await?;
        Ok(dp)
    }

    /// Waits until `/readyz` answers 200.
    ///
    /// # Errors
    ///
    /// When the process exits, or is not ready in time (with its log tail).
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<(), HarnessError> {
        match wait_http_ok(&self.url("/readyz"), timeout).await {
            Ok(()) => Ok(()),
            Err(error) => {
                self.proc.check_running()?;
                Err(HarnessError::InvalidRequest(format!(
                    "data plane not ready: {error}\n{}",
                    self.proc.tail(30)
                )))
            }
        }
    }

    /// The admin address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// `http://<admin><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// The admin `/status` document.
    ///
    /// # Errors
    ///
    /// When the admin server does not answer JSON.
    pub async fn status(&self) -> Result<serde_json::Value, HarnessError> {
        let reply = HttpClient::http1().get(&self.url("/status")).await?;
        serde_json::from_slice(&reply.body).map_err(|e| HarnessError::InvalidRequest(e.to_string()))
    }

    /// Polls `/status` until `check` holds, and returns that document;
    /// after `timeout` fails with what it last read, saying it never was
    /// `what`.
    ///
    /// # Errors
    ///
    /// When the admin server does not answer JSON, or `check` never held.
    pub async fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<serde_json::Value, HarnessError> {
        let start = Instant::now();
        loop {
            let status = self.status().await?;
            if check(&status) {
                return Ok(status);
            }
            if start.elapsed() > timeout {
                return Err(HarnessError::InvalidRequest(format!(
                    "data plane never {what}: {status:#}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends SIGTERM (the start of a graceful shutdown) without waiting.
    ///
    /// # Errors
    ///
    /// When the signal cannot be sent.
    pub fn terminate(&self) -> Result<(), HarnessError> {
        signal(&self.proc, Signal::TERM)
    }

    /// Waits until the process has exited; returns how long that took.
    ///
    /// # Errors
    ///
    /// When it still runs after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<Duration, HarnessError> {
        let start = Instant::now();
        while self.proc.check_running().is_ok() {
            if start.elapsed() > timeout {
                return Err(HarnessError::InvalidRequest(format!(
                    "data plane still running {timeout:?} after SIGTERM\n{}",
                    self.proc.tail(30)
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(start.elapsed())
    }

    /// The underlying process (log, liveness).
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }
}

/// Sends `sig` to `proc` (the process itself, not its group).
///
/// # Errors
///
/// When the pid is invalid or the signal cannot be sent.
pub fn signal(proc: &Proc, sig: Signal) -> Result<(), HarnessError> {
    let pid = i32::try_from(proc.pid())
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| HarnessError::InvalidRequest(format!("bad pid {}", proc.pid())))?;
    kill_process(pid, sig).map_err(|e| HarnessError::Io(e.into()))
}
