//! Section 7 of `report.md`: what request telemetry costs.
//!
//! Its own file because it has three tables (the modes side by side with
//! "off" on one core, the modes one after the other, then callgrind's
//! instructions per request with nginx's for scale) and `report.rs` holds
//! the other sections.

use super::busy_cell;
use crate::peers::Target;
use crate::results::Results;
use crate::scenarios::telemetry::Mode;
use crate::stats::{median, ratio};
use std::fmt::Write as _;

/// Section 7: the four modes' throughput, then instructions per request.
pub(super) fn render(out: &mut String, r: &Results) {
    let Some(t) = &r.telemetry else { return };
    let _ = writeln!(
        out,
        "## 7. Request telemetry cost (Tollgate against itself; wrk, {} connections, 0 B)\n",
        t.connections
    );
    side_by_side(out, t);
    let _ = writeln!(
        out,
        "One after the other, as scenario 1 runs (for information):\n"
    );
    let _ = writeln!(
        out,
        "| mode | median rps | / off | / off, paired | proxy CPU busy | in user space | runs | failures | requests | server spans received | spans dropped |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let off = t.rps(Mode::Off).unwrap_or(0.0);
    for row in &t.rows {
        let runs: Vec<String> = row.runs.iter().map(|v| format!("{v:.0}")).collect();
        let traced = row.mode.ratio().is_some();
        let spans = if traced {
            format!(
                "{} ({:.2}% of requests)",
                row.spans,
                ratio(row.spans as f64, row.requests as f64) * 100.0
            )
        } else {
            "-".into()
        };
        let dropped = if traced {
            row.dropped.to_string()
        } else {
            "-".into()
        };
        let busy = (!row.busy.is_empty()).then(|| median(&row.busy));
        let user = (!row.user_share.is_empty()).then(|| median(&row.user_share));
        let paired = t.paired(row.mode).unwrap_or(0.0);
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {paired:.3} | {} | {} | {} | {} | {} | {spans} | {dropped} |",
            row.mode.name(),
            row.median,
            ratio(row.median, off),
            busy_cell(busy),
            busy_cell(user),
            runs.join(", "),
            row.failures,
            row.requests
        );
    }
    let _ = writeln!(
        out,
        "\nRuns are listed by round; each round runs every mode once (forward on even rounds, backward on odd ones), each run on a Tollgate started for it. \"/ off, paired\" is the median over rounds of the round's ratio to \"off\". A single run here moves by more than the 3% the goal judges, and so does the machine within a round: the goal reads the side-by-side rounds above."
    );
    if t.instructions.is_empty() {
        let _ = writeln!(out);
        return;
    }
    let first = t.instructions.first().map_or(0, |i| i.count.requests);
    let _ = writeln!(
        out,
        "\nUser-space instructions per proxied request (callgrind, {first} keep-alive requests over {} connections, idle run subtracted), and the first-level cache misses callgrind simulates for them (32 KiB caches; a request's code does not fit the instruction cache, so each line a mode adds is fetched again at every request, which instructions do not show; the misses move by about ten a request with the binary's layout alone):\n\n| target | instructions / request | / off | / nginx | L1i misses / request | L1d misses / request | loaded run Ir | idle run Ir |\n| --- | --- | --- | --- | --- | --- | --- | --- |",
        crate::callgrind::CONNECTIONS
    );
    let base = t.per_request(Mode::Off.name()).unwrap_or(0.0);
    let nginx = t.per_request(Target::Nginx.name()).unwrap_or(0.0);
    for i in &t.instructions {
        let of_nginx = if nginx > 0.0 {
            format!("{:.2}", ratio(i.count.per_request, nginx))
        } else {
            "-".into()
        };
        let (code, data) = i.count.misses.map_or(("-".into(), "-".into()), |m| {
            (format!("{:.0}", m.instructions), format!("{:.0}", m.data))
        });
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {of_nginx} | {code} | {data} | {} | {} |",
            i.name,
            i.count.per_request,
            ratio(i.count.per_request, base),
            i.count.loaded,
            i.count.idle
        );
    }
    let modeled: Vec<String> = [Mode::Metrics, Mode::Trace1]
        .into_iter()
        .filter_map(|m| Some(format!("{} {:.1}%", m.name(), t.modeled_cost(m)? * 100.0)))
        .collect();
    if !modeled.is_empty() {
        let _ = writeln!(
            out,
            "\nThe same cost modeled from the instruction counts, which hardly move between runs: the instructions a mode adds over \"off\" (the table's \"/ off\" minus one) times the share of \"off\"'s CPU time spent in user space (the kernel's share, the sockets, is the same in every mode): {}. It assumes a user-space instruction takes the same time in every mode.",
            modeled.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\nTracing modes export spans only, over OTLP/HTTP to a receiver in the harness on the load CPU (`OTEL_TRACES_SAMPLER=traceidratio`, `OTEL_LOGS_EXPORTER=none`, `OTEL_METRICS_EXPORTER=none`); \"off\" is `--request-telemetry off`.\n"
    );
}

/// The side-by-side table: each mode beside "off" on one core.
fn side_by_side(out: &mut String, t: &crate::scenarios::telemetry::TelemetryCost) {
    if t.shared.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "Side by side on one core (the goal's figure): each mode and \"off\" serve at once on the proxy core, a wrk of {} connections each, for {} rounds; the figure is the mode's requests per CPU-second (the scheduler's accounting) over \"off\"'s, median over rounds.\n",
        t.connections,
        t.shared.first().map_or(0, |r| r.ratios.len())
    );
    let _ = writeln!(
        out,
        "| mode beside off | requests per CPU-second / off | each round | requests / off | mode's share of the core | both busy | failures | requests | server spans received | spans dropped |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let med = |v: &[f64]| (!v.is_empty()).then(|| median(v));
    for row in &t.shared {
        let rounds: Vec<String> = row.ratios.iter().map(|v| format!("{v:.3}")).collect();
        let traced = row.mode.ratio().is_some();
        let (spans, dropped) = if traced {
            (row.spans.to_string(), row.dropped.to_string())
        } else {
            ("-".into(), "-".into())
        };
        let name = if row.mode == Mode::Off {
            "off (control)"
        } else {
            row.mode.name()
        };
        let _ = writeln!(
            out,
            "| {name} | **{:.3}** | {} | {:.3} | {} | {} | {} | {} | {spans} | {dropped} |",
            med(&row.ratios).unwrap_or(0.0),
            rounds.join(", "),
            med(&row.request_ratios).unwrap_or(0.0),
            busy_cell(med(&row.shares)),
            busy_cell(med(&row.busy)),
            row.failures,
            row.requests
        );
    }
    let _ = writeln!(
        out,
        "\nBoth processes see the same machine at the same moment, so what slows the core slows both; the scheduler gives each about half of it, and a request's cost is its process's CPU time over the requests it served. Which process starts first and which wrk starts first alternate by round. The control row pairs \"off\" with another \"off\": its spread is the method's own, and a figure away from 1.000 would mean one side of a pair is favoured.\n"
    );
}
