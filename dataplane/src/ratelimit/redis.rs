//! Global counters in Redis, shared by every replica of a Gateway.
//!
//! **One round trip per request at most, decided on the server.** All the
//! global limits of a request go to one Lua script (`EVALSHA`, loaded on
//! first use) that reads Redis `TIME` as the clock — replicas' clocks never
//! matter — runs the same GCRA as local limits, and grants every limit or
//! none, atomically. Keys expire once at rest.
//!
//! **Hot keys do not cost a round trip each.** A replica asks for a lease:
//! the request's own cost plus up to 1% of the limit's capacity (at most
//! 1,000 units), granted only as far as they fit, and spends the leftover
//! locally for up to [`LEASE_TTL`]. Leased units are taken from the shared
//! counter *before* they are used, so no replica can admit a unit the
//! counter did not grant; units a lease never spends lapse. With `R`
//! replicas and lease size `L`, the admitted count differs from the exact
//! GCRA by at most `R·L` units per window (spent late or lapsed), that is
//! at most `R` percent of the capacity. A key Redis refused is remembered
//! as refused until its retry time, so an abusive client costs no round
//! trips either.
//!
//! **A dead Redis costs one timeout, then nothing.** Every call has the
//! configured timeout; repeated failures open a circuit and decisions
//! fail at once (each limit's `failOpen` decides) until a probe succeeds
//! (see [`super::redis_breaker`]).

use super::gcra::{self, Decision, Shape};
use super::redis_breaker::Breaker;
use super::redis_conn::{Conn, Pool};
use super::redis_span;
use crate::telemetry::StageTrace;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_snapshot::RedisSettings;

/// How long leased units may be spent.
pub(crate) const LEASE_TTL: Duration = Duration::from_millis(500);

/// The decision script. KEYS: the counters. ARGV, five per key: period
/// (µs), capacity, units wanted (cost plus lease), the request's cost,
/// and a mode: 0 a limit, 1 a shadow limit (never gates the others), 2 a
/// debit (takes the units whether they fit or not). A request needs room
/// for at least one unit even when its cost is 0 (debited later). Returns
/// per key `{granted, in_use_µs_after}`.
const SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = #KEYS
local plan = {}
local ok = true
for i = 1, n do
  local a = (i - 1) * 5
  local period = tonumber(ARGV[a + 1])
  local capacity = tonumber(ARGV[a + 2])
  local wanted = tonumber(ARGV[a + 3])
  local cost = tonumber(ARGV[a + 4])
  local mode = ARGV[a + 5]
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local base = math.max(tat, now)
  local fit = math.floor((period * capacity - (base - now)) / period)
  if fit < 0 then fit = 0 end
  local grant = math.min(wanted, fit)
  if mode == '2' then
    grant = wanted
  elseif fit < math.max(cost, 1) then
    grant = 0
    if mode ~= '1' then ok = false end
  end
  plan[i] = {grant, base, period, cost}
end
local out = {}
for i = 1, n do
  local grant, base, period, cost = plan[i][1], plan[i][2], plan[i][3], plan[i][4]
  if not ok then grant = 0 end
  if grant > 0 then
    base = base + grant * period
    redis.call('SET', KEYS[i], string.format('%d', base), 'PX', math.ceil((base - now) / 1000) + 1000)
  end
  out[i] = {grant, base - now}
end
return out
";

/// One global limit of a request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask<'a> {
    /// The hashed key (the configured prefix is added here).
    pub(crate) key: &'a str,
    /// The limit's shape.
    pub(crate) shape: Shape,
    /// The request's cost.
    pub(crate) cost: u64,
    /// A shadow limit: never refuses the request's other limits.
    pub(crate) shadow: bool,
}

