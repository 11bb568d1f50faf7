//! Connections to Redis for global limits: a standalone server (plain or
//! TLS, with a private CA), the master a set of sentinels names, or a
//! Redis Cluster, kept in a small pool of multiplexed connections (each
//! carries many requests at once) that reconnect on the next call after a
//! failure.
//!
//! In Sentinel mode every connection is made to the server the sentinels
//! name at that moment (see [`super::redis_sentinel`]), and the pool keeps
//! the master's address it last heard: a connection made to another
//! address is dropped and made again. While calls flow, the sentinels are
//! asked again at most every [`RECHECK`] in the background, so a failover
//! that leaves the old master up and writable for a while (it is demoted
//! only later) moves the counters within about that long.

use super::redis_sentinel;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tollgate_snapshot::{RedisMode, RedisSettings};

/// How often, at most, Sentinel mode asks the sentinels again while calls
/// flow.
pub(crate) const RECHECK: Duration = Duration::from_secs(1);

/// One multiplexed connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// A standalone server, or the master in Sentinel mode.
    Single(::redis::aio::MultiplexedConnection),
    /// A cluster: commands go to the node owning their keys' slot.
    Cluster(::redis::cluster_async::ClusterConnection),
}

/// A pooled connection and, in Sentinel mode, the master it reaches.
struct Pooled {
    conn: Conn,
    master: Option<String>,
}

/// What the sentinels last said.
#[derive(Default)]
struct MasterView {
    /// The master's `host:port`; `None` until known or after a demotion.
    addr: Option<String>,
    checked: Option<Instant>,
    checking: bool,
}

/// The pool.
pub(crate) struct Pool {
    settings: RedisSettings,
    timeout: Duration,
    slots: Vec<tokio::sync::Mutex<Option<Pooled>>>,
    next: AtomicUsize,
    master: Arc<Mutex<MasterView>>,
}

impl Pool {
    /// A pool of `settings.pool_size` connections, made on first use.
    pub(crate) fn new(settings: RedisSettings, timeout: Duration) -> Pool {
        let size = settings.pool_size.clamp(1, 64) as usize;
        Pool {
            settings,
            timeout,
            slots: (0..size).map(|_| tokio::sync::Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            master: Arc::default(),
        }
    }

    fn is_sentinel(&self) -> bool {
        matches!(self.settings.mode, RedisMode::Sentinel { .. })
    }

    /// The next connection (connecting it if needed) and its slot.
    ///
    /// # Errors
    ///
    /// When connecting fails (in Sentinel mode: also when no sentinel
    /// names the master).
    pub(crate) async fn get(&self) -> Result<(Conn, usize), ::redis::RedisError> {
        let master = if self.is_sentinel() {
            self.recheck_soon();
            self.master.lock().ok().and_then(|m| m.addr.clone())
        } else {
            None
        };
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut guard = self.slots[slot].lock().await;
        if let Some(pooled) = guard.as_ref()
            && pooled.master == master
        {
            return Ok((pooled.conn.clone(), slot));
        }
        let pooled = self.connect().await?;
        let conn = pooled.conn.clone();
        *guard = Some(pooled);
        Ok((conn, slot))
    }

    /// Drops the connection of `slot`: the next call through it connects
    /// again.
    pub(crate) async fn reset(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            *s.lock().await = None;
        }
    }

    /// After `error` on a connection: whether the server was a demoted
    /// master (Sentinel mode), in which case every connection is made
    /// again to the master the sentinels name now, and the call may be
    /// retried (a refused write changed nothing).
    pub(crate) fn master_demoted(&self, error: &::redis::RedisError) -> bool {
        if !self.is_sentinel() || !redis_sentinel::is_demoted(error) {
            return false;
        }
        if let Ok(mut view) = self.master.lock() {
            view.addr = None;
        }
        tracing::info!("Redis master was demoted; asking the sentinels for the new one");
        true
    }

