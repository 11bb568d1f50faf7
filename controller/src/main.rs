//! `tollgate-controller`: compiles Gateway API objects into routing
//! snapshots and serves them to data planes.
//!
//! In a cluster (the default) it watches the Kubernetes API server found by
//! in-cluster config or kubeconfig, and the elected leader among replicas
//! writes status. Standalone, `--manifests DIR` reads a folder of YAML
//! manifests instead; status is then only logged and served on the admin port.

use anyhow::{Context, bail};
use clap::Parser;
use std::net::SocketAddr;
use std::time::Duration;
use tollgate_compile::{CONTROLLER_NAME, CompileOptions};
use tollgate_controller::admin::Admin;
use tollgate_controller::inprocess::InProcess;
use tollgate_controller::leader::{LeaderConfig, run_leader_election};
use tollgate_controller::metrics::Metrics;
use tollgate_controller::operator::{Infrastructure, Operator, ProvisionArgs};
use tollgate_controller::pki::{self, Issuer, IssuerConfig};
use tollgate_controller::provider::file::FileProvider;
use tollgate_controller::provider::kube::proxy::follow_no_proxy;
use tollgate_controller::provider::kube::{KubeProvider, KubeProviderConfig};
use tollgate_controller::serving::ServingGate;
use tollgate_controller::writer::StatusWriter;
use tollgate_controller::{controller, serve};
use tollgate_telemetry::{LogFormat, OtelEnv, Telemetry};
use tracing::info;

