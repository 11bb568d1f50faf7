//! `http.server.active_requests`: requests in flight, per method and scheme.
//!
//! Every request adds 1 when it arrives and −1 when it ends, so the count
//! is an asynchronous UpDownCounter: the request path moves a plain atomic
//! per series, and the SDK reads the atomics only when a reader collects
//! (a Prometheus scrape, an OTLP export). A synchronous UpDownCounter,
//! even bound to its series, cost about 120 instructions per add through
//! the SDK's dynamic dispatch and per-reader trackers; the atomic costs
//! one locked add. The exported data is the same: a non-monotonic
//! cumulative sum with the same name, unit and attributes.

use super::labels::{METHODS, SCHEMES};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, ObservableUpDownCounter};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

/// One method × scheme series.
#[derive(Debug, Default)]
struct Slot {
    /// Requests in flight.
    count: AtomicI64,
    /// Whether the series has been reported: once it has, it is reported
    /// at every collection, 0 included, as a synchronous counter's would.
    seen: AtomicBool,
}

/// The in-flight counts, and the instrument that reports them.
#[derive(Debug)]
pub(crate) struct ActiveRequests {
    slots: Arc<[Slot]>,
    /// Kept so the instrument lives as long as the counts it reads.
    _instrument: ObservableUpDownCounter<i64>,
}

impl ActiveRequests {
    /// Registers the instrument on `meter`, reporting every series used.
    pub(crate) fn new(meter: &Meter) -> ActiveRequests {
        let slots: Arc<[Slot]> = (0..SCHEMES.len() * METHODS.len())
            .map(|_| Slot::default())
            .collect();
        let read = Arc::clone(&slots);
        let labels: Vec<[KeyValue; 2]> = SCHEMES
            .iter()
            .flat_map(|scheme| {
                METHODS.iter().map(move |method| {
                    [
                        KeyValue::new("http.request.method", *method),
                        KeyValue::new("url.scheme", *scheme),
                    ]
                })
            })
            .collect();
        let instrument = meter
            .i64_observable_up_down_counter("http.server.active_requests")
            .with_unit("{request}")
            .with_description("Number of HTTP server requests in flight")
            .with_callback(move |observer| {
                for (slot, attrs) in read.iter().zip(&labels) {
                    if slot.seen.load(Ordering::Relaxed) {
                        observer.observe(slot.count.load(Ordering::Relaxed), attrs);
                    }
                }
            })
            .build();
        ActiveRequests {
            slots,
            _instrument: instrument,
        }
    }

    /// Adds `delta` to the series of method `method` (an index into
    /// [`METHODS`]) and scheme `scheme` (into [`SCHEMES`]).
    #[inline]
    pub(crate) fn add(&self, method: u8, scheme: u8, delta: i64) {
        let index = usize::from(scheme) * METHODS.len() + usize::from(method);
        let Some(slot) = self.slots.get(index) else {
            return;
        };
        slot.count.fetch_add(delta, Ordering::Relaxed);
        if !slot.seen.load(Ordering::Relaxed) {
            slot.seen.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_telemetry::MetricsPipeline;

    /// `(method, scheme, value)` of every series in a scrape of `metrics`.
    fn scrape(metrics: &MetricsPipeline) -> Vec<(String, String, i64)> {
        let text = metrics.encode();
        let label = |line: &str, name: &str| {
            let start = line
                .find(&format!("{name}=\""))
                .map(|i| i + name.len() + 2)?;
            let len = line[start..].find('"')?;
            Some(line[start..start + len].to_string())
        };
        let mut out: Vec<(String, String, i64)> = text
            .lines()
            .filter(|l| l.starts_with("http_server_active_requests{"))
            .map(|l| {
                let value = l.rsplit(' ').next().and_then(|v| v.parse().ok());
                (
                    label(l, "http_request_method").unwrap_or_default(),
                    label(l, "url_scheme").unwrap_or_default(),
                    value.unwrap_or(i64::MIN),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Adds show at the next scrape, per method and scheme, as a gauge (a
    /// non-monotonic sum); a series back at 0 is still reported, and
    /// unused ones never are.
    #[test]
    fn reports_what_is_in_flight() {
        let metrics = MetricsPipeline::prometheus_only();
        let active = ActiveRequests::new(&metrics.meter("test"));
        assert_eq!(scrape(&metrics), []);
        let index = |m: &str| METHODS.iter().position(|x| *x == m).unwrap_or(0) as u8;
        let (get, post) = (index("GET"), index("POST"));
        active.add(get, 0, 1);
        active.add(get, 0, 1);
        active.add(post, 1, 1);
        assert_eq!(
            scrape(&metrics),
            [
                ("GET".into(), "http".into(), 2),
                ("POST".into(), "https".into(), 1)
            ]
        );
        assert!(
            metrics
                .encode()
                .contains("# TYPE http_server_active_requests gauge"),
            "{}",
            metrics.encode()
        );
        active.add(get, 0, -1);
        active.add(post, 1, -1);
        assert_eq!(
            scrape(&metrics),
            [
                ("GET".into(), "http".into(), 1),
                ("POST".into(), "https".into(), 0)
            ]
        );
        // Indexes past the closed lists are ignored, not a panic.
        active.add(u8::MAX, u8::MAX, 1);
        assert_eq!(scrape(&metrics).len(), 2);
    }
}
