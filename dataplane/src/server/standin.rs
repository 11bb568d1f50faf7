//! Temporary stand-in for the request pipeline (`runtime`, `proxy`,
//! `upstream::Clients`) until it lands; same names and signatures, so the
//! server switches by changing one `use`. Forwards to the first endpoint of
//! the first backend of the routed rule over HTTP/1.1.

use crate::router::{RequestView, SocketRouter};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tollgate_snapshot::Snapshot;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

#[derive(Clone, Default, Debug)]
pub(crate) struct Clients;

#[derive(Debug)]
pub(crate) struct ConnInfo {
    pub(crate) peer: SocketAddr,
    pub(crate) local: SocketAddr,
    pub(crate) scheme: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error(transparent)]
    Invalid(#[from] tollgate_snapshot::ValidationError),
    #[error(transparent)]
    Router(#[from] crate::router::RouterError),
    #[error("bad socket address {0}")]
    Address(String),
}

#[derive(Debug)]
pub(crate) struct Runtime {
    snapshot: Snapshot,
    routers: HashMap<SocketAddr, SocketRouter>,
}

impl Runtime {
    pub(crate) fn build(snapshot: Snapshot, _clients: &Clients) -> Result<Runtime, BuildError> {
        snapshot.validate()?;
        let mut routers = HashMap::new();
        for socket in &snapshot.sockets {
            let addr = format!("{}:{}", socket.address, socket.bind_port);
            let addr: SocketAddr = addr.parse().map_err(|_| BuildError::Address(addr))?;
            routers.insert(addr, SocketRouter::build(socket)?);
        }
        Ok(Runtime { snapshot, routers })
    }

    pub(crate) fn empty(gateway: &str) -> Runtime {
        Runtime {
            snapshot: Snapshot::empty(gateway),
            routers: HashMap::new(),
        }
    }

    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    pub(crate) fn sockets(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.routers.keys().copied()
    }
}

fn status(code: StatusCode) -> Response<ProxyBody> {
    let mut resp = Response::new(Full::new(Bytes::new()).map_err(|e| match e {}).boxed_unsync());
    *resp.status_mut() = code;
    resp
}

pub(crate) async fn handle(
    runtime: Arc<Runtime>,
    conn: Arc<ConnInfo>,
    req: Request<Incoming>,
) -> Response<ProxyBody> {
    let Some(router) = runtime.routers.get(&conn.local) else {
        return status(StatusCode::NOT_FOUND);
    };
    let host = req
        .uri()
        .host()
        .map(str::to_string)
        .or_else(|| {
            let h = req.headers().get(http::header::HOST)?.to_str().ok()?;
            Some(h.split(':').next().unwrap_or(h).to_ascii_lowercase())
        })
        .unwrap_or_default();
    let view = RequestView {
        host: &host,
        path: req.uri().path(),
        query: req.uri().query(),
        method: req.method(),
        headers: req.headers(),
    };
    let Some(found) = router.find(&view) else {
        return status(StatusCode::NOT_FOUND);
    };
    let snapshot = runtime.snapshot();
    let endpoint = snapshot.routes[found.route]
        .backends
        .first()
        .and_then(|b| b.backend)
        .and_then(|i| snapshot.backends[i].endpoints.first());
    let Some(endpoint) = endpoint else {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    };
    let (mut parts, body) = req.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Ok(uri) = format!("http://{}:{}{path}", endpoint.address, endpoint.port).parse() else {
        return status(StatusCode::BAD_REQUEST);
    };
    parts.uri = uri;
    parts.version = http::Version::HTTP_11;
    for name in ["connection", "upgrade", "http2-settings", "keep-alive"] {
        parts.headers.remove(name);
    }
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new()).build_http();
    match client.request(Request::from_parts(parts, body)).await {
        Ok(resp) => resp.map(|b| b.map_err(|e| Box::new(e) as BoxError).boxed_unsync()),
        Err(_) => status(StatusCode::BAD_GATEWAY),
    }
}
