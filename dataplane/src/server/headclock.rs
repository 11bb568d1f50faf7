//! The request-header timeout for HTTP/1.1, measured from a head's first
//! byte rather than from the moment the connection could take a request.
//!
//! hyper's own header-read timer starts as soon as a keep-alive connection
//! is ready for its next request, so an idle connection would be cut at the
//! header timeout (10 s by default) instead of the idle timeout (60 s), and
//! each request would allocate and register a timer. Instead the framing
//! watch, which already reads every inbound byte, marks when a head starts
//! arriving and when it is complete; [`HeadClock::expired`] wakes only when
//! a deadline passes (at most once per timeout while nothing is pending).
//!
//! A head that arrives whole in one read never touches the clock. If the
//! watch stops following the connection (HTTP/1.0, an upgrade, unusual
//! framing), heads can no longer be told from idle time and the connection
//! falls back to hyper's former rule: no request for the header timeout
//! closes it.

use super::activity::Activity;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// When the head being read started, shared by the watch and the connection.
#[derive(Debug)]
pub(crate) struct HeadClock {
    epoch: Instant,
    /// Nanoseconds from `epoch` to the first byte of the head being read,
    /// plus one; 0 while no head is partly read.
    started: AtomicU64,
    /// The watch stopped: heads are no longer followed.
    untracked: AtomicBool,
}

impl Default for HeadClock {
    fn default() -> HeadClock {
        HeadClock {
            epoch: Instant::now(),
            started: AtomicU64::new(0),
            untracked: AtomicBool::new(false),
        }
    }
}

impl HeadClock {
    /// A head's first bytes arrived without its end.
    pub(crate) fn head_started(&self) {
        if self.started.load(Ordering::Relaxed) == 0 {
            let nanos = u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
            self.started.store(nanos + 1, Ordering::Release);
        }
    }

    /// The head being read is complete.
    pub(crate) fn head_done(&self) {
        if self.started.load(Ordering::Relaxed) != 0 {
            self.started.store(0, Ordering::Release);
        }
    }

    /// The watch stopped; see the module docs.
    pub(crate) fn untrack(&self) {
        self.untracked.store(true, Ordering::Release);
        self.started.store(0, Ordering::Release);
    }

    fn started_at(&self) -> Option<Instant> {
        match self.started.load(Ordering::Acquire) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n - 1)),
        }
    }

    /// Resolves once a head has been arriving for `limit` (or, untracked,
    /// once no request has come for `limit`).
    pub(crate) async fn expired(&self, limit: Duration, activity: &Activity) {
        let mut deadline = Instant::now() + limit;
        loop {
            tokio::time::sleep_until(deadline).await;
            let now = Instant::now();
            let due = if self.untracked.load(Ordering::Acquire) {
                activity.idle_since().map(|since| since + limit)
            } else {
                self.started_at().map(|since| since + limit)
            };
            match due {
                Some(due) if due <= now => return,
                Some(due) => deadline = due,
                None => deadline = now + limit,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a head left unfinished for the limit expires the clock.
    #[tokio::test(start_paused = true)]
    async fn only_an_unfinished_head_expires() {
        let clock = HeadClock::default();
        let activity = Activity::new();
        let limit = Duration::from_secs(10);
        // Idle for long: nothing expires.
        let idle = tokio::time::timeout(Duration::from_secs(60), clock.expired(limit, &activity));
        assert!(idle.await.is_err());
        // A head that finishes in time: nothing expires.
        clock.head_started();
        tokio::time::sleep(Duration::from_secs(5)).await;
        clock.head_done();
        let finished =
            tokio::time::timeout(Duration::from_secs(30), clock.expired(limit, &activity));
        assert!(finished.await.is_err());
        // A head that does not: expires 10 s after its first byte.
        clock.head_started();
        let started = Instant::now();
        clock.expired(limit, &activity).await;
        assert_eq!(started.elapsed(), limit);
    }

    /// Untracked, a connection expires after the limit without a request.
    #[tokio::test(start_paused = true)]
    async fn untracked_connections_expire_when_idle() {
        let clock = HeadClock::default();
        let activity = Activity::new();
        clock.untrack();
        let started = Instant::now();
        clock.expired(Duration::from_secs(10), &activity).await;
        assert!(started.elapsed() <= Duration::from_secs(20));
    }
}
