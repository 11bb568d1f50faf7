//! Smoke test of the benchmark harness: every scenario once, briefly, with
//! debug builds, so the harness can't rot between `make bench` runs.
//!
//! It asserts the harness works end to end (processes start, load flows,
//! the report and JSON are written with every scenario present), never a
//! performance figure. Peers that are not installed are skipped by the
//! harness with a printed notice. Needs the debug binaries
//! (`cargo build --workspace --bins --tests`, which `make test` runs first).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

#[test]
fn every_scenario_runs_and_reports() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tollgate-bench"));
    let bins = exe.parent().unwrap().to_path_buf();
    for needed in ["tollgate-dataplane", "tollgate-controller"] {
        assert!(
            bins.join(needed).is_file(),
            "{needed} is not built in {}: run `cargo build --workspace --bins` first",
            bins.display()
        );
    }
    let root = bins.join("tmp").join("tollgate-bench-smoke");
    let out = root.join("out");
    let _ = std::fs::remove_dir_all(&root);
    let status = Command::new(&exe)
        .args(["run", "--smoke", "--no-pin", "--out"])
        .arg(&out)
        .arg("--work")
        .arg(root.join("work"))
        .status()
        .unwrap();
    assert!(status.success(), "tollgate-bench run --smoke failed");

    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["smoke"], true);
    for scenario in ["latency", "memory", "routes", "updates"] {
        assert!(
            !json[scenario].is_null(),
            "{scenario} missing from results.json"
        );
    }
    assert!(report.contains("## 2. Latency"), "{report}");
    assert!(report.contains("## 5. Routes at scale"), "{report}");
    assert!(report.contains("## 6. Updates under load"), "{report}");
    let latency = json["latency"]["rows"].as_array().unwrap();
    let tollgate = latency.iter().find(|r| r["target"] == "tollgate").unwrap();
    assert_eq!(tollgate["failures"], 0, "requests through Tollgate failed");
    let changes = json["routes"]["change_ms"].as_array().unwrap();
    assert!(!changes.is_empty(), "no route change reached traffic");
    telemetry_ran(&json, &report);
    tls_ran(&json, &report);
    auth_ran(&json, &report);
    ratelimit_ran(&json, &report);
    ctl_memory_ran(&json, &report);
}

/// Scenario 10: every auth mode served its authenticated load with no
/// failure (a refused credential would be a non-2xx), and the
/// instruction counts of a smoke run (no auth, API key) were taken.
fn auth_ran(json: &serde_json::Value, report: &str) {
    assert!(
        installed("wrk"),
        "wrk is needed by the auth scenario: run `make test`, which installs it"
    );
    assert!(report.contains("## 10. Authentication cost"), "{report}");
    let rows = json["auth"]["rows"].as_array().unwrap();
    let modes: Vec<&str> = rows.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert_eq!(modes, ["none", "api-key", "jwt-rs256", "jwt-es256"]);
    for row in rows {
        assert_eq!(row["failures"], 0, "{row}");
        assert!(row["requests"].as_u64().unwrap() > 0, "{row}");
    }
    if installed("valgrind") {
        let counts = json["auth"]["instructions"].as_array().unwrap();
        assert_eq!(counts.len(), 2, "{counts:?}");
    }
}

/// Scenario 11: with and without the global limit every request was
/// served (the limit never trips), and the limited runs really counted in
/// Redis.
fn ratelimit_ran(json: &serde_json::Value, report: &str) {
    assert!(
        installed("redis-server"),
        "redis-server is needed by the rate-limit scenario: run `make test`, which installs it"
    );
    assert!(report.contains("## 11. Rate limit cost"), "{report}");
    let t = &json["ratelimit"];
    let rows = t["rows"].as_array().unwrap();
    let modes: Vec<&str> = rows.iter().filter_map(|r| r["mode"].as_str()).collect();
    assert_eq!(&modes[..2], ["tollgate-none", "tollgate-global"]);
    for row in rows {
        assert_eq!(row["failures"], 0, "{row}");
        assert!(row["requests"].as_u64().unwrap() > 0, "{row}");
    }
    assert!(t["limited_requests"].as_u64().unwrap() > 0, "{t}");
    assert!(t["redis_calls"].as_u64().unwrap() > 0, "no Redis call: {t}");
    assert_eq!(t["latency"]["failures"], 0, "{t}");
    if installed("valgrind") {
        assert_eq!(t["instructions"].as_array().unwrap().len(), 2, "{t}");
    }
}

