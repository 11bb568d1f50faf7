//! A standalone `tollgate-controller --manifests DIR` on fixed ports, so a
//! test can kill it and start it again where its data planes look for it.

use crate::client::wait_http_ok;
use crate::error::HarnessError;
use crate::process::{Proc, free_port};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

/// How long a controller gets to be ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The ports a controller serves on; reused by a restart.
#[derive(Clone, Copy, Debug)]
pub struct ControllerPorts {
    /// `--listener-port-offset`, baked into the snapshots it publishes.
    pub listener_port_offset: u16,
    /// `--admin-address`.
    pub admin: SocketAddr,
    /// `--snapshot-address`: where data planes stream snapshots from.
    pub snapshots: SocketAddr,
}

impl ControllerPorts {
    /// Fresh loopback admin and snapshot ports.
    ///
    /// # Errors
    ///
    /// When no port is free.
    pub fn free(listener_port_offset: u16) -> Result<ControllerPorts, HarnessError> {
        Ok(ControllerPorts {
            listener_port_offset,
            admin: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)),
            snapshots: SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()?)),
        })
    }

    /// The snapshot base URL data planes follow (`--controller`).
    pub fn snapshot_url(&self) -> String {
        format!("http://{}", self.snapshots)
    }
}

/// Starts `tollgate-controller --manifests dir` with no in-process data
/// plane on `ports`, and waits until its admin port is ready.
///
/// # Errors
///
/// When the binary is missing, or it exits or is not ready in time (the
/// error carries its log tail).
pub async fn start_controller_at(
    dir: &Path,
    ports: &ControllerPorts,
) -> Result<Proc, HarnessError> {
    start_controller_at_with_env(dir, ports, &[]).await
}

/// [`start_controller_at`] with `env` beside `RUST_LOG=info`.
///
/// # Errors
///
/// As [`start_controller_at`].
pub async fn start_controller_at_with_env(
    dir: &Path,
    ports: &ControllerPorts,
    env: &[(String, String)],
) -> Result<Proc, HarnessError> {
    let args = [
        "--manifests".to_string(),
        dir.display().to_string(),
        "--listener-port-offset".into(),
        ports.listener_port_offset.to_string(),
        "--admin-address".into(),
        ports.admin.to_string(),
        "--snapshot-address".into(),
        ports.snapshots.to_string(),
    ];
    let env = [("RUST_LOG", "info")]
        .into_iter()
        .chain(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let mut proc = Proc::spawn("tollgate-controller", args, env)?;
    let ready = format!("http://{}/readyz", ports.admin);
    match wait_http_ok(&ready, START_TIMEOUT).await {
        Ok(()) => Ok(proc),
        Err(error) => {
            proc.check_running()?;
            Err(HarnessError::InvalidRequest(format!(
                "controller not ready: {error}\n{}",
                proc.tail(40)
            )))
        }
    }
}
