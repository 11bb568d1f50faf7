//! HTTP/1.1 upstream connections, pooled per endpoint and driven by the
//! request that uses them.
//!
//! A general-purpose client runs every connection in a task of its own and
//! hands requests and responses across through channels, so each exchange
//! wakes two tasks and takes a hashed pool lookup on the way in and out.
//! Here a connection has no task: while a request waits for its response
//! head, the request's own future drives the connection ([`Http1Pool::send`]);
//! while the response body streams back, the body does. The wire format is
//! Tollgate's own HTTP/1.1 client codec ([`h1`], which says why). When the
//! body has ended the connection goes back to its endpoint's idle list
//! (LIFO, so the warmest socket is reused first) and nothing touches it
//! until its next checkout, which first checks, without waiting, that the
//! upstream has not closed it.
//!
//! A connection whose exchange did not finish cleanly — response body
//! dropped half-read, a timeout, an error — is closed, never reused: HTTP/1.1
//! cannot resynchronise a half-read response.

use super::added::Added;
use super::error::UpstreamError;
use super::h1::{self, Conn, Home};
use crate::body::ProxyBody;
use crate::clock::Ticks;
use futures_util::FutureExt;
use futures_util::future::Either;
use http::{Request, Response};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;

/// An exchange's failure before a response head, as the pool reports it.
fn protocol_error(error: h1::H1Error) -> UpstreamError {
    UpstreamError::Protocol(error.into())
}

/// How long an idle connection may wait in the pool.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per endpoint; more are closed when they come back.
const MAX_IDLE: usize = 1024;

/// The keep-alive connections to one endpoint.
#[derive(Debug)]
pub(crate) struct Http1Pool {
    addr: SocketAddr,
    connect_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    conn: Conn,
    since: Ticks,
}

impl Http1Pool {
    /// An empty pool for `addr`.
    pub(crate) fn new(addr: SocketAddr, connect_timeout: Duration) -> Http1Pool {
        Http1Pool {
            addr,
            connect_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// How long a new connection may take to open.
    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Sends `request` (origin-form URI, `Host` set) with the `added` fields
    /// and returns the response
    /// whose body hands the connection back when it ends.
    ///
    /// A pooled connection that turns out to be closed before the request
    /// was written to it is skipped and the request sent on another one;
    /// once written, a failure is returned as is (it may not be idempotent).
    ///
    /// # Errors
    ///
    /// [`UpstreamError::Connect`] when no connection could be made;
    /// [`UpstreamError::Protocol`] with an [`h1::H1Error`] when the
    /// exchange failed before a response head (a failing request body is
    /// that error's source, so it stays the client's fault).
    ///
    /// The usual case, an idle connection at hand, is the exchange's own
    /// future and nothing around it; only opening a new connection is a
    /// (boxed) future of its own. The futures of every layer above hold
    /// this one, and each request moves them: an `async fn` here would
    /// add the request twice and the checkout's room to all of them.
    pub(crate) fn send<'a>(
        self: &'a Arc<Self>,
        request: Request<ProxyBody>,
        added: Added<'a>,
    ) -> impl Future<Output = Result<Response<ProxyBody>, UpstreamError>> + Send + 'a {
        let home = || Arc::clone(self) as Arc<dyn Home>;
        match self.idle_usable() {
            Some(conn) => Either::Left(
                h1::exchange(conn, request, added, home())
                    .map(|result| result.map_err(protocol_error)),
            ),
            None => Either::Right(Box::pin(async move {
                let conn = self.connect().await?;
                h1::exchange(conn, request, added, home())
                    .await
                    .map_err(protocol_error)
            })),
        }
    }

    /// The most recently used idle connection that the upstream has not
    /// closed, if any.
    fn idle_usable(&self) -> Option<Conn> {
        while let Some(mut conn) = self.pop_idle() {
            if conn.is_usable() {
                return Some(conn);
            }
        }
        None
    }

    fn pop_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop() {
            if entry.since.age() < IDLE_TIMEOUT {
                return Some(entry.conn);
            }
        }
        None
    }

    async fn connect(&self) -> Result<Conn, UpstreamError> {
        let connecting = TcpStream::connect(self.addr);
        let stream = tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| UpstreamError::Connect("connect timed out".into()))?
            .map_err(|error| UpstreamError::Connect(error.into()))?;
        // Requests are written whole; waiting for more to coalesce only adds latency.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%error, "TCP_NODELAY not set");
        }
        Ok(Conn::new(stream))
    }

    /// Takes a connection back after a complete exchange.
    /// Closes idle connections that waited too long or that the upstream
    /// closed; called periodically by the client registry's sweeper.
    pub(crate) fn sweep(&self) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        // One clock read for the sweep: outside a connection's poll every
        // `Ticks::now` reads the clock.
        let now = Ticks::now();
        idle.retain_mut(|entry| now.since(entry.since) < IDLE_TIMEOUT && entry.conn.is_usable());
    }

    /// Idle connections now (for tests and the admin view).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

impl Home for Http1Pool {
    /// Takes a connection back after a complete exchange.
    fn put(&self, conn: Conn) {
        let now = Ticks::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: now });
        }
    }
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
