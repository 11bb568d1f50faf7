//! `RequestMirror`: which requests fall in a mirror's share.
//!
//! The counter is deterministic, like the weighted backend choice: a share
//! of `num/den` picks exactly `num` of every `den` consecutive requests, so
//! tests and users see the configured fraction over every window.

use std::sync::atomic::{AtomicU64, Ordering};

/// A mirror target and its deterministic share counter.
#[derive(Debug)]
pub(crate) struct MirrorStage {
    /// Index into `Snapshot::backends`.
    pub(crate) backend: usize,
    numerator: u64,
    denominator: u64,
    seen: AtomicU64,
}

impl MirrorStage {
    /// A mirror to `backend` (an index into `Snapshot::backends`) of the
    /// share `numerator / denominator`.
    pub(crate) fn new(backend: usize, numerator: u64, denominator: u64) -> MirrorStage {
        MirrorStage {
            backend,
            numerator,
            denominator,
            seen: AtomicU64::new(0),
        }
    }

    /// Whether this request is in the mirrored share: request `n` is picked
    /// when `floor((n + 1) · num / den)` steps past `floor(n · num / den)`,
    /// which spreads exactly `num` picks over every `den` requests.
    pub(crate) fn picks_next(&self) -> bool {
        let n = u128::from(self.seen.fetch_add(1, Ordering::Relaxed));
        let (num, den) = (u128::from(self.numerator), u128::from(self.denominator));
        den > 0 && (n + 1) * num / den > n * num / den
    }
}

#[cfg(test)]
mod tests {
    use super::MirrorStage;

    /// A mirror share of `num/den` picks exactly `num` of every `den`
    /// consecutive requests, spread out.
    #[test]
    fn mirror_share_is_exact() {
        let table = [(0, 1, 0), (1, 1, 10), (1, 2, 5), (1, 10, 1), (3, 10, 3)];
        for (num, den, per_ten) in table {
            let m = MirrorStage::new(0, num, den);
            let picked = (0..10).filter(|_| m.picks_next()).count();
            assert_eq!(picked, per_ten, "{num}/{den}");
        }
    }
}
