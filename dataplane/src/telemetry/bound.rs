//! Instruments bound to their attribute sets, cached per runtime.
//!
//! Recording into an OpenTelemetry instrument with attributes hashes and
//! compares the whole attribute list on every call (measured: about 15k
//! instructions per request for the request instruments, half again what
//! the rest of the proxy costs). A request's attributes are a handful of
//! small numbers in disguise (which route, match, listener, method, status,
//! error), so each distinct combination is bound once — the SDK then hands
//! back the aggregator itself — and found again by a small integer key.
//! The cache lives with the runtime, so a snapshot swap starts a fresh one,
//! and its size is bounded by configuration like the series themselves.

use super::instruments::Instruments;
use super::labels::METHODS;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{BoundHistogram, BoundUpDownCounter, UpDownCounter};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

/// What distinguishes one request's series: the route rule, the path
/// template (by address: templates are shared within a runtime), listener,
/// method, status, error and protocol version.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) struct RequestKey {
    pub(crate) route: u32,
    pub(crate) template: usize,
    pub(crate) listener: u32,
    pub(crate) method: u8,
    pub(crate) status: u16,
    pub(crate) error: u8,
    pub(crate) version: u8,
}

/// The request instruments bound to one series.
#[derive(Debug)]
pub(crate) struct BoundRequest {
    pub(crate) duration: BoundHistogram<f64>,
    pub(crate) request_size: BoundHistogram<u64>,
    pub(crate) response_size: BoundHistogram<u64>,
}

/// What distinguishes one upstream attempt's series.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) struct ClientKey {
    pub(crate) backend: u32,
    pub(crate) method: u8,
    pub(crate) status: u16,
    pub(crate) error: u8,
}

/// One runtime's bound instruments.
#[derive(Debug, Default)]
pub(crate) struct BoundCache {
    requests: RwLock<HashMap<RequestKey, Arc<BoundRequest>>>,
    clients: RwLock<HashMap<ClientKey, Arc<BoundHistogram<f64>>>>,
}

impl BoundCache {
    /// The request instruments of `key`, bound to `attributes()` the first
    /// time.
    pub(crate) fn request(
        &self,
        key: RequestKey,
        instruments: &Instruments,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Arc<BoundRequest> {
        cached(&self.requests, key, || {
            let attrs = attributes();
            BoundRequest {
                duration: instruments.request_duration.bind(&attrs),
                request_size: instruments.request_body_size.bind(&attrs),
                response_size: instruments.response_body_size.bind(&attrs),
            }
        })
    }

    /// The upstream-attempt histogram of `key`, bound the first time.
    pub(crate) fn client(
        &self,
        key: ClientKey,
        instruments: &Instruments,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) -> Arc<BoundHistogram<f64>> {
        cached(&self.clients, key, || {
            instruments.client_duration.bind(&attributes())
        })
    }
}

fn cached<K, V>(map: &RwLock<HashMap<K, Arc<V>>>, key: K, make: impl FnOnce() -> V) -> Arc<V>
where
    K: std::hash::Hash + Eq,
{
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return Arc::clone(found);
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    Arc::clone(map.entry(key).or_insert_with(|| Arc::new(make())))
}

/// `http.server.active_requests` bound per method and scheme, each on
/// first use (the attribute sets are a closed list of 20).
#[derive(Debug)]
pub(crate) struct ActiveRequests {
    counter: UpDownCounter<i64>,
    bound: Vec<OnceLock<BoundUpDownCounter<i64>>>,
}

/// The schemes a listener serves, in index order.
pub(crate) const SCHEMES: [&str; 2] = ["http", "https"];

impl ActiveRequests {
    /// Series for every method × scheme, bound when first used.
    pub(crate) fn new(instruments: &Instruments) -> ActiveRequests {
        let slots = SCHEMES.len() * METHODS.len();
        ActiveRequests {
            counter: instruments.active_requests.clone(),
            bound: (0..slots).map(|_| OnceLock::new()).collect(),
        }
    }

    /// Adds `delta` to the series of method `method` (an index into
    /// [`METHODS`]) and scheme `scheme` (into [`SCHEMES`]).
    pub(crate) fn add(&self, method: u8, scheme: u8, delta: i64) {
        let (m, s) = (usize::from(method), usize::from(scheme));
        let (Some(slot), Some(method), Some(scheme)) = (
            self.bound.get(s * METHODS.len() + m),
            METHODS.get(m),
            SCHEMES.get(s),
        ) else {
            return;
        };
        slot.get_or_init(|| {
            let attrs = [
                KeyValue::new("http.request.method", *method),
                KeyValue::new("url.scheme", *scheme),
            ];
            self.counter.bind(&attrs)
        })
        .add(delta);
    }
}
