//! Redis Sentinel for tests: one master, optional replicas and one or more
//! sentinels (`redis-server <conf> --sentinel`), all real processes on free
//! ports of 127.0.0.1, and a forced failover on demand.
//!
//! The replicas start before the sentinels: a sentinel learns of replicas
//! from the master's `INFO`, which it reads at once when it starts and
//! then only every ten seconds, so replicas started later could not be
//! promoted for a while.

use crate::error::HarnessError;
use crate::process::{free_port, log_dir};
use crate::redis::RedisServer;
use std::time::{Duration, Instant};

/// The name the sentinels monitor the master under.
pub const MASTER_NAME: &str = "tollgate-counters";

/// A master, its replicas and the sentinels watching them.
pub struct RedisSentinel {
    /// Every data server: the first master first, then the replicas.
    pub servers: Vec<RedisServer>,
    /// The sentinels.
    pub sentinels: Vec<RedisServer>,
    tls: bool,
}

impl RedisSentinel {
    /// Starts a master, `replicas` replicas of it (waiting until each is
    /// in sync) and `sentinels` sentinels monitoring it with quorum 1.
    ///
    /// # Errors
    ///
    /// When `redis-server` is not installed (the message says what to
    /// install), a server does not start, or a replica never syncs.
    pub fn start(replicas: usize, sentinels: usize) -> Result<RedisSentinel, HarnessError> {
        RedisSentinel::start_with(None, None, replicas, sentinels)
    }

    /// As [`RedisSentinel::start`], the sentinels requiring `password`
    /// (their own `requirepass`; the master requires none).
    ///
    /// # Errors
    ///
    /// As [`RedisSentinel::start`].
    pub fn start_with_sentinel_password(
        password: &str,
        replicas: usize,
        sentinels: usize,
    ) -> Result<RedisSentinel, HarnessError> {
        RedisSentinel::start_with(None, Some(password), replicas, sentinels)
    }

    /// As [`RedisSentinel::start`], every server and sentinel speaking TLS
    /// only, with certificates for `127.0.0.1` issued by `ca`.
    ///
    /// # Errors
    ///
    /// As [`RedisSentinel::start`], or when a certificate cannot be made.
    pub fn start_tls(
        ca: &crate::tls::Ca,
        replicas: usize,
        sentinels: usize,
    ) -> Result<RedisSentinel, HarnessError> {
        RedisSentinel::start_with(Some(ca), None, replicas, sentinels)
    }

    fn start_with(
        ca: Option<&crate::tls::Ca>,
        sentinel_password: Option<&str>,
        replicas: usize,
        sentinels: usize,
    ) -> Result<RedisSentinel, HarnessError> {
        let port = free_port()?;
        let master = RedisServer::start_custom(port, None, ca, files(port))?;
        let mut servers = vec![master];
        for _ in 0..replicas {
            let port = free_port()?;
            let mut args = files(port);
            args.extend(
                ["--replicaof", "127.0.0.1", &servers[0].port.to_string()].map(String::from),
            );
            let replica = RedisServer::start_custom(port, None, ca, args)?;
            wait_for(&replica, &["INFO", "replication"], "master_link_status:up")?;
            servers.push(replica);
        }
        let mut watching = Vec::new();
        for _ in 0..sentinels {
            let port = free_port()?;
            let conf = log_dir().join(format!("redis-sentinel-{port}.conf"));
            let text = format!(
                "sentinel monitor {MASTER_NAME} 127.0.0.1 {master} 1\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 10000\n",
                master = servers[0].port
            );
            std::fs::write(&conf, text).map_err(|source| HarnessError::Spawn {
                what: conf.display().to_string(),
                source,
            })?;
            let mut args = vec!["--sentinel".to_string()];
            if let Some(password) = sentinel_password {
                args.extend(["--requirepass".into(), password.into()]);
            }
            let mut sentinel = RedisServer::start_custom(port, Some(conf), ca, args)?;
            if let Some(password) = sentinel_password {
                sentinel.set_password(password);
            }
            wait_for(
                &sentinel,
                &["SENTINEL", "get-master-addr-by-name", MASTER_NAME],
                &servers[0].port.to_string(),
            )?;
            watching.push(sentinel);
        }
        Ok(RedisSentinel {
            servers,
            sentinels: watching,
            tls: ca.is_some(),
        })
    }

