//! The admin server: health, readiness, status and the applied snapshot,
//! Prometheus metrics (`/metrics`) and the log filter (`GET`/`PUT
//! /log-level`).
//!
//! A separate plain HTTP/1.1 listener (default `127.0.0.1:9901`) so probes
//! and operators never compete with traffic for connection limits.
//! `/readyz` answers 200 only once a complete snapshot is applied and all
//! its sockets are bound, and turns 503 as soon as shutdown begins so load
//! balancers stop sending before connections drain.

use crate::server::Dataplane;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tollgate_snapshot::Counts;
use tollgate_telemetry::{Telemetry, log_level};

/// How long an admin client has to send its request head.
const ADMIN_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The `/snapshot` summary.
#[derive(Serialize)]
struct Summary<'a> {
    version: u64,
    hash: String,
    gateway: &'a str,
    counts: Counts,
}

impl Dataplane {
    /// Serves the admin endpoints on `addr` until the data plane has shut
    /// down and drained.
    ///
    /// # Errors
    ///
    /// `addr` cannot be bound.
    pub async fn serve_admin(&self, addr: SocketAddr, telemetry: Telemetry) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        tracing::info!(addr = %listener.local_addr()?, "admin listening");
        loop {
            let accepted = tokio::select! {
                () = self.closed() => return Ok(()),
                accepted = listener.accept() => accepted,
            };
            let Ok((stream, _)) = accepted else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let dataplane = self.clone();
            let telemetry = telemetry.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let (dataplane, telemetry) = (dataplane.clone(), telemetry.clone());
                    async move { Ok::<_, Infallible>(answer(&dataplane, &telemetry, req).await) }
                });
                let _ = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(ADMIN_HEADER_TIMEOUT)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

/// Answers one admin request: the telemetry endpoints here, the rest in
/// [`respond`].
async fn answer(
    dataplane: &Dataplane,
    telemetry: &Telemetry,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match req.uri().path() {
        // Other methods fall through to `respond`, which answers 405.
        "/metrics" if matches!(*req.method(), Method::GET | Method::HEAD) => with_type(
            StatusCode::OK,
            "text/plain; version=0.0.4; charset=utf-8",
            Bytes::from(telemetry.metrics.encode()),
        ),
        "/log-level" => {
            let (status, text) = log_level(&telemetry.logs, req).await;
            with_type(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                "text/plain; charset=utf-8",
                Bytes::from(text),
            )
        }
        _ => respond(dataplane, &req),
    }
}

/// Answers one read-only admin request.
fn respond<B>(dataplane: &Dataplane, req: &Request<B>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let full = req
        .uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p == "full=1" || p == "full=true"));
    match req.uri().path() {
        "/healthz" => text(StatusCode::OK, "ok\n"),
        "/readyz" if dataplane.status().ready => text(StatusCode::OK, "ready\n"),
        "/readyz" => text(StatusCode::SERVICE_UNAVAILABLE, "not ready\n"),
        "/status" => json(&dataplane.status()),
        "/snapshot" => {
            let runtime = dataplane.runtime();
            let snapshot = runtime.snapshot();
            if full {
                json(&snapshot.redacted())
            } else {
                json(&Summary {
                    version: snapshot.version,
                    hash: snapshot.content_hash(),
                    gateway: &snapshot.gateway,
                    counts: snapshot.counts(),
                })
            }
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        Bytes::from_static(body.as_bytes()),
    )
}

fn json<T: Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => with_type(StatusCode::OK, "application/json", Bytes::from(body)),
        Err(_) => text(StatusCode::INTERNAL_SERVER_ERROR, "cannot serialise\n"),
    }
}

fn with_type(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::respond;
    use crate::{Dataplane, DataplaneOptions};
    use http::Request;

    fn get(dp: &Dataplane, uri: &str) -> (u16, String, String) {
        let response = respond(dp, &Request::get(uri).body(()).unwrap());
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        let status = response.status().as_u16();
        let body = futures_util::FutureExt::now_or_never(http_body_util::BodyExt::collect(
            response.into_body(),
        ))
        .unwrap()
        .unwrap()
        .to_bytes();
        (
            status,
            content_type,
            String::from_utf8(body.to_vec()).unwrap(),
        )
    }

    /// Before any snapshot: healthy, not ready, and an empty snapshot summary.
    #[test]
    fn endpoints_before_the_first_snapshot() {
        let dp = Dataplane::new(DataplaneOptions {
            gateway: "default/gw".into(),
            ..Default::default()
        });
        assert_eq!(get(&dp, "/healthz").0, 200);
        assert_eq!(get(&dp, "/readyz").0, 503);
        let (status, content_type, body) = get(&dp, "/status");
        assert_eq!((status, content_type.as_str()), (200, "application/json"));
        let status: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(status["gateway"], "default/gw");
        assert_eq!(status["ready"], false);
        let summary: serde_json::Value = serde_json::from_str(&get(&dp, "/snapshot").2).unwrap();
        assert_eq!(summary["counts"]["routes"], 0);
        let full: serde_json::Value =
            serde_json::from_str(&get(&dp, "/snapshot?full=1").2).unwrap();
        assert_eq!(full["gateway"], "default/gw");
        assert_eq!(get(&dp, "/nope").0, 404);
    }
}
