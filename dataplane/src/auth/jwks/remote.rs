//! Remote JWKS: fetched with the auth [`Call`] client, cached per endpoint
//! URI in the process-wide [`JwksCache`] so a snapshot swap keeps the keys
//! (and the refresh schedule) of every provider it still names.
//!
//! # Guarantees
//!
//! - **Background refresh.** A task fetches the set when it is first named
//!   and again at three quarters of its lifetime (`Cache-Control: max-age`,
//!   else the provider's `default_ttl_seconds`, at least
//!   [`MIN_REFRESH`]), so requests never wait for a routine refresh. A
//!   failed fetch is retried with backoff (1 s doubling to 60 s).
//! - **Stale keys are kept.** A failed fetch, an error status or a document
//!   without a usable key never replaces the keys held: when the endpoint
//!   is down the last good set keeps being used, however old.
//! - **Fail closed without keys.** When no fetch has ever succeeded, a
//!   request waits for one fetch (shared with any in flight, attempted at
//!   most once per [`NO_KEYS_RETRY`]) and then fails as a dependency (503):
//!   the gateway cannot tell a good token from a forged one, and a 401
//!   would blame the caller for the identity provider's outage.
//! - **Unknown `kid`: one refetch, shared, rate limited.** A token naming a
//!   key the set lacks (a rotation the cache has not seen yet) triggers a
//!   refetch, at most one per [`UNKNOWN_KID_INTERVAL`] per endpoint; every
//!   request waiting meanwhile shares that fetch's result (single flight).
//!   A flood of made-up `kid`s therefore costs the endpoint one fetch per
//!   interval, and the flood's tokens fail with `unknown-kid`.
//! - The task ends when no runtime names the endpoint any more.

use super::super::call::Call;
use super::{JwksError, KeySet};
use arc_swap::ArcSwapOption;
use bytes::Bytes;
use http::header::{ACCEPT, CACHE_CONTROL};
use http::{HeaderMap, Request};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;
use tokio::time::Instant;

/// Shortest refresh period, whatever `max-age` says.
pub(crate) const MIN_REFRESH: Duration = Duration::from_secs(5);
/// Longest lifetime honoured, so a rotation is picked up within a day.
const MAX_TTL: Duration = Duration::from_secs(24 * 3600);
/// At most one refetch for an unknown `kid` per endpoint this often.
pub(crate) const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(10);
/// With no keys at all, requests trigger a fetch at most this often.
pub(crate) const NO_KEYS_RETRY: Duration = Duration::from_secs(1);
/// Longest wait between failed background fetches.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The process-wide JWKS caches, by endpoint URI. Entries are weak: the
/// runtimes' providers hold them, so an endpoint no snapshot names any
/// more is dropped with the last runtime that did.
#[derive(Debug, Default)]
pub(crate) struct JwksCache {
    entries: Mutex<HashMap<String, Weak<RemoteJwks>>>,
}

impl JwksCache {
    /// The cache of `uri`, created (and its refresh task started) when no
    /// live runtime has it. The newest snapshot's `call` and default TTL
    /// are used for the fetches from now on.
    pub(crate) fn get(&self, uri: &str, call: Call, default_ttl: Duration) -> Arc<RemoteJwks> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, weak| weak.strong_count() > 0);
        if let Some(existing) = entries.get(uri).and_then(Weak::upgrade) {
            existing.update(call, default_ttl);
            return existing;
        }
        let jwks = Arc::new_cyclic(|me| RemoteJwks::new(me.clone(), call, default_ttl));
        entries.insert(uri.to_string(), Arc::downgrade(&jwks));
        jwks.start_refresh();
        jwks
    }
}

/// What the single-flight lock guards.
#[derive(Debug, Default)]
struct FetchState {
    /// When the last fetch (of any kind) was attempted.
    last_attempt: Option<Instant>,
    /// When the last refetch for an unknown `kid` was attempted.
    last_unknown_kid: Option<Instant>,
    /// The lifetime of the set held.
    ttl: Duration,
}

