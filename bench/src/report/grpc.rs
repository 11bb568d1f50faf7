//! Section 9 of `report.md`: gRPC unary calls against nginx `grpc_pass`.

use super::busy_cell;
use crate::peers::Target;
use crate::results::Results;
use crate::stats::{median, ratio};
use std::fmt::Write as _;

/// Section 9: calls per second, latency and the p99 each proxy adds.
pub(super) fn render(out: &mut String, r: &Results) {
    let Some(g) = &r.grpc else { return };
    let _ = writeln!(
        out,
        "## 9. gRPC unary calls (h2c backend, nginx `grpc_pass`)\n"
    );
    let _ = writeln!(
        out,
        "Closed loop: {} callers over {} HTTP/2 connections (prior knowledge), unary calls back to back, empty messages.\n",
        g.concurrency, g.connections
    );
    let _ = writeln!(
        out,
        "| target | calls/s | Tollgate / target | p50 µs | p99 µs | added p99 µs (vs direct) | proxy CPU busy | runs | failures |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let tollgate = g.row(Target::Tollgate).map_or(0.0, |t| t.rps_median);
    for row in &g.rows {
        let added = match row.target {
            Target::Direct => "-".to_string(),
            t => g.added_p99(t).map_or("-".into(), |a| format!("{a:.0}")),
        };
        let runs: Vec<String> = row.rps.iter().map(|x| format!("{x:.0}")).collect();
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {:.0} | {:.0} | {added} | {} | {} | {} |",
            row.target.name(),
            row.rps_median,
            ratio(tollgate, row.rps_median),
            median(&row.p50_us),
            row.p99_median,
            busy_cell((!row.busy.is_empty()).then(|| median(&row.busy))),
            runs.join(", "),
            row.failures
        );
    }
    let _ = writeln!(out);
}
