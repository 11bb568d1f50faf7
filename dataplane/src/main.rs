//! `tollgate-dataplane`: serve one Gateway's traffic from the controller's
//! snapshot stream, or from a snapshot file (handy for benchmarks).
//!
//! SIGTERM and Ctrl-C start a graceful shutdown: `/readyz` turns 503 at
//! once, listeners keep accepting for `--drain-delay-seconds` (so load
//! balancers notice before connections are refused), then stop accepting
//! and drain in-flight requests for the snapshot's drain timeout. A second
//! signal skips the rest of the delay. SIGHUP re-reads the snapshot file.

use anyhow::{Context, bail};
use clap::{Parser, ValueEnum};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::signal::unix::{SignalKind, signal};
use tollgate_dataplane::{
    ClientTls, Dataplane, DataplaneOptions, DataplaneTelemetry, GaugeReading, SubscribeOptions,
    register_gauges, subscribe_with,
};
use tollgate_snapshot::Snapshot;
use tollgate_telemetry::Telemetry;

/// mimalloc instead of the system allocator: a proxied request makes a
/// dozen short-lived allocations (heads, header maps, boxed futures, TLS
/// records), and glibc's malloc spent about 2.7k instructions on them per
/// request (`_int_free`, `malloc`, `free`, `_int_malloc`), with chunk
/// consolidation on the way. The controller uses it for the same reason.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tollgate's data plane.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Controller base URL to follow, e.g.
    /// `https://tollgate-controller.tollgate.svc:9903` (https needs --tls-dir).
    #[arg(
        long,
        env = "TOLLGATE_CONTROLLER",
        requires = "gateway",
        conflicts_with = "snapshot_file"
    )]
    controller: Option<String>,
    /// The Gateway to serve, `namespace/name`.
    #[arg(long, env = "TOLLGATE_GATEWAY")]
    gateway: Option<String>,
    /// Serve this snapshot JSON file instead of following a controller; SIGHUP re-reads it.
    #[arg(long, required_unless_present = "controller")]
    snapshot_file: Option<PathBuf>,
    /// Mutual TLS to the controller: a folder with `tls.crt`, `tls.key`
    /// and `ca.crt` (the mounted client-certificate Secret), re-read when
    /// they change.
    #[arg(long, env = "TOLLGATE_TLS_DIR", value_name = "DIR")]
    tls_dir: Option<PathBuf>,
    /// Keep the last applied snapshot in `DIR/snapshot.json` and serve it
    /// at start when the controller cannot be reached.
    #[arg(long, env = "TOLLGATE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Seconds between turning unready on SIGTERM and ceasing to accept
    /// connections (let load balancers take this instance out first).
    #[arg(long, env = "TOLLGATE_DRAIN_DELAY_SECONDS", default_value_t = 0)]
    drain_delay_seconds: u64,
    /// Added to every listener's port when binding, so several data
    /// planes of one Gateway can run on one host (tests, benchmarks);
    /// routing and redirects still use the snapshot's ports. The
    /// controller's flag of the same name does this for in-process data
    /// planes; both offsets add up.
    #[arg(long, env = "TOLLGATE_LISTENER_PORT_OFFSET", default_value_t = 0)]
    listener_port_offset: u16,
    /// Address of the admin server (health, readiness, status, snapshot).
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin_address: SocketAddr,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    /// Request telemetry (metrics, spans, access log). `off` serves
    /// without recording anything per request (for comparing its cost).
    #[arg(long, value_enum, default_value_t = Switch::On, env = "TOLLGATE_REQUEST_TELEMETRY")]
    request_telemetry: Switch,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Switch {
    On,
    Off,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything builds a TLS client or server: one provider for all.
    tollgate_dataplane::install_crypto_provider();
    let args = Args::parse();
    let format = match args.log_format {
        LogFormat::Text => tollgate_telemetry::LogFormat::Text,
        LogFormat::Json => tollgate_telemetry::LogFormat::Json,
    };
    let telemetry =
        Telemetry::init("tollgate-dataplane", format).context("setting up telemetry")?;
    let file = match &args.snapshot_file {
        Some(path) => Some(read_snapshot(path)?),
        None => None,
    };
    let gateway = match (&args.gateway, &file) {
        (Some(gateway), _) => gateway.clone(),
        (None, Some(snapshot)) => snapshot.gateway.clone(),
        (None, None) => bail!("--gateway is required with --controller"),
    };
    let options = DataplaneOptions {
        gateway,
        telemetry: match args.request_telemetry {
            Switch::On => DataplaneTelemetry::new(&telemetry),
            Switch::Off => DataplaneTelemetry::disabled(),
        },
        port_offset: args.listener_port_offset,
    };
    let dataplane = Dataplane::new(options);
    register_gauges(&telemetry, {
        let dataplane = dataplane.clone();
        move || vec![GaugeReading::of(&dataplane)]
    });
    let mut admin = tokio::spawn({
        let (dataplane, telemetry) = (dataplane.clone(), telemetry.clone());
        async move { dataplane.serve_admin(args.admin_address, telemetry).await }
    });
    match (args.controller, file, args.snapshot_file) {
        (Some(url), _, _) => {
            let tls = match &args.tls_dir {
                Some(dir) => ClientTls::from_dir(dir),
                None => ClientTls::plain(),
            };
            tls.check_url(&url)?;
            if let Some(dir) = &args.state_dir {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating --state-dir {}", dir.display()))?;
            }
            let options = SubscribeOptions {
                url,
                tls,
                state_dir: args.state_dir.clone(),
            };
            drop(tokio::spawn(subscribe_with(options, dataplane.clone())));
        }
        (None, Some(snapshot), Some(path)) => {
            dataplane
                .apply(snapshot)
                .await
                .context("applying the snapshot file")?;
            tokio::spawn(reload_on_sighup(path, dataplane.clone()));
        }
        _ => bail!("either --controller or --snapshot-file is required"),
    }
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("interrupt received"),
        result = &mut admin => {
            result.context("admin server task")?.context("admin server")?;
        }
    }
    dataplane.withdraw();
    if args.drain_delay_seconds > 0 {
        let delay = Duration::from_secs(args.drain_delay_seconds);
        tracing::info!(?delay, "unready; accepting until the drain delay passes");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = term.recv() => tracing::info!("second SIGTERM: draining now"),
            _ = tokio::signal::ctrl_c() => tracing::info!("interrupt: draining now"),
        }
    }
    dataplane.shutdown();
    dataplane.closed().await;
    // Spans and log records of the last requests, bounded.
    telemetry.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

fn read_snapshot(path: &Path) -> anyhow::Result<Snapshot> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))
}

/// Re-reads and applies the snapshot file on every SIGHUP; a bad file is
/// logged and the running snapshot kept.
async fn reload_on_sighup(path: PathBuf, dataplane: Dataplane) {
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot install the SIGHUP handler; the snapshot file will not be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        let result = match read_snapshot(&path) {
            Ok(snapshot) => dataplane.apply(snapshot).await.map_err(anyhow::Error::from),
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => tracing::info!(path = %path.display(), "snapshot file reloaded"),
            Err(error) => {
                tracing::warn!(path = %path.display(), error = format!("{error:#}"), "reload failed")
            }
        }
    }
}
