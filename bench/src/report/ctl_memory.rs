//! Section 12 of `report.md`: the controller's memory.

use crate::results::Results;
use crate::scenarios::ctl_memory::{CHURN_WINDOW, CtlMemory};
use std::fmt::Write as _;

/// Section 12: memory with everything loaded, then the churn soak.
pub(super) fn render(out: &mut String, r: &Results) {
    let Some(m) = &r.ctl_memory else { return };
    let kib = |bytes: u64| bytes / 1024;
    let _ = writeln!(
        out,
        "## 12. Controller memory (Kubernetes mode, controller alone, in-memory API server)\n"
    );
    let _ = writeln!(
        out,
        "| HTTPRoutes | Secrets | referenced | load ms | RSS KiB | peak KiB |\n| --- | --- | --- | --- | --- | --- |"
    );
    let _ = writeln!(
        out,
        "| {} | {} | {} | {:.0} | {} | {} |",
        m.routes,
        m.secrets,
        m.referenced,
        m.load_ms,
        kib(m.loaded_rss),
        kib(m.loaded_peak)
    );
    soak(out, m);
}

fn soak(out: &mut String, m: &CtlMemory) {
    let s = &m.soak;
    let (first, last) = s.quarters();
    let _ = writeln!(
        out,
        "\nChurn soak: {:.0} s sampled, {} routes created and deleted ({CHURN_WINDOW} alive at once), {} Secrets rewritten, {} samples; first quarter median {:.0} KiB, last quarter {:.0} KiB ({:+.2}%), peak {} KiB; the view {} the final routes.\n",
        s.seconds,
        s.route_changes,
        s.secret_changes,
        s.samples.len(),
        first / 1024.0,
        last / 1024.0,
        s.growth_percent(),
        s.peak / 1024,
        if s.converged { "held" } else { "did NOT hold" }
    );
}
