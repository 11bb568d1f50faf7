//! HTTP/1.1 upstream connections, pooled per endpoint and driven by the
//! request that uses them.
//!
//! A general-purpose client runs every connection in a task of its own and
//! hands requests and responses across through channels, so each exchange
//! wakes two tasks and takes a hashed pool lookup on the way in and out.
//! Here a connection has no task: while a request waits for its response
//! head, the request's own future polls the connection ([`Http1Pool::send`]);
//! while the response body streams back, the body polls it ([`PooledBody`]).
//! When the body has ended the connection goes back to its endpoint's idle
//! list (LIFO, so the warmest socket is reused first) without being polled
//! until its next checkout, which first lets it notice an upstream close.
//!
//! A connection whose exchange did not finish cleanly — response body
//! dropped half-read, a timeout, an error — is closed, never reused: HTTP/1.1
//! cannot resynchronise a half-read response.

use super::error::UpstreamError;
use crate::body::{BoxError, ProxyBody};
use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// How long an idle connection may wait in the pool.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Idle connections kept per endpoint; more are closed when they come back.
const MAX_IDLE: usize = 1024;

type Driver = http1::Connection<TokioIo<TcpStream>, ProxyBody>;

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
    since: Instant,
}

/// One upstream connection: the handle requests are sent on and the
/// connection state machine, which only makes progress when polled.
struct Conn {
    sender: http1::SendRequest<ProxyBody>,
    driver: Pin<Box<Driver>>,
    closed: bool,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("closed", &self.closed)
            .finish_non_exhaustive()
    }
}

impl Conn {
    /// Lets the connection read and write; `false` once it has ended.
    fn drive(&mut self, cx: &mut Context<'_>) -> bool {
        if !self.closed
            && let Poll::Ready(result) = self.driver.as_mut().poll(cx)
        {
            self.closed = true;
            if let Err(error) = result {
                tracing::debug!(%error, "upstream connection ended with an error");
            }
        }
        !self.closed
    }

    /// Waits until the connection takes a request; `false` when it ended.
    async fn ready(&mut self) -> bool {
        poll_fn(|cx| {
            if !self.drive(cx) {
                return Poll::Ready(false);
            }
            self.sender.poll_ready(cx).map(|r| r.is_ok())
        })
        .await
    }
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

    /// Sends `request` (origin-form URI, `Host` set) and returns the response
    /// whose body hands the connection back when it ends.
    ///
    /// A pooled connection that turns out to be closed before the request
    /// was written to it is skipped and the request sent on another one;
    /// once written, a failure is returned as is (it may not be idempotent).
    pub(crate) async fn send(
        self: &Arc<Self>,
        mut request: Request<ProxyBody>,
    ) -> Result<Response<ProxyBody>, UpstreamError> {
        loop {
            let (mut conn, reused) = self.checkout().await?;
            let mut call = std::pin::pin!(conn.sender.try_send_request(request));
            let result = poll_fn(|cx| {
                conn.drive(cx);
                call.as_mut().poll(cx)
            })
            .await;
            match result {
                Ok(response) => {
                    let pool = Arc::clone(self);
                    return Ok(
                        response.map(|body| PooledBody::new(body, conn, pool).boxed_unsync())
                    );
                }
                Err(mut error) => match error.take_message() {
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(UpstreamError::Protocol(error.into_error().into())),
                },
            }
        }
    }

    /// A ready connection: the most recently used idle one that is still
    /// open, or a new one. The flag tells whether it was reused.
    async fn checkout(&self) -> Result<(Conn, bool), UpstreamError> {
        while let Some(mut conn) = self.pop_idle() {
            if conn.ready().await {
                return Ok((conn, true));
            }
        }
        Ok((self.connect().await?, false))
    }

    fn pop_idle(&self) -> Option<Conn> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(entry) = idle.pop() {
            if entry.since.elapsed() < IDLE_TIMEOUT && !entry.conn.sender.is_closed() {
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
        let (sender, driver) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|error| UpstreamError::Connect(error.into()))?;
        Ok(Conn {
            sender,
            driver: Box::pin(driver),
            closed: false,
        })
    }

    /// Takes a connection back after a complete exchange.
    fn put(&self, conn: Conn) {
        if conn.closed || conn.sender.is_closed() {
            return;
        }
        let now = Instant::now();
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(Idle { conn, since: now });
        }
    }

    /// Closes idle connections that waited too long or that the upstream
    /// closed; called periodically by the client registry's sweeper.
    pub(crate) fn sweep(&self) {
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        idle.retain_mut(|entry| {
            entry.since.elapsed() < IDLE_TIMEOUT
                && entry.conn.drive(&mut cx)
                && !entry.conn.sender.is_closed()
        });
    }

    /// Idle connections now (for tests and the admin view).
    pub(crate) fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// A response body that drives its connection and returns it to the pool
/// once the body has ended.
struct PooledBody {
    body: Incoming,
    conn: Option<Conn>,
    pool: Arc<Http1Pool>,
}

impl PooledBody {
    fn new(body: Incoming, conn: Conn, pool: Arc<Http1Pool>) -> PooledBody {
        PooledBody {
            body,
            conn: Some(conn),
            pool,
        }
    }

    fn release(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.put(conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let mut polled = Pin::new(&mut this.body).poll_frame(cx);
        if polled.is_pending()
            && let Some(conn) = this.conn.as_mut()
            && conn.drive(cx)
        {
            polled = Pin::new(&mut this.body).poll_frame(cx);
        }
        match &polled {
            Poll::Ready(None) => this.release(),
            Poll::Ready(Some(Ok(_))) if this.body.is_end_stream() => this.release(),
            Poll::Ready(Some(Err(_))) => this.conn = None,
            _ => {}
        }
        polled.map(|frame| frame.map(|result| result.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Drop for PooledBody {
    /// A body nobody polled to its end (an empty one the server skipped, or
    /// one whose end the last frame announced) still frees its connection.
    fn drop(&mut self) {
        if self.body.is_end_stream() {
            self.release();
        }
    }
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
