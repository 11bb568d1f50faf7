//! Scenario 11: what a global (Redis) rate limit costs when it never trips.
//!
//! Tollgate without a limit against Tollgate with one global limit on a
//! single hot key (every request counts against the same Redis key), and
//! nginx without a limit against nginx with `limit_req` on one shared zone,
//! so both proxies' price of "count every request" sits side by side.
//! Throughput as in scenario 1 (`wrk`, modes alternated run by run); the
//! latency Tollgate adds with the limit from an open-loop run at a quarter
//! of its no-limit throughput (where the proxy without the limit is not
//! yet queueing, so the difference is the limit's and not the queue's); Redis calls per request from the server's
//! `INFO commandstats`; instructions per request under callgrind.
//!
//! The limit is 10 million requests a minute with no burst: far above
//! what one core can serve, so it never trips, and large enough that a
//! replica takes its 1,000-request lease (1% of the limit, capped) per
//! Redis call, as it would for any busy key.
//!
//! Goals: ≥ 0.85× the no-limit throughput, ≤ 150 µs added p99, ≤ 0.1
//! Redis calls per request.

use super::modes::{self, Instructions, ModeRow};
use super::{Bench, Goal};
use crate::callgrind::{self, Caches, Load};
use crate::error::BenchError;
use crate::openloop::{self, OpenLoop};
use crate::peers::{self, Running, Target, Tweaks};
use crate::stats::{median, ratio};
use crate::wrk;
use serde::Serialize;
use tollgate_e2e::redis::RedisServer;
use tollgate_snapshot::{
    Cost, RateLimit, RateLimitHeaders, RateLimitScope, RateLimits, RedisMode, RedisSettings,
};

/// Requests per minute of the limit (never reached).
const LIMIT_PER_MINUTE: u64 = 10_000_000;

/// One proxy with or without its limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Tollgate, no rate limit.
    TollgateNone,
    /// Tollgate, one global limit in Redis.
    TollgateGlobal,
    /// nginx, no limit.
    NginxNone,
    /// nginx `limit_req` on one zone.
    NginxLimitReq,
}

impl Mode {
    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Mode::TollgateNone => "Tollgate, no limit",
            Mode::TollgateGlobal => "Tollgate, global limit (Redis)",
            Mode::NginxNone => "nginx, no limit",
            Mode::NginxLimitReq => "nginx, limit_req",
        }
    }

    fn target(self) -> Target {
        match self {
            Mode::TollgateNone | Mode::TollgateGlobal => Target::Tollgate,
            Mode::NginxNone | Mode::NginxLimitReq => Target::Nginx,
        }
    }

    /// The mode without a limit this one is compared with.
    pub fn baseline(self) -> Mode {
        match self {
            Mode::TollgateNone | Mode::TollgateGlobal => Mode::TollgateNone,
            Mode::NginxNone | Mode::NginxLimitReq => Mode::NginxNone,
        }
    }

    fn tweaks(self, redis: &RedisServer) -> Tweaks {
        let label = match self {
            Mode::TollgateNone => "tollgate-no-limit",
            Mode::TollgateGlobal => "tollgate-global-limit",
            Mode::NginxNone => "nginx-no-limit",
            Mode::NginxLimitReq => "nginx-limit-req",
        };
        Tweaks {
            label: Some(label.into()),
            rate_limit: (self == Mode::TollgateGlobal).then(|| (global_limit(), settings(redis))),
            nginx_limit_req: (self == Mode::NginxLimitReq).then_some(LIMIT_PER_MINUTE),
            ..Tweaks::default()
        }
    }
}

/// One global limit keyed by nothing: a single hot key.
fn global_limit() -> RateLimits {
    RateLimits {
        limits: vec![RateLimit {
            name: "bench".into(),
            source: "ratelimitpolicy/bench/hot-key".into(),
            requests: LIMIT_PER_MINUTE,
            interval_ms: 60_000,
            burst: 0,
            scope: RateLimitScope::Global,
            key: vec![],
            when: vec![],
            cost: Cost::default(),
            shadow: false,
            fail_open: true,
        }],
        headers: RateLimitHeaders::Limited,
    }
}

