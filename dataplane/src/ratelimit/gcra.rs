//! The generic cell rate algorithm: one timestamp per key (the theoretical
//! arrival time, TAT) decides whether `cost` more units fit.
//!
//! With `period` = interval / requests and `capacity` = requests + burst,
//! a key at rest admits `capacity` units at once and then one unit per
//! `period`; a unit admitted at `now` pushes the TAT one period later. A
//! request fits when `max(tat, now) + cost·period − now ≤ capacity·period`.
//! The same arithmetic runs in memory (local limits) and in the Redis
//! script (global limits, `redis.rs`), in microseconds.

/// A limit's shape in microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shape {
    /// Microseconds per unit (at least 1).
    pub(crate) period: u64,
    /// Units admitted at once from rest.
    pub(crate) capacity: u64,
}

impl Shape {
    /// `requests` per `interval_ms`, plus `burst`.
    pub(crate) fn new(requests: u64, interval_ms: u64, burst: u64) -> Shape {
        let requests = requests.max(1);
        Shape {
            period: (interval_ms.saturating_mul(1000) / requests).max(1),
            capacity: requests.saturating_add(burst),
        }
    }

    /// The window the capacity spans, in microseconds.
    pub(crate) fn window(self) -> u64 {
        self.period.saturating_mul(self.capacity)
    }
}

/// One decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Whether the units fit (and were taken).
    pub(crate) allowed: bool,
    /// The key's TAT after the decision (unchanged when refused).
    pub(crate) tat: u64,
    /// Units still available right after the decision.
    pub(crate) remaining: u64,
    /// When refused: microseconds until `cost` units would fit.
    pub(crate) retry_after: u64,
    /// Microseconds until the key is back at full capacity.
    pub(crate) reset: u64,
}

/// Decides `cost` units for a key whose TAT is `tat` (0: never seen) at
/// `now`.
pub(crate) fn decide(shape: Shape, tat: u64, now: u64, cost: u64) -> Decision {
    let base = tat.max(now);
    let used = base - now;
    let window = shape.window();
    let next = base.saturating_add(cost.saturating_mul(shape.period));
    let allowed = next - now <= window;
    let tat = if allowed { next } else { base };
    let in_use = tat - now;
    Decision {
        allowed,
        tat,
        remaining: window.saturating_sub(in_use) / shape.period,
        retry_after: if allowed { 0 } else { (next - now) - window },
        reset: if allowed { in_use } else { used },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000;

    /// 10 per second: 10 at once, then one every 100 ms.
    #[test]
    fn burst_then_steady_rate() {
        let shape = Shape::new(10, 1000, 0);
        assert_eq!(
            shape,
            Shape {
                period: 100_000,
                capacity: 10
            }
        );
        let (mut tat, now) = (0, 50 * SEC);
        for i in 0..10 {
            let d = decide(shape, tat, now, 1);
            assert!(d.allowed, "unit {i}");
            assert_eq!(d.remaining, 9 - i);
            tat = d.tat;
        }
        let refused = decide(shape, tat, now, 1);
        assert!(!refused.allowed);
        assert_eq!(refused.tat, tat, "a refusal takes nothing");
        assert_eq!(refused.retry_after, 100_000);
        assert_eq!(refused.reset, SEC);
        // 100 ms later exactly one more fits.
        let later = decide(shape, tat, now + 100_000, 1);
        assert!(later.allowed);
        assert!(!decide(shape, later.tat, now + 100_000, 1).allowed);
    }

    /// Costs and burst.
    #[test]
    fn costs_burst_and_leases() {
        let shape = Shape::new(100, 10_000, 20);
        assert_eq!(shape.capacity, 120);
        let now = SEC;
        let d = decide(shape, 0, now, 120);
        assert!(d.allowed && d.remaining == 0);
        assert!(!decide(shape, d.tat, now, 1).allowed);
        assert!(decide(shape, d.tat, now + 3 * shape.period, 3).allowed);
        assert!(!decide(shape, d.tat, now + 3 * shape.period, 4).allowed);
        // A cost above capacity never fits, and says so.
        let huge = decide(shape, 0, now, 121);
        assert!(!huge.allowed && huge.retry_after == shape.period);
    }
}
