//! Test harness for the proxy tests: a gateway serving `proxy::handle` on
//! 127.0.0.1, echo backends that answer with the request as JSON, and small
//! snapshot builders.
#![allow(
    dead_code,
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

pub mod stub;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tollgate_dataplane::proxy::{ConnInfo, handle};
use tollgate_dataplane::runtime::Runtime;
use tollgate_dataplane::upstream::Clients;
use tollgate_snapshot::*;

/// A gateway serving one snapshot on 127.0.0.1.
pub struct Gateway {
    pub addr: SocketAddr,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// A response read completely.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// The echo backend's JSON view of the request it received.
    pub fn echo(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not an echo ({e}): {} {:?}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Gateway {
    /// Binds a port, builds the snapshot `make(port)` returns and serves it.
    pub async fn start(make: impl FnOnce(u16) -> Snapshot) -> Gateway {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let runtime = Arc::new(Runtime::build(make(addr.port()), &Clients::new()).unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    return;
                };
                let conn = Arc::new(ConnInfo::new(peer, addr, "http"));
                let runtime = runtime.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (runtime, conn) = (runtime.clone(), conn.clone());
                        async move { Ok::<_, Infallible>(handle(runtime, conn, req).await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let client = Client::builder(TokioExecutor::new()).build_http();
        Gateway { addr, client }
    }

    /// Sends `req` (its URI a path; the gateway's address is filled in).
    pub async fn send(&self, mut req: Request<Full<Bytes>>) -> Answer {
        let path = req
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        *req.uri_mut() = format!("http://{}{path}", self.addr).parse().unwrap();
        let response = tokio::time::timeout(Duration::from_secs(10), self.client.request(req))
            .await
            .expect("gateway answered in time")
            .unwrap();
        read(response).await
    }

    /// `GET path` with `Host: host`.
    pub async fn get(&self, host: &str, path: &str) -> Answer {
        self.send(get(host, path)).await
    }

    /// Writes `raw` on a new connection and reads until the gateway closes it.
    pub async fn raw(&self, raw: &str) -> String {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(raw.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out));
        read.await.expect("gateway closed in time").unwrap();
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// A `GET` request builder with a Host header.
pub fn get(host: &str, path: &str) -> Request<Full<Bytes>> {
    Request::get(path)
        .header("host", host)
        .body(Full::default())
        .unwrap()
}

/// A `GET` request with a Host header and `headers`.
pub fn get_with(host: &str, path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = get(host, path);
    for (name, value) in headers {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    req
}

async fn read<B>(response: Response<B>) -> Answer
where
    B: http_body::Body,
    B::Error: std::fmt::Debug,
{
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// An in-test backend that answers every request with it as JSON:
/// `{backend, method, path, version, headers, body, connection}`.
///
/// Request headers steer it: `x-echo-delay-ms` waits before answering,
/// `x-echo-hop` makes it answer with hop-by-hop headers, `x-echo-cost: N`
/// answers with `x-cost: N` (a cost the response names).
pub struct Echo {
    pub addr: SocketAddr,
    pub name: String,
    connections: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Value>>>,
}

impl Echo {
    /// Starts an echo backend answering at once (HTTP/1.1 and h2c).
    pub async fn start(name: &str) -> Echo {
        Echo::start_delayed(name, Duration::ZERO).await
    }

    /// Starts an echo backend that records each request on arrival and
    /// answers after `delay`.
    pub async fn start_delayed(name: &str, delay: Duration) -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo = Echo {
            addr: listener.local_addr().unwrap(),
            name: name.to_string(),
            connections: Arc::default(),
            received: Arc::default(),
        };
        let (name, connections, received) = (
            echo.name.clone(),
            echo.connections.clone(),
            echo.received.clone(),
        );
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let connection = connections.fetch_add(1, Ordering::SeqCst) + 1;
                let (name, received) = (name.clone(), received.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let (name, received) = (name.clone(), received.clone());
                        async move {
                            Ok::<_, Infallible>(
                                echo_answer(&name, connection, delay, received, req).await,
                            )
                        }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        echo
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Requests received so far (recorded on arrival, body included).
    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to 10 s) until `n` requests have arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..1000 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "{} received {} requests, expected {n}",
            self.name,
            self.received().len()
        );
    }

    /// This backend's single endpoint.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint {
            address: self.addr.ip().to_string(),
            port: self.addr.port(),
        }
    }
}

async fn echo_answer(
    name: &str,
    connection: usize,
    delay: Duration,
    received: Arc<Mutex<Vec<Value>>>,
    req: Request<hyper::body::Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let mut headers = serde_json::Map::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap_or("?"))
            .collect();
        headers.insert(name.to_string(), json!(values.join(", ")));
    }
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let seen = json!({
        "backend": name,
        "method": parts.method.as_str(),
        "path": parts.uri.path_and_query().map_or("", |p| p.as_str()),
        "version": format!("{:?}", parts.version),
        "headers": headers,
        "body": String::from_utf8_lossy(&body),
        "connection": connection,
    });
    received.lock().unwrap().push(seen.clone());
    let asked = parts
        .headers
        .get("x-echo-delay-ms")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .map(Duration::from_millis);
    tokio::time::sleep(asked.unwrap_or(delay)).await;
    let mut response = Response::new(Full::new(Bytes::from(seen.to_string())));
    response
        .headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    response
        .headers_mut()
        .insert("x-backend", name.parse().unwrap());
    if let Some(cost) = parts.headers.get("x-echo-cost") {
        response.headers_mut().insert("x-cost", cost.clone());
    }
    if parts.headers.contains_key("x-echo-hop") {
        let h = response.headers_mut();
        h.insert("connection", "x-hop-secret".parse().unwrap());
        h.insert("x-hop-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("x-end-to-end", "1".parse().unwrap());
    }
    response
}

/// A port nothing listens on (bound, then closed).
pub async fn refused_endpoint() -> Endpoint {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    Endpoint {
        address: "127.0.0.1".into(),
        port,
    }
}

// ---- snapshot builders ----

/// A snapshot with one socket on 127.0.0.1:`bind_port` (manifest port
/// `port`), one listener for any host, and the given virtual hosts.
pub fn snapshot(
    bind_port: u16,
    port: u16,
    virtual_hosts: Vec<VirtualHost>,
    routes: Vec<Route>,
    backends: Vec<Backend>,
) -> Snapshot {
    Snapshot {
        gateway: "default/gw".into(),
        sockets: vec![Socket {
            address: "127.0.0.1".into(),
            bind_port,
            port,
            listeners: vec![Listener {
                tls: None,
                tls_routes: None,
                name: "gateway/default/gw/listener/http".into(),
                hostname: HostMatch::Any,
                virtual_hosts,
            }],
            proxy_protocol: false,
        }],
        routes,
        backends,
        ..Snapshot::default()
    }
}

/// A virtual host for `hostname` (`*` for any).
pub fn vhost(hostname: &str, matches: Vec<RouteMatch>) -> VirtualHost {
    VirtualHost {
        hostname: HostMatch::parse(hostname),
        matches,
    }
}

/// A `PathPrefix` match sending to route `route`.
pub fn prefix(path: &str, route: usize) -> RouteMatch {
    RouteMatch {
        route,
        path: PathMatch::Prefix(path.into()),
        method: None,
        headers: vec![],
        query: vec![],
    }
}

/// An `Exact` path match sending to route `route`.
pub fn exact(path: &str, route: usize) -> RouteMatch {
    RouteMatch {
        route,
        path: PathMatch::Exact(path.into()),
        method: None,
        headers: vec![],
        query: vec![],
    }
}

/// A rule named `httproute/default/<name>/rule/0`.
pub fn route(name: &str, filters: Vec<Filter>, backends: Vec<BackendRef>) -> Route {
    Route {
        name: format!("httproute/default/{name}/rule/0"),
        rule_name: None,
        filters,
        backends,
        timeouts: Timeouts::default(),
        retry: None,
        sampling_per_million: None,
        auth: None,
        rate_limit: None,
        grpc: false,
    }
}

/// A reference to backend `index` with `weight`.
pub fn to(index: usize, weight: u32) -> BackendRef {
    BackendRef {
        backend: Some(index),
        weight,
        filters: vec![],
    }
}

/// An HTTP/1.1 backend over `endpoints`.
pub fn backend(name: &str, endpoints: Vec<Endpoint>) -> Backend {
    Backend {
        name: format!("service/default/{name}/port/80"),
        protocol: BackendProtocol::Http1,
        tls: None,
        endpoints,
    }
}

/// A header pair.
pub fn header(name: &str, value: &str) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

/// The simplest gateway: every request to `echo`.
pub async fn gateway_to(echo: &Echo) -> Gateway {
    let endpoint = echo.endpoint();
    Gateway::start(|port| {
        snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("all", vec![], vec![to(0, 1)])],
            vec![backend("echo", vec![endpoint])],
        )
    })
    .await
}

/// A gateway whose only route (every path, to `echo`) is protected by
/// `auth`.
pub async fn gateway_with_auth(echo: &Echo, auth: AuthConfig) -> Gateway {
    let endpoint = echo.endpoint();
    Gateway::start(|port| {
        let mut protected = route("all", vec![], vec![to(0, 1)]);
        protected.auth = Some(0);
        Snapshot {
            auth: vec![auth],
            ..snapshot(
                port,
                80,
                vec![vhost("*", vec![prefix("/", 0)])],
                vec![protected],
                vec![backend("echo", vec![endpoint])],
            )
        }
    })
    .await
}

/// A call target at `uri` with `timeout_ms`.
pub fn call_target(uri: &str, timeout_ms: u64) -> CallTarget {
    CallTarget {
        uri: uri.into(),
        backend: None,
        ca_pem: None,
        timeout_ms,
    }
}
