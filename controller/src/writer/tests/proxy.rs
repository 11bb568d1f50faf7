//! A proxy in front of the in-memory API server that refuses chosen status
//! writes: the server itself answers every write it can, and a test needs
//! the 409s and 500s a busy or failing real server would send.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// How the proxy answers status writes to one object.
#[derive(Clone, Copy, Debug)]
pub(super) enum Refuse {
    /// Every write gets this code.
    Always(u16),
    /// The first `n` writes get 409 Conflict; later ones go through.
    FirstConflicts(usize),
}

type Body = BoxBody<Bytes, hyper::Error>;

/// A running proxy; it stops with the test's runtime.
pub(super) struct Proxy {
    pub(super) addr: SocketAddr,
    /// Status writes received per object name, refused or not.
    attempts: Arc<Mutex<BTreeMap<String, usize>>>,
}

impl Proxy {
    /// Forwards to `upstream`, refusing status writes to the objects named
    /// in `rules` as they say.
    pub(super) async fn start(
        upstream: SocketAddr,
        rules: BTreeMap<&'static str, Refuse>,
    ) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let attempts = Arc::new(Mutex::new(BTreeMap::new()));
        let state = Arc::new((rules, Arc::clone(&attempts)));
        let client: Client<HttpConnector, Incoming> =
            Client::builder(TokioExecutor::new()).build_http();
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let (state, client) = (Arc::clone(&state), client.clone());
                let service = service_fn(move |req| {
                    let (state, client) = (Arc::clone(&state), client.clone());
                    async move {
                        let (rules, attempts) = &*state;
                        answer(req, upstream, rules, attempts, &client).await
                    }
                });
                tokio::spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
            }
        });
        Proxy { addr, attempts }
    }

    /// How many status writes to `name` the proxy received.
    pub(super) fn attempts(&self, name: &str) -> usize {
        let attempts = self.attempts.lock().unwrap();
        attempts.get(name).copied().unwrap_or_default()
    }
}

async fn answer(
    mut req: Request<Incoming>,
    upstream: SocketAddr,
    rules: &BTreeMap<&'static str, Refuse>,
    attempts: &Mutex<BTreeMap<String, usize>>,
    client: &Client<HttpConnector, Incoming>,
) -> Result<Response<Body>, hyper::Error> {
    let path = req.uri().path().to_string();
    let write = matches!(*req.method(), Method::PUT | Method::PATCH);
    if write
        && let Some(name) = path
            .strip_suffix("/status")
            .and_then(|p| p.rsplit('/').next())
    {
        let n = {
            let mut attempts = attempts.lock().unwrap();
            let n = attempts.entry(name.to_string()).or_default();
            *n += 1;
            *n
        };
        let refused = match rules.get(name) {
            Some(Refuse::Always(code)) => Some(*code),
            Some(Refuse::FirstConflicts(first)) if n <= *first => Some(409),
            _ => None,
        };
        if let Some(code) = refused {
            return Ok(status(code, name));
        }
    }
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    *req.uri_mut() = format!("http://{upstream}{target}").parse().unwrap();
    match client.request(req).await {
        Ok(response) => Ok(response.map(BodyExt::boxed)),
        Err(e) => panic!("the API server did not answer: {e}"),
    }
}

/// A Kubernetes `Status` failure with `code`, as the API server sends.
fn status(code: u16, name: &str) -> Response<Body> {
    let reason = if code == 409 {
        "Conflict"
    } else {
        "InternalError"
    };
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "reason": reason, "code": code,
        "message": format!("refused by the test proxy: {name}")});
    let body = Full::new(Bytes::from(body.to_string()))
        .map_err(|never| match never {})
        .boxed();
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(body)
        .unwrap()
}
