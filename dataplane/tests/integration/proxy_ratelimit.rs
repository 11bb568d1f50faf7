//! The `ratelimit` stage through the proxy: local and global (real
//! `redis-server`) limits, headers, conditions, shadow, cost, accuracy
//! across replicas, round trips on a hot key, and Redis failing.

use crate::common::*;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use std::time::{Duration, Instant};
use tollgate_e2e::redis::{RedisCluster, RedisServer};
use tollgate_snapshot::*;

pub(crate) fn limit(
    name: &str,
    requests: u64,
    interval_ms: u64,
    scope: RateLimitScope,
) -> RateLimit {
    RateLimit {
        name: name.into(),
        source: "ratelimitpolicy/default/api".into(),
        requests,
        interval_ms,
        burst: 0,
        scope,
        key: vec![KeyPart::ClientIp],
        when: vec![],
        cost: Cost::default(),
        shadow: false,
        fail_open: true,
    }
}

fn redis_settings(server: &RedisServer, timeout_ms: u64) -> RedisSettings {
    RedisSettings {
        urls: vec![server.url()],
        mode: RedisMode::Standalone,
        username: None,
        password: None,
        ca_pem: None,
        pool_size: 2,
        timeout_ms,
        key_prefix: "tollgate:test:".into(),
    }
}

/// A gateway whose one rule carries `limits`.
pub(crate) async fn limited(
    echo: &Echo,
    limits: RateLimits,
    redis: Option<RedisSettings>,
) -> Gateway {
    let endpoint = echo.endpoint();
    Gateway::start(move |port| {
        let mut rule = route("api", vec![], vec![to(0, 1)]);
        rule.rate_limit = Some(0);
        let mut snap = snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![rule],
            vec![backend("echo", vec![endpoint])],
        );
        snap.rate_limits = vec![limits];
        snap.settings.redis = redis;
        snap
    })
    .await
}

pub(crate) fn with(headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    get_with("api.example", "/x", headers)
}

/// A local limit: N pass, the next is a 429 with `Retry-After` and the
/// IETF headers; with `headers: All` allowed answers carry them too.
#[tokio::test]
async fn local_limit_refuses_with_retry_after_and_headers() {
    let echo = Echo::start("echo").await;
    let limits = RateLimits {
        limits: vec![limit("per-client", 3, 60_000, RateLimitScope::Local)],
        headers: RateLimitHeaders::All,
    };
    let gw = limited(&echo, limits, None).await;
    for left in [2, 1, 0] {
        let ok = gw.send(with(&[])).await;
        assert_eq!(ok.status, StatusCode::OK);
        assert_eq!(ok.headers["ratelimit-policy"], "\"per-client\";q=3;w=60");
        let state = ok.headers["ratelimit"].to_str().unwrap().to_string();
        assert!(
            state.starts_with(&format!("\"per-client\";r={left};")),
            "{state}"
        );
    }
    let refused = gw.send(with(&[])).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["x-tollgate-error"], "rate-limited");
    let wait: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=20).contains(&wait), "{wait}");
    assert!(
        refused.headers["ratelimit"]
            .to_str()
            .unwrap()
            .contains("r=0")
    );
    assert_eq!(echo.received().len(), 3);
}

/// Conditions (a trusted range exempt with `invert`), shadow limits that
/// never refuse, costs from a request header, and hidden headers.
#[tokio::test]
async fn conditions_shadow_cost_and_hidden_headers() {
    let echo = Echo::start("echo").await;
    let mut exempt = limit("not-office", 1, 60_000, RateLimitScope::Local);
    exempt.when = vec![LimitCondition {
        client_cidrs: vec!["127.0.0.0/8".into()],
        invert: true,
        ..LimitCondition::default()
    }];
    let mut shadow = limit("shadow", 1, 60_000, RateLimitScope::Local);
    shadow.shadow = true;
    let mut costly = limit("tokens", 10, 60_000, RateLimitScope::Local);
    costly.key = vec![KeyPart::Header {
        name: "x-tenant".into(),
    }];
    costly.cost = Cost::RequestHeader {
        name: "x-cost".into(),
        default: 1,
    };
    costly.when = vec![LimitCondition {
        headers: vec![LimitHeader {
            name: "x-tenant".into(),
            value: None,
        }],
        ..LimitCondition::default()
    }];
    let limits = RateLimits {
        limits: vec![exempt, shadow, costly],
        headers: RateLimitHeaders::Off,
    };
    let gw = limited(&echo, limits, None).await;
    // From 127.0.0.1: exempt from "not-office"; "shadow" trips but only counts.
    for _ in 0..3 {
        assert_eq!(gw.send(with(&[])).await.status, StatusCode::OK);
    }
    // Cost 6 + 4 fits 10; one more unit does not, for this tenant only.
    assert_eq!(
        gw.send(with(&[("x-tenant", "a"), ("x-cost", "6")]))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        gw.send(with(&[("x-tenant", "a"), ("x-cost", "4")]))
            .await
            .status,
        StatusCode::OK
    );
    let refused = gw.send(with(&[("x-tenant", "a")])).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(
        refused.headers.get("ratelimit").is_none(),
        "headers are off"
    );
    assert!(refused.headers.get("retry-after").is_some());
    assert_eq!(
        gw.send(with(&[("x-tenant", "b")])).await.status,
        StatusCode::OK
    );
}

