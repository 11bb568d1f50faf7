//! Load-balancing choices: smooth weighted round robin across a rule's
//! backends and plain round robin across a backend's endpoints.
//!
//! Both are deterministic (no randomness on the request path), so a 90/10
//! split sends exactly 9 of every 10 requests to the first backend and tests
//! can assert the split exactly.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Smooth weighted round robin over a fixed list of weights.
///
/// Each pick adds every weight to its running score, takes the highest score
/// and subtracts the total from it. Over any window of `total` picks each
/// entry is chosen exactly `weight` times, interleaved as evenly as possible
/// (weights 2:1 give `a b a`, not `a a b`).
///
/// Most rules have one backend; their balancer holds just its index (no
/// lock, no allocation), which keeps a runtime with many routes small.
#[derive(Debug)]
pub struct Balancer {
    pick: Pick,
}

/// What a balancer chooses from.
#[derive(Debug)]
enum Pick {
    /// No weight above 0.
    Nothing,
    /// One entry with a weight above 0, always chosen.
    One(usize),
    /// Several entries: scores kept across picks.
    Weighted(Box<Weighted>),
}

/// The state of smooth weighted round robin over several entries.
#[derive(Debug)]
struct Weighted {
    /// `(caller's index, weight)` of every entry with a weight above 0.
    entries: Box<[(usize, i64)]>,
    total: i64,
    scores: Mutex<Box<[i64]>>,
}

impl Balancer {
    /// A balancer over `weights`; entries of weight 0 are never chosen.
    pub fn new(weights: impl IntoIterator<Item = u32>) -> Balancer {
        let entries: Box<[(usize, i64)]> = weights
            .into_iter()
            .enumerate()
            .filter(|(_, w)| *w > 0)
            .map(|(i, w)| (i, i64::from(w)))
            .collect();
        let pick = match *entries {
            [] => Pick::Nothing,
            [(i, _)] => Pick::One(i),
            _ => {
                let total = entries.iter().map(|(_, w)| w).sum();
                let scores = Mutex::new(vec![0; entries.len()].into_boxed_slice());
                Pick::Weighted(Box::new(Weighted {
                    entries,
                    total,
                    scores,
                }))
            }
        };
        Balancer { pick }
    }

    /// The index (into the weights given to [`Balancer::new`]) of the next
    /// choice, or `None` when no weight is above 0.
    pub fn select(&self) -> Option<usize> {
        match &self.pick {
            Pick::Nothing => None,
            Pick::One(i) => Some(*i),
            Pick::Weighted(weighted) => weighted.select(),
        }
    }
}

impl Weighted {
    fn select(&self) -> Option<usize> {
        let mut scores = self.scores.lock().unwrap_or_else(|p| p.into_inner());
        for (score, (_, weight)) in scores.iter_mut().zip(&self.entries) {
            *score += weight;
        }
        // The first of equal scores wins, so ties resolve in manifest order.
        let slot = scores
            .iter()
            .enumerate()
            .rev()
            .max_by_key(|(_, score)| **score)
            .map(|(slot, _)| slot)?;
        if let Some(score) = scores.get_mut(slot) {
            *score -= self.total;
        }
        self.entries.get(slot).map(|(i, _)| *i)
    }
}

/// Round robin over `len` items.
#[derive(Debug, Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl RoundRobin {
    /// The next index below `len`, or `None` when `len` is 0.
    pub fn select(&self, len: usize) -> Option<usize> {
        if len == 0 {
            return None;
        }
        Some(self.next.fetch_add(1, Ordering::Relaxed) % len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picks(weights: &[u32], n: usize) -> Vec<Option<usize>> {
        let balancer = Balancer::new(weights.iter().copied());
        (0..n).map(|_| balancer.select()).collect()
    }

    /// Each entry is chosen exactly `weight` times in every window of
    /// `sum(weights)` picks, spread evenly, ties in declaration order.
    #[test]
    fn smooth_weighted_round_robin() {
        let table: &[(&[u32], &[usize])] = &[
            (&[1], &[0, 0, 0]),
            (&[1, 1], &[0, 1, 0, 1]),
            (&[2, 1], &[0, 1, 0, 0, 1, 0]),
            (&[0, 3], &[1, 1, 1]),
            (&[5, 1, 1], &[0, 0, 1, 0, 2, 0, 0]),
        ];
        for (weights, expected) in table {
            let got: Vec<usize> = picks(weights, expected.len())
                .into_iter()
                .flatten()
                .collect();
            assert_eq!(&got, expected, "weights {weights:?}");
        }
    }

    /// A 90/10 split is exact over every 10 consecutive requests.
    #[test]
    fn ninety_ten_is_exact_per_window() {
        let all = picks(&[90, 10], 100);
        for window in all.chunks(10) {
            let second = window.iter().filter(|p| **p == Some(1)).count();
            assert_eq!(second, 1, "{window:?}");
        }
    }

    /// With no weight above 0 nothing can be chosen.
    #[test]
    fn no_positive_weight_selects_nothing() {
        assert_eq!(picks(&[], 2), vec![None, None]);
        assert_eq!(picks(&[0, 0], 1), vec![None]);
    }

    #[test]
    fn round_robin_cycles() {
        let rr = RoundRobin::default();
        let got: Vec<_> = (0..5).map(|_| rr.select(2)).collect();
        assert_eq!(got, vec![Some(0), Some(1), Some(0), Some(1), Some(0)]);
        assert_eq!(rr.select(0), None);
    }
}