/// One endpoint's keys.
#[derive(Debug)]
pub(crate) struct RemoteJwks {
    /// Itself, for the refresh task, which must not keep it alive.
    me: Weak<RemoteJwks>,
    /// Whether the refresh task runs.
    refreshing: AtomicBool,
    call: Mutex<Call>,
    default_ttl: Mutex<Duration>,
    keys: ArcSwapOption<KeySet>,
    /// Held for the duration of a fetch: the single flight.
    fetch: tokio::sync::Mutex<FetchState>,
    /// Fetches attempted; a waiter that sees it move shares that fetch.
    attempts: AtomicU64,
}

impl RemoteJwks {
    fn new(me: Weak<RemoteJwks>, call: Call, default_ttl: Duration) -> RemoteJwks {
        RemoteJwks {
            me,
            refreshing: AtomicBool::new(false),
            call: Mutex::new(call),
            default_ttl: Mutex::new(default_ttl),
            keys: ArcSwapOption::empty(),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            attempts: AtomicU64::new(0),
        }
    }

    /// Starts the refresh task unless it runs. Built outside a Tokio
    /// runtime (a synchronous check of a snapshot), the set starts it on
    /// its first use instead, so a set is never left without refreshes.
    fn start_refresh(&self) {
        if self.refreshing.load(Ordering::Acquire) {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current()
            && !self.refreshing.swap(true, Ordering::AcqRel)
        {
            runtime.spawn(refresh_loop(self.me.clone()));
        }
    }

    fn update(&self, call: Call, default_ttl: Duration) {
        *self.call.lock().unwrap_or_else(PoisonError::into_inner) = call;
        *self
            .default_ttl
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = default_ttl;
    }

    /// The keys held, fetching them first when there are none (see the
    /// module's guarantees).
    ///
    /// # Errors
    ///
    /// When there are still none after that fetch.
    pub(crate) async fn keys(&self) -> Result<Arc<KeySet>, JwksError> {
        self.start_refresh();
        if let Some(keys) = self.keys.load_full() {
            return Ok(keys);
        }
        let fetched = self
            .fetch_shared(|state, now| {
                state
                    .last_attempt
                    .is_none_or(|at| now.duration_since(at) >= NO_KEYS_RETRY)
            })
            .await;
        match (self.keys.load_full(), fetched) {
            (Some(keys), _) => Ok(keys),
            (None, Some(Err(error))) => Err(error),
            (None, _) => Err(JwksError::Unusable(format!(
                "no keys from {} yet",
                self.uri()
            ))),
        }
    }

    /// Whether `set` is the set held now.
    pub(crate) fn holds(&self, set: &Arc<KeySet>) -> bool {
        self.keys
            .load()
            .as_ref()
            .is_some_and(|own| Arc::ptr_eq(own, set))
    }

    /// Refetches after an unknown `kid`, unless one was attempted less than
    /// [`UNKNOWN_KID_INTERVAL`] ago. Returns the keys held afterwards when
    /// a fetch happened (this one, or one this call waited for).
    pub(crate) async fn refetch_for_unknown_kid(&self) -> Option<Arc<KeySet>> {
        let fetched = self
            .fetch_shared(|state, now| {
                let allowed = state
                    .last_unknown_kid
                    .is_none_or(|at| now.duration_since(at) >= UNKNOWN_KID_INTERVAL);
                if allowed {
                    state.last_unknown_kid = Some(now);
                }
                allowed
            })
            .await;
        fetched.and_then(|_| self.keys.load_full())
    }

    /// Fetches once for the background task, whatever the rate limits.
    /// Returns the lifetime of the set held.
    async fn refresh(&self) -> Result<Duration, JwksError> {
        match self.fetch_shared(|_, _| true).await {
            Some(result) => result,
            // Someone else fetched while this waited: its lifetime counts.
            None => Ok(self.fetch.lock().await.ttl),
        }
    }

    /// The single flight: waits for any fetch in progress; if one finished
    /// meanwhile, shares it (`Some(Ok)` with its lifetime, as far as this
    /// caller cares); else fetches when `may` allows. `None` when no fetch
    /// happened.
    async fn fetch_shared(
        &self,
        may: impl FnOnce(&mut FetchState, Instant) -> bool,
    ) -> Option<Result<Duration, JwksError>> {
        let seen = self.attempts.load(Ordering::Acquire);
        let mut state = self.fetch.lock().await;
        if self.attempts.load(Ordering::Acquire) != seen {
            return Some(Ok(state.ttl));
        }
        let now = Instant::now();
        if !may(&mut state, now) {
            return None;
        }
        let result = self.fetch_once().await;
        state.last_attempt = Some(now);
        if let Ok(ttl) = &result {
            state.ttl = *ttl;
        }
        self.attempts.fetch_add(1, Ordering::Release);
        Some(result)
    }

    async fn fetch_once(&self) -> Result<Duration, JwksError> {
        let call = self
            .call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let uri = call.uri().to_string();
        let request = Request::get(call.path())
            .header(ACCEPT, "application/json")
            .body(Bytes::new())
            .map_err(|_| JwksError::Unusable(format!("invalid JWKS URI {uri}")))?;
        let response = call.send(request).await.map_err(|source| JwksError::Call {
            uri: uri.clone(),
            source,
        })?;
        if !response.status().is_success() {
            return Err(JwksError::Status {
                uri,
                status: response.status().as_u16(),
            });
        }
        let default_ttl = *self
            .default_ttl
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let ttl = max_age(response.headers()).unwrap_or(default_ttl);
        let set = KeySet::parse(response.body())?;
        tracing::debug!(uri, keys = set.len(), ?ttl, "JWKS fetched");
        self.keys.store(Some(Arc::new(set)));
        Ok(ttl.min(MAX_TTL))
    }

    fn uri(&self) -> String {
        self.call
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .uri()
            .to_string()
    }
}

/// `max-age` of a `Cache-Control` header; `no-cache`/`no-store` are 0.
fn max_age(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(CACHE_CONTROL)?.to_str().ok()?;
    value.split(',').map(str::trim).find_map(|directive| {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-cache" || lower == "no-store" {
            return Some(Duration::ZERO);
        }
        let secs = lower.strip_prefix("max-age=")?.trim_matches('"');
        secs.parse().ok().map(Duration::from_secs)
    })
}