/// A cost the response names is debited once the response is complete:
/// the request that used the units passes, the next waits for them.
#[tokio::test]
async fn a_cost_named_by_the_response_is_debited_at_completion() {
    let echo = Echo::start("echo").await;
    let mut tokens = limit("tokens", 100, 60_000, RateLimitScope::Local);
    tokens.cost = Cost::ResponseHeader {
        name: "x-cost".into(),
    };
    let limits = RateLimits {
        limits: vec![tokens],
        headers: RateLimitHeaders::All,
    };
    let gw = limited(&echo, limits, None).await;
    let first = gw.send(with(&[("x-echo-cost", "60")])).await;
    assert_eq!(first.status, StatusCode::OK);
    let second = gw.send(with(&[("x-echo-cost", "60")])).await;
    assert_eq!(
        second.status,
        StatusCode::OK,
        "40 units were left: admitted"
    );
    let third = gw.send(with(&[])).await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "120 of 100 used"
    );
    assert_eq!(echo.received().len(), 2);
}

/// Three replicas (three runtimes, each with its own process-wide state)
/// share one key in Redis; clients send 5N at once; the admitted count is
/// within the documented bound (replicas × lease, here ±3%) of N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_limit_is_shared_and_accurate_across_replicas() {
    let redis = RedisServer::start().unwrap();
    let echo = Echo::start("echo").await;
    let n = 100u64;
    let mut shared = limit("shared", n, 120_000, RateLimitScope::Global);
    shared.key = vec![KeyPart::Route];
    let config = RateLimits {
        limits: vec![shared],
        headers: RateLimitHeaders::Limited,
    };
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(limited(&echo, config.clone(), Some(redis_settings(&redis, 500))).await);
    }
    let replicas = std::sync::Arc::new(replicas);
    let mut tasks = Vec::new();
    for i in 0..(5 * n as usize) {
        let replicas = replicas.clone();
        tasks.push(tokio::spawn(async move {
            replicas[i % 3].send(with(&[])).await.status
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::OK => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        (97..=103).contains(&admitted),
        "admitted {admitted} of limit {n}"
    );
}

/// A hot key under a limit that never trips costs far fewer than one
/// Redis call per request (leases): at most 0.1 per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_key_costs_few_redis_calls() {
    let redis = RedisServer::start().unwrap();
    let echo = Echo::start("echo").await;
    let config = RateLimits {
        limits: vec![limit("roomy", 1_000_000, 1_000, RateLimitScope::Global)],
        headers: RateLimitHeaders::Limited,
    };
    let gw = limited(&echo, config, Some(redis_settings(&redis, 500))).await;
    let before = redis.calls("evalsha").unwrap() + redis.calls("eval").unwrap();
    let requests = 2000;
    for _ in 0..requests {
        assert_eq!(gw.send(with(&[])).await.status, StatusCode::OK);
    }
    let calls = redis.calls("evalsha").unwrap() + redis.calls("eval").unwrap() - before;
    assert!(calls > 0, "the limit never reached Redis");
    assert!(
        (calls as f64) / (requests as f64) <= 0.1,
        "{calls} Redis calls for {requests} requests"
    );
}

/// Redis killed: fail-open limits admit without 5xx and without waiting
/// more than the call timeout; fail-closed limits answer 503; once Redis
/// is back, limits resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_redis_follows_each_failure_mode_and_limits_resume() {
    let mut redis = RedisServer::start().unwrap();
    let echo = Echo::start("echo").await;
    let open = RateLimits {
        limits: vec![limit("open", 2, 60_000, RateLimitScope::Global)],
        headers: RateLimitHeaders::Limited,
    };
    // Under 100 units a limit leases nothing: every decision is Redis's.
    let mut closed_limit = limit("closed", 50, 60_000, RateLimitScope::Global);
    closed_limit.fail_open = false;
    let closed = RateLimits {
        limits: vec![closed_limit],
        headers: RateLimitHeaders::Limited,
    };
    let gw_open = limited(&echo, open, Some(redis_settings(&redis, 200))).await;
    let gw_closed = limited(&echo, closed, Some(redis_settings(&redis, 200))).await;
    assert_eq!(gw_open.send(with(&[])).await.status, StatusCode::OK);
    assert_eq!(gw_closed.send(with(&[])).await.status, StatusCode::OK);
    redis.kill();
    for _ in 0..10 {
        let started = Instant::now();
        assert_eq!(gw_open.send(with(&[])).await.status, StatusCode::OK);
        assert!(
            started.elapsed() < Duration::from_millis(700),
            "{:?}",
            started.elapsed()
        );
        let refused = gw_closed.send(with(&[])).await;
        assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(refused.headers["x-tollgate-error"], "dependency");
    }
    redis.restart().unwrap();
    // The circuit probes again within its cool-down (1 s, then doubling).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut limited_again = false;
    while Instant::now() < deadline && !limited_again {
        limited_again = gw_open.send(with(&[])).await.status == StatusCode::TOO_MANY_REQUESTS;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(limited_again, "limits did not resume after Redis came back");
}

/// Redis frozen (SIGSTOP: connections open, no answers): a request waits
/// at most the call timeout, and once the circuit opens, not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_redis_costs_one_timeout_then_nothing() {
    let redis = RedisServer::start().unwrap();
    let echo = Echo::start("echo").await;
    let config = RateLimits {
        limits: vec![limit("open", 1000, 60_000, RateLimitScope::Global)],
        headers: RateLimitHeaders::Limited,
    };
    let gw = limited(&echo, config, Some(redis_settings(&redis, 150))).await;
    assert_eq!(gw.send(with(&[])).await.status, StatusCode::OK);
    redis.freeze();
    let mut took = Vec::new();
    for _ in 0..8 {
        let started = Instant::now();
        assert_eq!(gw.send(with(&[])).await.status, StatusCode::OK);
        took.push(started.elapsed());
    }
    redis.thaw();
    assert!(
        took.iter().all(|t| *t < Duration::from_millis(600)),
        "{took:?}"
    );
    assert!(
        took[5..].iter().all(|t| *t < Duration::from_millis(50)),
        "circuit did not open: {took:?}"
    );
}

