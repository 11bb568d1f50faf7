//! Facts about the machine and the peers, written at the top of every
//! report: a ratio is only meaningful next to what it was measured on.

use crate::procs::find_program;
use serde::Serialize;
use std::process::Command;

/// The machine and tool versions of one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    /// CPU model name from `/proc/cpuinfo`.
    pub cpu: String,
    /// Logical CPUs of the machine (not only those the harness is pinned to).
    pub cores: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `(tool, version line)` for nginx, HAProxy, wrk.
    pub versions: Vec<(String, String)>,
    /// `/proc/loadavg` when the run started: other work on the machine
    /// skews absolute figures (ratios less so).
    pub load_average: String,
}

/// Reads the machine facts and peer versions.
pub fn read() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(|| "unknown".to_string(), |(_, v)| v.trim().to_string());
    // Count every CPU of the machine, not the ones this pinned process may use.
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let kernel = first_line("uname", &["-r"]);
    let versions = [("nginx", "-v"), ("haproxy", "-v"), ("wrk", "-v")]
        .into_iter()
        .map(|(tool, flag)| {
            let version = match find_program(tool) {
                Some(path) => first_line(&path.display().to_string(), &[flag]),
                None => "not installed".to_string(),
            };
            (tool.to_string(), version)
        })
        .collect();
    let load_average = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    Machine {
        cpu,
        cores,
        kernel,
        versions,
        load_average,
    }
}

/// The first non-empty line a command prints on stdout or stderr.
fn first_line(program: &str, args: &[&str]) -> String {
    let Ok(out) = Command::new(program).args(args).output() else {
        return "unknown".to_string();
    };
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("unknown")
        .to_string()
}