/// Why Redis could not decide.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GlobalError {
    /// The Gateway configures no Redis.
    #[error("no Redis is configured for global limits")]
    NotConfigured,
    /// Recent calls failed; not calling for a while.
    #[error("Redis circuit open after repeated failures")]
    CircuitOpen,
    /// No answer within the timeout.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The call failed.
    #[error("Redis call failed")]
    Redis(#[source] ::redis::RedisError),
}

/// Units leased to this replica for one key.
#[derive(Debug, Clone, Copy)]
struct Lease {
    units: u64,
    until: Instant,
}

/// The Redis side of global limits; see the module docs.
pub(crate) struct GlobalCounters {
    settings: RedisSettings,
    timeout: Duration,
    script: ::redis::Script,
    pool: Pool,
    leases: Mutex<HashMap<String, Lease>>,
    refused: Mutex<HashMap<String, Instant>>,
    breaker: Breaker,
    gates: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Script calls made, for tests and metrics.
    pub(crate) calls: AtomicUsize,
}

impl std::fmt::Debug for GlobalCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalCounters")
            .field("urls", &self.settings.urls)
            .finish_non_exhaustive()
    }
}

impl GlobalCounters {
    /// A client for `settings`; connects on first use.
    pub(crate) fn new(settings: RedisSettings) -> GlobalCounters {
        let timeout = Duration::from_millis(settings.timeout_ms.max(1));
        GlobalCounters {
            timeout,
            pool: Pool::new(settings.clone(), timeout),
            settings,
            script: ::redis::Script::new(SCRIPT),
            leases: Mutex::default(),
            refused: Mutex::default(),
            breaker: Breaker::default(),
            gates: Mutex::default(),
            calls: AtomicUsize::new(0),
        }
    }

