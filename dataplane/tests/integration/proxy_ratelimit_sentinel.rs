//! Global limits in Sentinel mode, against real `redis-server` processes:
//! a master, a replica and a sentinel. The data plane asks the sentinels
//! (in order, past one that is down) for the master, decides there, and
//! follows a forced failover to the promoted replica.

use crate::common::*;
use crate::proxy_ratelimit::{limit, limited, with};
use std::time::{Duration, Instant};
use tollgate_e2e::redis_sentinel::{MASTER_NAME, RedisSentinel};
use tollgate_snapshot::*;

/// Sentinel-mode settings: a sentinel that is down first (nothing listens
/// on port 1), then the real ones, so the data plane must move on to the
/// next sentinel.
fn sentinel_settings(set: &RedisSentinel) -> RedisSettings {
    let dead = "redis://127.0.0.1:1".to_string();
    RedisSettings {
        urls: std::iter::once(dead).chain(set.urls()).collect(),
        mode: RedisMode::Sentinel {
            master_name: MASTER_NAME.into(),
            sentinel_username: None,
            sentinel_password: None,
        },
        username: None,
        password: None,
        ca_pem: None,
        pool_size: 2,
        timeout_ms: 1000,
        key_prefix: "tollgate:sentinel:".into(),
    }
}

/// Per tenant (header `x-tenant`), three requests a minute, in Redis.
fn per_tenant(fail_open: bool) -> RateLimits {
    let mut per_tenant = limit("per-tenant", 3, 60_000, RateLimitScope::Global);
    per_tenant.key = vec![KeyPart::Header {
        name: "x-tenant".into(),
    }];
    per_tenant.fail_open = fail_open;
    RateLimits {
        limits: vec![per_tenant],
        headers: RateLimitHeaders::Limited,
    }
}

/// Statuses of five requests of `tenant`.
async fn five(gw: &Gateway, tenant: &str) -> Vec<u16> {
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(gw.send(with(&[("x-tenant", tenant)])).await.status.as_u16());
    }
    statuses
}

/// The master the sentinel names decides: exactly three of five requests
/// pass, then 429 (fail-closed, so a Redis that could not decide would
/// answer 503, not 200), and the counter and the script calls are on the
/// master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_global_limit_is_decided_on_the_master_the_sentinels_name() {
    let set = RedisSentinel::start(0, 1).unwrap();
    let echo = Echo::start("echo").await;
    let gw = limited(&echo, per_tenant(false), Some(sentinel_settings(&set))).await;
    assert_eq!(five(&gw, "t1").await, [200, 200, 200, 429, 429]);
    let master = set.master().unwrap();
    assert!(
        master.calls("evalsha").unwrap() >= 4,
        "script calls on the master"
    );
    let keys = master.command(&["KEYS", "tollgate:sentinel:*"]).unwrap();
    assert_eq!(
        keys.lines().count(),
        1,
        "one counter on the master: {keys:?}"
    );
}

/// `SENTINEL FAILOVER` promotes the replica while the old master stays up
/// (and writable, until the sentinel demotes it seconds later): within a
/// few seconds limits are decided on the new master, and no request gets
/// a 5xx meanwhile (fail-open admits while the pool reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_follow_a_failover_to_the_promoted_replica() {
    let set = RedisSentinel::start(1, 1).unwrap();
    let echo = Echo::start("echo").await;
    let gw = limited(&echo, per_tenant(true), Some(sentinel_settings(&set))).await;
    assert_eq!(five(&gw, "before").await, [200, 200, 200, 429, 429]);
    let old = set.master().unwrap().port;

    let new = tokio::task::block_in_place(|| set.failover()).unwrap();
    assert_ne!(new.port, old);
    let promoted_at = Instant::now();
    // Fresh tenants, one request each, until one is decided on the new
    // master (its script calls grow).
    let mut n = 0;
    loop {
        let before = new.calls("evalsha").unwrap();
        let answer = gw.send(with(&[("x-tenant", &format!("probe-{n}"))])).await;
        assert!(
            answer.status.as_u16() < 500,
            "{} during failover",
            answer.status
        );
        if new.calls("evalsha").unwrap() > before {
            break;
        }
        assert!(
            promoted_at.elapsed() < Duration::from_secs(5),
            "still deciding on the old master {n} requests after the failover"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old_calls = set.servers.iter().find(|s| s.port == old).unwrap();
    let old_before = old_calls.calls("evalsha").unwrap_or(0);
    let new_before = new.calls("evalsha").unwrap();
    assert_eq!(five(&gw, "after").await, [200, 200, 200, 429, 429]);
    assert!(new.calls("evalsha").unwrap() >= new_before + 4);
    assert_eq!(old_calls.calls("evalsha").unwrap_or(0), old_before);
}

/// Over TLS with a private CA: the sentinels and the master are reached
/// with `rediss://`, trusting the CA, and the limit is decided on the
/// master.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_and_master_over_tls_with_a_private_ca() {
    let ca = tollgate_e2e::tls::Ca::new("redis sentinel test CA").unwrap();
    let set = RedisSentinel::start_tls(&ca, 0, 1).unwrap();
    let echo = Echo::start("echo").await;
    let mut settings = sentinel_settings(&set);
    settings.urls.remove(0);
    settings.ca_pem = Some(ca.pem());
    let gw = limited(&echo, per_tenant(false), Some(settings)).await;
    assert_eq!(five(&gw, "t1").await, [200, 200, 200, 429, 429]);
    assert!(set.master().unwrap().calls("evalsha").unwrap() >= 4);
}

/// Sentinels with their own password: without it no sentinel names the
/// master and a fail-closed limit answers 503; with it the limit decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sentinels_with_their_own_password() {
    let set = RedisSentinel::start_with_sentinel_password("watch-s3cret", 0, 1).unwrap();
    let echo = Echo::start("echo").await;
    let settings = sentinel_settings(&set);
    let refused = limited(&echo, per_tenant(false), Some(settings.clone())).await;
    assert_eq!(refused.send(with(&[("x-tenant", "t1")])).await.status, 503);
    let mut settings = settings;
    settings.mode = RedisMode::Sentinel {
        master_name: MASTER_NAME.into(),
        sentinel_username: None,
        sentinel_password: Some(Redacted::new("watch-s3cret")),
    };
    let gw = limited(&echo, per_tenant(false), Some(settings)).await;
    assert_eq!(five(&gw, "t2").await, [200, 200, 200, 429, 429]);
}
