//! Verified tokens, remembered: a client sends the same bearer token on
//! every request until it expires, and checking its signature again each
//! time (tens of microseconds for RS256, more for ES256) would cost more
//! than proxying the request.
//!
//! An entry is found by the whole token (compared in full, so only the
//! very token that was verified finds it) and holds what the check
//! produced (provider, principal, claims). The map hashes with the
//! standard library's keyed SipHash, which costs a fraction of a
//! cryptographic digest of the token per request and keeps collisions out
//! of a client's reach. It is used only
//!
//! - while `exp` (plus the provider's leeway) has not passed,
//! - while the provider still holds the very key set that verified it: a
//!   refresh or refetch replaces the set, and every token verified with
//!   the old one is checked again (a key dropped from the JWKS stops
//!   working at once), and
//! - for the source the provider reads (a header token is not accepted
//!   from a cookie the provider does not read).
//!
//! Refusals are never remembered, so a bad token always pays the full
//! check. The cache belongs to one built stage: a new snapshot starts
//! empty, so changed rules (audiences, algorithms) apply at once. It holds
//! at most [`MAX_ENTRIES`] (about 10 MB with 1 KiB tokens) and is cleared
//! when full.

use super::super::jwks::KeySet;
use crate::context::Principal;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

/// Most tokens remembered.
pub(crate) const MAX_ENTRIES: usize = 10_000;

/// What a successful check produced.
#[derive(Debug)]
pub(crate) struct Verified {
    /// Index of the provider that accepted the token.
    pub(crate) provider: usize,
    /// The key set that verified it.
    pub(crate) keys: Arc<KeySet>,
    /// Valid while the clock is below this (`exp` plus leeway).
    pub(crate) until: u64,
    /// The caller.
    pub(crate) principal: Principal,
    /// The token's claims (also in `principal`), for claim headers.
    pub(crate) claims: Arc<Map<String, Value>>,
}

/// Verified tokens by digest.
#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    entries: Mutex<HashMap<Box<str>, Arc<Verified>>>,
}

impl TokenCache {
    /// The entry of `token` when it is still valid at `now`; an expired
    /// one is dropped.
    pub(crate) fn get(&self, token: &str, now: u64) -> Option<Arc<Verified>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(token)?;
        if now < entry.until {
            return Some(entry.clone());
        }
        entries.remove(token);
        None
    }

    /// Remembers a successful check.
    pub(crate) fn insert(&self, token: &str, verified: Arc<Verified>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(token.into(), verified);
    }

    /// Forgets `token` (its key set was replaced).
    pub(crate) fn remove(&self, token: &str) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// How many tokens are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verified(until: u64) -> Arc<Verified> {
        Arc::new(Verified {
            provider: 0,
            keys: Arc::default(),
            until,
            principal: Principal::default(),
            claims: Arc::default(),
        })
    }

    #[test]
    fn entries_expire_and_the_cache_is_bounded() {
        let cache = TokenCache::default();
        let a = "a";
        cache.insert(a, verified(100));
        assert!(cache.get(a, 99).is_some());
        assert!(cache.get("b", 99).is_none(), "only the very token finds it");
        assert!(cache.get(a, 100).is_none());
        assert_eq!(cache.len(), 0, "an expired entry is dropped");
        for i in 0..MAX_ENTRIES {
            cache.insert(&i.to_string(), verified(100));
        }
        assert_eq!(cache.len(), MAX_ENTRIES);
        cache.insert(a, verified(100));
        assert_eq!(cache.len(), 1);
        cache.remove(a);
        assert!(cache.get(a, 0).is_none());
    }
}
