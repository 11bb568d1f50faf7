//! `tollgate-echo`: the echo backend used by tests, benchmarks and `make run`.
//!
//! Listens on `0.0.0.0:$HTTP_PORT` (default 3000), or on `--bind ADDR:PORT`,
//! and answers every request with a JSON description of it (see
//! `tollgate_e2e::echo`). HTTP/1.1 and h2c (prior knowledge) share the port.

use anyhow::Context as _;
use std::io::Write as _;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tollgate_e2e::echo::{self, EchoContext};

const USAGE: &str = "usage: tollgate-echo [--bind ADDR:PORT]

Answers every HTTP request with a JSON description of it.
Without --bind it listens on 0.0.0.0:$HTTP_PORT (default 3000).
Env: NAMESPACE, INGRESS_NAME, SERVICE_NAME, POD_NAME are echoed back.";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Some(bind) = bind_address()? else {
        // Best effort: `--help | head` may close stdout early.
        let _ = writeln!(std::io::stdout(), "{USAGE}");
        return Ok(());
    };
    let listener = TcpListener::bind(bind)
        .await
        .with_context(|| format!("binding {bind}"))?;
    let port = listener.local_addr()?.port();
    println!("Starting server, listening on port {port} (http)");
    echo::serve(listener, EchoContext::from_env(port))
        .await
        .context("accepting connections")
}

/// The address to listen on, or `None` when help was asked for.
fn bind_address() -> anyhow::Result<Option<SocketAddr>> {
    let mut args = std::env::args().skip(1);
    let mut bind = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bind" => bind = Some(args.next().context("--bind needs ADDR:PORT")?),
            other => match other.strip_prefix("--bind=") {
                Some(value) => bind = Some(value.to_string()),
                None => anyhow::bail!("unknown argument {other:?}\n\n{USAGE}"),
            },
        }
    }
    let bind = match bind {
        Some(bind) => bind,
        None => {
            let port = std::env::var("HTTP_PORT").unwrap_or_else(|_| "3000".to_string());
            format!("0.0.0.0:{port}")
        }
    };
    let addr = bind
        .parse()
        .with_context(|| format!("invalid bind address {bind:?} (want ADDR:PORT)"))?;
    Ok(Some(addr))
}