    /// Sentinel mode: asks the sentinels again in the background when the
    /// last answer is older than [`RECHECK`]; connections to another
    /// server are then made again on their next use.
    fn recheck_soon(&self) {
        let Ok(mut view) = self.master.lock() else {
            return;
        };
        let due = view.checked.is_none_or(|at| at.elapsed() >= RECHECK);
        if view.checking || view.addr.is_none() || !due {
            return;
        }
        view.checking = true;
        let (settings, timeout, shared) =
            (self.settings.clone(), self.timeout, self.master.clone());
        tokio::spawn(async move {
            let found = redis_sentinel::find_master(&settings, timeout).await;
            if let Ok(mut view) = shared.lock() {
                view.checking = false;
                view.checked = Some(Instant::now());
                if let Ok(master) = found
                    && view.addr.as_ref() != Some(&master.addr)
                {
                    tracing::info!(master = %master.addr, "sentinels name a new Redis master");
                    view.addr = Some(master.addr);
                }
            }
        });
    }

    async fn connect(&self) -> Result<Pooled, ::redis::RedisError> {
        match &self.settings.mode {
            RedisMode::Cluster => self.connect_cluster().await,
            RedisMode::Sentinel { .. } => {
                let master = redis_sentinel::find_master(&self.settings, self.timeout).await?;
                let mut conn =
                    open(&self.settings, self.with_auth(master.info), self.timeout).await?;
                redis_sentinel::check_master(&mut conn).await?;
                if let Ok(mut view) = self.master.lock() {
                    view.addr = Some(master.addr.clone());
                    view.checked = Some(Instant::now());
                }
                Ok(Pooled {
                    conn: Conn::Single(conn),
                    master: Some(master.addr),
                })
            }
            RedisMode::Standalone => {
                let url = self
                    .settings
                    .urls
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
                let info = self.with_auth(url.as_str().parse()?);
                Ok(Pooled {
                    conn: Conn::Single(open(&self.settings, info, self.timeout).await?),
                    master: None,
                })
            }
        }
    }

    /// `info` with the configured username and password.
    fn with_auth(&self, info: ::redis::ConnectionInfo) -> ::redis::ConnectionInfo {
        let mut redis = info.redis_settings().clone();
        if let Some(user) = &self.settings.username {
            redis = redis.set_username(user.clone());
        }
        if let Some(password) = &self.settings.password {
            redis = redis.set_password(password.expose());
        }
        info.set_redis_settings(redis)
    }

    async fn connect_cluster(&self) -> Result<Pooled, ::redis::RedisError> {
        let mut builder = ::redis::cluster::ClusterClientBuilder::new(self.settings.urls.clone())
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .retries(0);
        if let Some(user) = &self.settings.username {
            builder = builder.username(user);
        }
        if let Some(password) = &self.settings.password {
            builder = builder.password(password.expose());
        }
        if self.settings.ca_pem.is_some() {
            builder = builder.certs(certificates(&self.settings));
        }
        let client = builder.build()?;
        Ok(Pooled {
            conn: Conn::Cluster(client.get_async_connection().await?),
            master: None,
        })
    }
}

/// One multiplexed connection to the server of `info`, trusting the
/// settings' CA for TLS, every step within `timeout`.
///
/// # Errors
///
/// When the server cannot be reached or refuses the credentials.
pub(crate) async fn open(
    settings: &RedisSettings,
    info: ::redis::ConnectionInfo,
    timeout: Duration,
) -> Result<::redis::aio::MultiplexedConnection, ::redis::RedisError> {
    // The Redis client builds its rustls config from the process-wide
    // provider and panics without one; the binaries install it at start,
    // and this makes any embedder (and test) safe too. Idempotent.
    crate::install_crypto_provider();
    let client = if settings.ca_pem.is_some() {
        ::redis::Client::build_with_tls(info, certificates(settings))?
    } else {
        ::redis::Client::open(info)?
    };
    let config = ::redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

fn certificates(settings: &RedisSettings) -> ::redis::TlsCertificates {
    ::redis::TlsCertificates {
        client_tls: None,
        root_cert: settings.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
    }
}
