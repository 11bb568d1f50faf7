//! A cache of answers about tokens by token hash, with one call in flight
//! per token: introspection verdicts, and OIDC sessions renewed with a
//! refresh token.
//!
//! Introspection costs a round trip to the authorization server per
//! request, so answers are kept until the token expires (or a configured
//! cap) and refusals for a short negative lifetime. A browser whose session
//! expired fires its page's requests at once, and providers that rotate
//! refresh tokens accept each only once, so renewals share one call and
//! its result for a short while. Tokens are never stored: the key is the
//! token's SHA-256. Concurrent requests with the
//! same uncached token share one call (single flight): the call runs as
//! its own task, so it completes and fills the cache even when the client
//! that started it goes away. Failed calls are not cached; every waiter
//! gets the failure.
//!
//! Caches live in `AuthClients` per endpoint and client, so a snapshot swap
//! keeps them; their size is bounded.

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Most answers one cache holds.
const MAX_ENTRIES: usize = 10_000;

/// Why a call failed, shared by every request waiting on it.
pub(crate) type Failure = Arc<str>;

/// A fetch's result: the answer and how long it may be cached.
pub(crate) type Fetched<V> = Result<(V, Duration), Failure>;

type InFlight<V> = Shared<BoxFuture<'static, Result<V, Failure>>>;

/// Endpoint (or issuer) and client id.
type CacheKey = (String, String);

/// Caches by endpoint (or issuer) and client id, for `AuthClients`.
#[derive(Debug)]
pub(crate) struct TokenCaches<V> {
    caches: Mutex<HashMap<CacheKey, Arc<TokenCache<V>>>>,
}

impl<V> Default for TokenCaches<V> {
    fn default() -> Self {
        TokenCaches {
            caches: Mutex::new(HashMap::new()),
        }
    }
}

impl<V> TokenCaches<V> {
    /// The cache of `endpoint` as `client_id`: the same one for every
    /// snapshot that names them, so a swap keeps the answers.
    pub(crate) fn cache(&self, endpoint: &str, client_id: &str) -> Arc<TokenCache<V>> {
        let mut caches = self.caches.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (endpoint.to_string(), client_id.to_string());
        Arc::clone(caches.entry(key).or_default())
    }
}

/// The cache of one endpoint and client.
#[derive(Debug)]
pub(crate) struct TokenCache<V> {
    state: Mutex<State<V>>,
}

impl<V> Default for TokenCache<V> {
    fn default() -> Self {
        TokenCache {
            state: Mutex::new(State {
                entries: HashMap::new(),
                in_flight: HashMap::new(),
            }),
        }
    }
}

struct State<V> {
    entries: HashMap<[u8; 32], (V, Instant)>,
    in_flight: HashMap<[u8; 32], InFlight<V>>,
}

impl<V> std::fmt::Debug for State<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("entries", &self.entries.len())
            .field("in_flight", &self.in_flight.len())
            .finish()
    }
}

impl<V: Clone + Send + Sync + 'static> TokenCache<V> {
    /// The answer for `token`: cached, or from the call in flight for it,
    /// or from `fetch`, started now.
    ///
    /// # Errors
    ///
    /// The fetch's failure (not cached).
    pub(crate) async fn get<F>(self: &Arc<Self>, token: &str, fetch: F) -> Result<V, Failure>
    where
        F: FnOnce() -> BoxFuture<'static, Fetched<V>>,
    {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let shared = {
            let mut state = self.lock();
            if let Some((verdict, until)) = state.entries.get(&key) {
                if *until > Instant::now() {
                    return Ok(verdict.clone());
                }
                state.entries.remove(&key);
            }
            match state.in_flight.get(&key) {
                Some(shared) => shared.clone(),
                None => {
                    let shared = self.start(key, fetch());
                    state.in_flight.insert(key, shared.clone());
                    shared
                }
            }
        };
        shared.await
    }

    /// Runs `fetch` as a task that stores its verdict and then leaves the
    /// in-flight table.
    fn start(
        self: &Arc<Self>,
        key: [u8; 32],
        fetch: BoxFuture<'static, Fetched<V>>,
    ) -> InFlight<V> {
        let cache = Arc::clone(self);
        let task = tokio::spawn(async move {
            let fetched = fetch.await;
            let mut state = cache.lock();
            if let Ok((verdict, ttl)) = &fetched
                && !ttl.is_zero()
            {
                state.insert(key, verdict.clone(), Instant::now() + *ttl);
            }
            state.in_flight.remove(&key);
            fetched.map(|(verdict, _)| verdict)
        });
        async move {
            task.await
                .unwrap_or_else(|e| Err(Arc::from(format!("introspection task failed: {e}"))))
        }
        .boxed()
        .shared()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State<V>> {
        // The state is a plain map: a panic elsewhere leaves it usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

impl<V> State<V> {
    /// Inserts, first making room: expired entries go, then (under a flood
    /// of distinct live tokens) an arbitrary eighth of the rest.
    fn insert(&mut self, key: [u8; 32], verdict: V, until: Instant) {
        if self.entries.len() >= MAX_ENTRIES {
            let now = Instant::now();
            self.entries.retain(|_, (_, until)| *until > now);
        }
        if self.entries.len() >= MAX_ENTRIES {
            let doomed: Vec<[u8; 32]> =
                self.entries.keys().take(MAX_ENTRIES / 8).copied().collect();
            for key in doomed {
                self.entries.remove(&key);
            }
        }
        self.entries.insert(key, (verdict, until));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    type Fetched = super::Fetched<&'static str>;

    fn counting(
        calls: &Arc<AtomicUsize>,
        fetched: Fetched,
    ) -> impl FnOnce() -> BoxFuture<'static, Fetched> + use<> {
        let calls = calls.clone();
        move || {
            async move {
                calls.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                fetched
            }
            .boxed()
        }
    }

    fn active() -> Fetched {
        Ok(("active", Duration::from_secs(60)))
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_lookups_share_one_call_and_the_answer_is_kept_until_its_ttl() {
        let cache: Arc<TokenCache<&str>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let lookups = (0..20).map(|_| cache.get("t", counting(&calls, active())));
        let verdicts = futures_util::future::join_all(lookups).await;
        assert!(verdicts.iter().all(|v| v.as_deref() == Ok("active")));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.get("t", counting(&calls, active())).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        tokio::time::advance(Duration::from_secs(61)).await;
        cache.get("t", counting(&calls, active())).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn failures_reach_every_waiter_and_are_not_cached() {
        let cache: Arc<TokenCache<&str>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let down: Fetched = Err(Arc::from("down"));
        let lookups = (0..5).map(|_| cache.get("t", counting(&calls, down.clone())));
        let verdicts = futures_util::future::join_all(lookups).await;
        assert!(verdicts.iter().all(Result::is_err));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        cache.get("t", counting(&calls, active())).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_cache_stays_bounded() {
        let cache: Arc<TokenCache<&str>> = Arc::default();
        let calls = Arc::new(AtomicUsize::new(0));
        for i in 0..MAX_ENTRIES + 10 {
            let token = format!("t{i}");
            cache.get(&token, counting(&calls, active())).await.unwrap();
        }
        assert!(cache.len() <= MAX_ENTRIES);
    }
}
