//! `report.md`: the human-readable view of [`Results`].
//!
//! Ratios first (the only claims the report makes), then each scenario's
//! medians, then the exact peer configurations and notes. Every missed goal
//! says by how much it is missed.

use crate::openloop::PERCENTILES;
use crate::peers::Target;
use crate::results::Results;
use crate::scenarios::modes::Instructions;
use crate::stats::ratio;
use std::fmt::Write as _;

mod auth;
mod ctl_memory;
mod grpc;
mod ratelimit;
mod telemetry;
mod tls;

/// Renders the report.
pub fn render(r: &Results) -> String {
    let mut out = String::new();
    header(&mut out, r);
    goals(&mut out, r);
    throughput(&mut out, r);
    latency(&mut out, r);
    scaling(&mut out, r);
    memory(&mut out, r);
    routes(&mut out, r);
    updates(&mut out, r);
    telemetry::render(&mut out, r);
    tls::render(&mut out, r);
    grpc::render(&mut out, r);
    auth::render(&mut out, r);
    ratelimit::render(&mut out, r);
    ctl_memory::render(&mut out, r);
    tail(&mut out, r);
    out
}

fn header(out: &mut String, r: &Results) {
    let _ = writeln!(out, "# Tollgate side by side with nginx and HAProxy\n");
    if r.smoke {
        let _ = writeln!(
            out,
            "> **Smoke run**: tiny durations, debug builds possible; figures are meaningless.\n"
        );
    }
    let _ = writeln!(
        out,
        "Run started {}. Every figure is the median of {} runs; ratios compare targets measured in this same run on this same machine.\n",
        r.started, r.runs
    );
    let _ = writeln!(out, "| machine | |\n| --- | --- |");
    let _ = writeln!(
        out,
        "| CPU | {} |\n| logical CPUs | {} |\n| kernel | {} |",
        r.machine.cpu, r.machine.cores, r.machine.kernel
    );
    for (tool, version) in &r.machine.versions {
        let _ = writeln!(out, "| {tool} | {version} |");
    }
    let _ = writeln!(
        out,
        "| load average at start (1, 5, 15 min) | {} |",
        r.machine.load_average
    );
    let pin = if r.pinned {
        "proxy alone on CPU 0; backend, wrk and the open-loop generator on CPU 1 (taskset)"
    } else {
        "not pinned"
    };
    let _ = writeln!(out, "| pinning | {pin} |");
    if !r.durations.is_empty() {
        let total: f64 = r.durations.iter().map(|d| d.1).sum();
        let parts: Vec<String> = r
            .durations
            .iter()
            .map(|(name, s)| format!("{name} {s:.0} s"))
            .collect();
        let _ = writeln!(
            out,
            "| measuring time | {:.1} min: {} |",
            total / 60.0,
            parts.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "| workers | one each: Tollgate `TOKIO_WORKER_THREADS=1`, nginx `worker_processes 1`, HAProxy `nbthread 1` |\n"
    );
}

fn goals(out: &mut String, r: &Results) {
    let _ = writeln!(
        out,
        "## Goals\n\n| scenario | goal | measured | bound | result |\n| --- | --- | --- | --- | --- |"
    );
    for g in &r.goals {
        let verdict = if g.pass {
            format!("pass ({:+.1}% margin)", g.margin_percent)
        } else {
            format!("**FAIL** (missed by {:.1}%)", -g.margin_percent)
        };
        let _ = writeln!(
            out,
            "| {} | {} | {:.3} {} | {} {} | {verdict} |",
            g.scenario, g.name, g.value, g.unit, g.bound, g.unit
        );
    }
    let passed = r.goals.iter().filter(|g| g.pass).count();
    let _ = writeln!(out, "\n{passed} of {} goals met.\n", r.goals.len());
}

fn throughput(out: &mut String, r: &Results) {
    let Some(t) = &r.throughput else { return };
    let _ = writeln!(
        out,
        "## 1. Throughput (wrk, HTTP/1.1 keep-alive, {} connections)\n",
        t.connections
    );
    let _ = writeln!(
        out,
        "| target | body | median rps | Tollgate / target | proxy CPU busy | in user space | runs | failures |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for row in &t.rows {
        let tollgate = t
            .rows
            .iter()
            .find(|x| x.target == Target::Tollgate && x.body == row.body)
            .map_or(0.0, |x| x.median);
        let runs: Vec<String> = row.runs.iter().map(|v| format!("{v:.0}")).collect();
        let _ = writeln!(
            out,
            "| {} | {} | {:.0} | {:.3} | {} | {} | {} | {} |",
            row.target.name(),
            row.body,
            row.median,
            ratio(tollgate, row.median),
            busy_cell(row.median_busy()),
            busy_cell(row.median_user_share()),
            runs.join(", "),
            row.failures
        );
    }
    instruction_table(out, &t.instructions, |t| t.name(), "Tollgate");
    let _ = writeln!(out);
}

fn latency(out: &mut String, r: &Results) {
    let Some(l) = &r.latency else { return };
    let _ = writeln!(
        out,
        "## 2. Latency, open loop at {:.0} rps (50% of nginx's max)\n",
        l.rate
    );
    let _ = write!(out, "| target |");
    for p in PERCENTILES {
        let _ = write!(out, " p{p} µs |");
    }
    let _ = writeln!(
        out,
        " added p99 µs | failures | pacer lag p99 µs |\n|{}",
        " --- |".repeat(PERCENTILES.len() + 4)
    );
    for row in &l.rows {
        let _ = write!(out, "| {} |", row.target.name());
        for p in PERCENTILES {
            let _ = write!(out, " {:.0} |", row.at(p));
        }
        let added = l
            .added(row.target, 99.0)
            .map_or("-".into(), |a| format!("{a:.0}"));
        let _ = writeln!(
            out,
            " {added} | {} | {} |",
            row.failures, row.pacer_lag_p99_us
        );
    }
    let _ = writeln!(
        out,
        "\nLatency runs from each request's intended send time to the end of its response (no coordinated omission). p100 is the maximum.\n"
    );
}

fn scaling(out: &mut String, r: &Results) {
    let Some(s) = &r.scaling else { return };
    let _ = writeln!(
        out,
        "## 3. Connection scaling (wrk, median rps; in brackets the proxy's CPU use, % of its one core)\n"
    );
    let _ = write!(out, "| connections |");
    for c in &s.curves {
        let _ = write!(out, " {} |", c.target.name());
    }
    let _ = writeln!(out, "\n|{}", " --- |".repeat(s.curves.len() + 1));
    let counts: Vec<usize> = s
        .curves
        .first()
        .map(|c| c.points.iter().map(|p| p.0).collect())
        .unwrap_or_default();
    for (i, n) in counts.iter().enumerate() {
        let _ = write!(out, "| {n} |");
        for c in &s.curves {
            let rps = c.points.get(i).map_or(0.0, |p| p.1);
            match c.busy.get(i).copied().flatten() {
                Some(busy) => write!(out, " {rps:.0} ({}) |", busy_cell(Some(busy))),
                None => write!(out, " {rps:.0} |"),
            }
            .ok();
        }
        let _ = writeln!(out);
    }
    let _ = write!(out, "| lowest after peak / peak |");
    for c in &s.curves {
        let _ = write!(out, " {:.3} |", c.after_peak_ratio());
    }
    let _ = writeln!(out, "\n");
}

fn memory(out: &mut String, r: &Results) {
    let Some(m) = &r.memory else { return };
    let _ = writeln!(
        out,
        "## 4. Memory (resident, whole process tree)\n\n| target | idle KiB | with idle conns KiB | idle conns | KiB per idle conn |\n| --- | --- | --- | --- | --- |"
    );
    for row in &m.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} |",
            row.target.name(),
            row.idle_rss / 1024,
            row.loaded_rss / 1024,
            row.connections,
            row.per_connection / 1024.0
        );
    }
    let _ = writeln!(out);
}

