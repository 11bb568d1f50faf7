//! The echo backend: an HTTP server that describes each request back as JSON.
//!
//! Tests put it behind the data plane and read from the answer what the data
//! plane forwarded: path, host, method, protocol and headers, plus which
//! backend answered (`service`, `pod`). Its answers follow the Gateway API
//! conformance echo server (`echo-basic`), so the same assertions work
//! against either. One port serves HTTP/1.1 and HTTP/2 with prior knowledge
//! (h2c), and WebSockets. Tests of retries make it fail on purpose with
//! `x-echo-fail` (see `failures.rs`).
//!
//! WebSockets: a handshake on any path (but `/status/NNN`, which
//! refuses it with that status) is accepted, the first message is the
//! handshake request's echo answer as JSON text, then every text and binary
//! message is sent back; the text `close` makes the server close.

mod duration;
mod failures;
mod handler;
mod headers;
mod websocket;

pub use duration::{DurationError, parse_go_duration};
pub use failures::{FAIL_HEADER, FailPlan, parse_fail};
pub use handler::handle;
pub use headers::{canonical_name, echoed_headers, requested_response_headers};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Where the echo backend runs; copied into every answer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EchoContext {
    /// Namespace name (env `NAMESPACE`).
    pub namespace: String,
    /// Ingress or route name (env `INGRESS_NAME`).
    pub ingress: String,
    /// Service name (env `SERVICE_NAME`); tests use it to tell backends apart.
    pub service: String,
    /// Pod name (env `POD_NAME`).
    pub pod: String,
    /// The port the server listens on, as text.
    pub http_port: String,
}

impl EchoContext {
    /// Reads `NAMESPACE`, `INGRESS_NAME`, `SERVICE_NAME` and `POD_NAME`
    /// (empty when unset) and records `http_port`.
    pub fn from_env(http_port: u16) -> Self {
        let var = |name: &str| std::env::var(name).unwrap_or_default();
        EchoContext {
            namespace: var("NAMESPACE"),
            ingress: var("INGRESS_NAME"),
            service: var("SERVICE_NAME"),
            pod: var("POD_NAME"),
            http_port: http_port.to_string(),
        }
    }
}

/// The JSON body of an echo answer.
///
/// Field names match the conformance echo server; `httpPort` is Tollgate's
/// addition. Deserialising tolerates missing context fields so answers of the
/// conformance server itself parse too.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EchoResponse {
    /// The raw request target, query included (`/foo?bar=1`).
    pub path: String,
    /// The host as received, port included (`:authority` over HTTP/2).
    pub host: String,
    /// The request method.
    pub method: String,
    /// `HTTP/1.0`, `HTTP/1.1` or `HTTP/2.0`.
    pub proto: String,
    /// Request headers by canonical name (`X-Forwarded-For`), one value per
    /// header line; `Host` is not included.
    #[serde(default)]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Namespace from env `NAMESPACE`.
    #[serde(default)]
    pub namespace: String,
    /// Ingress name from env `INGRESS_NAME`.
    #[serde(default)]
    pub ingress: String,
    /// Service name from env `SERVICE_NAME`.
    #[serde(default)]
    pub service: String,
    /// Pod name from env `POD_NAME`.
    #[serde(default)]
    pub pod: String,
    /// The port the echo server listens on.
    #[serde(default)]
    pub http_port: String,
}

impl EchoResponse {
    /// The first value of header `name` (any case), if the request had it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&canonical_name(name))
            .and_then(|values| values.first())
            .map(String::as_str)
    }
}

/// Serves echo answers on `listener` until the task is dropped.
///
/// Each connection is served on its own task by an auto-detecting builder:
/// HTTP/1.1, or HTTP/2 when the client opens with the HTTP/2 preface.
///
/// # Errors
///
/// Only when accepting connections fails for good; per-connection errors
/// are ignored (a client hanging up is normal).
pub async fn serve(listener: TcpListener, ctx: EchoContext) -> std::io::Result<()> {
    let ctx = Arc::new(ctx);
    loop {
        let (stream, client) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) if is_transient(&err) => continue,
            Err(err) if is_fd_exhaustion(&err) => {
                // Out of file descriptors: give in-flight connections time to close.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            Err(err) => return Err(err),
        };
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let ctx = Arc::clone(&ctx);
                async move { handle(req, client, &ctx).await }
            });
            let builder = auto::Builder::new(TokioExecutor::new());
            // A connection error only ends that connection.
            let _ = builder
                .serve_connection_with_upgrades(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Accept errors that concern one connection, not the listener.
fn is_transient(err: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted};
    matches!(
        err.kind(),
        ConnectionAborted | ConnectionReset | Interrupted
    )
}

/// EMFILE or ENFILE: the process or the system ran out of descriptors.
fn is_fd_exhaustion(err: &std::io::Error) -> bool {
    err.raw_os_error()
        .is_some_and(|code| code == 24 || code == 23)
}
