//! `tollgate-bench`: runs the side-by-side benchmark (`run`), or serves as
//! the benchmark backend (`backend`) when the harness starts itself as one.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use tollgate_bench::peers::Env;
use tollgate_bench::plan::Plan;
use tollgate_bench::{backend, harness};

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
    },
    /// Serve as the benchmark backend.
    Backend {
        /// Port on 127.0.0.1.
        #[arg(long)]
        port: u16,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Cmd::Backend { port } => Ok(backend::run(SocketAddr::from(([127, 0, 0, 1], port)))?),
        Cmd::Run {
            smoke,
            out,
            bin_dir,
            work,
            no_pin,
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
            let plan = if smoke { Plan::smoke() } else { Plan::full() };
            let results = harness::run(env, plan, &out).context("benchmark run")?;
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
