//! Section 9 of `report.md`: what authentication costs.

use super::{busy_cell, instruction_table};
use crate::results::Results;
use crate::scenarios::auth::Mode;
use crate::stats::{median, ratio};
use std::fmt::Write as _;

/// Section 9: throughput per mode, then instructions per request.
pub(super) fn render(out: &mut String, r: &Results) {
    let Some(a) = &r.auth else { return };
    let _ = writeln!(
        out,
        "## 10. Authentication cost (Tollgate against itself; wrk, {} connections, 0 B, every request authenticated)\n",
        a.connections
    );
    let _ = writeln!(
        out,
        "| mode | median rps | / no auth | proxy CPU busy | runs | failures | requests |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    let none = a.rps(Mode::None).unwrap_or(0.0);
    for row in &a.rows {
        let runs: Vec<String> = row.runs.iter().map(|v| format!("{v:.0}")).collect();
        let busy = (!row.busy.is_empty()).then(|| median(&row.busy));
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {} | {} | {} | {} |",
            row.mode.name(),
            row.median,
            ratio(row.median, none),
            busy_cell(busy),
            runs.join(", "),
            row.failures,
            row.requests
        );
    }
    let counts: Vec<(&str, f64)> = a
        .instructions
        .iter()
        .map(|i| (i.mode.name(), i.count.per_request))
        .collect();
    instruction_table(out, &counts, "no auth");
    let _ = writeln!(
        out,
        "\nAPI keys: 1,000 consumers, the key looked up by its SHA-256. JWTs: inline key set (warm), issuer, audience and expiry checked.\n"
    );
}
