//! Shutdown and drain signals, and the count of live connections.
//!
//! Two things stop a connection: the whole data plane shutting down, and its
//! socket being dropped by a new snapshot. Either way the connection is asked
//! to finish gracefully (in-flight requests complete, keep-alive ends) and is
//! closed by force once the drain timeout passes. [`Tracker`] counts accept
//! loops and connections so `Dataplane::closed` knows when draining is over.

use tokio::sync::watch;

/// Counts live accept loops and connections; each holds a [`TrackGuard`].
#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    active: watch::Sender<usize>,
}

impl Tracker {
    /// A tracker with nothing live.
    pub(crate) fn new() -> Tracker {
        Tracker {
            active: watch::Sender::new(0),
        }
    }

    /// Registers one more live task until the guard is dropped.
    pub(crate) fn guard(&self) -> TrackGuard {
        self.active.send_modify(|n| *n += 1);
        TrackGuard {
            active: self.active.clone(),
        }
    }

    /// Number of live tasks.
    pub(crate) fn count(&self) -> usize {
        *self.active.borrow()
    }

    /// Resolves once no task is live.
    pub(crate) async fn idle(&self) {
        let mut rx = self.active.subscribe();
        // The sender lives in `self`, so `wait_for` cannot fail here.
        let _ = rx.wait_for(|n| *n == 0).await;
    }
}

/// Keeps one task counted in its [`Tracker`] while alive.
#[derive(Debug)]
pub(crate) struct TrackGuard {
    active: watch::Sender<usize>,
}

impl Drop for TrackGuard {
    fn drop(&mut self) {
        self.active.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A one-way flag: once raised it stays raised.
#[derive(Clone, Debug)]
pub(crate) struct Signal {
    raised: watch::Sender<bool>,
}

impl Signal {
    /// A lowered flag.
    pub(crate) fn new() -> Signal {
        Signal {
            raised: watch::Sender::new(false),
        }
    }

    /// Raises the flag; every waiter wakes up.
    pub(crate) fn raise(&self) {
        self.raised.send_replace(true);
    }

    /// Whether the flag is raised.
    pub(crate) fn is_raised(&self) -> bool {
        *self.raised.borrow()
    }

    /// Resolves once the flag is raised.
    pub(crate) async fn raised(&self) {
        let mut rx = self.raised.subscribe();
        let _ = rx.wait_for(|raised| *raised).await;
    }
}

/// What tells one connection to drain: data-plane shutdown or its socket's removal.
#[derive(Clone, Debug)]
pub(crate) struct Drain {
    /// Raised when the data plane shuts down.
    pub(crate) shutdown: Signal,
    /// Raised when this connection's socket is no longer in the snapshot.
    pub(crate) removed: Signal,
}

impl Drain {
    /// Resolves when either signal is raised.
    pub(crate) async fn signalled(&self) {
        tokio::select! {
            () = self.shutdown.raised() => {}
            () = self.removed.raised() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tracker_is_idle_once_every_guard_is_dropped() {
        let tracker = Tracker::new();
        let a = tracker.guard();
        let b = tracker.guard();
        assert_eq!(tracker.count(), 2);
        drop(a);
        assert_eq!(tracker.count(), 1);
        drop(b);
        tracker.idle().await;
        assert_eq!(tracker.count(), 0);
    }

    #[tokio::test]
    async fn a_raised_signal_stays_raised() {
        let signal = Signal::new();
        assert!(!signal.is_raised());
        signal.raise();
        signal.raised().await;
        signal.raised().await;
        assert!(signal.is_raised());
    }
}