    /// Decides every ask of one request: from leases and remembered
    /// refusals where possible, else in one script call.
    ///
    /// # Errors
    ///
    /// [`GlobalError`] when Redis cannot decide; the caller applies each
    /// limit's failure mode.
    pub(crate) async fn decide(
        &self,
        asks: &[Ask<'_>],
        trace: Option<&mut StageTrace>,
    ) -> Result<Vec<Decision>, GlobalError> {
        let now = Instant::now();
        if let Some(local) = self.answer_locally(asks, now) {
            return Ok(local);
        }
        // One call at a time per leasing key on this replica: requests
        // that arrive while a lease is being fetched wait for it and spend
        // it, instead of each fetching (and stranding) a lease of their own.
        let gate = asks
            .iter()
            .find(|a| lease_size(a.shape) > 0)
            .and_then(|a| self.gate(a.key));
        let _turn = match &gate {
            Some(gate) => Some(gate.clone().lock_owned().await),
            None => None,
        };
        let now = Instant::now();
        if gate.is_some()
            && let Some(local) = self.answer_locally(asks, now)
        {
            self.release(asks);
            return Ok(local);
        }
        let decided = self.decide_remote(asks, now, trace).await;
        if gate.is_some() {
            self.release(asks);
        }
        decided
    }

    /// The per-key turn of leasing keys.
    fn gate(&self, key: &str) -> Option<Arc<tokio::sync::Mutex<()>>> {
        let mut gates = self.gates.lock().ok()?;
        Some(gates.entry(key.to_string()).or_default().clone())
    }

    /// Forgets a key's turn when nobody else waits for it.
    fn release(&self, asks: &[Ask<'_>]) {
        if let (Ok(mut gates), Some(ask)) = (
            self.gates.lock(),
            asks.iter().find(|a| lease_size(a.shape) > 0),
        ) && gates
            .get(ask.key)
            .is_some_and(|g| Arc::strong_count(g) <= 2)
        {
            gates.remove(ask.key);
        }
    }

    async fn decide_remote(
        &self,
        asks: &[Ask<'_>],
        now: Instant,
        trace: Option<&mut StageTrace>,
    ) -> Result<Vec<Decision>, GlobalError> {
        self.breaker.admit(now)?;
        // A sampled request's round trip is a span of its own.
        let span = trace.as_deref().map(StageTrace::open);
        let result = tokio::time::timeout(self.timeout, self.call(asks, false)).await;
        if let (Some(trace), Some(span)) = (trace, span) {
            trace.close(span, redis_span::end(&result, asks.len()));
        }
        let answers = match result {
            Ok(Ok(answers)) => answers,
            Ok(Err(error)) => {
                self.breaker.failed(now);
                return Err(GlobalError::Redis(error));
            }
            Err(_) => {
                self.breaker.failed(now);
                return Err(GlobalError::Timeout(self.timeout));
            }
        };
        self.breaker.succeeded();
        Ok(self.settle(asks, &answers, now))
    }

    /// Every ask answered without Redis: all leased, or one remembered
    /// as refused.
    fn answer_locally(&self, asks: &[Ask<'_>], now: Instant) -> Option<Vec<Decision>> {
        if let Ok(refused) = self.refused.lock() {
            let waits: Vec<Option<Duration>> = asks
                .iter()
                .map(|a| {
                    refused
                        .get(a.key)
                        .filter(|u| **u > now)
                        .map(|u| u.duration_since(now))
                })
                .collect();
            // A remembered refusal of an enforced limit refuses the request
            // (the others are not counted, as the script would not).
            if asks
                .iter()
                .zip(&waits)
                .any(|(a, w)| !a.shadow && w.is_some())
            {
                return Some(
                    waits
                        .iter()
                        .map(|w| w.map_or(allowed(0), refusal))
                        .collect(),
                );
            }
        }
        let mut leases = self.leases.lock().ok()?;
        let covered = asks.iter().all(|a| {
            leases
                .get(a.key)
                .is_some_and(|l| l.until > now && l.units >= a.cost)
        });
        if !covered {
            return None;
        }
        Some(
            asks.iter()
                .map(|a| {
                    let lease = leases.get_mut(a.key).map(|l| {
                        l.units -= a.cost;
                        l.units
                    });
                    allowed(lease.unwrap_or(0))
                })
                .collect(),
        )
    }

    /// One script call (one per limit in a cluster). In Sentinel mode a
    /// call a demoted master refused is made once more, on the master the
    /// sentinels name now: the refused write changed nothing.
    async fn call(
        &self,
        asks: &[Ask<'_>],
        debit: bool,
    ) -> Result<Vec<(u64, u64)>, ::redis::RedisError> {
        let mut retried = false;
        loop {
            let (conn, slot) = self.pool.get().await?;
            let result = self.call_on(conn, asks, debit).await;
            match result {
                Err(error) => {
                    self.pool.reset(slot).await;
                    if retried || !self.pool.master_demoted(&error) {
                        return Err(error);
                    }
                    retried = true;
                }
                ok => return ok,
            }
        }
    }

    async fn call_on(
        &self,
        conn: Conn,
        asks: &[Ask<'_>],
        debit: bool,
    ) -> Result<Vec<(u64, u64)>, ::redis::RedisError> {
        match conn {
            Conn::Single(mut c) => {
                self.calls.fetch_add(1, Ordering::Relaxed);
                self.invocation(asks, debit).invoke_async(&mut c).await
            }
            // A cluster keeps each key on the node of its slot, and one
            // script may only touch keys of one slot: each limit is
            // decided on its own (atomic per limit, not across limits).
            Conn::Cluster(c) => {
                let calls = asks.iter().map(|ask| {
                    let mut c = c.clone();
                    self.calls.fetch_add(1, Ordering::Relaxed);
                    let invocation = self.invocation(std::slice::from_ref(ask), debit);
                    async move {
                        let answer: Vec<(u64, u64)> = invocation.invoke_async(&mut c).await?;
                        Ok::<_, ::redis::RedisError>(answer)
                    }
                });
                futures_util::future::try_join_all(calls)
                    .await
                    .map(|answers| answers.into_iter().flatten().collect())
            }
        }
    }

    /// The script call deciding `asks`.
    fn invocation(&self, asks: &[Ask<'_>], debit: bool) -> ::redis::ScriptInvocation<'_> {
        let mut invocation = self.script.prepare_invoke();
        for ask in asks {
            let (wanted, mode) = match (debit, ask.shadow) {
                (true, _) => (ask.cost, 2),
                (false, shadow) => (
                    ask.cost.saturating_add(lease_size(ask.shape)),
                    u8::from(shadow),
                ),
            };
            invocation
                .key(format!("{}{}", self.settings.key_prefix, ask.key))
                .arg(ask.shape.period)
                .arg(ask.shape.capacity)
                .arg(wanted)
                .arg(ask.cost)
                .arg(mode);
        }
        invocation
    }

    /// Turns the script's answers into decisions, keeping leftovers as
    /// leases and refusals as remembered.
    fn settle(&self, asks: &[Ask<'_>], answers: &[(u64, u64)], now: Instant) -> Vec<Decision> {
        let mut leases = self.leases.lock().ok();
        let mut refused = self.refused.lock().ok();
        asks.iter()
            .zip(answers)
            .map(|(ask, &(granted, in_use))| {
                if granted >= ask.cost.max(1) {
                    let spare = granted.saturating_sub(ask.cost);
                    if let Some(leases) = leases.as_mut() {
                        if leases.len() > 100_000 {
                            leases.retain(|_, l| l.until > now);
                        }
                        // Concurrent calls for one key each bring their
                        // spare units: they add up, never replace.
                        let lease = leases.entry(ask.key.to_string()).or_insert(Lease {
                            units: 0,
                            until: now,
                        });
                        if lease.until <= now {
                            lease.units = 0;
                        }
                        lease.units += spare;
                        lease.until = now + LEASE_TTL;
                    }
                    let room = ask.shape.window().saturating_sub(in_use) / ask.shape.period;
                    Decision {
                        allowed: true,
                        tat: 0,
                        remaining: room.saturating_add(spare),
                        retry_after: 0,
                        reset: in_use,
                    }
                } else {
                    let decision = gcra::decide(ask.shape, in_use, 0, ask.cost);
                    let wait = Duration::from_micros(decision.retry_after.max(1));
                    if let Some(refused) = refused.as_mut() {
                        if refused.len() > 100_000 {
                            refused.retain(|_, u| *u > now);
                        }
                        if ask.cost <= 1 {
                            refused.insert(ask.key.to_string(), now + wait);
                        }
                    }
                    refusal(wait)
                }
            })
            .collect()
    }

    /// Adds `units` to a key the response named a cost for, in the
    /// background (the response is not held for it).
    pub(crate) fn debit_later(self: &Arc<Self>, key: String, shape: Shape, units: u64) {
        let this = self.clone();
        tokio::spawn(async move {
            let ask = [Ask {
                key: &key,
                shape,
                cost: units,
                shadow: true,
            }];
            if this.breaker.admit(Instant::now()).is_ok() {
                match tokio::time::timeout(this.timeout, this.call(&ask, true)).await {
                    Ok(Ok(_)) => this.breaker.succeeded(),
                    _ => this.breaker.failed(Instant::now()),
                }
            }
        });
    }
}

/// Units leased beyond a request's cost: 1% of the capacity, 0 to 1,000.
pub(crate) fn lease_size(shape: Shape) -> u64 {
    (shape.capacity / 100).min(1000)
}

fn allowed(remaining: u64) -> Decision {
    Decision {
        allowed: true,
        tat: 0,
        remaining,
        retry_after: 0,
        reset: 0,
    }
}

fn refusal(wait: Duration) -> Decision {
    Decision {
        allowed: false,
        tat: 0,
        remaining: 0,
        retry_after: u64::try_from(wait.as_micros()).unwrap_or(u64::MAX),
        reset: u64::try_from(wait.as_micros()).unwrap_or(u64::MAX),
    }
}
