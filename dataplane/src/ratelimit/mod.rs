//! Rate limiting: the `ratelimit` stage built from a rule's effective
//! [`RateLimits`].
//!
//! Every limit that applies to a request is decided, local ones in memory
//! and global ones in Redis in one round trip for all of them
//! (`redis.rs`); the request passes only if every non-shadow limit admits
//! it. A refusal is a 429 with `Retry-After` (the longest wait of the
//! refusing limits) and, unless turned off, the IETF `RateLimit-Policy` /
//! `RateLimit` headers; with `headers: All` allowed responses carry them
//! too. When Redis cannot decide, each global limit follows its failure
//! mode: admit (`failOpen`, the default) or 503.
//!
//! The stage runs after authentication, so keys can name the consumer or
//! a token's claim. Counters live in [`RateLimitClients`], process-wide,
//! so a snapshot swap keeps them.

mod gcra;
mod headers;
mod key;
mod local;
mod redis;
mod redis_breaker;
mod redis_conn;
mod redis_sentinel;
mod redis_span;

use crate::context::RequestContext;
use crate::error::ProxyError;
use crate::stage::{Completion, CompletionHook, Flow, Stage, StageFuture};
use gcra::{Decision, Shape};
use headers::Standing;
use key::Selector;
use std::sync::{Arc, Mutex};
use tollgate_snapshot::{RateLimit, RateLimitHeaders, RateLimitScope, RateLimits, RedisSettings};

pub(crate) use redis::GlobalCounters;

/// Process-wide rate-limit state: local counters and the Redis client,
/// kept across snapshot swaps (the client is rebuilt only when the Redis
/// settings change).
#[derive(Debug, Default)]
pub(crate) struct RateLimitClients {
    local: local::LocalCounters,
    global: Mutex<Option<(RedisSettings, Arc<GlobalCounters>)>>,
}

impl RateLimitClients {
    /// The Redis client for `settings`, made on first use and kept while
    /// the settings stay the same.
    pub(crate) fn global(&self, settings: Option<&RedisSettings>) -> Option<Arc<GlobalCounters>> {
        let settings = settings?;
        let mut slot = self.global.lock().ok()?;
        if let Some((current, client)) = slot.as_ref()
            && current == settings
        {
            return Some(client.clone());
        }
        let client = Arc::new(GlobalCounters::new(settings.clone()));
        *slot = Some((settings.clone(), client.clone()));
        Some(client)
    }
}

/// One built limit.
#[derive(Debug)]
struct Built {
    limit: RateLimit,
    shape: Shape,
    selector: Selector,
}

/// The `ratelimit` stage of one [`RateLimits`].
#[derive(Debug)]
pub(crate) struct RateLimitStage {
    limits: Vec<Built>,
    headers: RateLimitHeaders,
    clients: Arc<RateLimitClients>,
    global: Option<Arc<GlobalCounters>>,
}

/// What became of one limit for one request.
struct Verdict<'a> {
    built: &'a Built,
    decision: Decision,
}

impl RateLimitStage {
    /// Builds the stage; `global` is the Redis client when the Gateway
    /// configures one.
    pub(crate) fn build(
        config: &RateLimits,
        clients: &Arc<RateLimitClients>,
        global: Option<Arc<GlobalCounters>>,
    ) -> RateLimitStage {
        let limits = config
            .limits
            .iter()
            .map(|limit| Built {
                shape: Shape::new(limit.requests, limit.interval_ms, limit.burst),
                selector: Selector::build(limit),
                limit: limit.clone(),
            })
            .collect();
        RateLimitStage {
            limits,
            headers: config.headers,
            clients: clients.clone(),
            global,
        }
    }

    /// The hook that debits the units the response names (e.g. tokens an
    /// LLM backend used) under `key` once the response is complete; a
    /// global debit goes to Redis in the background.
    fn debit_at_completion(&self, built: &Built, key: String, header: &str) -> CompletionHook {
        let (shape, scope, header) = (built.shape, built.limit.scope, header.to_string());
        let (clients, global) = (self.clients.clone(), self.global.clone());
        Box::new(move |done: &Completion| {
            let Some(units) = done
                .headers
                .get(header.as_str())
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .filter(|u| *u > 0)
            else {
                return;
            };
            match (scope, global) {
                (RateLimitScope::Local, _) => clients.local.debit(&key, shape, units),
                (RateLimitScope::Global, Some(global)) => global.debit_later(key, shape, units),
                (RateLimitScope::Global, None) => {}
            }
        })
    }

