//! Per-connection request activity, for the idle keep-alive timeout.
//!
//! hyper has no "close after N idle seconds" option for HTTP/1, and its
//! HTTP/2 keep-alive pings measure liveness, not use. So each connection
//! counts its in-flight requests (a request ends when its response body is
//! finished or dropped) and remembers when the last one ended; the connection
//! loop closes it gracefully once it has been idle for `idle_timeout_ms`.

use crate::clock::Ticks;
use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// In-flight request count and the time the connection last became idle.
///
/// Plain atomics: every request updates them, and nothing waits on a
/// change — the idle timer looks at them only when it expires.
#[derive(Debug)]
pub(crate) struct Activity {
    in_flight: AtomicUsize,
    /// When the connection was accepted; `last_end` counts from here.
    epoch: Instant,
    /// The same moment on the request path's clock, which request ends
    /// read (one read per poll: [`crate::clock`]).
    epoch_ticks: Ticks,
    /// Nanoseconds from `epoch` to the end of the last request.
    last_end: AtomicU64,
}

impl Activity {
    /// A connection that has just been accepted counts as just idle.
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            in_flight: AtomicUsize::new(0),
            epoch: Instant::now(),
            epoch_ticks: Ticks::now(),
            last_end: AtomicU64::new(0),
        })
    }

    /// Marks a request as started; it ends when the returned guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RequestGuard {
            activity: Arc::clone(self),
        }
    }

    /// Since when no request has been in flight; `None` while one is.
    pub(crate) fn idle_since(&self) -> Option<Instant> {
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| self.last_end())
    }

    fn last_end(&self) -> Instant {
        self.epoch + Duration::from_nanos(self.last_end.load(Ordering::Acquire))
    }

    /// Resolves once the connection has had no request in flight for `idle`.
    ///
    /// Wakes only when a deadline passes: at `idle` after the last request
    /// ended, or, while requests are in flight, every `idle` to look again.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        let mut deadline = self.last_end() + idle;
        loop {
            tokio::time::sleep_until(deadline).await;
            let busy = self.in_flight.load(Ordering::Acquire) > 0;
            let idle_at = self.last_end() + idle;
            let now = Instant::now();
            if !busy && idle_at <= now {
                return;
            }
            deadline = if busy { now + idle } else { idle_at };
        }
    }
}

/// Counts one request as in flight while alive.
#[derive(Debug)]
pub(crate) struct RequestGuard {
    activity: Arc<Activity>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let activity = &self.activity;
        let since = Ticks::now().since(activity.epoch_ticks);
        let nanos = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX);
        activity.last_end.fetch_max(nanos, Ordering::AcqRel);
        activity.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that keeps its request counted until it is finished or dropped.
pub(crate) struct TrackedBody<B> {
    inner: B,
    guard: Option<RequestGuard>,
}

impl<B> TrackedBody<B> {
    /// Wraps `inner`, holding `guard` until the body ends.
    pub(crate) fn new(inner: B, guard: RequestGuard) -> TrackedBody<B> {
        TrackedBody {
            inner,
            guard: Some(guard),
        }
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The idle timer runs only while no request is in flight, and restarts
    /// when the last request ends.
    #[tokio::test]
    async fn idle_counts_from_the_end_of_the_last_request() {
        let activity = Activity::new();
        let guard = activity.begin();
        let idle = activity.idle_for(Duration::from_millis(50));
        tokio::pin!(idle);
        tokio::select! {
            () = &mut idle => panic!("idle while a request is in flight"),
            () = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
        drop(guard);
        let ended = Instant::now();
        idle.await;
        assert!(Instant::now() - ended >= Duration::from_millis(50));
    }

    /// A connection that never carries a request idles out `idle` after it
    /// was accepted, and a later request pushes the deadline back.
    #[tokio::test]
    async fn idle_counts_from_accept_and_moves_with_requests() {
        let activity = Activity::new();
        let started = Instant::now();
        activity.idle_for(Duration::from_millis(50)).await;
        assert!(Instant::now() - started >= Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(activity.begin());
        let ended = Instant::now();
        activity.idle_for(Duration::from_millis(50)).await;
        assert!(Instant::now() - ended >= Duration::from_millis(50));
    }
}
