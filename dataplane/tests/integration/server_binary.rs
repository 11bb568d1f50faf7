//! The `tollgate-dataplane` binary: serves a snapshot file, reloads it on
//! SIGHUP, and exits cleanly on SIGTERM.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use server_support::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_for(url: &str, want: u16) -> bool {
    let client = h1_client();
    for _ in 0..250 {
        if get(&client, url).await.is_ok_and(|(code, _)| code == want) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn serves_a_snapshot_file_reloads_on_sighup_and_stops_on_sigterm() {
    let a = echo("a").await;
    let (port, admin) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("tollgate-binary-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("snapshot.json");
    let write = |s: &tollgate_snapshot::Snapshot| {
        std::fs::write(&file, serde_json::to_vec(s).unwrap()).unwrap()
    };
    write(&snapshot(1, port, &[("/one", a)]));
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_tollgate-dataplane"))
        .arg("--snapshot-file")
        .arg(&file)
        .args([
            "--admin-address",
            &format!("127.0.0.1:{admin}"),
            "--log-format",
            "json",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    assert!(wait_for(&format!("http://127.0.0.1:{admin}/readyz"), 200).await);
    assert!(wait_for(&format!("http://127.0.0.1:{port}/one"), 200).await);
    write(&snapshot(2, port, &[("/two", a)]));
    kill(pid, "-HUP");
    assert!(
        wait_for(&format!("http://127.0.0.1:{port}/two"), 200).await,
        "reloaded"
    );
    kill(pid, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();
}