    async fn run(&self, ctx: &mut RequestContext<'_>) -> Result<Flow, ProxyError> {
        let route = ctx.route;
        let mut verdicts: Vec<Verdict<'_>> = Vec::with_capacity(self.limits.len());
        let mut asks = Vec::new();
        let mut hooks = Vec::new();
        for built in self.limits.iter().filter(|b| b.selector.applies(ctx)) {
            let key = built.selector.key(ctx, route);
            let cost = built.selector.request_cost(ctx);
            if let Some(header) = built.selector.response_cost_header() {
                hooks.push(self.debit_at_completion(built, key.clone(), header));
            }
            match built.limit.scope {
                RateLimitScope::Local => verdicts.push(Verdict {
                    built,
                    decision: self.clients.local.decide(&key, built.shape, cost),
                }),
                RateLimitScope::Global => asks.push((built, key, cost)),
            }
        }
        ctx.completions.extend(hooks);
        let mut outcome = "allowed";
        if !asks.is_empty() {
            let decided = match &self.global {
                Some(global) => {
                    let batch: Vec<redis::Ask<'_>> = asks
                        .iter()
                        .map(|(b, key, cost)| redis::Ask {
                            key,
                            shape: b.shape,
                            cost: *cost,
                            shadow: b.limit.shadow,
                        })
                        .collect();
                    global.decide(&batch, ctx.trace.as_deref_mut()).await
                }
                None => Err(redis::GlobalError::NotConfigured),
            };
            match decided {
                Ok(decisions) => verdicts.extend(
                    asks.iter()
                        .zip(decisions)
                        .map(|((built, _, _), decision)| Verdict { built, decision }),
                ),
                Err(error) => {
                    if asks.iter().any(|(b, _, _)| !b.limit.fail_open) {
                        ctx.rate_limit = Some("failed_closed");
                        return Err(ProxyError::Dependency {
                            dependency: "rate-limit counters (Redis)".into(),
                            source: Box::new(error),
                        });
                    }
                    tracing::debug!(%error, "global rate limits failed open");
                    outcome = "failed_open";
                }
            }
        }
        let refusing: Vec<&Verdict<'_>> = verdicts.iter().filter(|v| !v.decision.allowed).collect();
        let enforced = refusing.iter().find(|v| !v.built.limit.shadow);
        if enforced.is_none() && !refusing.is_empty() {
            outcome = "shadow_limited";
        }
        let standings: Vec<Standing<'_>> = verdicts
            .iter()
            .map(|v| Standing {
                name: &v.built.limit.name,
                requests: v.built.limit.requests,
                interval_ms: v.built.limit.interval_ms,
                decision: v.decision,
            })
            .collect();
        if let Some(first) = enforced {
            ctx.rate_limit = Some("limited");
            let wait = refusing
                .iter()
                .filter(|v| !v.built.limit.shadow)
                .map(|v| v.decision.retry_after)
                .max()
                .unwrap_or(0);
            let standing = (self.headers != RateLimitHeaders::Off).then(|| {
                let mut map = http::HeaderMap::new();
                headers::write(&mut map, &standings);
                Box::new(map)
            });
            return Err(ProxyError::RateLimited {
                limit: first.built.limit.name.clone(),
                retry_after_secs: Some(headers::ceil_secs(wait).max(1)),
                standing,
            });
        }
        if !verdicts.is_empty() || outcome != "allowed" {
            ctx.rate_limit = Some(outcome);
        }
        if self.headers == RateLimitHeaders::All {
            headers::write(
                ctx.response_headers.get_or_insert_with(Box::default),
                &standings,
            );
        }
        Ok(Flow::Continue)
    }
}

impl Stage for RateLimitStage {
    fn name(&self) -> &'static str {
        "ratelimit"
    }

    fn on_request<'a, 'r: 'a>(&'a self, ctx: &'a mut RequestContext<'r>) -> StageFuture<'a> {
        Box::pin(self.run(ctx))
    }
}
