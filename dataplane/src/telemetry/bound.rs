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
//!
//! A lookup runs for every request and attempt, so the keys are hashed
//! with a multiply-rotate hash of their few integers
//! ([`crate::fast_hash::FastHasher`], as rustc's FxHash) instead of SipHash, and the bound instruments are used
//! under the read lock instead of handed out as `Arc` clones.

use super::instruments::Instruments;
use crate::fast_hash::FastMap;
use opentelemetry::KeyValue;
use opentelemetry::metrics::BoundHistogram;
use std::hash::{Hash, Hasher};
use std::sync::{PoisonError, RwLock};

/// What distinguishes one request's series: the route rule, the path
/// template (by address: templates are shared within a runtime), listener,
/// method, status, error and protocol version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RequestKey {
    pub(crate) route: u32,
    pub(crate) template: usize,
    pub(crate) listener: u32,
    pub(crate) method: u8,
    pub(crate) status: u16,
    pub(crate) error: u8,
    pub(crate) version: u8,
    /// 0 for other requests; a gRPC call's status code + 1, or 0 before
    /// one arrived (a call cut short).
    pub(crate) grpc: u8,
}

/// The request instruments bound to one series.
#[derive(Debug)]
pub(crate) struct BoundRequest {
    pub(crate) duration: BoundHistogram<f64>,
    pub(crate) request_size: BoundHistogram<u64>,
    pub(crate) response_size: BoundHistogram<u64>,
}

/// What distinguishes one upstream attempt's series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ClientKey {
    pub(crate) backend: u32,
    pub(crate) method: u8,
    pub(crate) status: u16,
    pub(crate) error: u8,
}

// The keys hash as a few packed words, not field by field: one round of
// `FastHasher` per word instead of one per field (the lookup runs for
// every request and attempt). Equal keys pack equally, as `Hash` requires.
impl Hash for RequestKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from(self.route) | u64::from(self.listener) << 32);
        state.write_usize(self.template);
        state.write_u64(
            u64::from(self.method)
                | u64::from(self.status) << 8
                | u64::from(self.error) << 24
                | u64::from(self.version) << 32
                | u64::from(self.grpc) << 40,
        );
    }
}

impl Hash for ClientKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(
            u64::from(self.backend)
                | u64::from(self.method) << 32
                | u64::from(self.status) << 40
                | u64::from(self.error) << 56,
        );
    }
}

/// A map from small integer keys, hashed by [`crate::fast_hash::FastHasher`].
type KeyMap<K, V> = RwLock<FastMap<K, V>>;

/// One runtime's bound instruments.
#[derive(Debug, Default)]
pub(crate) struct BoundCache {
    requests: KeyMap<RequestKey, BoundRequest>,
    clients: KeyMap<ClientKey, BoundHistogram<f64>>,
}

impl BoundCache {
    /// Runs `record` with the request instruments of `key`, bound to
    /// `attributes()` the first time.
    #[inline]
    pub(crate) fn request(
        &self,
        key: RequestKey,
        instruments: &Instruments,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        record: impl FnOnce(&BoundRequest),
    ) {
        cached(
            &self.requests,
            key,
            || {
                let attrs = attributes();
                BoundRequest {
                    duration: instruments.request_duration.bind(&attrs),
                    request_size: instruments.request_body_size.bind(&attrs),
                    response_size: instruments.response_body_size.bind(&attrs),
                }
            },
            record,
        );
    }

    /// Runs `record` with the upstream-attempt histogram of `key`, bound
    /// the first time.
    #[inline]
    pub(crate) fn client(
        &self,
        key: ClientKey,
        instruments: &Instruments,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        record: impl FnOnce(&BoundHistogram<f64>),
    ) {
        cached(
            &self.clients,
            key,
            || instruments.client_duration.bind(&attributes()),
            record,
        );
    }
}

/// Runs `record` with the value of `key`, made by `make` the first time.
/// Recording happens under the read lock: bound instruments take their
/// own locks and never call back into the cache.
#[inline]
fn cached<K, V>(map: &KeyMap<K, V>, key: K, make: impl FnOnce() -> V, record: impl FnOnce(&V))
where
    K: std::hash::Hash + Eq,
{
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return record(found);
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    record(map.entry(key).or_insert_with(make));
}
