//! Sentinel mode: which server is the Redis master now.
//!
//! The GatewayConfig names sentinels, not the master: a replica is promoted
//! when the master fails (or an operator runs `SENTINEL FAILOVER`), and only
//! the sentinels know which one. So the pool asks them before every
//! connection it makes: each sentinel in the configured order, each within
//! the per-call timeout, `SENTINEL get-master-addr-by-name <masterName>`;
//! the first answer wins. The answer is then checked on the master itself
//! (`ROLE` must say `master`): a sentinel that has not yet seen a failover
//! could name the demoted server, whose writes would fail.
//!
//! The sentinels use the scheme of the configured URLs (`rediss://` means
//! TLS to the sentinels and to the master, with the same CA), their own
//! optional credentials, and never a database number; the master gets the
//! database number of the URL of the sentinel that answered and the
//! settings' username and password.

use std::time::Duration;
use tollgate_snapshot::{RedisMode, RedisSettings};

/// Where the master is: the connection details for it and its
/// `host:port`, to notice when the sentinels name another server.
pub(crate) struct Master {
    /// How to reach it (TLS and database as configured; credentials are
    /// added by the pool).
    pub(crate) info: ::redis::ConnectionInfo,
    /// `host:port` as the sentinels gave it.
    pub(crate) addr: String,
}

/// Asks the sentinels of `settings`, in order, for the master's address.
///
/// # Errors
///
/// The last sentinel's error when none of them names the master (unknown
/// master name, unreachable, slower than `timeout`, refused credentials).
pub(crate) async fn find_master(
    settings: &RedisSettings,
    timeout: Duration,
) -> Result<Master, ::redis::RedisError> {
    let mut last = ::redis::RedisError::from((
        ::redis::ErrorKind::InvalidClientConfig,
        "Sentinel mode without sentinel urls",
    ));
    for url in &settings.urls {
        match tokio::time::timeout(timeout, ask(settings, url, timeout)).await {
            Ok(Ok(master)) => return Ok(master),
            Ok(Err(error)) => {
                tracing::debug!(sentinel = %url, %error, "sentinel did not name the master");
                last = error;
            }
            Err(_) => {
                tracing::debug!(sentinel = %url, "sentinel did not answer in time");
                last = ::redis::RedisError::from((
                    ::redis::ErrorKind::Io,
                    "sentinel did not answer in time",
                ));
            }
        }
    }
    Err(last)
}

/// One sentinel's answer.
async fn ask(
    settings: &RedisSettings,
    url: &str,
    timeout: Duration,
) -> Result<Master, ::redis::RedisError> {
    let RedisMode::Sentinel {
        master_name,
        sentinel_username,
        sentinel_password,
    } = &settings.mode
    else {
        return Err(::redis::RedisError::from((
            ::redis::ErrorKind::InvalidClientConfig,
            "not in Sentinel mode",
        )));
    };
    let configured: ::redis::ConnectionInfo = url.parse()?;
    let mut redis = configured.redis_settings().clone().set_db(0);
    if let Some(user) = sentinel_username {
        redis = redis.set_username(user.clone());
    }
    if let Some(password) = sentinel_password {
        redis = redis.set_password(password.expose());
    }
    let sentinel = configured.clone().set_redis_settings(redis);
    let mut conn = super::redis_conn::open(settings, sentinel, timeout).await?;
    let answer: Option<(String, u16)> = ::redis::cmd("SENTINEL")
        .arg("get-master-addr-by-name")
        .arg(master_name)
        .query_async(&mut conn)
        .await?;
    let Some((host, port)) = answer else {
        return Err(::redis::RedisError::from((
            ::redis::ErrorKind::MasterNameNotFoundBySentinel,
            "the sentinel monitors no master of that name",
            format!("masterName {master_name:?}"),
        )));
    };
    let mut addr = configured.addr().clone();
    match &mut addr {
        ::redis::ConnectionAddr::Tcp(h, p)
        | ::redis::ConnectionAddr::TcpTls {
            host: h, port: p, ..
        } => {
            h.clone_from(&host);
            *p = port;
        }
        _ => {
            return Err(::redis::RedisError::from((
                ::redis::ErrorKind::InvalidClientConfig,
                "sentinels are reached over TCP",
            )));
        }
    }
    let addr_text = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    Ok(Master {
        info: configured.set_addr(addr),
        addr: addr_text,
    })
}

/// Whether the server behind `conn` says it is a master (`ROLE`).
///
/// # Errors
///
/// When it answers otherwise, or not at all.
pub(crate) async fn check_master(
    conn: &mut ::redis::aio::MultiplexedConnection,
) -> Result<(), ::redis::RedisError> {
    let role: ::redis::Value = ::redis::cmd("ROLE").query_async(conn).await?;
    let first = match &role {
        ::redis::Value::Array(items) => items.first(),
        _ => None,
    };
    match first {
        Some(::redis::Value::BulkString(b)) if b.as_slice() == b"master" => Ok(()),
        _ => Err(::redis::RedisError::from((
            ::redis::ErrorKind::Client,
            "the server the sentinels named is not a master (yet)",
        ))),
    }
}

/// Whether `error` says the connection's server is no longer the master:
/// a write refused with `READONLY`, as a demoted master answers.
pub(crate) fn is_demoted(error: &::redis::RedisError) -> bool {
    error.code() == Some("READONLY")
}