/// When to refresh a set that lives `ttl`: at three quarters of it.
fn refresh_after(ttl: Duration) -> Duration {
    (ttl * 3 / 4).max(MIN_REFRESH)
}

/// Backoff after `failures` failed fetches in a row.
fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.min(7).saturating_sub(1)).min(MAX_BACKOFF)
}

async fn refresh_loop(jwks: Weak<RemoteJwks>) {
    let mut failures = 0u32;
    loop {
        let delay = {
            let Some(jwks) = jwks.upgrade() else {
                return;
            };
            match jwks.refresh().await {
                Ok(ttl) => {
                    failures = 0;
                    refresh_after(ttl)
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    let retry = backoff(failures);
                    let error = chain(&error);
                    tracing::warn!(uri = jwks.uri(), %error, ?retry, "JWKS refresh failed; keeping the keys held");
                    retry
                }
            }
        };
        tokio::time::sleep(delay).await;
    }
}

/// `error: cause: cause`, for one log field.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_and_schedule() {
        let mut headers = HeaderMap::new();
        assert_eq!(max_age(&headers), None);
        headers.insert(CACHE_CONTROL, "public, Max-Age=600".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::from_secs(600)));
        headers.insert(CACHE_CONTROL, "no-store".parse().unwrap());
        assert_eq!(max_age(&headers), Some(Duration::ZERO));
        headers.insert(CACHE_CONTROL, "max-age=oops".parse().unwrap());
        assert_eq!(max_age(&headers), None);
        assert_eq!(
            refresh_after(Duration::from_secs(600)),
            Duration::from_secs(450)
        );
        assert_eq!(refresh_after(Duration::ZERO), MIN_REFRESH);
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
