//! Counters of local limits: one TAT per key in this process's memory,
//! kept across snapshot swaps (a route edit does not reset its limits).
//!
//! Sharded by key hash so concurrent requests on different keys rarely
//! wait for each other. A key whose TAT is in the past is at rest and
//! carries no information, so a shard drops such keys when it grows.

use super::gcra::{self, Decision, Shape};
use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::Instant;

const SHARDS: usize = 16;
/// A shard sweeps keys at rest when it holds more than this.
const SWEEP_ABOVE: usize = 4096;

/// The local counters.
#[derive(Debug)]
pub(crate) struct LocalCounters {
    epoch: Instant,
    hasher: RandomState,
    shards: Box<[Mutex<HashMap<String, u64>>]>,
}

impl Default for LocalCounters {
    fn default() -> Self {
        LocalCounters {
            epoch: Instant::now(),
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl LocalCounters {
    /// Microseconds since this store began (its clock).
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    /// Decides `cost` units of `key` under `shape`, now.
    pub(crate) fn decide(&self, key: &str, shape: Shape, cost: u64) -> Decision {
        let now = self.now();
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        let Ok(mut map) = shard.lock() else {
            // A poisoned shard: admit rather than fail every request.
            return gcra::decide(shape, 0, now, 0);
        };
        let tat = map.get(key).copied().unwrap_or(0);
        if cost == 0 {
            // Debited at the response: admitted while one unit would fit,
            // nothing taken now.
            let probe = gcra::decide(shape, tat, now, 1);
            return Decision {
                tat,
                remaining: probe.remaining + u64::from(probe.allowed),
                ..probe
            };
        }
        let decision = gcra::decide(shape, tat, now, cost);
        if decision.allowed && decision.tat > now {
            if map.len() > SWEEP_ABOVE && !map.contains_key(key) {
                map.retain(|_, tat| *tat > now);
            }
            map.insert(key.to_string(), decision.tat);
        }
        decision
    }

    /// Adds `units` to `key` whether they fit or not (a cost the response
    /// named): later requests wait for them.
    pub(crate) fn debit(&self, key: &str, shape: Shape, units: u64) {
        let now = self.now();
        let shard = &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS];
        if let Ok(mut map) = shard.lock() {
            let tat = map.get(key).copied().unwrap_or(0).max(now);
            map.insert(
                key.to_string(),
                tat.saturating_add(units.saturating_mul(shape.period)),
            );
        }
    }

    /// Keys held, for tests.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .filter_map(|s| s.lock().ok())
            .map(|m| m.len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_independent_and_swept_at_rest() {
        let store = LocalCounters::default();
        let shape = Shape::new(2, 60_000, 0);
        assert!(store.decide("a", shape, 1).allowed);
        assert!(store.decide("a", shape, 1).allowed);
        assert!(!store.decide("a", shape, 1).allowed);
        assert!(store.decide("b", shape, 1).allowed);
        // A fast limit's keys come to rest at once and are swept.
        let fast = Shape::new(1_000_000, 1, 0);
        for i in 0..(SWEEP_ABOVE * SHARDS + 100) {
            store.decide(&format!("k{i}"), fast, 1);
        }
        assert!(store.len() < SWEEP_ABOVE * SHARDS, "{}", store.len());
        assert!(
            !store.decide("a", shape, 1).allowed,
            "busy keys survive the sweep"
        );
    }
}
