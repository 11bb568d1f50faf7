//! The data plane's observable instruments: read from each data plane's
//! status when metrics are collected, so keeping them costs nothing in
//! between.

use super::SCOPE;
use crate::server::ControllerLink;
use opentelemetry::KeyValue;
use std::sync::Arc;
use tollgate_telemetry::Telemetry;

/// Registers the data plane's observable instruments (open and parked
/// connections, tunnels, applied snapshot version, the link to the
/// controller) on `telemetry`'s meter, reading
/// `read` at every collection. Call once per process, with a `read` that
/// reports every data plane the process runs.
pub fn register_gauges(
    telemetry: &Telemetry,
    read: impl Fn() -> Vec<GaugeReading> + Send + Sync + 'static,
) {
    let meter = telemetry.metrics.meter(SCOPE);
    let read = Arc::new(read);
    let connections = Arc::clone(&read);
    meter
        .u64_observable_gauge("tollgate.dataplane.connections")
        .with_unit("{connection}")
        .with_description(
            "Open downstream connections, by state (open: all; parked: idle without buffers)",
        )
        .with_callback(move |gauge| {
            for r in connections() {
                let gw = KeyValue::new("tollgate.gateway", r.gateway.clone());
                gauge.observe(r.open, &[gw.clone(), KeyValue::new("state", "open")]);
                gauge.observe(r.parked, &[gw, KeyValue::new("state", "parked")]);
            }
        })
        .build();
    let tunnels = Arc::clone(&read);
    meter
        .u64_observable_gauge("tollgate.dataplane.tunnels")
        .with_unit("{tunnel}")
        .with_description(
            "Open relayed upgrades (WebSocket tunnels), over HTTP/1.1 or HTTP/2 extended CONNECT",
        )
        .with_callback(move |gauge| {
            for r in tunnels() {
                let gw = KeyValue::new("tollgate.gateway", r.gateway);
                gauge.observe(r.tunnels, &[gw]);
            }
        })
        .build();
    let links = Arc::clone(&read);
    meter
        .u64_observable_gauge("tollgate.dataplane.controller.connected")
        .with_description(
            "1 while the data plane's snapshot stream from its controller is open, 0 while it reconnects (it keeps serving its last snapshot)",
        )
        .with_callback(move |gauge| {
            for r in links() {
                if let Some(link) = r.controller {
                    let gw = KeyValue::new("tollgate.gateway", r.gateway);
                    gauge.observe(u64::from(link.connected), &[gw]);
                }
            }
        })
        .build();
    let links = Arc::clone(&read);
    meter
        .u64_observable_counter("tollgate.dataplane.controller.disconnects")
        .with_description(
            "Snapshot streams from the controller that ended or could not be opened, by error.type",
        )
        .with_callback(move |counter| {
            for r in links() {
                for (kind, n) in r.controller.iter().flat_map(|l| &l.disconnects) {
                    let attrs = [
                        KeyValue::new("tollgate.gateway", r.gateway.clone()),
                        KeyValue::new("error.type", *kind),
                    ];
                    counter.observe(*n, &attrs);
                }
            }
        })
        .build();
    meter
        .u64_observable_gauge("tollgate.dataplane.snapshot.version")
        .with_description("Version of the snapshot each Gateway's data plane serves")
        .with_callback(move |gauge| {
            for r in read() {
                if let Some(version) = r.version {
                    let gw = KeyValue::new("tollgate.gateway", r.gateway);
                    gauge.observe(version, &[gw]);
                }
            }
        })
        .build();
}

impl GaugeReading {
    /// What `dataplane` reports now.
    pub fn of(dataplane: &crate::Dataplane) -> GaugeReading {
        let status = dataplane.status();
        GaugeReading {
            gateway: status.gateway,
            open: status.connections.open as u64,
            parked: status.connections.parked as u64,
            tunnels: status.connections.tunnels as u64,
            version: status.version,
            controller: status.controller,
        }
    }
}

/// One data plane's state as the gauges read it.
#[derive(Clone, Debug)]
pub struct GaugeReading {
    /// `namespace/name`.
    pub gateway: String,
    /// Open downstream connections.
    pub open: u64,
    /// Of which parked.
    pub parked: u64,
    /// Open relayed upgrades (WebSocket tunnels).
    pub tunnels: u64,
    /// The applied snapshot's version.
    pub version: Option<u64>,
    /// The snapshot stream from the controller, when it follows one.
    pub controller: Option<ControllerLink>,
}