fn routes(out: &mut String, r: &Results) {
    let Some(rt) = &r.routes else { return };
    let _ = writeln!(
        out,
        "## 5. Routes at scale\n\n| HTTPRoutes | data-plane RSS KiB |\n| --- | --- |"
    );
    for (n, rss) in &rt.memory {
        let _ = writeln!(out, "| {n} | {} |", rss / 1024);
    }
    let _ = writeln!(
        out,
        "\n- data-plane memory per 1k routes: {:.3} MB",
        rt.bytes_per_1k / 1e6
    );
    let _ = writeln!(
        out,
        "- controller with in-process data plane, {} routes: start to first traffic {:.0} ms, RSS {} KiB",
        rt.loaded,
        rt.controller_start_ms,
        rt.controller_rss / 1024
    );
    let _ = writeln!(
        out,
        "- manifest change to traffic ({} additions): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        rt.change_ms.len(),
        rt.change_percentile(50.0),
        rt.change_percentile(99.0),
        rt.change_percentile(100.0)
    );
    let _ = writeln!(
        out,
        "- throughput to the first route {:.0} rps, to the last {:.0} rps (ratio {:.3})\n",
        rt.first_rps,
        rt.last_rps,
        ratio(rt.last_rps, rt.first_rps)
    );
}

fn updates(out: &mut String, r: &Results) {
    let Some(u) = &r.updates else { return };
    let _ = writeln!(
        out,
        "## 6. Updates under load (open loop at {:.0} rps)\n",
        u.rate
    );
    let _ = writeln!(
        out,
        "| change | baseline p99 µs | changing p99 µs | p99 increase | changing p99.9 µs | failed or non-2xx | changes made |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for v in &u.variants {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:+.1}% | {:.0} | {} | {} |",
            v.name,
            v.baseline.at(99.0),
            v.changing.at(99.0),
            v.p99_increase() * 100.0,
            v.changing.at(99.9),
            v.changing.failures,
            v.changes
        );
    }
    let _ = writeln!(out);
}