/// mimalloc instead of the system allocator: compiling 10k routes, keeping
/// their statuses and building the in-process runtime are dominated by
/// many small allocations and frees, where glibc's malloc spent a third of
/// the time of a change (chunk consolidation and unlinking).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Tollgate controller.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Read manifests from this folder (recursively) and watch it, instead
    /// of a Kubernetes API server.
    #[arg(long, value_name = "DIR")]
    manifests: Option<std::path::PathBuf>,
    /// Run every Gateway's data plane inside this process.
    #[arg(long)]
    with_dataplane: bool,
    /// Address listeners bind when a Gateway has no `spec.addresses`.
    #[arg(long, default_value = "0.0.0.0")]
    bind_address: String,
    /// Added to every listener port when binding (routing and redirects
    /// still use the manifest's ports).
    #[arg(long, default_value_t = 0)]
    listener_port_offset: u16,
    /// GatewayClasses with this controllerName are Tollgate's.
    #[arg(long, default_value = CONTROLLER_NAME)]
    controller_name: String,
    /// The controller's admin endpoints: /healthz, /readyz, /status, /snapshots.
    #[arg(long, default_value = "127.0.0.1:9902")]
    admin_address: SocketAddr,
    /// With --with-dataplane: the data planes' admin endpoints.
    #[arg(long, default_value = "127.0.0.1:9901")]
    dataplane_admin_address: SocketAddr,
    /// Where data planes stream their snapshots from (GET /v1/snapshots/NS/NAME).
    /// With Kubernetes it serves HTTPS and requires client certificates
    /// from the snapshot CA; with --manifests plain HTTP.
    #[arg(long, default_value = "127.0.0.1:9903")]
    snapshot_address: SocketAddr,
    /// Secret (in the controller's namespace, `POD_NAMESPACE`) keeping the
    /// snapshot CA; made on first start.
    #[arg(long, default_value = "tollgate-snapshot-ca")]
    snapshot_ca_secret: String,
    /// Validity of data-plane client certificates, in seconds (renewed
    /// when a third is left).
    #[arg(long, default_value_t = 30 * 24 * 3600, hide = true)]
    client_cert_validity_seconds: u64,
    /// Namespace of the leader-election Lease (default: the pod's namespace
    /// from `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "tollgate-controller")]
    lease_name: String,
    /// Seconds a leader's Lease stays valid without renewal.
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// Seconds between renewals of the Lease by its holder.
    #[arg(long, default_value_t = 5)]
    lease_renew_seconds: u64,
    /// Seconds after start-up the first status writes may wait for data
    /// planes to report the snapshots they serve (so a restart does not
    /// flip every Gateway to Programmed=False and back).
    #[arg(long, default_value_t = 15)]
    report_grace_seconds: u64,
    /// Log format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(flatten)]
    provisioning: ProvisionArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Before anything builds a TLS client or server: one provider for all.
    tollgate_dataplane::install_crypto_provider();
    let args = Args::parse();
    let format = if args.log_format == "json" {
        LogFormat::Json
    } else {
        LogFormat::Text
    };
    let telemetry =
        Telemetry::init("tollgate-controller", format).context("setting up telemetry")?;
    if let Some(dir) = &args.manifests
        && !dir.is_dir()
    {
        bail!("--manifests {}: not a folder", dir.display());
    }
    let provision = args
        .provisioning
        .enabled(args.manifests.is_none(), args.with_dataplane);
    let options = CompileOptions {
        controller_name: args.controller_name.clone(),
        bind_address: args.bind_address.clone(),
        listener_port_offset: args.listener_port_offset,
        provisioned: provision,
        ..CompileOptions::default()
    };
    let infra = provision.then(Infrastructure::default);
    let admin = Admin::new(telemetry.clone());

    let a = admin.clone();
    let addr = serve::spawn(args.admin_address, move |req| a.serve(req))
        .await
        .with_context(|| format!("binding the admin address {}", args.admin_address))?;
    info!(%addr, "controller admin listening");

    let kube = match &args.manifests {
        Some(_) => None,
        None => {
            let identity = identity();
            Some((kube_client(&identity).await?, identity))
        }
    };
    let (publisher, reports) = (admin.publisher.clone(), admin.reports.clone());
    let serve_snapshots = move |req| reports.serve(&publisher, req);
    let ca = match &kube {
        None => {
            let addr = serve::spawn(args.snapshot_address, serve_snapshots)
                .await
                .with_context(|| {
                    format!("binding the snapshot address {}", args.snapshot_address)
                })?;
            info!(%addr, "snapshot stream listening (plain HTTP)");
            None
        }
        Some((client, _)) => {
            let namespace = pod_namespace();
            let ca = pki::secret::ensure_ca(client.clone(), &namespace, &args.snapshot_ca_secret)
                .await
                .with_context(|| {
                    format!(
                        "the snapshot CA in Secret {namespace}/{}",
                        args.snapshot_ca_secret
                    )
                })?;
            let ca = std::sync::Arc::new(ca);
            // The URL data planes are given (`--snapshot-url`): its host
            // is what the serving certificate must name.
            let url = args.provisioning.env(&namespace).controller_url;
            let hosts = pki::server_hosts(&url);
            let (config, cert) =
                pki::server_config(&ca, &hosts).context("the snapshot server certificate")?;
            tokio::spawn(pki::server::renew_server_cert(
                ca.clone(),
                cert,
                hosts.clone(),
            ));
            let addr = serve::spawn_tls(args.snapshot_address, config, serve_snapshots)
                .await
                .with_context(|| {
                    format!("binding the snapshot address {}", args.snapshot_address)
                })?;
            info!(%addr, ?hosts, "snapshot stream listening (mutual TLS)");
            Some(ca)
        }
    };

    let in_process = args.with_dataplane.then(|| {
        InProcess::new(
            admin.ready.clone(),
            admin.reports.clone(),
            telemetry.clone(),
        )
    });
    if let Some(ip) = &in_process {
        let handler = ip.clone();
        let addr = serve::spawn(args.dataplane_admin_address, move |req| handler.serve(req))
            .await
            .with_context(|| {
                format!(
                    "binding the data-plane admin address {}",
                    args.dataplane_admin_address
                )
            })?;
        info!(%addr, "data-plane admin listening");
        ip.register_gauges();
        tokio::spawn(ip.clone().follow(admin.publisher.clone()));
    }

    let (tx, rx) = tokio::sync::watch::channel(None);
    let (statuses_tx, statuses_rx) = tokio::sync::watch::channel(None);
    let mut kubernetes = None;
    match &args.manifests {
        Some(dir) => {
            info!(dir = %dir.display(), "reading manifests");
            tokio::spawn(FileProvider::new(dir.clone()).run(tx));
            // No status writer: the compile loop sees nobody listens and
            // skips copying every status for it.
            drop(statuses_rx);
        }
        None => {
            let Some(((client, identity), ca)) = kube.zip(ca) else {
                bail!("Kubernetes mode without a client");
            };
            let issuer = Issuer::new(
                client.clone(),
                ca,
                admin.publisher.clone(),
                IssuerConfig {
                    lifetime: Duration::from_secs(args.client_cert_validity_seconds),
                    extra_files: tollgate_controller::operator::otlp_files()?,
                    reload_extra_files: Some(tollgate_controller::operator::otlp_files),
                    ..IssuerConfig::default()
                },
            );
            let operator = infra.clone().map(|infra| {
                info!(image = %args.provisioning.dataplane_image, "provisioning a data plane per Gateway");
                Operator::new(
                    client.clone(),
                    args.provisioning.env(&args.lease_namespace),
                    infra,
                    admin.statuses.clone(),
                    admin.metrics.clone(),
                    &args.controller_name,
                )
                .with_traces(admin.telemetry.traces.clone())
            });
            let metrics = admin.metrics.clone();
            kubernetes = Some(start_kubernetes(
                &args,
                client,
                &identity,
                tx,
                statuses_rx,
                metrics,
                LeaderWork {
                    operator,
                    issuer,
                    gate: admin.reports.gate.clone(),
                    traces: admin.telemetry.traces.clone(),
                },
            ));
        }
    }
    let compile_loop = tokio::spawn(controller::run(
        rx,
        options,
        admin,
        statuses_tx,
        Duration::from_secs(args.report_grace_seconds),
        infra,
    ));

    shutdown_signal().await;
    info!("shutting down");
    compile_loop.abort();
    if let Some(tasks) = kubernetes {
        tasks.stop().await;
    }
    if let Some(ip) = in_process {
        // Bounded: each data plane drains for at most its drain timeout.
        ip.shutdown().await;
    }
    // Spans and log records of the last requests, bounded.
    telemetry.shutdown(Duration::from_secs(2)).await;
    Ok(())
}

