//! The Grafana dashboard in `deploy/grafana/` asks only for metrics and
//! labels Tollgate really exports.
//!
//! A cluster is driven through everything the dashboard plots — traffic,
//! a gateway-made 404, a backend refusing connections, an API server
//! restart (watch restarts), a collector that is not there (dropped
//! spans) — and both admin ports of the real controller (with its
//! in-process data plane) are scraped. Every metric a panel query or a
//! variable query selects must be among the samples, and every label the
//! query filters or groups it on must be on at least one of its series:
//! a label that is not there does not fail in Grafana, the panel is just
//! empty (or one unlabelled line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::k8s::*;
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};
use tollgate_e2e::prometheus::promql::{self, Exported, Selector};
use tollgate_e2e::{Echo, HttpClient, free_port, prometheus, workspace_dir};

/// One dashboard query: where it is (for the failure message) and what it
/// selects.
struct Query {
    place: String,
    selectors: Vec<Selector>,
}

/// Every query of the dashboard: panel targets (rows' nested panels
/// included) and query variables.
fn dashboard_queries() -> Vec<Query> {
    let path = workspace_dir().join("deploy/grafana/tollgate.json");
    let text = std::fs::read_to_string(path).expect("the dashboard is readable");
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let mut queries = Vec::new();
    panel_queries(&dashboard["panels"], &mut queries);
    let targets = queries.len();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if variable["type"] != "query" {
            continue;
        }
        // Grafana writes the query as a string, or (newer) as an object.
        let query = &variable["query"];
        let query = query
            .as_str()
            .or(query["query"].as_str())
            .unwrap_or_default();
        let place = format!("variable ${}", variable["name"].as_str().unwrap_or("?"));
        let selectors = promql::label_values(query).unwrap_or_else(|e| panic!("{place}: {e}"));
        queries.push(Query { place, selectors });
    }
    // The walk above must not miss a query stored somewhere unexpected.
    let mut exprs = 0;
    count_exprs(&dashboard, &mut exprs);
    assert_eq!(targets, exprs, "panel targets found vs `expr` fields");
    assert!(targets >= 15, "too few queries found: {targets}");
    assert!(queries.len() > targets, "no variable query found");
    queries
}

fn panel_queries(panels: &Value, out: &mut Vec<Query>) {
    for panel in panels.as_array().into_iter().flatten() {
        panel_queries(&panel["panels"], out);
        for target in panel["targets"].as_array().into_iter().flatten() {
            let place = format!(
                "panel {} {} target {}",
                panel["id"], panel["title"], target["refId"]
            );
            let expr = target["expr"].as_str().unwrap_or_default();
            let selectors = promql::selectors(expr).unwrap_or_else(|e| panic!("{place}: {e}"));
            out.push(Query { place, selectors });
        }
    }
}

fn count_exprs(value: &Value, count: &mut usize) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v) {
                    ("expr", Value::String(_)) => *count += 1,
                    _ => count_exprs(v, count),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| count_exprs(v, count)),
        _ => {}
    }
}

/// What both admin ports export now.
async fn scraped(ctl: &Controller) -> Exported {
    let client = HttpClient::http1();
    let mut scrapes = Vec::new();
    for admin in [&ctl.admin, &ctl.dataplane_admin] {
        let reply = client.get(&format!("{admin}/metrics")).await.unwrap();
        assert_eq!(reply.status, 200);
        scrapes.push(prometheus::parse(&reply.text()).unwrap());
    }
    Exported::new(&scrapes)
}

/// Each way a query asks for what the scrape lacks, as `place: reason`.
fn problems(queries: &[Query], exported: &Exported) -> Vec<String> {
    queries
        .iter()
        .flat_map(|q| {
            q.selectors
                .iter()
                .flat_map(|s| exported.check(s))
                .map(|m| format!("{}: {m}", q.place))
        })
        .collect()
}

/// The committed dashboard parses: every query is one the check follows.
#[test]
fn every_dashboard_query_is_checkable() {
    let queries = dashboard_queries();
    assert!(queries.iter().all(|q| !q.selectors.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_query_names_an_exported_metric() {
    let queries = dashboard_queries();
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
    let problems = loop {
        let problems = problems(&queries, &scraped(&ctl).await);
        if problems.is_empty() || start.elapsed() > Duration::from_secs(15) {
            break problems;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert!(
        problems.is_empty(),
        "the dashboard asks for what Tollgate does not export:\n  {}",
        problems.join("\n  ")
    );
}
