//! [`Echo`]: a `tollgate-echo` process on a free loopback port.
//!
//! Most end-to-end tests need one or more backends that say who they are;
//! `Echo::start("echo-v1")` gives one, already answering, whose answers carry
//! `service: "echo-v1"`. Point an EndpointSlice at `127.0.0.1:<port>` to put
//! it behind a Service.

use crate::client::wait_http_ok;
use crate::error::HarnessError;
use crate::process::{Proc, free_port};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How long a fresh echo backend gets to answer `/health`.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Attempts with a new port when the process exits at start (another
/// process took the port between [`free_port`] and the bind).
const START_ATTEMPTS: usize = 3;

/// A running `tollgate-echo` on 127.0.0.1; stopped on drop.
#[derive(Debug)]
pub struct Echo {
    proc: Proc,
    port: u16,
    service: String,
}

impl Echo {
    /// Starts `tollgate-echo` with `SERVICE_NAME=service`,
    /// `NAMESPACE=default` and `POD_NAME=<service>-0`, and waits until it
    /// answers `/health`.
    ///
    /// # Errors
    ///
    /// When the binary is missing (run `cargo build --bins`), or the process
    /// exits or does not answer in time; the error carries its log tail.
    pub async fn start(service: &str) -> Result<Echo, HarnessError> {
        let mut last_err = None;
        for _ in 0..START_ATTEMPTS {
            let port = free_port()?;
            let bind = format!("127.0.0.1:{port}");
            let pod = format!("{service}-0");
            let envs = [
                ("SERVICE_NAME", service),
                ("NAMESPACE", "default"),
                ("POD_NAME", pod.as_str()),
            ];
            let mut proc = Proc::spawn("tollgate-echo", ["--bind", bind.as_str()], envs)?;
            let health = format!("http://{bind}/health");
            match wait_http_ok(&health, START_TIMEOUT).await {
                Ok(()) => {
                    return Ok(Echo {
                        proc,
                        port,
                        service: service.to_string(),
                    });
                }
                Err(timeout) => match proc.check_running() {
                    // Exited (likely the port was taken): retry on a new port.
                    Err(exited) => last_err = Some(exited),
                    Ok(()) => return Err(timeout),
                },
            }
        }
        Err(last_err.unwrap_or(HarnessError::InvalidRequest(
            "echo backend never started".to_string(),
        )))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr())
    }

    /// The service name it reports.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The underlying process (log, liveness).
    pub fn proc(&mut self) -> &mut Proc {
        &mut self.proc
    }
}