/// Scenario 8: every installed proxy terminated TLS with the generated
/// certificate, completed handshakes without failures, and held idle TLS
/// connections; HTTPS keep-alive needs wrk.
fn tls_ran(json: &serde_json::Value, report: &str) {
    assert!(report.contains("## 8. TLS 1.3 termination"), "{report}");
    let rows = json["tls"]["rows"].as_array().unwrap();
    assert!(
        rows.iter().any(|r| r["target"] == "tollgate"),
        "no Tollgate row: {rows:?}"
    );
    for row in rows {
        assert!(row["handshakes_median"].as_f64().unwrap() > 0.0, "{row}");
        assert_eq!(row["handshake_failures"], 0, "{row}");
        if installed("wrk") {
            assert!(row["rps_median"].as_f64().unwrap() > 0.0, "{row}");
            assert_eq!(row["rps_failures"], 0, "{row}");
        }
    }
    let memory = json["tls"]["memory"].as_array().unwrap();
    assert_eq!(memory.len(), rows.len(), "{memory:?}");
    for m in memory {
        assert!(m["connections"].as_u64().unwrap() > 0, "{m}");
    }
}

/// Scenario 7 (needs wrk; instruction counts need valgrind, and a smoke
/// run counts only "off" and nginx): every mode served without failures,
/// and the spans of 100% tracing reached the harness's OTLP receiver.
fn telemetry_ran(json: &serde_json::Value, report: &str) {
    if !installed("wrk") {
        println!("wrk is not installed: the telemetry scenario was skipped");
        return;
    }
    assert!(report.contains("## 7. Request telemetry cost"), "{report}");
    let rows = json["telemetry"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4, "{rows:?}");
    for row in rows {
        assert_eq!(row["failures"], 0, "{row}");
    }
    let full = rows.iter().find(|r| r["mode"] == "trace100").unwrap();
    assert!(
        full["spans"].as_u64().unwrap() > 0,
        "no span arrived: {full}"
    );
    if installed("valgrind") {
        let counts = json["telemetry"]["instructions"].as_array().unwrap();
        assert!(!counts.is_empty(), "{counts:?}");
        for c in counts {
            assert!(c["count"]["loaded"].as_u64().unwrap() > 0, "{c}");
            // The telemetry runs simulate the caches: every request
            // fetches code lines into the first-level caches.
            let misses = &c["count"]["misses"];
            assert!(misses["instructions"].as_f64().unwrap() > 0.0, "{c}");
            assert!(misses["data"].as_f64().unwrap() > 0.0, "{c}");
        }
        assert!(report.contains("L1i misses / request"), "{report}");
    }
}

/// Scenario 12: the controller loaded the tiny cluster (only the
/// referenced Secrets in its view), the soak sampled its memory while
/// routes churned, and its view caught up with the churn at the end.
fn ctl_memory_ran(json: &serde_json::Value, report: &str) {
    assert!(report.contains("## 12. Controller memory"), "{report}");
    let m = &json["ctl_memory"];
    assert!(m["loaded_rss"].as_u64().unwrap() > 0, "{m}");
    assert!(m["referenced"].as_u64().unwrap() > 0, "{m}");
    let soak = &m["soak"];
    assert!(soak["route_changes"].as_u64().unwrap() > 0, "{soak}");
    assert!(!soak["samples"].as_array().unwrap().is_empty(), "{soak}");
    assert_eq!(soak["converged"], true, "{soak}");
}

/// Whether `program` is on `PATH`.
fn installed(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}
