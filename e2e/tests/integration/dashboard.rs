//! The Grafana dashboard in `deploy/grafana/` asks only for metrics
//! Tollgate really exports.
//!
//! A cluster is driven through everything the dashboard plots — traffic,
//! a gateway-made 404, a backend refusing connections, an API server
//! restart (watch restarts), a collector that is not there (dropped
//! spans) — and both admin ports of the real controller (with its
//! in-process data plane) are scraped; every metric named in a panel query
//! must be among the samples.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tollgate_e2e::{Echo, HttpClient, free_port, prometheus, workspace_dir};

/// Every metric name the dashboard's queries use.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = workspace_dir().join("deploy/grafana/tollgate.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut exprs = Vec::new();
    collect_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 15, "too few queries found: {exprs:?}");
    exprs.iter().flat_map(|e| metric_names(e)).collect()
}

fn collect_exprs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    _ => collect_exprs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_exprs(v, out)),
        _ => {}
    }
}

/// The metric names in a PromQL expression: identifiers outside label
/// matchers (`{...}`) and grouping clauses (`by (...)`) that name
/// Tollgate's or the HTTP conventions' metrics.
fn metric_names(expr: &str) -> Vec<String> {
    let mut cleaned = String::new();
    let mut depth = 0;
    for c in expr.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth > 0 => {}
            _ => cleaned.push(c),
        }
    }
    for clause in ["by (", "without ("] {
        while let Some(start) = cleaned.find(clause) {
            let end = cleaned[start..]
                .find(')')
                .map_or(cleaned.len(), |e| start + e + 1);
            cleaned.replace_range(start..end, " ");
        }
    }
    cleaned
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|t| t.starts_with("tollgate_") || t.starts_with("http_"))
        .map(str::to_string)
        .collect()
}

/// The sample names both admin ports serve now.
async fn scraped(ctl: &Controller) -> BTreeSet<String> {
    let client = HttpClient::http1();
    let mut names = BTreeSet::new();
    for admin in [&ctl.admin, &ctl.dataplane_admin] {
        let reply = client.get(&format!("{admin}/metrics")).await.unwrap();
        assert_eq!(reply.status, 200);
        let scrape = prometheus::parse(&reply.text()).unwrap();
        names.extend(scrape.names().into_iter().map(str::to_string));
    }
    names
}

/// The query names are parsed as metrics, not as labels or functions.
#[test]
fn query_names_are_metric_names() {
    let names = metric_names(
        "histogram_quantile(0.99, sum by (le, tollgate_route) (rate(http_server_request_duration_seconds_bucket{tollgate_gateway=~\"$gateway\"}[5m])))",
    );
    assert_eq!(names, ["http_server_request_duration_seconds_bucket"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_an_exported_metric() {
    let wanted = dashboard_metrics();
    let echo = Echo::start("echo-a").await.unwrap();
    let dead_port = free_port().unwrap();
    let server = cluster().await;
    apply(&server, &base("gw", "127.0.0.1", &[&echo])).await;
    apply(&server, &service("dead", &[dead_port])).await;
    apply(&server, &http_route("live", "/one", echo.service())).await;
    apply(&server, &http_route("refused", "/dead", "dead")).await;
    // No collector listens there: spans pile up in a one-place queue and
    // are dropped (and counted).
    let nowhere = format!("http://127.0.0.1:{}", free_port().unwrap());
    let env = [
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", nowhere.as_str()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "1"),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1"),
    ];
    let ctl = start_kube_controller_with_env(&server, "replica-a", true, PORT, &env).await;
    let one = format!("{}/one", ctl.gateway);
    wait_status(&one, 200, Duration::from_secs(10)).await;
    let client = HttpClient::http1();
    for _ in 0..20 {
        assert_eq!(client.get(&one).await.unwrap().status, 200);
    }
    assert_eq!(
        client
            .get(&format!("{}/nowhere", ctl.gateway))
            .await
            .unwrap()
            .status,
        404
    );
    assert_eq!(
        client
            .get(&format!("{}/dead", ctl.gateway))
            .await
            .unwrap()
            .status,
        503
    );
    server.restart().await;
    apply(&server, &http_route("later", "/later", echo.service())).await;
    wait_status(
        &format!("{}/later", ctl.gateway),
        200,
        Duration::from_secs(15),
    )
    .await;

    let start = Instant::now();
    let missing = loop {
        let have = scraped(&ctl).await;
        let missing: Vec<&String> = wanted
            .iter()
            .filter(|name| !have.contains(name.as_str()))
            .collect();
        if missing.is_empty() {
            break missing;
        }
        if start.elapsed() > Duration::from_secs(15) {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        missing.is_empty(),
        "the dashboard asks for metrics Tollgate does not export: {missing:?}"
    );
}
