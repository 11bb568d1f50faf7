//! Retry budgets: how many retries a route rule may make, whatever its
//! retry policy asks.
//!
//! A rule's policy says "retry up to 3 times"; during an outage that is four
//! requests for every one, aimed at a backend that is already failing. A
//! budget (linkerd's and Finagle's design; Envoy's is the same idea over
//! concurrency) caps retries at a share of recent traffic instead:
//! `percent` of the requests the rule received in the last `interval`, plus
//! `min_per_second` for each second of it so that a rarely used rule can
//! still retry. Every request deposits, every retry withdraws; a retry with
//! nothing left to withdraw is not made and the failed attempt's answer
//! goes back to the client.
//!
//! Counts live in a ring of [`SLOTS`] time slots covering the interval, so
//! old traffic ages out slot by slot instead of all at once. A budget
//! belongs to one rule on one data plane and outlives snapshot swaps
//! (`Clients::retry_budget`): an outage is when endpoints change and new
//! snapshots arrive, and a budget reset on each would refill the reserve
//! exactly when it should be spent.

use std::sync::{Mutex, PoisonError};
use std::time::Instant;
use tollgate_snapshot::RetrySettings;

/// Slots the interval is divided into.
const SLOTS: usize = 10;

/// The retry budget of one rule; shared by every request of the rule.
#[derive(Debug)]
pub struct RetryBudget {
    limits: Limits,
    epoch: Instant,
    window: Mutex<Window>,
}

impl RetryBudget {
    /// A full budget with `settings`.
    pub fn new(settings: &RetrySettings) -> RetryBudget {
        RetryBudget {
            limits: Limits::new(settings),
            epoch: Instant::now(),
            window: Mutex::new(Window::default()),
        }
    }

    /// Counts a request of the rule (call once per request, not per attempt).
    pub fn deposit(&self) {
        let tick = self.tick();
        self.lock().deposit(tick);
    }

    /// Takes one retry from the budget; `false` when the budget is spent and
    /// the retry must not be made.
    pub fn try_withdraw(&self) -> bool {
        let tick = self.tick();
        self.lock().try_withdraw(tick, &self.limits)
    }

    fn tick(&self) -> u64 {
        let ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        ms / self.limits.slot_ms
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The budget's arithmetic, from [`RetrySettings`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Limits {
    /// Retries per hundred requests.
    percent: u64,
    /// Retries always allowed per interval (`min_per_second` × seconds).
    reserve: u64,
    /// Length of one slot, in milliseconds (at least 1).
    slot_ms: u64,
}

impl Limits {
    fn new(settings: &RetrySettings) -> Limits {
        let interval_ms = settings.budget_interval_ms.max(1);
        Limits {
            percent: u64::from(settings.budget_percent),
            reserve: u64::from(settings.min_retries_per_second) * interval_ms / 1000,
            slot_ms: (interval_ms / SLOTS as u64).max(1),
        }
    }

    /// Retries allowed in a window that saw `requests`.
    fn allowed(&self, requests: u64) -> u64 {
        requests.saturating_mul(self.percent) / 100 + self.reserve
    }
}

/// Requests and retries of one slot.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    requests: u64,
    retries: u64,
}

/// The last [`SLOTS`] slots; `tick` is the absolute slot number of the
/// newest one.
#[derive(Debug, Default)]
struct Window {
    slots: [Slot; SLOTS],
    tick: u64,
}

impl Window {
    /// Moves the window to `tick`, emptying the slots it passes. A tick
    /// from the past (a caller that read the clock before another) counts
    /// in the newest slot.
    fn advance(&mut self, tick: u64) {
        if tick <= self.tick {
            return;
        }
        let passed = (tick - self.tick).min(SLOTS as u64);
        for t in (tick - passed + 1)..=tick {
            self.slots[(t % SLOTS as u64) as usize] = Slot::default();
        }
        self.tick = tick;
    }

    fn newest(&mut self) -> &mut Slot {
        &mut self.slots[(self.tick % SLOTS as u64) as usize]
    }

    fn deposit(&mut self, tick: u64) {
        self.advance(tick);
        self.newest().requests += 1;
    }

    fn try_withdraw(&mut self, tick: u64, limits: &Limits) -> bool {
        self.advance(tick);
        let (requests, retries) = self.totals();
        if retries >= limits.allowed(requests) {
            return false;
        }
        self.newest().retries += 1;
        true
    }

    fn totals(&self) -> (u64, u64) {
        self.slots
            .iter()
            .fold((0, 0), |(q, r), s| (q + s.requests, r + s.retries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits(percent: u32, min_per_second: u32, interval_ms: u64) -> Limits {
        Limits::new(&RetrySettings {
            budget_percent: percent,
            budget_interval_ms: interval_ms,
            min_retries_per_second: min_per_second,
            max_buffered_body_bytes: 0,
        })
    }

    /// The defaults (20%, 10 per second over 10 s): 100 retries in reserve,
    /// one more per five requests.
    #[test]
    fn allowance_table() {
        let l = limits(20, 10, 10_000);
        assert_eq!((l.reserve, l.slot_ms), (100, 1000));
        for (requests, allowed) in [(0, 100), (4, 100), (5, 101), (1000, 300)] {
            assert_eq!(l.allowed(requests), allowed, "{requests}");
        }
        assert_eq!(limits(0, 0, 1000).allowed(1_000_000), 0);
    }

    /// With no reserve, a storm of failing requests gets exactly the
    /// percentage: 10% of 50 requests is 5 retries, the 6th is refused.
    #[test]
    fn a_storm_gets_the_percentage_and_no_more() {
        let l = limits(10, 0, 10_000);
        let mut w = Window::default();
        let mut granted = 0;
        for _ in 0..50 {
            w.deposit(0);
            for _ in 0..3 {
                granted += u32::from(w.try_withdraw(0, &l));
            }
        }
        assert_eq!(granted, 5);
    }

    /// Traffic older than the interval no longer counts: the budget spent
    /// in one interval is back after it.
    #[test]
    fn old_slots_age_out() {
        let l = limits(0, 1, 1000); // a reserve of one retry per second
        let mut w = Window::default();
        assert!(w.try_withdraw(0, &l));
        assert!(!w.try_withdraw(5, &l));
        assert!(!w.try_withdraw(9, &l));
        assert!(w.try_withdraw(10, &l));
        assert!(w.try_withdraw(1000, &l));
    }

    #[derive(Clone, Debug)]
    enum Op {
        Request,
        Retry,
        Wait(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => Just(Op::Request),
            3 => Just(Op::Retry),
            1 => (0u64..15).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever the order of requests, retries and time, the retries
        /// granted within the window never exceed the allowance for the
        /// requests within it.
        #[test]
        fn granted_retries_stay_within_the_allowance(
            percent in 0u32..=100,
            min_per_second in 0u32..5,
            ops in proptest::collection::vec(op(), 0..300),
        ) {
            let l = limits(percent, min_per_second, 2000);
            let mut w = Window::default();
            let mut tick = 0;
            for op in ops {
                match op {
                    Op::Request => w.deposit(tick),
                    Op::Wait(n) => tick += n,
                    Op::Retry => {
                        if w.try_withdraw(tick, &l) {
                            let (requests, retries) = w.totals();
                            prop_assert!(retries <= l.allowed(requests));
                        }
                    }
                }
            }
        }
    }
}
