//! The controller's admin endpoints (default `127.0.0.1:9902`).
//!
//! - `GET /healthz` — 200 while the process runs.
//! - `GET /readyz` — 200 once the provider's first complete read has been
//!   compiled and published, 503 before.
//! - `GET /status` — a JSON array of [`ObjectStatus`](tollgate_compile::ObjectStatus):
//!   for every object Tollgate reports on, its kind, namespace, name and the
//!   `status` Kubernetes would hold (conditions, listener statuses,
//!   addresses, route parents).
//! - `GET /snapshots` — for every Gateway, the version, hash and element
//!   counts of its latest published snapshot.
//! - `GET /reports` — for every Gateway, what each data plane reported
//!   applying (version, hash, pod, ready).
//! - `GET /metrics` — the process's metrics, Prometheus text format.
//! - `GET /log-level`, `PUT /log-level` — the log filter (`RUST_LOG`
//!   syntax), changed without a restart.

use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::reports::Reports;
use crate::serve::{Body, json, respond};
use crate::status::StatusStore;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tollgate_telemetry::Telemetry;

/// Answers `GET`/`PUT /log-level` with `telemetry`'s log filter.
pub async fn log_level(telemetry: &Telemetry, req: Request<Incoming>) -> Response<Body> {
    let (status, text) = tollgate_telemetry::log_level(&telemetry.logs, req).await;
    respond(status, "text/plain; charset=utf-8", text)
}

/// Prometheus text of `telemetry`'s metrics.
pub fn metrics(telemetry: &Telemetry) -> Response<Body> {
    respond(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        telemetry.metrics.encode(),
    )
}

/// State the admin endpoints read.
#[derive(Clone, Debug, Default)]
pub struct Admin {
    /// Current statuses.
    pub statuses: StatusStore,
    /// Published snapshots.
    pub publisher: Publisher,
    /// Set once the first complete view has been compiled.
    pub ready: Arc<AtomicBool>,
    /// What data planes reported applying.
    pub reports: Reports,
    /// The controller's instruments.
    pub metrics: Metrics,
    /// The process's telemetry (metrics registry, log filter).
    pub telemetry: Telemetry,
}

impl Admin {
    /// Admin state reporting through `telemetry`.
    pub fn new(telemetry: Telemetry) -> Admin {
        let admin = Admin {
            metrics: Metrics::new(&telemetry.metrics),
            telemetry,
            ..Admin::default()
        };
        admin
            .metrics
            .observe(admin.statuses.clone(), admin.publisher.clone());
        admin
    }

    /// Answers one admin request, reading the body where one is expected
    /// (`PUT /log-level`).
    pub fn serve(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + use<> {
        let admin = self.clone();
        async move {
            if req.uri().path() == "/log-level" {
                return log_level(&admin.telemetry, req).await;
            }
            admin.handle(&req)
        }
    }

    /// Answers one admin request.
    pub fn handle(&self, req: &Request<Incoming>) -> Response<Body> {
        if req.method() != http::Method::GET {
            return respond(405, "text/plain; charset=utf-8", "method not allowed\n");
        }
        match req.uri().path() {
            "/healthz" => respond(200, "text/plain; charset=utf-8", "ok\n"),
            "/readyz" if self.ready.load(Ordering::Acquire) => {
                respond(200, "text/plain; charset=utf-8", "ready\n")
            }
            "/readyz" => respond(503, "text/plain; charset=utf-8", "not ready\n"),
            "/status" => json(&self.statuses.all()),
            "/snapshots" => json(&self.publisher.published()),
            "/metrics" => metrics(&self.telemetry),
            "/reports" => json(
                &self
                    .publisher
                    .gateways()
                    .into_iter()
                    .map(|g| {
                        let reports = self.reports.of(&g);
                        (g, reports)
                    })
                    .collect::<std::collections::BTreeMap<_, _>>(),
            ),
            _ => respond(404, "text/plain; charset=utf-8", "not found\n"),
        }
    }
}
