//! The controller's instruments, on the process's meter (served at
//! `/metrics` on the admin port, and over OTLP when configured).
//!
//! Counters and histograms are recorded where things happen (compile,
//! status writes, watches, reports); state the controller already keeps
//! (objects per kind, conditions in the status store, published snapshots
//! and their subscribers, leadership) is read by observable gauges only
//! when metrics are collected, so keeping it costs nothing in between.

use crate::publisher::Publisher;
use crate::status::StatusStore;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tollgate_telemetry::MetricsPipeline;

/// The instrumentation scope of every controller instrument.
const SCOPE: &str = "tollgate-controller";
/// Compile-duration buckets: compiles take milliseconds to a second.
const COMPILE_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// Current counts read by the observable gauges.
#[derive(Debug, Default)]
struct State {
    objects: BTreeMap<&'static str, u64>,
    undecodable: BTreeMap<String, u64>,
}

/// The controller's instruments.
#[derive(Clone, Debug)]
pub struct Metrics {
    meter: Meter,
    state: Arc<Mutex<State>>,
    leader: Arc<AtomicBool>,
    compile_duration: Histogram<f64>,
    status_writes: Counter<u64>,
    watch_restarts: Counter<u64>,
    propagation: Histogram<f64>,
    provision_writes: Counter<u64>,
}

impl Default for Metrics {
    /// Instruments on a pipeline of their own (tests).
    fn default() -> Self {
        Metrics::new(&MetricsPipeline::prometheus_only())
    }
}

impl Metrics {
    /// Creates every instrument on `pipeline`'s meter.
    pub fn new(pipeline: &MetricsPipeline) -> Metrics {
        let meter = pipeline.meter(SCOPE);
        let state = Arc::new(Mutex::new(State::default()));
        let leader = Arc::new(AtomicBool::new(false));
        let observed = Arc::clone(&state);
        meter
            .u64_observable_gauge("tollgate.controller.objects")
            .with_description("Objects of each kind in the controller's view")
            .with_callback(move |gauge| {
                let state = observed.lock().unwrap_or_else(PoisonError::into_inner);
                for (kind, count) in &state.objects {
                    gauge.observe(*count, &[KeyValue::new("kind", *kind)]);
                }
            })
            .build();
        let observed = Arc::clone(&state);
        meter
            .u64_observable_gauge("tollgate.controller.undecodable.objects")
            .with_description(
                "Objects of kinds Tollgate reads that it cannot decode (left out of routing; their status says why)",
            )
            .with_callback(move |gauge| {
                let state = observed.lock().unwrap_or_else(PoisonError::into_inner);
                for (kind, count) in &state.undecodable {
                    gauge.observe(*count, &[KeyValue::new("kind", kind.clone())]);
                }
            })
            .build();
        let leading = Arc::clone(&leader);
        meter
            .u64_observable_gauge("tollgate.controller.leader")
            .with_description("1 while this replica holds the Lease and writes status")
            .with_callback(move |gauge| {
                gauge.observe(u64::from(leading.load(Ordering::Relaxed)), &[])
            })
            .build();
        Metrics {
            compile_duration: meter
                .f64_histogram("tollgate.controller.compile.duration")
                .with_unit("s")
                .with_description("Time to compile every object into snapshots and statuses")
                .with_boundaries(COMPILE_BUCKETS.to_vec())
                .build(),
            status_writes: meter
                .u64_counter("tollgate.controller.status.writes")
                .with_description("Status writes by kind and result (written, conflict, error)")
                .build(),
            watch_restarts: meter
                .u64_counter("tollgate.controller.watch.restarts")
                .with_description("Watches that failed and were restarted, by kind")
                .build(),
            propagation: meter
                .f64_histogram("tollgate.controller.snapshot.propagation.duration")
                .with_unit("s")
                .with_description("From publishing a snapshot to a data plane reporting it applied")
                .with_boundaries(COMPILE_BUCKETS.to_vec())
                .build(),
            provision_writes: meter
                .u64_counter("tollgate.controller.provision.writes")
                .with_description(
                    "Writes of provisioned data-plane objects by kind, operation (apply, delete) and result (ok, error)",
                )
                .build(),
            meter,
            state,
            leader,
        }
    }

