//! Shared helpers for the server tests: an echo backend, hand-built
//! snapshots, a started data plane and small clients.

#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod websocket;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_dataplane::{Dataplane, DataplaneOptions};
use tollgate_snapshot::*;

pub const GATEWAY: &str = "default/gw";

/// Starts a backend that answers every request with JSON describing it:
/// `{name, method, path, headers, body}`. A `x-delay-ms` header delays the answer.
pub async fn echo(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(move |req| answer(name, req));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(name: &str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let delay = req
        .headers()
        .get("x-delay-ms")
        .and_then(|v| v.to_str().ok()?.parse().ok());
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if let Some(ms) = delay {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let headers: serde_json::Map<String, Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), json!(String::from_utf8_lossy(v.as_bytes()))))
        .collect();
    let out = json!({
        "name": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("/", |p| p.as_str()),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
    });
    Ok(Response::new(Full::new(Bytes::from(out.to_string()))))
}

/// Like [`echo`], also counting the requests that reached it.
pub async fn counting_echo() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    seen.fetch_add(1, Ordering::SeqCst);
                    answer("counted", req)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, count)
}

/// A port that was free a moment ago (from the e2e harness, which keeps
/// concurrently running tests from being handed the same port).
pub fn free_port() -> u16 {
    tollgate_e2e::free_port().unwrap()
}

/// A snapshot with one socket on `port` whose `PathPrefix` routes send to
/// the given backends, in order.
pub fn snapshot(version: u64, port: u16, routes: &[(&str, SocketAddr)]) -> Snapshot {
    snapshot_on(version, &[port], routes)
}

/// Like [`snapshot`], with the same routes on several sockets.
pub fn snapshot_on(version: u64, ports: &[u16], routes: &[(&str, SocketAddr)]) -> Snapshot {
    let matches: Vec<RouteMatch> = (0..routes.len())
        .map(|i| RouteMatch {
            route: i,
            path: PathMatch::Prefix(routes[i].0.to_string()),
            method: None,
            headers: vec![],
            query: vec![],
        })
        .collect();
    let sockets = ports
        .iter()
        .map(|&port| Socket {
            address: "127.0.0.1".into(),
            bind_port: port,
            port: 80,
            listeners: vec![Listener {
                tls: None,
                tls_routes: None,
                name: "gateway/default/gw/listener/http".into(),
                hostname: HostMatch::Any,
                virtual_hosts: vec![VirtualHost {
                    hostname: HostMatch::Any,
                    matches: matches.clone(),
                }],
            }],
            proxy_protocol: false,
        })
        .collect();
    Snapshot {
        version,
        gateway: GATEWAY.into(),
        sockets,
        routes: (0..routes.len())
            .map(|i| Route {
                name: format!("httproute/default/r/rule/{i}"),
                rule_name: None,
                filters: vec![],
                backends: vec![BackendRef {
                    backend: Some(i),
                    weight: 1,
                    filters: vec![],
                }],
                timeouts: Timeouts::default(),
                retry: None,
                sampling_per_million: None,
                auth: None,
                rate_limit: None,
                grpc: false,
            })
            .collect(),
        backends: routes
            .iter()
            .enumerate()
            .map(|(i, (_, addr))| Backend {
                name: format!("service/default/b{i}/port/80"),
                protocol: BackendProtocol::Http1,
                tls: None,
                endpoints: vec![Endpoint {
                    address: addr.ip().to_string(),
                    port: addr.port(),
                }],
            })
            .collect(),
        ..Snapshot::default()
    }
}

pub fn dataplane() -> Dataplane {
    Dataplane::new(DataplaneOptions {
        gateway: GATEWAY.into(),
        ..Default::default()
    })
}

/// A data plane serving one route `/` to a fresh echo backend on a free port.
pub async fn serving(settings: Settings) -> (Dataplane, u16) {
    let backend = echo("a").await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.settings = settings;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    (dp, port)
}

/// An HTTP/1.1 client.
pub fn h1_client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// An HTTP/2 prior-knowledge client.
pub fn h2_client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build_http()
}

/// GETs `url` and returns the status and the body parsed as JSON (or `null`).
pub async fn get(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    url: &str,
) -> Result<(u16, Value), String> {
    let resp = client
        .get(url.parse().unwrap())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// Sends raw bytes and reads until the server closes (or 5 s pass).
/// Returns what was read and whether the server closed the connection.
pub async fn raw(port: u16, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(request).await.unwrap();
    read_until_close(&mut stream, Duration::from_secs(5)).await
}

/// Reads until EOF or `limit`; returns the text and whether EOF (or a reset) was seen.
pub async fn read_until_close(stream: &mut TcpStream, limit: Duration) -> (String, bool) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return (String::from_utf8_lossy(&out).into(), true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => return (String::from_utf8_lossy(&out).into(), false),
        }
    }
}

/// Runs `curl` with `args` and returns what it printed.
///
/// # Panics
///
/// When curl is not installed (a skipped test would pass silently) or fails.
pub async fn curl(args: &[&str]) -> String {
    let output = match tokio::process::Command::new("curl")
        .args(args)
        .output()
        .await
    {
        Ok(output) => output,
        Err(error) => panic!(
            "these tests need curl, which could not be run ({error}): install it \
             with `make deps` (or `scripts/install-deps.sh test`, which `make test` runs)"
        ),
    };
    assert!(
        output.status.success(),
        "curl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
