//! Section 8 of `report.md`: TLS termination.
//!
//! Its own file because it has two tables (handshakes and HTTPS keep-alive
//! rates with the proxies' CPU use, then memory per idle TLS connection)
//! and ratios against both peers, not only the goal's nginx.

use super::busy_cell;
use crate::peers::Target;
use crate::results::Results;
use crate::scenarios::tls::TlsBench;
use crate::stats::{median, ratio};
use std::fmt::Write as _;

/// Section 8: rates per proxy, then memory per idle TLS connection.
pub(super) fn render(out: &mut String, r: &Results) {
    let Some(t) = &r.tls else { return };
    let _ = writeln!(
        out,
        "## 8. TLS 1.3 termination (ECDSA P-256, same certificate and backend for all)\n"
    );
    let _ = writeln!(
        out,
        "Full handshakes: {} closed-loop clients, each connection one `GET /` with `Connection: close`, X25519, no resumption. HTTPS keep-alive: `wrk` on `https://`, {} connections.\n",
        t.handshake_connections, t.keepalive_connections
    );
    let _ = writeln!(
        out,
        "| target | handshakes/s | Tollgate / target | proxy CPU busy | runs | failures | HTTPS rps | Tollgate / target | proxy CPU busy | runs | failures |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let tollgate = t.row(Target::Tollgate);
    let hs = tollgate.map_or(0.0, |x| x.handshakes_median);
    let rps = tollgate.map_or(0.0, |x| x.rps_median);
    let list = |v: &[f64]| {
        v.iter()
            .map(|x| format!("{x:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let busy = |v: &[f64]| busy_cell((!v.is_empty()).then(|| median(v)));
    for row in &t.rows {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {} | {} | {} | {:.0} | {:.3} | {} | {} | {} |",
            row.target.name(),
            row.handshakes_median,
            ratio(hs, row.handshakes_median),
            busy(&row.handshakes_busy),
            list(&row.handshakes),
            row.handshake_failures,
            row.rps_median,
            ratio(rps, row.rps_median),
            busy(&row.rps_busy),
            list(&row.rps),
            row.rps_failures
        );
    }
    instructions(out, t);
    if t.memory.is_empty() {
        let _ = writeln!(out);
        return;
    }
    let tollgate_mem = t
        .memory
        .iter()
        .find(|m| m.target == Target::Tollgate)
        .map_or(0.0, |m| m.per_connection);
    let _ = writeln!(
        out,
        "\nMemory per idle TLS connection (each proxy fresh; one keep-alive request per connection, then idle; resident memory of the process tree):\n\n| target | idle KiB | with idle TLS conns KiB | idle TLS conns | KiB per idle TLS conn | Tollgate / target |\n| --- | --- | --- | --- | --- | --- |"
    );
    for m in &t.memory {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.2} |",
            m.target.name(),
            m.idle_rss / 1024,
            m.loaded_rss / 1024,
            m.connections,
            m.per_connection / 1024.0,
            ratio(tollgate_mem, m.per_connection)
        );
    }
    let _ = writeln!(out);
}

/// Instructions per HTTPS request and per full handshake, per proxy.
fn instructions(out: &mut String, t: &TlsBench) {
    if t.instructions.is_empty() {
        return;
    }
    let own = t.instructions.iter().find(|i| i.target == Target::Tollgate);
    let (request, handshake) = own.map_or((0.0, 0.0), |i| {
        (i.request.per_request, i.handshake.per_request)
    });
    let _ = writeln!(
        out,
        "\nUser-space instructions (callgrind, idle run subtracted):\n\n| target | per HTTPS keep-alive request | Tollgate / target | per full handshake | Tollgate / target |\n| --- | --- | --- | --- | --- |"
    );
    for i in &t.instructions {
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.3} | {:.0} | {:.3} |",
            i.target.name(),
            i.request.per_request,
            ratio(request, i.request.per_request),
            i.handshake.per_request,
            ratio(handshake, i.handshake.per_request)
        );
    }
}
