#![allow(clippy::expect_used)]

use super::*;
use crate::prometheus::parse;

/// `(metric, labels)` of each selector of `expr`.
fn needs(expr: &str) -> Vec<(String, Vec<String>)> {
    selectors(expr)
        .expect("the expression is accepted")
        .into_iter()
        .map(|s| (s.metric, s.labels.into_iter().collect()))
        .collect()
}

fn owned(metric: &str, labels: &[&str]) -> (String, Vec<String>) {
    let labels = labels.iter().map(|l| (*l).to_owned()).collect();
    (metric.to_owned(), labels)
}

/// A metric needs its matchers' labels and those of the `by` clauses
/// around it; functions, numbers and Grafana's `$variables` are not
/// metrics.
#[test]
fn matchers_and_groupings_are_needed() {
    assert_eq!(
        needs(
            "sum by (tollgate_route) (rate(x_count{tollgate_gateway=~\"$gateway\",error_type!=\"\"}[$__rate_interval]))"
        ),
        [owned(
            "x_count",
            &["error_type", "tollgate_gateway", "tollgate_route"]
        )]
    );
    assert_eq!(needs("max(x)"), [owned("x", &[])]);
    assert_eq!(
        needs("sum(rate(y_total[5m])) by (kind) * 1e-3"),
        [owned("y_total", &["kind"])]
    );
    assert_eq!(
        needs("sum without (le,) (z_bucket)"),
        [owned("z_bucket", &["le"])]
    );
}

/// Each side of a binary operator keeps its own labels.
#[test]
fn each_operand_is_separate() {
    assert_eq!(
        needs(
            "sum by (r) (rate(a_count{e!=\"\"}[1m])) / sum by (r) (rate(a_count[1m])) > bool 0.5"
        ),
        [owned("a_count", &["e", "r"]), owned("a_count", &["r"])]
    );
}

/// Under `histogram_quantile` the buckets need `le`, and an aggregation
/// that drops it is refused (the quantile would come out empty).
#[test]
fn histogram_quantile_needs_le() {
    assert_eq!(
        needs(
            "histogram_quantile(0.99, sum by (le, tollgate_route) (rate(h_bucket{g=~\"$gateway\"}[5m])))"
        ),
        [owned("h_bucket", &["g", "le", "tollgate_route"])]
    );
    assert_eq!(
        needs("histogram_quantile(0.5, rate(h_bucket[5m]))"),
        [owned("h_bucket", &["le"])]
    );
    assert_eq!(
        needs("histogram_quantile(0.5, topk(3, h_bucket))"),
        [owned("h_bucket", &["le"])]
    );
    for dropped in [
        "histogram_quantile(0.9, sum by (r) (rate(h_bucket[5m])))",
        "histogram_quantile(0.9, sum(rate(h_bucket[5m])))",
        "histogram_quantile(0.9, sum without (le) (h_bucket))",
    ] {
        let err = selectors(dropped).expect_err(dropped);
        assert!(err.contains("drops `le`"), "{dropped}: {err}");
    }
}

/// What is inside strings, ranges and subqueries, and offsets and
/// comments, is never read as a metric or a grouping.
#[test]
fn literals_do_not_leak() {
    assert_eq!(
        needs("m{a=\"b{c}, by (d)\", b='x\\'y'}[1h:5m] offset 5m # by (z)"),
        [owned("m", &["a", "b"])]
    );
    assert_eq!(needs("vector(1) + 0x1f"), []);
}

/// Constructs the check cannot follow, and malformed queries, are refused
/// with a reason rather than passed.
#[test]
fn refuses_what_it_cannot_check() {
    for (expr, reason) in [
        (
            "label_replace(m, \"d\", \"$1\", \"s\", \"(.*)\")",
            "label_replace",
        ),
        ("a * on (x) b", "`on`"),
        ("count_values(\"v\", m)", "count_values"),
        ("{__name__=\"m\"}", "without a metric name"),
        ("sum by ($label) (m)", "unexpected '$'"),
        ("rate(m[5m]", "unclosed `(`"),
        ("m)", "unbalanced"),
        ("rate(m) by (x)", "not after an aggregation"),
        ("sum by (a b) (m)", "grouping clause"),
        ("m{a}", "matcher operator"),
        ("m{a=\"x}", "unclosed string"),
    ] {
        let err = selectors(expr).expect_err(expr);
        assert!(err.contains(reason), "{expr}: {err}");
    }
}

/// A `label_values(metric, label)` variable needs `label` on `metric`.
#[test]
fn label_values_need_their_label() {
    let found = label_values("label_values(x_count{a=\"1,2\"}, tollgate_gateway)")
        .expect("the query is accepted");
    let found: Vec<_> = found
        .into_iter()
        .map(|s| (s.metric, s.labels.into_iter().collect::<Vec<_>>()))
        .collect();
    assert_eq!(found, [owned("x_count", &["a", "tollgate_gateway"])]);
    for query in [
        "label_values(tollgate_gateway)",
        "label_values(sum(x), l)",
        "label_values(x, l m)",
        "query_result(x)",
    ] {
        assert!(label_values(query).is_err(), "{query}");
    }
}

/// What the data plane exports for `http.server.active_requests` (see
/// `dataplane/src/telemetry/active.rs`), beside a request histogram.
const PAGE: &str = "\
# TYPE http_server_active_requests gauge
http_server_active_requests{http_request_method=\"GET\",url_scheme=\"http\"} 2
# TYPE d histogram
d_bucket{tollgate_gateway=\"gw\",le=\"1\"} 1
d_bucket{tollgate_gateway=\"gw\",le=\"+Inf\"} 1
d_sum{tollgate_gateway=\"gw\"} 0.5
d_count{tollgate_gateway=\"gw\"} 1
";

fn check(expr: &str) -> Vec<String> {
    let scrape = parse(PAGE).expect("the page parses");
    let exported = Exported::new([&scrape]);
    selectors(expr)
        .expect("the expression is accepted")
        .iter()
        .flat_map(|s| exported.check(s))
        .map(|m| m.to_string())
        .collect::<Vec<_>>()
}

/// The in-flight panel's old query filtered on a Gateway label the metric
/// does not carry: it is rejected, naming the metric and the label; the
/// per-process query that replaced it passes.
#[test]
fn old_in_flight_query_is_rejected() {
    assert_eq!(
        check("sum(http_server_active_requests{tollgate_gateway=~\"$gateway\"})"),
        ["http_server_active_requests has no label tollgate_gateway \
             (its series carry: http_request_method, url_scheme)"]
    );
    assert_eq!(
        check("sum by (http_request_method, url_scheme) (http_server_active_requests)"),
        Vec::<String>::new()
    );
}

/// Labels are per sample name: `le` is on the buckets only; target labels
/// count as present; a missing metric is named.
#[test]
fn labels_are_per_sample_name() {
    let clean = Vec::<String>::new();
    assert_eq!(
        check("histogram_quantile(0.9, sum by (le, instance) (rate(d_bucket[5m])))"),
        clean
    );
    assert_eq!(
        check("sum by (le) (d_count)"),
        ["d_count has no label le (its series carry: tollgate_gateway)"]
    );
    assert_eq!(check("d"), ["d is not exported"]);
}
