//! How a connection stops: the stop signal (drain, idle timeout, slow
//! request head) and the graceful end with its drain timeout.
//!
//! Shared by the HTTP/1.1 and HTTP/2 servers (`h1.rs`, `h2.rs`), so it sits
//! below both and imports neither.

use super::gate::Gated;
use super::headclock::HeadClock;
use super::service::ConnCtx;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Why a connection stops serving before the client ends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// Told to drain (shutdown or its socket was removed).
    Drain,
    /// No request in flight for `idle_timeout_ms`.
    IdleOut,
    /// An HTTP/1.1 request head took longer than the header timeout.
    SlowHead,
}

/// Resolves when the connection must stop; `head` is the HTTP/1.1 head
/// clock and its limit.
///
/// Gated: the connection's loop polls it on every wake-up of the
/// connection, and it needs a look only when its own waker fired.
pub(super) fn stop_signal<'a>(
    ctx: &'a ConnCtx,
    head: Option<(&'a HeadClock, Duration)>,
) -> Gated<impl Future<Output = Stop> + 'a> {
    let idle = millis(ctx.settings.idle_timeout_ms);
    Gated::new(async move {
        let idle_out = async {
            match idle {
                Some(idle) => ctx.activity.idle_for(idle).await,
                None => std::future::pending().await,
            }
        };
        let slow_head = async {
            match head {
                Some((clock, limit)) => clock.expired(limit, &ctx.activity).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = ctx.drain.signalled() => Stop::Drain,
            () = idle_out => Stop::IdleOut,
            () = slow_head => Stop::SlowHead,
        }
    })
}

/// Polls a hyper connection to its end, or until it must stop.
pub(super) async fn drive<C, E>(
    mut conn: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    ctx: &ConnCtx,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let stop = stop_signal(ctx, None);
    let reason = tokio::select! {
        biased;
        result = conn.as_mut() => return log_end(ctx, result),
        reason = stop => reason,
    };
    finish(conn, graceful, ctx, reason).await;
}

/// Ends a hyper connection that must stop: a slow head closes it at once
/// (no response, like hyper's own header timeout); otherwise it shuts down
/// gracefully and in-flight requests get the drain timeout to finish.
pub(super) async fn finish<C, E>(
    mut conn: Pin<&mut C>,
    graceful: impl Fn(Pin<&mut C>),
    ctx: &ConnCtx,
    reason: Stop,
) where
    C: Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    match reason {
        Stop::SlowHead => {
            tracing::debug!(peer = %ctx.info.peer, "no complete request head in time");
            return;
        }
        Stop::IdleOut => tracing::debug!(peer = %ctx.info.peer, "idle timeout"),
        Stop::Drain => {}
    }
    graceful(conn.as_mut());
    match tokio::time::timeout(ctx.drain_timeout(), conn).await {
        Ok(result) => log_end(ctx, result),
        Err(_) => tracing::debug!(peer = %ctx.info.peer, "drain timeout, closing"),
    }
}

pub(super) fn log_end<E: std::fmt::Display>(ctx: &ConnCtx, result: Result<(), E>) {
    if let Err(error) = result {
        tracing::debug!(peer = %ctx.info.peer, %error, "connection ended with an error");
    }
}

/// A duration from milliseconds, where 0 means "no limit".
pub(super) fn millis(ms: u64) -> Option<Duration> {
    (ms > 0).then(|| Duration::from_millis(ms))
}
