//! Hot reload in standalone mode: manifests change under load and nothing
//! is dropped; a broken manifest leaves the last good configuration serving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tollgate_e2e::{Echo, HttpClient};

/// Routes: `/stable` always, plus `/v0` .. `/v{n}`.
fn routes(n: usize) -> String {
    let mut rules = String::from(
        "  - matches: [{path: {type: PathPrefix, value: /stable}}]\n    backendRefs: [{name: echo-a, port: 80}]\n",
    );
    for i in 0..=n {
        rules.push_str(&format!(
            "  - matches: [{{path: {{type: Exact, value: /v{i}}}}}]\n    backendRefs: [{{name: echo-a, port: 80}}]\n"
        ));
    }
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: reload, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
{rules}"
    )
}

/// An echo backend and a controller serving `/stable` and `/v0`..`/v{n}`
/// from a fresh manifest folder, ready.
async fn serving(name: &str, n: usize) -> (Echo, std::path::PathBuf, Controller) {
    let echo = Echo::start("echo-a").await.unwrap();
    let dir = manifest_dir(name);
    write(&dir, "base.yaml", &base("gw", "127.0.0.1", &[&echo]));
    write(&dir, "routes.yaml", &routes(n));
    let ctl = start_controller(&dir, true).await;
    wait_status(
        &format!("{}/v{n}", ctl.gateway),
        200,
        Duration::from_secs(10),
    )
    .await;
    (echo, dir, ctl)
}

/// Rewriting the manifests 20 times while a client sends requests
/// continuously fails no request, and each new rule serves within 1 s of
/// its file change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_rewrites_under_load_drop_nothing() {
    let (_echo, dir, ctl) = serving("reload", 0).await;

    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let load = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        let url = format!("{}/stable", ctl.gateway);
        tokio::spawn(async move {
            let client = HttpClient::http1();
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).await {
                    Ok(r) if r.status == 200 => ok.fetch_add(1, Ordering::Relaxed),
                    Ok(r) => {
                        eprintln!("failed request: {} {}", r.status, r.text());
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                    Err(e) => {
                        eprintln!("failed request: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
            }
        })
    };

    let mut latencies = Vec::new();
    for i in 1..=20 {
        write(&dir, "routes.yaml", &routes(i));
        let took = wait_status(
            &format!("{}/v{i}", ctl.gateway),
            200,
            Duration::from_secs(5),
        )
        .await;
        latencies.push(took);
    }
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();

    let ok = ok.load(Ordering::Relaxed);
    let failed = failed.load(Ordering::Relaxed);
    eprintln!("requests ok={ok} failed={failed}; new-rule latencies {latencies:?}");
    assert_eq!(failed, 0, "requests failed during reloads");
    assert!(ok > 20, "the load loop barely ran ({ok} requests)");
    let slowest = latencies.iter().max().copied().unwrap_or_default();
    assert!(
        slowest <= Duration::from_secs(1),
        "a new rule took {slowest:?} to serve"
    );
}

/// A manifest that stops parsing keeps its last good content in effect; an
/// invalid rule becomes a status condition while the valid rules serve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_manifests_keep_the_last_good_config() {
    let (_echo, dir, ctl) = serving("broken", 1).await;

    // Not YAML at all: the file's previous content stays in effect.
    write(&dir, "routes.yaml", "kind: HTTPRoute\n  rules: [unclosed\n");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let client = HttpClient::http1();
    assert_eq!(
        client
            .get(&format!("{}/v1", ctl.gateway))
            .await
            .unwrap()
            .status,
        200
    );
    assert!(
        ctl.proc.log().contains("routes.yaml:"),
        "the parse error names the file and line"
    );

    // A second route with one invalid regex rule and one valid rule.
    write(
        &dir,
        "bad-regex.yaml",
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: bad-regex, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: RegularExpression, value: '/re/(unclosed'}}]
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: Exact, value: /still-good}}]
    backendRefs: [{name: echo-a, port: 80}]
",
    );
    wait_status(
        &format!("{}/still-good", ctl.gateway),
        200,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(
        client
            .get(&format!("{}/v1", ctl.gateway))
            .await
            .unwrap()
            .status,
        200
    );
    let status = object_status(&ctl.admin, "HTTPRoute", "bad-regex").await;
    let conditions = &status["status"]["parents"][0]["conditions"];
    let partial = condition(conditions, "PartiallyInvalid");
    assert_eq!(partial["status"], "True", "{status:#}");
    assert!(
        partial["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("Dropped Rule"),
        "{status:#}"
    );
    assert_eq!(
        condition(conditions, "Accepted")["status"],
        "True",
        "{status:#}"
    );
}
