//! Connections to Redis for global limits: a standalone server (plain or
//! TLS, with a private CA) or a Redis Cluster, kept in a small pool of
//! multiplexed connections (each carries many requests at once) that
//! reconnect on the next call after a failure.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tollgate_snapshot::{RedisMode, RedisSettings};

/// One multiplexed connection.
#[derive(Clone)]
pub(crate) enum Conn {
    /// A standalone server.
    Single(::redis::aio::MultiplexedConnection),
    /// A cluster: commands go to the node owning their keys' slot.
    Cluster(::redis::cluster_async::ClusterConnection),
}

/// The pool.
pub(crate) struct Pool {
    settings: RedisSettings,
    timeout: Duration,
    slots: Vec<tokio::sync::Mutex<Option<Conn>>>,
    next: AtomicUsize,
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
        }
    }

    /// Whether commands spanning several keys must be split by slot.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.settings.mode, RedisMode::Cluster)
    }

    /// The next connection (connecting it if needed) and its slot.
    ///
    /// # Errors
    ///
    /// When connecting fails.
    pub(crate) async fn get(&self) -> Result<(Conn, usize), ::redis::RedisError> {
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let mut guard = self.slots[slot].lock().await;
        if let Some(conn) = guard.as_ref() {
            return Ok((conn.clone(), slot));
        }
        let conn = self.connect().await?;
        *guard = Some(conn.clone());
        Ok((conn, slot))
    }

    /// Drops the connection of `slot`: the next call through it connects
    /// again.
    pub(crate) async fn reset(&self, slot: usize) {
        if let Some(s) = self.slots.get(slot) {
            *s.lock().await = None;
        }
    }

    async fn connect(&self) -> Result<Conn, ::redis::RedisError> {
        let certs = || ::redis::TlsCertificates {
            client_tls: None,
            root_cert: self.settings.ca_pem.as_ref().map(|p| p.as_bytes().to_vec()),
        };
        if self.is_cluster() {
            let mut builder =
                ::redis::cluster::ClusterClientBuilder::new(self.settings.urls.clone())
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
                builder = builder.certs(certs());
            }
            let client = builder.build()?;
            return Ok(Conn::Cluster(client.get_async_connection().await?));
        }
        let url = self
            .settings
            .urls
            .first()
            .cloned()
            .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
        let mut info: ::redis::ConnectionInfo = url.as_str().parse()?;
        let mut redis = info.redis_settings().clone();
        if let Some(user) = &self.settings.username {
            redis = redis.set_username(user.clone());
        }
        if let Some(password) = &self.settings.password {
            redis = redis.set_password(password.expose());
        }
        info = info.set_redis_settings(redis);
        let client = if self.settings.ca_pem.is_some() {
            ::redis::Client::build_with_tls(info, certs())?
        } else {
            ::redis::Client::open(info)?
        };
        let config = ::redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        Ok(Conn::Single(
            client
                .get_multiplexed_async_connection_with_config(&config)
                .await?,
        ))
    }
}
