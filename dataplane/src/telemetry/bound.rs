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
//! ([`crate::fast_hash::FastHasher`], as rustc's FxHash) instead of
//! SipHash, and found first in a small direct-mapped front ([`Front`]):
//! a slot per hash, each set once, read with a plain load. A runtime's
//! requests mostly fall into a handful of series (a route's 200s), so
//! nearly every lookup ends there, without the map's read lock (two
//! locked instructions) or its probe. A key whose slot another key took
//! goes on to the map, where its bound instruments are used under the
//! read lock instead of handed out as `Arc` clones.

use super::instruments::Instruments;
use crate::fast_hash::{FastHasher, FastMap};
use opentelemetry::KeyValue;
use opentelemetry::metrics::BoundHistogram;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{OnceLock, PoisonError, RwLock};

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

/// Slots in each cache's front: a power of two, far more than the
/// series a runtime's traffic usually lands in.
const FRONT_SLOTS: usize = 64;

/// One slot of a [`Front`]: a key and its value, set once, held in the
/// slot itself (a box would add a dependent load to every lookup).
type Slot<K, V> = OnceLock<(K, V)>;

/// The lock-free front of a cache: the slot of a key's hash holds the
/// first key that hashed there, with its value, for the runtime's life.
#[derive(Debug)]
struct Front<K, V> {
    slots: Box<[Slot<K, V>]>,
}

