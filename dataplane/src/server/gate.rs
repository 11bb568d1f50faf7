//! [`Gated`]: a future polled only after it asked to be woken.
//!
//! A connection's loop selects between the hyper connection and its
//! watchers (the drain signals, the idle timer). `select!` polls every
//! branch each time the task wakes — on every read and write of every
//! request — although the watchers only make progress when their own waker
//! fires. Wrapping them in [`Gated`] turns those extra polls into one atomic
//! swap, which matters on a path taken several times per request.

use futures_util::task::AtomicWaker;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

/// Whether the inner future was woken, and the task to wake when it is.
#[derive(Debug)]
struct Flag {
    woken: AtomicBool,
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// Polls `inner` only on the first poll and after `inner` woke the task.
pub(crate) struct Gated<F> {
    inner: Pin<Box<F>>,
    flag: Arc<Flag>,
    waker: Waker,
}

impl<F: Future> Gated<F> {
    /// Wraps `inner`; the first poll always reaches it.
    pub(crate) fn new(inner: F) -> Gated<F> {
        let flag = Arc::new(Flag {
            woken: AtomicBool::new(true),
            task: AtomicWaker::new(),
        });
        Gated {
            inner: Box::pin(inner),
            waker: Waker::from(Arc::clone(&flag)),
            flag,
        }
    }
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        // Register before looking at the flag so a wake in between is not lost.
        this.flag.task.register(cx.waker());
        if !this.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        this.inner
            .as_mut()
            .poll(&mut Context::from_waker(&this.waker))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// Counts its polls; wakes itself when `wakes`, and finishes on its third.
    struct Counting {
        polls: Arc<AtomicUsize>,
        wakes: bool,
    }

    impl Future for Counting {
        type Output = ();
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.polls.fetch_add(1, Ordering::SeqCst) == 2 {
                return Poll::Ready(());
            }
            if self.wakes {
                cx.waker().wake_by_ref();
            }
            Poll::Pending
        }
    }

    /// The inner future is polled once, then only after its own wake-ups;
    /// polls caused by anything else do not reach it.
    #[test]
    fn polls_the_inner_future_only_when_it_woke() {
        let polls = Arc::new(AtomicUsize::new(0));
        let mut gated = Gated::new(Counting {
            polls: Arc::clone(&polls),
            wakes: true,
        });
        let mut cx = Context::from_waker(Waker::noop());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert!(Pin::new(&mut gated).poll(&mut cx).is_pending());
        assert_eq!(polls.load(Ordering::SeqCst), 2);
        assert!(Pin::new(&mut gated).poll(&mut cx).is_ready());

        let polls = Arc::new(AtomicUsize::new(0));
        let mut quiet = Gated::new(Counting {
            polls: Arc::clone(&polls),
            wakes: false,
        });
        for _ in 0..3 {
            assert!(Pin::new(&mut quiet).poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
    }
}
