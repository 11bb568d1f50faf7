//! Per-connection request activity, for the idle keep-alive timeout.
//!
//! hyper has no "close after N idle seconds" option for HTTP/1, and its
//! HTTP/2 keep-alive pings measure liveness, not use. So each connection
//! counts its in-flight requests (a request ends when its response body is
//! finished or dropped) and remembers when the last one ended; the connection
//! loop closes it gracefully once it has been idle for `idle_timeout_ms`.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
struct State {
    in_flight: usize,
    last_end: Instant,
}

/// In-flight request count and the time the connection last became idle.
#[derive(Debug)]
pub(crate) struct Activity {
    state: watch::Sender<State>,
}

impl Activity {
    /// A connection that has just been accepted counts as just idle.
    pub(crate) fn new() -> Arc<Activity> {
        Arc::new(Activity {
            state: watch::Sender::new(State {
                in_flight: 0,
                last_end: Instant::now(),
            }),
        })
    }

    /// Marks a request as started; it ends when the returned guard drops.
    pub(crate) fn begin(self: &Arc<Self>) -> RequestGuard {
        self.state.send_modify(|s| s.in_flight += 1);
        RequestGuard {
            activity: Arc::clone(self),
        }
    }

    /// Resolves once the connection has had no request in flight for `idle`.
    pub(crate) async fn idle_for(&self, idle: Duration) {
        let mut rx = self.state.subscribe();
        loop {
            let state = *rx.borrow_and_update();
            if state.in_flight > 0 {
                if rx.changed().await.is_err() {
                    return;
                }
                continue;
            }
            tokio::select! {
                () = tokio::time::sleep_until(state.last_end + idle) => return,
                changed = rx.changed() => if changed.is_err() { return },
            }
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
        self.activity.state.send_modify(|s| {
            s.in_flight = s.in_flight.saturating_sub(1);
            s.last_end = Instant::now();
        });
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
}