fn settings(redis: &RedisServer) -> RedisSettings {
    RedisSettings {
        urls: vec![redis.url()],
        mode: RedisMode::Standalone,
        username: None,
        password: None,
        ca_pem: None,
        pool_size: 4,
        timeout_ms: 50,
        key_prefix: "tollgate:bench:".into(),
    }
}

/// Tollgate's open-loop latency with and without the limit.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LimitLatency {
    /// Requests per second sent.
    pub rate: f64,
    /// Median p99 over runs without the limit, µs.
    pub p99_none_us: f64,
    /// Median p99 over runs with the limit, µs.
    pub p99_global_us: f64,
    /// Failed or non-2xx requests over all runs.
    pub failures: u64,
}

/// The scenario's outcome.
#[derive(Clone, Debug, Default, Serialize)]
pub struct RateLimitCost {
    /// Connections used by wrk.
    pub connections: usize,
    /// One row per mode that ran.
    pub rows: Vec<ModeRow<Mode>>,
    /// Latency with and without the limit.
    pub latency: Option<LimitLatency>,
    /// Redis script calls during the global runs.
    pub redis_calls: u64,
    /// Requests served during the global runs.
    pub limited_requests: u64,
    /// Instructions per request, Tollgate's modes.
    pub instructions: Vec<Instructions<Mode>>,
}

impl RateLimitCost {
    /// Median requests per second of `mode`.
    pub fn rps(&self, mode: Mode) -> Option<f64> {
        modes::rps(&self.rows, &mode)
    }

    /// Redis calls per request on the hot key.
    pub fn calls_per_request(&self) -> Option<f64> {
        (self.limited_requests > 0).then(|| self.redis_calls as f64 / self.limited_requests as f64)
    }

    /// Callgrind instructions per request of `mode`.
    pub fn per_request(&self, mode: Mode) -> Option<f64> {
        modes::per_request(&self.instructions, &mode)
    }
}

/// Runs the scenario; `None` when `wrk` or `redis-server` is missing.
///
/// # Errors
///
/// When a proxy does not start, `wrk` or the generator fails, or a
/// callgrind run fails.
pub fn run(bench: &Bench) -> Result<Option<RateLimitCost>, BenchError> {
    if !wrk::available() {
        bench.note("ratelimit: wrk is not installed; skipped");
        return Ok(None);
    }
    let redis = match RedisServer::start() {
        Ok(r) => r,
        Err(e) => {
            bench.note(format!("ratelimit: no Redis ({e}); skipped"));
            return Ok(None);
        }
    };
    let peers_up = bench.available("ratelimit", &[Target::Nginx]);
    let modes: Vec<Mode> = [
        Mode::TollgateNone,
        Mode::TollgateGlobal,
        Mode::NginxNone,
        Mode::NginxLimitReq,
    ]
    .into_iter()
    .filter(|m| m.target() == Target::Tollgate || peers_up.contains(&m.target()))
    .collect();
    let running: Vec<(Mode, Running)> = modes
        .iter()
        .map(|&m| {
            peers::start_tweaked(&bench.env, m.target(), bench.backend, 0, &m.tweaks(&redis))
                .map(|r| (m, r))
        })
        .collect::<Result<_, _>>()?;
    let mut out = RateLimitCost {
        connections: bench.plan.throughput_connections,
        ..RateLimitCost::default()
    };
    out.rows = throughput(
        bench,
        &running,
        &redis,
        &mut out.redis_calls,
        &mut out.limited_requests,
    )?;
    let none_rps = out.rps(Mode::TollgateNone).unwrap_or(0.0);
    out.latency = Some(latency(bench, &running, none_rps)?);
    drop(running);
    if callgrind::available() {
        for mode in [Mode::TollgateNone, Mode::TollgateGlobal] {
            let count = callgrind::count(
                &bench.env,
                Target::Tollgate,
                bench.backend,
                &mode.tweaks(&redis),
                Load::Requests(bench.plan.callgrind_requests),
                Caches::Off,
            )?;
            bench.progress(format!(
                "ratelimit callgrind {}: {:.0} instructions per request",
                mode.name(),
                count.per_request
            ));
            out.instructions.push(Instructions { mode, count });
        }
    } else {
        bench.note("ratelimit: valgrind is not installed; no instruction counts");
    }
    Ok(Some(out))
}

