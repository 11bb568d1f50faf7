//! The controller's metrics: OpenTelemetry instruments, read by a
//! Prometheus exporter and served as text at the admin port's `/metrics`.
//!
//! Instruments are created once, here, from one meter; the rest of the
//! controller records through [`Metrics`] methods, so the names (and their
//! Prometheus forms, `tollgate_controller_*`) are listed in one place.
//! Gauges of current state are observable: the values live in plain shared
//! state and are read only when scraped.

use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder, Registry, TextEncoder};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tracing::warn;

/// The instrumentation scope of every controller instrument.
const SCOPE: &str = "tollgate-controller";

/// Current counts shared with the observable instruments.
#[derive(Debug, Default)]
struct State {
    /// Objects that did not decode, by kind.
    undecodable: BTreeMap<String, u64>,
}

/// The controller's instruments and their Prometheus registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    state: Arc<Mutex<State>>,
    // Keeps the instruments' pipeline alive.
    _provider: Option<SdkMeterProvider>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates every instrument. An exporter that fails to build (it never
    /// does with a fresh registry) leaves `/metrics` empty, with a warning,
    /// rather than stopping the controller.
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let state = Arc::new(Mutex::new(State::default()));
        let exporter = match opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_target_info()
            .build()
        {
            Ok(exporter) => exporter,
            Err(error) => {
                warn!(%error, "metrics exporter unavailable; /metrics stays empty");
                return Metrics {
                    registry,
                    state,
                    _provider: None,
                };
            }
        };
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let meter = provider.meter(SCOPE);
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
        Metrics {
            registry,
            state,
            _provider: Some(provider),
        }
    }

    /// Records how many objects of each kind did not decode in the newest
    /// view; kinds absent from `by_kind` read 0.
    pub fn set_undecodable<'a>(&self, kinds: impl IntoIterator<Item = &'a str>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.undecodable.values_mut().for_each(|n| *n = 0);
        for kind in kinds {
            *state.undecodable.entry(kind.to_string()).or_default() += 1;
        }
    }

    /// Every metric in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            warn!(%error, "could not encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gauge follows the newest view, per kind, down to zero.
    #[test]
    fn undecodable_objects_are_counted_by_kind() {
        let metrics = Metrics::new();
        metrics.set_undecodable(["HTTPRoute", "HTTPRoute", "Gateway"]);
        let text = metrics.encode();
        assert!(
            text.contains("tollgate_controller_undecodable_objects{kind=\"HTTPRoute\",otel_scope_name=\"tollgate-controller\"} 2"),
            "{text}"
        );
        assert!(text.contains("kind=\"Gateway\""), "{text}");
        metrics.set_undecodable(["Gateway"]);
        let text = metrics.encode();
        assert!(
            text.contains("tollgate_controller_undecodable_objects{kind=\"HTTPRoute\",otel_scope_name=\"tollgate-controller\"} 0"),
            "{text}"
        );
    }
}