fn tail(out: &mut String, r: &Results) {
    if !r.charts.is_empty() {
        let _ = writeln!(out, "## Charts\n");
        for c in &r.charts {
            let _ = writeln!(out, "![{c}]({c})");
        }
        let _ = writeln!(out);
    }
    if !r.notes.is_empty() {
        let _ = writeln!(out, "## Notes\n");
        for n in &r.notes {
            let _ = writeln!(out, "- {n}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "## Configurations\n\nTollgate: `tollgate-dataplane --snapshot-file snapshot.json` (one `PathPrefix /` route to the backend; see `configs.rs`), env `TOKIO_WORKER_THREADS=1 RUST_LOG=warn`; route-update scenarios: `tollgate-controller --manifests DIR --with-dataplane`. Ports below are examples; each run picks free ones.\n"
    );
    for (name, text) in &r.configs {
        let _ = writeln!(out, "`{name}`:\n\n```\n{}```\n", text);
    }
}

/// One row of a scenario comparing modes of one proxy: `name`, the median,
/// its ratio to `base`, CPU use, every run, failures and requests.
pub(crate) fn mode_row<M>(
    out: &mut String,
    name: &str,
    row: &crate::scenarios::modes::ModeRow<M>,
    base: f64,
) {
    use std::fmt::Write as _;
    let runs: Vec<String> = row.runs.iter().map(|v| format!("{v:.0}")).collect();
    let busy = (!row.busy.is_empty()).then(|| crate::stats::median(&row.busy));
    let _ = writeln!(
        out,
        "| {name} | {:.0} | {:.3} | {} | {} | {} | {} |",
        row.median,
        crate::stats::ratio(row.median, base),
        busy_cell(busy),
        runs.join(", "),
        row.failures,
        row.requests
    );
}

/// The callgrind table of a scenario comparing modes: instructions per
/// request of each mode in `counts` (named by `name`) and what it adds over
/// the first mode's count (`versus` names it in the header).
pub(crate) fn instruction_table<M>(
    out: &mut String,
    counts: &[Instructions<M>],
    name: impl Fn(&M) -> &str,
    versus: &str,
) {
    use std::fmt::Write as _;
    let Some(base) = counts.first().map(|i| i.count.per_request) else {
        return;
    };
    let _ = writeln!(
        out,
        "\nUser-space instructions per request (callgrind, idle run subtracted):\n\n| mode | instructions / request | added over {versus} |\n| --- | --- | --- |"
    );
    for i in counts {
        let count = i.count.per_request;
        let _ = writeln!(
            out,
            "| {} | {count:.0} | {:+.0} |",
            name(&i.mode),
            count - base
        );
    }
}

/// A proxy's CPU use as a percentage of one core; `-` when not measured.
pub(crate) fn busy_cell(busy: Option<f64>) -> String {
    busy.map_or_else(|| "-".into(), |b| format!("{:.0}%", b * 100.0))
}
