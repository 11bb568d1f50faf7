//! `tollgate-test-apiserver`: the in-memory Kubernetes API server of the
//! e2e crate as a process, for running the controller or kubectl against it
//! by hand or from scripts.
//!
//! `tollgate-test-apiserver --bind 127.0.0.1:6443 --kubeconfig /tmp/kc`
//! serves until SIGINT/SIGTERM and writes a kubeconfig pointing at itself.

use anyhow::{Context, bail};
use std::net::SocketAddr;
use std::path::PathBuf;
use tollgate_e2e::apiserver::ApiServer;

/// Parsed command line.
struct Args {
    bind: SocketAddr,
    kubeconfig: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        kubeconfig: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--bind" => {
                args.bind = it
                    .next()
                    .context("--bind needs ADDR")?
                    .parse()
                    .context("--bind ADDR")?
            }
            "--kubeconfig" => {
                args.kubeconfig = Some(it.next().context("--kubeconfig needs PATH")?.into())
            }
            "-h" | "--help" => {
                println!("usage: tollgate-test-apiserver [--bind ADDR] [--kubeconfig PATH]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; see --help"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let server = ApiServer::start_on(args.bind)
        .await
        .context("starting the API server")?;
    if let Some(path) = &args.kubeconfig {
        std::fs::write(path, server.kubeconfig_yaml())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    println!("serving on {}", server.url());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