/// A Redis that requires a password: the right one counts, a wrong one
/// is a Redis failure (fail-closed limits answer 503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_with_a_password() {
    let redis = RedisServer::start_with(Some("s3cret")).unwrap();
    let echo = Echo::start("echo").await;
    let mut closed = limit("closed", 2, 60_000, RateLimitScope::Global);
    closed.fail_open = false;
    let config = RateLimits {
        limits: vec![closed],
        headers: RateLimitHeaders::Limited,
    };
    let mut right = redis_settings(&redis, 500);
    right.password = Some(Redacted::new("s3cret"));
    let gw = limited(&echo, config.clone(), Some(right)).await;
    assert_eq!(gw.send(with(&[])).await.status, StatusCode::OK);
    assert_eq!(gw.send(with(&[])).await.status, StatusCode::OK);
    assert_eq!(
        gw.send(with(&[])).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
    let mut wrong = redis_settings(&redis, 500);
    wrong.password = Some(Redacted::new("guess"));
    let gw = limited(&echo, config, Some(wrong)).await;
    assert_eq!(
        gw.send(with(&[])).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// Redis over TLS with a private CA (`rediss://`): counts as plain Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_with_a_private_ca() {
    let ca = tollgate_e2e::tls::Ca::new("redis test CA").unwrap();
    let redis = RedisServer::start_tls(&ca).unwrap();
    let echo = Echo::start("echo").await;
    let mut closed = limit("closed", 2, 60_000, RateLimitScope::Global);
    closed.fail_open = false;
    let config = RateLimits {
        limits: vec![closed],
        headers: RateLimitHeaders::Limited,
    };
    let mut settings = redis_settings(&redis, 1000);
    settings.urls = vec![redis.tls_url()];
    settings.ca_pem = Some(ca.pem());
    let gw = limited(&echo, config, Some(settings)).await;
    for expected in [
        StatusCode::OK,
        StatusCode::OK,
        StatusCode::TOO_MANY_REQUESTS,
    ] {
        assert_eq!(gw.send(with(&[])).await.status, expected);
    }
    assert!(redis.calls("evalsha").unwrap() + redis.calls("eval").unwrap() >= 2);
}

/// A Redis Cluster of three masters: two replicas share every limit
/// (keys land on the node of their slot), each limit is decided on its
/// own node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_cluster_of_three_masters() {
    let cluster = RedisCluster::start(3).unwrap();
    let echo = Echo::start("echo").await;
    let mut per_tenant = limit("per-tenant", 3, 60_000, RateLimitScope::Global);
    per_tenant.key = vec![KeyPart::Header {
        name: "x-tenant".into(),
    }];
    let config = RateLimits {
        limits: vec![
            per_tenant,
            limit("per-client", 1000, 60_000, RateLimitScope::Global),
        ],
        headers: RateLimitHeaders::Limited,
    };
    let mut settings = redis_settings(&cluster.nodes[0], 1000);
    settings.mode = RedisMode::Cluster;
    settings.urls = cluster.urls();
    let a = limited(&echo, config.clone(), Some(settings.clone())).await;
    let b = limited(&echo, config, Some(settings)).await;
    for tenant in ["t1", "t2", "t3", "t4", "t5", "t6"] {
        let mut admitted = 0;
        for i in 0..5 {
            let gw = if i % 2 == 0 { &a } else { &b };
            if gw.send(with(&[("x-tenant", tenant)])).await.status == StatusCode::OK {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3, "tenant {tenant}");
    }
    let keys = cluster.key_counts();
    assert!(
        keys.iter().filter(|k| **k > 0).count() >= 2,
        "counters on one node only: {keys:?}"
    );
}
