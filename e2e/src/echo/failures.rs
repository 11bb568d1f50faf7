//! Failing on purpose, so tests can watch a gateway retry.
//!
//! A request with `x-echo-fail: N;STATUS` (`STATUS` defaults to 503) is
//! answered `STATUS` the first `N` times the echo server sees its
//! `x-request-id`, then as usual (200). Every such answer carries
//! `x-echo-attempt` (how many times this id has been seen, this one
//! included) and `x-echo-same-body` (`true` when this request's body is
//! byte for byte the body of the id's first request), so a test reads
//! from the final answer how many attempts reached the backend and
//! whether retries resent the body whole. `x-echo-fail: always;STATUS`
//! never recovers. `?delay=<Go duration>` delays these answers too. Requests without `x-request-id` share one empty id.
//!
//! Counts are per echo process and kept for the last
//! [`REMEMBERED`] ids at most.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{LazyLock, Mutex, PoisonError};

/// The request header that asks for failures.
pub const FAIL_HEADER: &str = "x-echo-fail";

/// Ids remembered before the table is cleared.
const REMEMBERED: usize = 100_000;

/// How a request asked to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FailPlan {
    /// Answers with `status` before succeeding; `None`: always.
    pub times: Option<u32>,
    /// The failing status.
    pub status: u16,
}

/// Reads an `x-echo-fail` value: `N`, `N;STATUS`, `always` or
/// `always;STATUS`, STATUS within 100..=599. `None` when malformed.
pub fn parse_fail(value: &str) -> Option<FailPlan> {
    let (times, status) = match value.split_once(';') {
        Some((times, status)) => (times.trim(), status.trim().parse().ok()?),
        None => (value.trim(), 503),
    };
    let times = match times {
        "always" => None,
        n => Some(n.parse().ok()?),
    };
    (100..=599)
        .contains(&status)
        .then_some(FailPlan { times, status })
}

struct Seen {
    attempts: u32,
    first_body: u64,
}

static SEEN: LazyLock<Mutex<HashMap<String, Seen>>> = LazyLock::new(Mutex::default);

/// Records a request of id `key` with `body`: its attempt number (1 for
/// the first) and whether `body` equals the first attempt's.
pub(super) fn record(key: &str, body: &[u8]) -> (u32, bool) {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    let digest = hasher.finish();
    let mut seen = SEEN.lock().unwrap_or_else(PoisonError::into_inner);
    if seen.len() >= REMEMBERED && !seen.contains_key(key) {
        seen.clear();
    }
    let entry = seen.entry(key.to_string()).or_insert(Seen {
        attempts: 0,
        first_body: digest,
    });
    entry.attempts += 1;
    (entry.attempts, entry.first_body == digest)
}

/// The status for attempt `attempt` under `plan`: the failing one while
/// failures remain, else 200.
pub(super) fn status_for(plan: FailPlan, attempt: u32) -> u16 {
    match plan.times {
        Some(times) if attempt > times => 200,
        _ => plan.status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts and status, as documented; malformed values are ignored.
    #[test]
    fn fail_header_values() {
        let plan = |times, status| Some(FailPlan { times, status });
        let cases = [
            ("2", plan(Some(2), 503)),
            ("2;500", plan(Some(2), 500)),
            (" 0 ; 429 ", plan(Some(0), 429)),
            ("always", plan(None, 503)),
            ("always;502", plan(None, 502)),
            ("-1", None),
            ("2;abc", None),
            ("2;600", None),
            ("x;503", None),
            ("", None),
        ];
        for (value, want) in cases {
            assert_eq!(parse_fail(value), want, "{value:?}");
        }
    }

    /// Attempts count per id; the body of later attempts is compared to
    /// the first one's.
    #[test]
    fn attempts_per_id() {
        assert_eq!(record("failures-test-a", b"x"), (1, true));
        assert_eq!(record("failures-test-b", b"y"), (1, true));
        assert_eq!(record("failures-test-a", b"x"), (2, true));
        assert_eq!(record("failures-test-a", b"z"), (3, false));
        let plan = FailPlan {
            times: Some(2),
            status: 503,
        };
        let statuses: Vec<u16> = (1..=3).map(|n| status_for(plan, n)).collect();
        assert_eq!(statuses, [503, 503, 200]);
        let always = FailPlan {
            times: None,
            status: 500,
        };
        assert_eq!(status_for(always, 1000), 500);
    }
}
