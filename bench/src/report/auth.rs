//! Section 10 of `report.md`: what authentication costs.

use super::{instruction_table, mode_row};
use crate::results::Results;
use crate::scenarios::auth::Mode;
use std::fmt::Write as _;

/// Section 10: throughput per mode, then instructions per request.
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
        mode_row(out, row.mode.name(), row, none);
    }
    instruction_table(out, &a.instructions, |m| m.name(), "no auth");
    let _ = writeln!(
        out,
        "\nAPI keys: 1,000 consumers, the key looked up by its SHA-256. JWTs: inline key set (warm), issuer, audience and expiry checked.\n"
    );
}
