//! `--with-dataplane`: the data planes of every Gateway, inside the controller.
//!
//! Each in-process data plane follows its Gateway's snapshots through the
//! same [`Publisher`] subscription a remote data plane streams from, so the
//! two modes differ only in transport. One aggregate admin server answers
//! for all of them (default `127.0.0.1:9901`):
//!
//! - `GET /healthz` — 200 while the process runs.
//! - `GET /readyz` — 200 once the controller has compiled its first view and
//!   every Gateway's data plane has applied a snapshot and bound its sockets.
//! - `GET /status` — a JSON object: Gateway (`namespace/name`) → its data
//!   plane's status.
//! - `GET /snapshot` — Gateway → `{version, hash, counts}` of the applied snapshot.

use crate::publisher::Publisher;
use crate::reports::{Report, Reports};
use crate::serve::{Body, json, respond};
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_dataplane::{Dataplane, DataplaneOptions, DataplaneTelemetry, GaugeReading};
use tollgate_snapshot::Snapshot;
use tollgate_telemetry::Telemetry;
use tracing::{debug, warn};

/// The in-process data planes, one per Gateway.
#[derive(Clone, Default)]
pub struct InProcess {
    dataplanes: Arc<Mutex<BTreeMap<String, Dataplane>>>,
    controller_ready: Arc<AtomicBool>,
    reports: Reports,
    /// The process's telemetry, and the request telemetry of its data planes.
    telemetry: Telemetry,
    requests: DataplaneTelemetry,
    /// The publisher followed, once `follow` runs: readiness needs a ready
    /// data plane for every Gateway it publishes, not only for those the
    /// follow loop has got round to creating.
    publisher: Arc<std::sync::OnceLock<Publisher>>,
}

impl InProcess {
    /// Data planes that become ready once `controller_ready` is set and
    /// record what they applied in `reports`, as remote data planes do.
    pub fn new(controller_ready: Arc<AtomicBool>, reports: Reports, telemetry: Telemetry) -> Self {
        InProcess {
            dataplanes: Arc::default(),
            controller_ready,
            reports,
            requests: DataplaneTelemetry::new(&telemetry),
            telemetry,
            publisher: Arc::default(),
        }
    }

    /// Keeps one data plane per Gateway the publisher knows, each following
    /// that Gateway's snapshots. Runs until the task is dropped.
    pub async fn follow(self, publisher: Publisher) {
        let _ = self.publisher.set(publisher.clone());
        loop {
            for gateway in publisher.gateways() {
                self.ensure(&publisher, &gateway);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn ensure(&self, publisher: &Publisher, gateway: &str) {
        let Ok(mut map) = self.dataplanes.lock() else {
            return;
        };
        if map.contains_key(gateway) {
            return;
        }
        let dataplane = Dataplane::new(DataplaneOptions {
            gateway: gateway.to_string(),
            telemetry: self.requests.clone(),
            ..DataplaneOptions::default()
        });
        map.insert(gateway.to_string(), dataplane.clone());
        let mut rx = publisher.subscribe(gateway);
        let gateway = gateway.to_string();
        let reports = self.reports.clone();
        let publisher = publisher.clone();
        tokio::spawn(async move {
            loop {
                let current = rx.borrow_and_update().clone();
                if let Some(snapshot) = current {
                    let hash = publisher.hash_of(&gateway, snapshot.version);
                    apply_one(&dataplane, (snapshot, hash), &gateway, &reports).await;
                }
                if rx.changed().await.is_err() {
                    return;
                }
            }
        });
    }

    fn all(&self) -> Vec<(String, Dataplane)> {
        self.dataplanes
            .lock()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }

    /// Begins graceful shutdown of every data plane and waits for all.
    pub async fn shutdown(&self) {
        let all = self.all();
        for (_, d) in &all {
            d.shutdown();
        }
        for (_, d) in &all {
            d.closed().await;
        }
    }

    /// Registers the data planes' gauges (connections, snapshot versions)
    /// on the process's meter. Call once.
    pub fn register_gauges(&self) {
        let this = self.clone();
        tollgate_dataplane::register_gauges(&self.telemetry, move || {
            this.all()
                .iter()
                .map(|(_, d)| GaugeReading::of(d))
                .collect()
        });
    }

    /// Answers one request to the aggregate admin server, reading the body
    /// where one is expected (`PUT /log-level`).
    pub fn serve(&self, req: Request<Incoming>) -> impl Future<Output = Response<Body>> + use<> {
        let this = self.clone();
        async move {
            match req.uri().path() {
                "/log-level" => crate::admin::log_level(&this.telemetry, req).await,
                "/metrics" => crate::admin::metrics(&this.telemetry),
                _ => this.handle(&req),
            }
        }
    }

    /// Answers one request to the aggregate admin server.
    pub fn handle(&self, req: &Request<Incoming>) -> Response<Body> {
        let all = self.all();
        match req.uri().path() {
            "/healthz" => respond(200, "text/plain; charset=utf-8", "ok\n"),
            "/readyz" => {
                let published = self.publisher.get().map(Publisher::gateways);
                let ready = self.controller_ready.load(Ordering::Acquire)
                    && published.is_some_and(|gateways| {
                        gateways.iter().all(|g| {
                            all.iter().any(|(name, d)| name == g && d.status().ready)
                        })
                    });
                if ready {
                    respond(200, "text/plain; charset=utf-8", "ready\n")
                } else {
                    respond(503, "text/plain; charset=utf-8", "not ready\n")
                }
            }
            "/status" => json(
                &all.iter()
                    .map(|(k, d)| (k.clone(), d.status()))
                    .collect::<BTreeMap<_, _>>(),
            ),
            "/snapshot" => json(
                &all.iter()
                    .map(|(k, d)| {
                        let s = d.status();
                        (
                            k.clone(),
                            serde_json::json!({"version": s.version, "hash": s.hash, "counts": s.counts}),
                        )
                    })
                    .collect::<BTreeMap<_, _>>(),
            ),
            _ => respond(404, "text/plain; charset=utf-8", "not found\n"),
        }
    }
}

/// Applies one published snapshot (with its content hash, when still
/// current) to an in-process data plane and records the outcome as a
/// remote data plane would report it.
async fn apply_one(
    dataplane: &Dataplane,
    (snapshot, hash): (Arc<Snapshot>, Option<String>),
    gateway: &str,
    reports: &Reports,
) {
    let started = Instant::now();
    // Shared, not copied, and hashed once by the publisher: with 10k
    // routes each would take milliseconds.
    let applied = dataplane.apply_shared(Arc::clone(&snapshot), hash).await;
    debug!(
        %gateway,
        version = snapshot.version,
        elapsed_us = started.elapsed().as_micros() as u64,
        "snapshot applied in process"
    );
    match applied {
        Ok(()) => {
            let status = dataplane.status();
            let report = Report {
                version: snapshot.version,
                hash: status.hash.unwrap_or_default(),
                pod: "in-process".to_string(),
                ready: status.ready,
                rejected: None,
            };
            reports.record(gateway, report);
        }
        Err(e) => {
            warn!(%gateway, version = snapshot.version, error = %e, "snapshot rejected; the previous one keeps serving");
            let status = dataplane.status();
            let report = Report {
                version: status.version.unwrap_or_default(),
                hash: status.hash.unwrap_or_default(),
                pod: "in-process".to_string(),
                ready: status.ready,
                rejected: Some(crate::reports::Rejection {
                    version: snapshot.version,
                    reason: e.to_string(),
                }),
            };
            reports.record(gateway, report);
        }
    }
}