    /// Registers the gauges that read `statuses` (objects by condition)
    /// and `publisher` (snapshot size, connected data planes).
    pub fn observe(&self, statuses: StatusStore, publisher: Publisher) {
        self.meter
            .u64_observable_gauge("tollgate.controller.conditions")
            .with_description(
                "Objects by kind and by the status of each condition type Tollgate reports",
            )
            .with_callback(move |gauge| {
                for ((kind, type_, status), n) in condition_counts(&statuses) {
                    let attrs = [
                        KeyValue::new("kind", kind),
                        KeyValue::new("type", type_),
                        KeyValue::new("status", status),
                    ];
                    gauge.observe(n, &attrs);
                }
            })
            .build();
        let sizes = publisher.clone();
        self.meter
            .u64_observable_gauge("tollgate.controller.snapshot.size")
            .with_unit("By")
            .with_description("Size of each Gateway's latest snapshot (JSON)")
            .with_callback(move |gauge| {
                for (gateway, p) in sizes.published() {
                    gauge.observe(p.bytes, &[KeyValue::new("tollgate.gateway", gateway)]);
                }
            })
            .build();
        self.meter
            .u64_observable_gauge("tollgate.controller.dataplanes.connected")
            .with_description("Data planes following each Gateway's snapshot stream")
            .with_callback(move |gauge| {
                for (gateway, p) in publisher.published() {
                    let connected = p.subscribers as u64;
                    gauge.observe(connected, &[KeyValue::new("tollgate.gateway", gateway)]);
                }
            })
            .build();
    }

    /// Records the objects of the newest view: counts by kind, and the
    /// kinds of the objects that did not decode.
    pub fn set_view<'a>(
        &self,
        objects: impl IntoIterator<Item = (&'static str, usize)>,
        undecodable: impl IntoIterator<Item = &'a str>,
    ) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.objects = objects.into_iter().map(|(k, n)| (k, n as u64)).collect();
        // Every kind read reports, at 0 when all its objects decode, so
        // the series exists before the first failure does.
        let kinds: Vec<&'static str> = state.objects.keys().copied().collect();
        state.undecodable.values_mut().for_each(|n| *n = 0);
        for kind in kinds {
            state.undecodable.entry(kind.to_string()).or_default();
        }
        for kind in undecodable {
            *state.undecodable.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// Records one compile's duration.
    pub fn compiled(&self, took: Duration) {
        self.compile_duration.record(took.as_secs_f64(), &[]);
    }

    /// Records one status write of `kind` with `result`.
    pub fn status_written(&self, kind: &str, result: &'static str) {
        let attrs = [
            KeyValue::new("kind", kind.to_string()),
            KeyValue::new("result", result),
        ];
        self.status_writes.add(1, &attrs);
    }

    /// Records a watch of `kind` restarted after an error.
    pub fn watch_restarted(&self, kind: &str) {
        self.watch_restarts
            .add(1, &[KeyValue::new("kind", kind.to_string())]);
    }

    /// Records the time from publishing to the first applied report.
    pub fn propagated(&self, took: Duration) {
        self.propagation.record(took.as_secs_f64(), &[]);
    }

    /// Records one write of a provisioned object.
    pub fn provision_written(&self, kind: &str, operation: &'static str, result: &'static str) {
        let attrs = [
            KeyValue::new("kind", kind.to_string()),
            KeyValue::new("operation", operation),
            KeyValue::new("result", result),
        ];
        self.provision_writes.add(1, &attrs);
    }

    /// Records whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.store(leading, Ordering::Relaxed);
    }
}

/// `(kind, condition type, status) → objects` over every status the
/// controller holds (top-level conditions, and those of route parents).
fn condition_counts(statuses: &StatusStore) -> BTreeMap<(String, String, String), u64> {
    let mut counts = BTreeMap::new();
    let mut count = |kind: &str, conditions: Option<&Value>| {
        for c in conditions.and_then(Value::as_array).into_iter().flatten() {
            let field = |k: &str| {
                c.get(k)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string()
            };
            *counts
                .entry((kind.to_string(), field("type"), field("status")))
                .or_default() += 1;
        }
    };
    for status in statuses.all() {
        count(&status.kind, status.status.get("conditions"));
        for parent in status
            .status
            .get("parents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            count(&status.kind, parent.get("conditions"));
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gauges follow the newest view, per kind, down to zero.
    #[test]
    fn views_are_counted_by_kind() {
        let pipeline = MetricsPipeline::prometheus_only();
        let metrics = Metrics::new(&pipeline);
        metrics.set_view([("HTTPRoute", 3)], ["HTTPRoute", "HTTPRoute", "Gateway"]);
        let text = pipeline.encode();
        let line = |name: &str, kind: &str| {
            text.lines()
                .find(|l| l.starts_with(name) && l.contains(&format!("kind=\"{kind}\"")))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_string)
        };
        assert_eq!(
            line("tollgate_controller_undecodable_objects{", "HTTPRoute").as_deref(),
            Some("2")
        );
        assert_eq!(
            line("tollgate_controller_objects{", "HTTPRoute").as_deref(),
            Some("3")
        );
        metrics.set_view([], ["Gateway"]);
        let text = pipeline.encode();
        let zero = text.lines().find(|l| {
            l.starts_with("tollgate_controller_undecodable_objects{") && l.contains("HTTPRoute")
        });
        assert!(zero.is_some_and(|l| l.ends_with(" 0")), "{text}");
    }
}
