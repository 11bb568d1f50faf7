//! Tollgate in standalone mode for the route-update scenarios:
//! `tollgate-controller --manifests DIR --with-dataplane`.
//!
//! The controller and its in-process data plane share one process, pinned
//! to the proxy CPU with one runtime worker, like the data plane alone.
//! [`Manifests`] writes the folder the controller watches; a change is a
//! file written next to the others, as a user's edit would be.

use crate::configs;
use crate::error::BenchError;
use crate::peers::Env;
use crate::probe;
use crate::procs::{Child, Launch, PROXY_CPU, free_port};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the controller gets to serve its first snapshot.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// A manifest folder for one Gateway on a fixed port.
#[derive(Debug)]
pub struct Manifests {
    /// The folder.
    pub dir: PathBuf,
    /// The Gateway's listener port.
    pub port: u16,
}

impl Manifests {
    /// A fresh folder `name` with the Gateway, backend Service and `routes` of
    /// [`configs::scale_routes`] (or one catch-all route when `routes` is 0).
    ///
    /// # Errors
    ///
    /// When the folder or files cannot be written.
    pub fn create(
        env: &Env,
        name: &str,
        backend: SocketAddr,
        routes: usize,
    ) -> Result<Manifests, BenchError> {
        let dir = env.dir(name)?.join("manifests");
        std::fs::create_dir_all(&dir).map_err(BenchError::io("creating the manifest folder"))?;
        let port = free_port()?;
        let manifests = Manifests { dir, port };
        manifests.write("base.yaml", &configs::base_manifests(port, backend.port()))?;
        let routes = if routes == 0 {
            configs::routes_yaml([("all".to_string(), "/".to_string())])
        } else {
            configs::scale_routes(routes)
        };
        manifests.write("routes.yaml", &routes)?;
        Ok(manifests)
    }

    /// Writes `file` in the folder (atomically: a temporary file renamed over it).
    ///
    /// # Errors
    ///
    /// When the file cannot be written.
    pub fn write(&self, file: &str, text: &str) -> Result<(), BenchError> {
        let tmp = self.dir.join(format!(".{file}.tmp"));
        std::fs::write(&tmp, text).map_err(BenchError::io(format!("writing {}", tmp.display())))?;
        std::fs::rename(&tmp, self.dir.join(file))
            .map_err(BenchError::io(format!("renaming {file}")))
    }

    /// The Gateway's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }
}

/// The controller's log filter: warnings, unless the bench is told otherwise.
fn log_filter() -> String {
    std::env::var("TOLLGATE_BENCH_CONTROLLER_LOG").unwrap_or_else(|_| "warn".to_string())
}

/// Starts the controller on `manifests` and waits until `ready_path` answers 200.
///
/// # Errors
///
/// When it does not start or never serves `ready_path`.
pub fn start(env: &Env, manifests: &Manifests, ready_path: &str) -> Result<Child, BenchError> {
    let ports = [free_port()?, free_port()?, free_port()?];
    let launch = Launch::new("tollgate-controller", env.bin("tollgate-controller"))
        .args(["--manifests".into(), manifests.dir.clone().into_os_string()])
        .args([
            "--with-dataplane",
            "--admin-address",
            &format!("127.0.0.1:{}", ports[0]),
        ])
        .args([
            "--dataplane-admin-address",
            &format!("127.0.0.1:{}", ports[1]),
        ])
        .args(["--snapshot-address", &format!("127.0.0.1:{}", ports[2])])
        .env("TOKIO_WORKER_THREADS", "1")
        // `TOLLGATE_BENCH_CONTROLLER_LOG` (a `RUST_LOG` filter) turns on the
        // controller's timing lines when a change's time is taken apart.
        .env("RUST_LOG", &log_filter())
        .cpu(PROXY_CPU);
    let log_dir: &Path = manifests.dir.parent().unwrap_or(&manifests.dir);
    let child = Child::spawn(&launch, log_dir, env.pin)?;
    if probe::wait_status(manifests.addr(), ready_path, 200, READY_TIMEOUT) {
        Ok(child)
    } else {
        Err(child.not_ready(READY_TIMEOUT))
    }
}
