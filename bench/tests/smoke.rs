//! Smoke test of the benchmark harness: every scenario once, briefly, with
//! debug builds, so the harness can't rot between `make bench` runs.
//!
//! It asserts the harness works end to end (processes start, load flows,
//! the report and JSON are written with every scenario present), never a
//! performance figure. Peers that are not installed are skipped by the
//! harness with a printed notice. Needs the debug binaries
//! (`cargo build --workspace --bins`, which `make test` runs first).
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
}