impl<K, V> Default for Front<K, V> {
    fn default() -> Self {
        Front {
            slots: (0..FRONT_SLOTS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl<K: Eq, V> Front<K, V> {
    /// The slot of `hash`: its top bits, which the hash's last multiply
    /// mixes best.
    #[inline]
    fn slot(&self, hash: u64) -> Option<&Slot<K, V>> {
        self.slots
            .get((hash >> (64 - FRONT_SLOTS.trailing_zeros())) as usize)
    }

    /// The value of `key`, when `key` holds its slot.
    #[inline]
    fn get(&self, hash: u64, key: &K) -> Option<&V> {
        let entry = self.slot(hash)?.get()?;
        (entry.0 == *key).then_some(&entry.1)
    }

    /// Whether no key holds the slot of `hash` yet.
    #[inline]
    fn is_free(&self, hash: u64) -> bool {
        self.slot(hash).is_some_and(|slot| slot.get().is_none())
    }

    /// Gives `key` and its `value` the slot of `hash`; hands them back
    /// when another key holds it (a racing call may have won it). `None`
    /// only if a slot just set reads empty, which `OnceLock` rules out.
    fn claim(&self, hash: u64, key: K, value: V) -> Result<&V, Option<(K, V)>> {
        let Some(slot) = self.slot(hash) else {
            return Err(Some((key, value)));
        };
        match slot.set((key, value)) {
            Ok(()) => slot.get().map(|entry| &entry.1).ok_or(None),
            Err(entry) => Err(Some(entry)),
        }
    }
}

/// One cache: the front, then the map.
#[derive(Debug)]
struct Cache<K, V> {
    front: Front<K, V>,
    map: KeyMap<K, V>,
}

impl<K, V> Default for Cache<K, V> {
    fn default() -> Self {
        Cache {
            front: Front::default(),
            map: RwLock::default(),
        }
    }
}

/// One runtime's bound instruments.
#[derive(Debug, Default)]
pub(crate) struct BoundCache {
    requests: Cache<RequestKey, BoundRequest>,
    clients: Cache<ClientKey, BoundHistogram<f64>>,
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

/// Runs `record` with the value of `key`, made by `make` the first time:
/// from the front when `key` holds its slot (or the slot is free to
/// claim), else from the map. A key that lost a race for its slot is
/// bound again in the map; binding the same attributes twice shares one
/// series in the SDK, so nothing is counted apart.
#[inline]
fn cached<K, V>(cache: &Cache<K, V>, key: K, make: impl FnOnce() -> V, record: impl FnOnce(&V))
where
    K: Hash + Eq,
{
    let hash = BuildHasherDefault::<FastHasher>::default().hash_one(&key);
    if let Some(found) = cache.front.get(hash, &key) {
        return record(found);
    }
    missed(cache, hash, key, make, record);
}

/// [`cached`] past the front: a series bound for the first time, or one
/// whose slot another key holds. Kept out of line so the front's hit, which
/// runs for every request, stays a few dense instructions in the caller
/// (the binding, with the attribute list it builds, is kilobytes of code).
#[cold]
#[inline(never)]
fn missed<K, V>(
    cache: &Cache<K, V>,
    hash: u64,
    key: K,
    make: impl FnOnce() -> V,
    record: impl FnOnce(&V),
) where
    K: Hash + Eq,
{
    if cache.front.is_free(hash) {
        return match cache.front.claim(hash, key, make()) {
            Ok(found) => record(found),
            Err(Some((key, value))) => in_map(&cache.map, key, || value, record),
            Err(None) => {}
        };
    }
    in_map(&cache.map, key, make, record);
}

/// [`cached`]'s map: recording happens under the read lock, as bound
/// instruments take their own locks and never call back into the cache.
fn in_map<K, V>(map: &KeyMap<K, V>, key: K, make: impl FnOnce() -> V, record: impl FnOnce(&V))
where
    K: Hash + Eq,
{
    if let Some(found) = map.read().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return record(found);
    }
    let mut map = map.write().unwrap_or_else(PoisonError::into_inner);
    record(map.entry(key).or_insert_with(make));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn slot_of(key: u64) -> u64 {
        BuildHasherDefault::<FastHasher>::default().hash_one(key) >> 58
    }

    /// Every key keeps one value, made once, whether it holds its slot in
    /// the front or lost it to another key and lives in the map.
    #[test]
    fn front_then_map() {
        let cache: Cache<u64, AtomicU64> = Cache::default();
        let first = 7u64;
        let rival = (0u64..)
            .find(|k| *k != first && slot_of(*k) == slot_of(first))
            .unwrap_or_default();
        let other = (0u64..)
            .find(|k| slot_of(*k) != slot_of(first))
            .unwrap_or_default();
        let made = AtomicU64::new(0);
        let hit = |key: u64| {
            cached(
                &cache,
                key,
                || {
                    made.fetch_add(1, Ordering::Relaxed);
                    AtomicU64::new(key)
                },
                |v| {
                    assert_eq!(v.fetch_add(1000, Ordering::Relaxed) % 1000, key % 1000);
                },
            );
        };
        for _ in 0..3 {
            hit(first);
            hit(rival);
            hit(other);
        }
        assert_eq!(made.load(Ordering::Relaxed), 3);
        let read = |k: u64| {
            let mut out = 0;
            cached(
                &cache,
                k,
                || AtomicU64::new(0),
                |v| out = v.load(Ordering::Relaxed),
            );
            out
        };
        assert_eq!(read(first), first + 3000);
        assert_eq!(read(rival), rival + 3000);
        assert_eq!(read(other), other + 3000);
        let map = cache.map.read().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(map.len(), 1, "only the rival lives in the map");
        assert!(map.contains_key(&rival));
    }

    /// A value made for a slot another key won meanwhile goes to the map
    /// with its key, not lost.
    #[test]
    fn lost_claim_hands_back() {
        let front: Front<u64, u64> = Front::default();
        let hash = BuildHasherDefault::<FastHasher>::default().hash_one(1u64);
        assert!(front.is_free(hash));
        assert_eq!(front.claim(hash, 1, 10), Ok(&10));
        assert!(!front.is_free(hash));
        assert_eq!(front.claim(hash, 2, 20), Err(Some((2, 20))));
        assert_eq!(front.get(hash, &1), Some(&10));
        assert_eq!(front.get(hash, &2), None);
    }
}