/// Script calls Redis has served so far (the limiter's only commands).
fn script_calls(redis: &RedisServer) -> u64 {
    ["evalsha", "eval"]
        .iter()
        .map(|c| redis.calls(c).unwrap_or(0))
        .sum()
}

/// The modes' wrk runs, alternated; counts Redis calls over the global runs.
fn throughput(
    bench: &Bench,
    running: &[(Mode, Running)],
    redis: &RedisServer,
    calls: &mut u64,
    limited: &mut u64,
) -> Result<Vec<ModeRow<Mode>>, BenchError> {
    let mut rows: Vec<ModeRow<Mode>> = running
        .iter()
        .map(|(mode, _)| ModeRow::new(*mode))
        .collect();
    for run in 0..bench.plan.runs {
        for ((mode, r), row) in running.iter().zip(rows.iter_mut()) {
            let before = script_calls(redis);
            let (result, busy) = r.busy_during(|| {
                wrk::run(
                    r.addr,
                    "/",
                    bench.plan.throughput_connections,
                    bench.plan.throughput,
                    bench.env.pin,
                )
            });
            let result = result?;
            if *mode == Mode::TollgateGlobal {
                *calls += script_calls(redis).saturating_sub(before);
                *limited += result.requests;
            }
            row.record(&result, busy);
            bench.progress(format!(
                "ratelimit run {run} {}: {:.0} rps",
                mode.name(),
                result.rps
            ));
        }
    }
    Ok(rows)
}

/// Open-loop runs at a quarter of Tollgate's no-limit throughput, with
/// and without the limit, alternated. At half, on two shared cores, the
/// proxy without the limit already queues (p99 in milliseconds, swinging
/// run to run), which would bury the limit's own cost.
fn latency(
    bench: &Bench,
    running: &[(Mode, Running)],
    none_rps: f64,
) -> Result<LimitLatency, BenchError> {
    let rate = if bench.plan.smoke || none_rps <= 0.0 {
        crate::harness::FALLBACK_RATE
    } else {
        none_rps / 4.0
    };
    let mut p99 = [Vec::new(), Vec::new()];
    let mut failures = 0;
    for run in 0..bench.plan.runs {
        for (i, mode) in [Mode::TollgateNone, Mode::TollgateGlobal]
            .iter()
            .enumerate()
        {
            let Some((_, r)) = running.iter().find(|(m, _)| m == mode) else {
                continue;
            };
            let result = openloop::run(&OpenLoop {
                addr: r.addr,
                path: "/".into(),
                rate,
                duration: bench.plan.latency,
                connections: bench.plan.latency_connections,
            })?;
            bench.progress(format!(
                "ratelimit latency run {run} {} at {rate:.0} rps: p99 {} µs",
                mode.name(),
                result.at(99.0)
            ));
            failures += result.errors + result.non_2xx;
            p99[i].push(result.at(99.0) as f64);
        }
    }
    Ok(LimitLatency {
        rate,
        p99_none_us: median(&p99[0]),
        p99_global_us: median(&p99[1]),
        failures,
    })
}

/// The scenario's goals.
pub fn goals(t: &RateLimitCost) -> Vec<Goal> {
    let s = "11 ratelimit";
    let mut goals = Vec::new();
    if let (Some(none), Some(global)) = (t.rps(Mode::TollgateNone), t.rps(Mode::TollgateGlobal)) {
        goals.push(Goal::at_least(
            s,
            &format!(
                "throughput global limit / no limit (0 B, {} conns)",
                t.connections
            ),
            ratio(global, none),
            0.85,
            "x",
        ));
    }
    if let Some(l) = &t.latency {
        goals.push(Goal::at_most(
            s,
            "added p99 of the global limit",
            l.p99_global_us - l.p99_none_us,
            150.0,
            "µs",
        ));
    }
    if let Some(calls) = t.calls_per_request() {
        goals.push(Goal::at_most(
            s,
            "Redis calls per request, hot key",
            calls,
            0.1,
            "",
        ));
    }
    goals
}