    /// The sentinels' URLs (`rediss://` with TLS), in start order.
    pub fn urls(&self) -> Vec<String> {
        let url = if self.tls {
            RedisServer::tls_url
        } else {
            RedisServer::url
        };
        self.sentinels.iter().map(url).collect()
    }

    /// The data server the first sentinel names as master now.
    ///
    /// # Errors
    ///
    /// When the sentinel cannot be asked or names a port no server has.
    pub fn master(&self) -> Result<&RedisServer, HarnessError> {
        let sentinel = self.sentinels.first().ok_or_else(|| {
            HarnessError::InvalidRequest("a Redis Sentinel set without sentinels".into())
        })?;
        let answer = sentinel
            .command(&["SENTINEL", "get-master-addr-by-name", MASTER_NAME])
            .map_err(|e| HarnessError::InvalidRequest(format!("asking the sentinel: {e}")))?;
        let port: Option<u16> = answer.lines().nth(1).and_then(|p| p.trim().parse().ok());
        self.servers
            .iter()
            .find(|s| Some(s.port) == port)
            .ok_or_else(|| HarnessError::InvalidRequest(format!("sentinel answered {answer:?}")))
    }

    /// `SENTINEL FAILOVER`: promotes a replica. Returns once every sentinel
    /// names a new master and that server says it is one.
    ///
    /// # Errors
    ///
    /// When the failover is refused (other than for a replica the sentinel
    /// has not read yet) or takes longer than 20 s.
    pub fn failover(&self) -> Result<&RedisServer, HarnessError> {
        let old = self.master()?.port;
        let sentinel = self.sentinels.first().ok_or_else(|| {
            HarnessError::InvalidRequest("a Redis Sentinel set without sentinels".into())
        })?;
        let deadline = Instant::now() + Duration::from_secs(20);
        // A sentinel refuses (NOGOODSLAVE) until it has read the replica's
        // own INFO, a moment after it starts.
        loop {
            let out = sentinel
                .command(&["SENTINEL", "FAILOVER", MASTER_NAME])
                .map_err(|e| HarnessError::InvalidRequest(format!("SENTINEL FAILOVER: {e}")))?;
            if out.contains("OK") {
                break;
            }
            if !out.contains("NOGOODSLAVE") || Instant::now() > deadline {
                return Err(HarnessError::InvalidRequest(format!(
                    "SENTINEL FAILOVER: {out}"
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        while Instant::now() < deadline {
            if let Ok(new) = self.master()
                && new.port != old
                && new
                    .command(&["ROLE"])
                    .is_ok_and(|r| r.starts_with("master"))
            {
                return Ok(new);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(HarnessError::Timeout {
            url: format!("sentinel {}", sentinel.url()),
            timeout: Duration::from_secs(20),
            last: "no new master after SENTINEL FAILOVER".into(),
        })
    }
}

/// Where a data server keeps the copy a replica receives when it syncs
/// (a replica writes one to disk even with `--save ''`): the test log
/// folder, not the working directory.
fn files(port: u16) -> Vec<String> {
    vec![
        "--dir".into(),
        log_dir().display().to_string(),
        "--dbfilename".into(),
        format!("redis-sentinel-data-{port}.rdb"),
    ]
}

/// Waits up to 10 s until `words` run on `server` answer with `want` in
/// the output.
fn wait_for(server: &RedisServer, words: &[&str], want: &str) -> Result<(), HarnessError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        match server.command(words) {
            Ok(out) if out.contains(want) => return Ok(()),
            Ok(out) => last = out,
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(HarnessError::Timeout {
        url: server.url(),
        timeout: Duration::from_secs(10),
        last: format!("{} answered {last:?}", words.join(" ")),
    })
}
