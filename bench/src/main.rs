//! `tollgate-bench`: runs the side-by-side benchmark (`run`), or serves as
//! the benchmark backend (`backend`) when the harness starts itself as one.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tollgate_bench::peers::Env;
use tollgate_bench::plan::Plan;
use tollgate_bench::scenarios::routes::Routes;
use tollgate_bench::scenarios::{self, Bench};
use tollgate_bench::{backend, endpoints, grpcload, harness, peers};

/// Tollgate side by side with nginx and HAProxy.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run every scenario and write report.md, results.json and charts.
    Run {
        /// Every scenario once, briefly (for `make test`); figures are meaningless.
        #[arg(long)]
        smoke: bool,
        /// The controller's churn soak (scenario 12) runs an hour instead
        /// of two minutes.
        #[arg(long, conflicts_with = "smoke")]
        long: bool,
        /// Output folder; default `bench/results/<today>`.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Folder of the Tollgate binaries; default this binary's folder.
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Folder for configs and logs; default `<target>/tmp/tollgate-bench`.
        #[arg(long)]
        work: Option<PathBuf>,
        /// Do not pin processes to CPUs with taskset.
        #[arg(long)]
        no_pin: bool,
        /// Run only these scenarios (comma-separated): throughput, latency,
        /// scaling, memory, routes, updates, telemetry, tls, grpc, auth,
        /// ratelimit, ctl-memory.
        #[arg(long, value_delimiter = ',', value_parser = clap::builder::PossibleValuesParser::new(harness::SCENARIOS))]
        only: Vec<String>,
    },
    /// Time EndpointSlice changes to traffic in Kubernetes mode with many
    /// routes loaded (in-memory API server, controller with its data plane).
    Endpoints {
        /// HTTPRoutes to load.
        #[arg(long, default_value_t = 10_000)]
        routes: usize,
        /// EndpointSlice changes to time.
        #[arg(long, default_value_t = 20)]
        flips: usize,
        /// Wait this long after the last route serves before the first
        /// change, to time it against a settled controller (0: at once).
        #[arg(long, default_value_t = 0)]
        settle_ms: u64,
        /// Do not pin processes to CPUs with taskset.
        #[arg(long)]
        no_pin: bool,
    },
    /// Time manifest changes to traffic in standalone mode with many routes
    /// loaded (scenario 5's change timings alone).
    Changes {
        /// HTTPRoutes to load.
        #[arg(long, default_value_t = 10_000)]
        routes: usize,
        /// New HTTPRoute files to time.
        #[arg(long, default_value_t = 20)]
        changes: usize,
        /// Do not pin processes to CPUs with taskset.
        #[arg(long)]
        no_pin: bool,
    },
    /// Serve as the benchmark backend.
    Backend {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
    },
    /// Serve as the gRPC benchmark backend (h2c tonic echo).
    GrpcBackend {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Backend { port } => Ok(backend::run(SocketAddr::from(([127, 0, 0, 1], port)))?),
        Cmd::GrpcBackend { port } => Ok(grpcload::serve_backend(SocketAddr::from((
            [127, 0, 0, 1],
            port,
        )))?),
        Cmd::Endpoints {
            routes,
            flips,
            settle_ms,
            no_pin,
        } => endpoint_churn(
            routes.max(1),
            flips,
            Duration::from_millis(settle_ms),
            !no_pin,
        ),
        Cmd::Changes {
            routes,
            changes,
            no_pin,
        } => manifest_changes(routes.max(1), changes, !no_pin),
        Cmd::Run {
            smoke,
            long,
            out,
            bin_dir,
            work,
            no_pin,
            only,
        } => {
            let exe = std::env::current_exe().context("locating this binary")?;
            let bins = bin_dir
                .or_else(|| exe.parent().map(PathBuf::from))
                .context("no folder for the Tollgate binaries")?;
            let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            let default_work = bins
                .parent()
                .unwrap_or(&bins)
                .join("tmp")
                .join("tollgate-bench");
            let today = jiff::Zoned::now().date().to_string();
            let out = out.unwrap_or_else(|| crate_dir.join("results").join(today));
            let env = Env {
                work: work.unwrap_or(default_work),
                bins,
                pin: !no_pin,
            };
            let plan = match (smoke, long) {
                (true, _) => Plan::smoke(),
                (false, true) => Plan::long(),
                (false, false) => Plan::full(),
            };
            let results = harness::run(env, plan, &out, &only).context("benchmark run")?;
            let failed = results.goals.iter().filter(|g| !g.pass).count();
            println!(
                "{} goals, {failed} missed; report in {}",
                results.goals.len(),
                out.display()
            );
            Ok(())
        }
    }
}

/// The processes and folders of a one-off measurement: binaries next to
/// this one, work under `<target>/tmp/tollgate-bench`.
fn local_env(pin: bool) -> anyhow::Result<Env> {
    let exe = std::env::current_exe().context("locating this binary")?;
    let bins = exe
        .parent()
        .map(PathBuf::from)
        .context("no binary folder")?;
    let env = Env {
        work: bins
            .parent()
            .unwrap_or(&bins)
            .join("tmp")
            .join("tollgate-bench"),
        bins,
        pin,
    };
    std::fs::create_dir_all(&env.work)?;
    Ok(env)
}

/// `p50 .. ms, p99 .. ms, max .. ms` of `ms` (nearest rank).
fn percentiles(mut ms: Vec<f64>) -> String {
    if ms.is_empty() {
        return "no samples".to_string();
    }
    ms.sort_by(f64::total_cmp);
    let pick = |p: f64| ms[((p * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
    format!(
        "p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        pick(0.5),
        pick(0.99),
        ms.last().copied().unwrap_or_default()
    )
}

/// Runs the endpoint-churn measurement and prints its percentiles.
fn endpoint_churn(routes: usize, flips: usize, settle: Duration, pin: bool) -> anyhow::Result<()> {
    let env = local_env(pin)?;
    let (_backend, backend) = peers::start_backend(&env)?;
    let ms = endpoints::run(&env, backend, routes, flips, settle)?;
    println!(
        "endpoint change to traffic with {routes} routes, {} changes: {}",
        ms.len(),
        percentiles(ms.clone())
    );
    // The first change is made as soon as the last route serves, while
    // the controller is still writing every route's first status and the
    // watches are taking those writes back; the rest see a settled one.
    if let Some((first, rest)) = ms.split_first() {
        println!(
            "  first change {first:.0} ms; the {} after it: {}",
            rest.len(),
            percentiles(rest.to_vec())
        );
    }
    Ok(())
}

/// Runs scenario 5's manifest-change timings alone and prints their percentiles.
fn manifest_changes(routes: usize, changes: usize, pin: bool) -> anyhow::Result<()> {
    let env = local_env(pin)?;
    let (_backend, backend) = peers::start_backend(&env)?;
    let plan = Plan {
        route_changes: changes,
        ..Plan::full()
    };
    let bench = Bench::new(env, plan, backend);
    let mut out = Routes::default();
    scenarios::routes::changes(&bench, routes, &mut out)?;
    println!(
        "manifest change to traffic with {routes} routes, {} changes: {}",
        out.change_ms.len(),
        percentiles(out.change_ms.clone())
    );
    // The first change is written as soon as the last route serves, while
    // the controller still records every route's first status.
    if let Some((first, rest)) = out.change_ms.split_first() {
        println!(
            "  first change {first:.0} ms; the {} after it: {}",
            rest.len(),
            percentiles(rest.to_vec())
        );
    }
    Ok(())
}
