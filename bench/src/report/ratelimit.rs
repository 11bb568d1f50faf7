//! Section 11 of `report.md`: what a global rate limit costs.

use super::{instruction_table, mode_row};
use crate::results::Results;
use std::fmt::Write as _;

/// Section 11: throughput per mode, the added p99, Redis calls per request,
/// then instructions per request.
pub(super) fn render(out: &mut String, r: &Results) {
    let Some(t) = &r.ratelimit else { return };
    let _ = writeln!(
        out,
        "## 11. Rate limit cost (a limit that never trips, one hot key; wrk, {} connections, 0 B)\n",
        t.connections
    );
    let _ = writeln!(
        out,
        "| mode | median rps | / same proxy without limit | proxy CPU busy | runs | failures | requests |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for row in &t.rows {
        let base = t.rps(row.mode.baseline()).unwrap_or(0.0);
        mode_row(out, row.mode.name(), row, base);
    }
    if let Some(l) = &t.latency {
        let _ = writeln!(
            out,
            "\nOpen loop at {:.0} rps: p99 without the limit {:.0} µs, with it {:.0} µs, added {:+.0} µs ({} failures).",
            l.rate,
            l.p99_none_us,
            l.p99_global_us,
            l.p99_global_us - l.p99_none_us,
            l.failures
        );
    }
    if let Some(calls) = t.calls_per_request() {
        let _ = writeln!(
            out,
            "\nRedis: {} script calls for {} requests = {calls:.4} calls per request (`INFO commandstats`).",
            t.redis_calls, t.limited_requests
        );
    }
    instruction_table(out, &t.instructions, |m| m.name(), "no limit");
    let _ = writeln!(
        out,
        "\nThe limit: 10,000,000 requests a minute, no burst, global (Redis), fail open; a replica leases 1,000 requests per Redis call. nginx: `limit_req` on one zone at the same rate.\n"
    );
}
