//! The request path's clock: `Instant`, read at most once per poll of a
//! connection's task.
//!
//! A proxied request wants the time at several moments that fall within
//! the same poll of its connection: when the head arrived (the request
//! deadline, the request-duration metric), when an attempt starts (and
//! whether a pooled upstream connection has idled too long), when the
//! response ends (the duration, the keep-alive idle timer, the connection
//! going back to the pool). Each read is a vDSO call of about 25 ns on
//! this machine; read separately they were nine per request, a few per
//! cent of what the proxy spends in user space.
//!
//! So, as nginx updates its cached time once per event-loop turn, each
//! connection's task runs inside [`Fresh`], and the first [`Ticks::now`]
//! of a poll reads the clock while later ones in the same poll reuse it.
//! A moment is therefore the start of the poll it happened in, give or
//! take the poll's own work (microseconds); only a duration that starts
//! and ends in one poll (a gateway-made 404) reads the clock again at its
//! end ([`Ticks::elapsed`]), so it does not come out as 0 s. HTTP/2
//! streams, each a task of its own, run inside `Fresh` too
//! ([`FreshExecutor`]); outside a `Fresh` poll (timers, the sweeper)
//! every call reads the clock.
//!
//! Timers stay on Tokio's `Instant`: [`Ticks`] measures, it never wakes.

use pin_project_lite::pin_project;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// What the thread knows of the time.
#[derive(Clone, Copy)]
enum Now {
    /// Outside any `Fresh` poll: every read goes to the clock.
    Outside,
    /// Inside a `Fresh` poll that has not read the clock yet.
    Unread,
    /// Inside a `Fresh` poll, which read this.
    Read(Instant),
}

thread_local! {
    static NOW: Cell<Now> = const { Cell::new(Now::Outside) };
}

/// A moment on the monotonic clock, as read by [`Ticks::now`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Ticks(Instant);

impl Ticks {
    /// Now: the time this poll already read, else the clock's.
    #[inline]
    pub(crate) fn now() -> Ticks {
        NOW.with(|now| match now.get() {
            Now::Read(at) => Ticks(at),
            Now::Unread => {
                let at = Instant::now();
                now.set(Now::Read(at));
                Ticks(at)
            }
            Now::Outside => Ticks(Instant::now()),
        })
    }

    /// The clock itself, whatever this poll read: for converting to the
    /// wall clock, which is read then too.
    #[inline]
    pub(crate) fn read() -> Ticks {
        Ticks(Instant::now())
    }

    /// The time from `earlier` to this moment (zero if it is later).
    #[inline]
    pub(crate) fn since(self, earlier: Ticks) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }

    /// The moment as an `Instant`, for a deadline counted from it.
    #[inline]
    pub(crate) fn instant(self) -> Instant {
        self.0
    }

    /// How long ago this moment was, by this poll's reading: for checking
    /// against a limit (an idle age, what is left of a timeout), where
    /// the poll's own microseconds do not matter.
    #[inline]
    pub(crate) fn age(self) -> Duration {
        Ticks::now().since(self)
    }

    /// The time from this moment to now, for a duration that is recorded.
    /// A moment read in this very poll is measured against the clock
    /// itself, so what starts and ends within one poll (a gateway-made
    /// 404) does not last 0 s.
    #[inline]
    pub(crate) fn elapsed(self) -> Duration {
        let now = Ticks::now();
        if now == self {
            return Ticks::read().since(self);
        }
        now.since(self)
    }
}

pin_project! {
    /// A future whose every poll shares one clock read (see the module
    /// docs); wraps each connection's task.
    pub(crate) struct Fresh<F> {
        #[pin]
        inner: F,
    }
}

impl<F> Fresh<F> {
    /// `inner`, polled with a fresh clock each time.
    pub(crate) fn new(inner: F) -> Fresh<F> {
        Fresh { inner }
    }
}

impl<F: Future> Future for Fresh<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let _poll = PollScope::enter();
        self.project().inner.poll(cx)
    }
}

/// Spawns each future hyper hands over (an HTTP/2 stream's request) as a
/// task of its own inside [`Fresh`], like the connections' tasks.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FreshExecutor;

impl<F> hyper::rt::Executor<F> for FreshExecutor
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    fn execute(&self, future: F) {
        tokio::spawn(Fresh::new(future));
    }
}

/// Marks the thread as inside a `Fresh` poll until dropped, then puts
/// back what was there (an enclosing poll's reading, or `Now::Outside`), also
/// when the poll unwinds.
struct PollScope {
    outer: Now,
}

impl PollScope {
    #[inline]
    fn enter() -> PollScope {
        PollScope {
            outer: NOW.with(|now| now.replace(Now::Unread)),
        }
    }
}

impl Drop for PollScope {
    #[inline]
    fn drop(&mut self) {
        NOW.with(|now| now.set(self.outer));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spin(d: Duration) {
        let start = std::time::Instant::now();
        while start.elapsed() < d {
            std::hint::spin_loop();
        }
    }

    /// Outside a `Fresh` poll every read is the clock's.
    #[test]
    fn outside_every_read_moves() {
        let a = Ticks::now();
        spin(Duration::from_millis(2));
        assert!(Ticks::now().since(a) >= Duration::from_millis(2));
    }

    /// Inside one poll the reads agree; the next poll reads anew; and the
    /// thread is back outside afterwards.
    #[tokio::test(flavor = "current_thread")]
    async fn one_read_per_poll() {
        let mut polls = 0;
        let mut first = None;
        let fresh = Fresh::new(std::future::poll_fn(|cx| {
            polls += 1;
            let a = Ticks::now();
            spin(Duration::from_millis(2));
            assert_eq!(Ticks::now(), a, "a second read in the same poll");
            assert!(
                a.elapsed() >= Duration::from_millis(2),
                "a duration within one poll reads the clock at its end"
            );
            match first {
                None => {
                    first = Some(a);
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                Some(earlier) => {
                    assert!(a.since(earlier) >= Duration::from_millis(2));
                    Poll::Ready(())
                }
            }
        }));
        fresh.await;
        assert_eq!(polls, 2);
        let outside = Ticks::now();
        spin(Duration::from_millis(2));
        assert!(Ticks::now() > outside, "still cached after the poll");
    }

    /// Ticks are on `Instant`'s clock: a span measured both ways agrees.
    #[test]
    fn agrees_with_instant() {
        let (t, i) = (Ticks::now(), std::time::Instant::now());
        spin(Duration::from_millis(5));
        let (dt, di) = (t.elapsed(), i.elapsed());
        let gap = dt.abs_diff(di);
        assert!(gap < Duration::from_millis(1), "{dt:?} vs {di:?}");
    }
}