/// The controller's namespace: `POD_NAMESPACE`, else `default`.
fn pod_namespace() -> String {
    std::env::var("POD_NAMESPACE")
        .ok()
        .filter(|ns| !ns.is_empty())
        .unwrap_or_else(|| "default".to_string())
}

/// This replica's name: `POD_NAME`, else host name and process id.
fn identity() -> String {
    std::env::var("POD_NAME").unwrap_or_else(|_| {
        let host = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
        format!("{}-{}", host.trim(), std::process::id())
    })
}

/// A client from in-cluster config or kubeconfig whose user agent names
/// this replica, so API server logs (and tests) tell replicas apart.
async fn kube_client(identity: &str) -> anyhow::Result<kube::Client> {
    let mut config = kube::Config::infer().await.context(
        "no Kubernetes configuration found (in-cluster or kubeconfig); \
         use --manifests DIR to run without Kubernetes",
    )?;
    let agent = format!(
        "tollgate-controller/{} ({identity})",
        env!("CARGO_PKG_VERSION")
    );
    if let Ok(value) = http::HeaderValue::from_str(&agent) {
        config.headers.push((http::header::USER_AGENT, value));
    }
    let kubeconfig = kube::config::Kubeconfig::read().ok();
    if follow_no_proxy(&mut config, &OtelEnv::from_process(), kubeconfig.as_ref()) {
        info!(server = %config.cluster_url, "API server reached directly (NO_PROXY or this machine), not through HTTPS_PROXY");
    }
    Ok(kube::Client::try_from(config)?)
}

/// The Kubernetes tasks that must stop in order at shutdown.
struct KubernetesTasks {
    writer: tokio::task::JoinHandle<()>,
    operator: Option<tokio::task::JoinHandle<()>>,
    issuer: tokio::task::JoinHandle<()>,
    gate: tokio::task::JoinHandle<()>,
    election: tokio::task::JoinHandle<()>,
}

impl KubernetesTasks {
    /// Stops the leader's work, then lets leader election release the
    /// Lease (it does once nothing watches leadership any more) so another
    /// replica takes over at once instead of after expiry.
    async fn stop(self) {
        for task in [
            Some(self.writer),
            self.operator,
            Some(self.issuer),
            Some(self.gate),
        ]
        .into_iter()
        .flatten()
        {
            task.abort();
            let _ = task.await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(3), self.election).await;
    }
}

/// What only the leader does besides writing status.
struct LeaderWork {
    /// Provisions each Gateway's data plane (when provisioning).
    operator: Option<Operator>,
    /// Issues each Gateway's data plane its client certificate.
    issuer: Issuer,
    /// Serves data planes (snapshots, reports) only while leading.
    gate: ServingGate,
    /// Where the status writer's rounds report their spans.
    traces: tollgate_telemetry::TracesPipeline,
}

/// Starts the Kubernetes provider, leader election, the status writer and
/// the leader's other work.
fn start_kubernetes(
    args: &Args,
    client: kube::Client,
    identity: &str,
    tx: tollgate_controller::provider::ResourcesTx,
    statuses: tokio::sync::watch::Receiver<controller::Desired>,
    metrics: Metrics,
    leader_work: LeaderWork,
) -> KubernetesTasks {
    let LeaderWork {
        operator,
        issuer,
        gate,
        traces,
    } = leader_work;
    info!(%identity, "watching the Kubernetes API server");
    let provider = KubeProvider::new(client.clone(), KubeProviderConfig::default())
        .with_metrics(metrics.clone());
    tokio::spawn(provider.run(tx));
    let mut lease = LeaderConfig::new(&args.lease_namespace, &args.lease_name, identity);
    lease.lease_duration = Duration::from_secs(args.lease_duration_seconds);
    lease.renew_every = Duration::from_secs(args.lease_renew_seconds);
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(false);
    let election = tokio::spawn(run_leader_election(client.clone(), lease, leader_tx));
    // Client certificates are issued by the leader only.
    let issuer = tokio::spawn(issuer.run(leader_rx.clone()));
    let gate = tokio::spawn(gate.follow(leader_rx.clone()));
    let writer = StatusWriter::new(client, args.controller_name.clone())
        .with_metrics(metrics)
        .with_traces(traces);
    let operator = operator.map(|o| tokio::spawn(o.run(leader_rx.clone())));
    KubernetesTasks {
        writer: tokio::spawn(writer.run(statuses, leader_rx)),
        operator,
        issuer,
        gate,
        election,
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
