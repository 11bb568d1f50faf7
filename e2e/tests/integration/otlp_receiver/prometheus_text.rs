//! The Prometheus text parser on a realistic page, on malformed pages,
//! and on the `prometheus` crate's own text encoder.

/// A page as Tollgate's `/metrics` serves it: HELP with escapes, a counter
/// whose labels hold `,`, `=`, `}`, quotes, backslashes and newlines, a
/// histogram with two series, a gauge with a timestamp, blank lines and
/// comments.
const PAGE: &str = r#"# A comment that is neither HELP nor TYPE.
# HELP tollgate_requests_total Requests served, by route.\nSecond line with a \\ backslash.
# TYPE tollgate_requests_total counter
tollgate_requests_total{route="httproute/default/a/rule/0",code="200"} 41
tollgate_requests_total{route="httproute/default/a/rule/0",code="503"} 1
tollgate_requests_total{route="/x,y=z}",msg="say \"hi\"\\\n",} 2

# HELP tollgate_request_duration_seconds Request latency.
# TYPE tollgate_request_duration_seconds histogram
tollgate_request_duration_seconds_bucket{route="a",le="0.005"} 0
tollgate_request_duration_seconds_bucket{route="a",le="0.1"} 3
tollgate_request_duration_seconds_bucket{route="a",le="+Inf"} 4
tollgate_request_duration_seconds_sum{route="a"} 1.25
tollgate_request_duration_seconds_count{route="a"} 4
tollgate_request_duration_seconds_bucket{route="b",le="0.005"} 1
tollgate_request_duration_seconds_bucket{route="b",le="0.1"} 1
tollgate_request_duration_seconds_bucket{route="b",le="+Inf"} 1
tollgate_request_duration_seconds_sum{route="b"} 0.001
tollgate_request_duration_seconds_count{route="b"} 1
# TYPE tollgate_snapshot_version gauge
tollgate_snapshot_version 7 1700000000000
process_open_fds	12
"#;

/// The page parses with escapes decoded and histograms regrouped.
#[test]
fn parses_a_realistic_page() {
    use tollgate_e2e::prometheus::{self, MetricType};
    let scrape = prometheus::parse(PAGE).unwrap();
    let family = scrape.family("tollgate_requests_total").unwrap();
    assert_eq!(family.kind, MetricType::Counter);
    assert_eq!(
        family.help.as_deref(),
        Some("Requests served, by route.\nSecond line with a \\ backslash.")
    );
    assert_eq!(
        scrape.value("tollgate_requests_total", &[("code", "503")]),
        Some(1.0)
    );
    // Two series match: ambiguous, so no single value, but a sum.
    let route = [("route", "httproute/default/a/rule/0")];
    assert_eq!(scrape.value("tollgate_requests_total", &route), None);
    assert_eq!(scrape.sum("tollgate_requests_total", &route), 42.0);
    let odd = [("route", "/x,y=z}"), ("msg", "say \"hi\"\\\n")];
    assert_eq!(scrape.value("tollgate_requests_total", &odd), Some(2.0));
    assert_eq!(scrape.series("tollgate_requests_total").len(), 3);

    let a = scrape
        .histogram("tollgate_request_duration_seconds", &[("route", "a")])
        .unwrap();
    assert_eq!(a.buckets, [(0.005, 0.0), (0.1, 3.0), (f64::INFINITY, 4.0)]);
    assert_eq!((a.sum, a.count), (Some(1.25), Some(4.0)));
    assert_eq!(a.bucket(0.1), Some(3.0));
    assert_eq!(
        scrape
            .histograms("tollgate_request_duration_seconds", &[])
            .len(),
        2
    );
    assert_eq!(
        scrape.histogram("tollgate_request_duration_seconds", &[]),
        None
    );
    assert_eq!(scrape.count_series("tollgate_request_duration_seconds"), 10);
    assert_eq!(scrape.count_series("tollgate_"), 14);

    let version = scrape.series("tollgate_snapshot_version");
    assert_eq!(
        (version[0].value, version[0].timestamp_ms),
        (7.0, Some(1_700_000_000_000))
    );
    assert_eq!(scrape.family("process_open_fds"), None);
    assert_eq!(scrape.value("process_open_fds", &[]), Some(12.0));
}

/// Each malformed page fails, naming the line.
#[test]
fn rejects_malformed_pages() {
    let cases = [
        ("x{a=\"1\"} 1\nx{a=\"1\"} 2\n", "line 2: repeated series"),
        (
            "x 1\n# TYPE x counter\n",
            "line 2: TYPE for x after its samples",
        ),
        ("# TYPE x counter\n# TYPE x gauge\n", "line 2: second TYPE"),
        ("# HELP x a\n# HELP x b\n", "line 2: second HELP"),
        ("x{a=\"1\",a=\"2\"} 1\n", "line 1: repeated label a"),
        ("x{a=1} 1\n", "line 1: label a not quoted"),
        ("x{a=\"1} 1\n", "line 1: label a not closed"),
        ("x{a=\"\\t\"} 1\n", "line 1: invalid escape"),
        ("x{1a=\"1\"} 1\n", "line 1: invalid label name"),
        ("x one\n", "line 1: invalid value"),
        ("x 1 2 3\n", "line 1: unexpected"),
        ("x\n", "line 1: missing value"),
        ("9x 1\n", "line 1: invalid metric name"),
        (
            "# TYPE x histogram\nx_bucket{le=\"1\"} 1\n",
            "no le=\"+Inf\" bucket",
        ),
        (
            "# TYPE x histogram\nx_bucket{le=\"1\"} 2\nx_bucket{le=\"+Inf\"} 1\n",
            "decreasing",
        ),
        (
            "# TYPE x histogram\nx_bucket{le=\"+Inf\"} 1\nx_count 2\n",
            "_count != +Inf",
        ),
        ("# TYPE x histogram\nx_bucket 1\n", "has no numeric le"),
        ("# TYPE x timer\n", "line 1: unknown type"),
    ];
    for (page, expected) in cases {
        let error = tollgate_e2e::prometheus::parse(page)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(expected),
            "{page:?}: got {error:?}, want {expected:?}"
        );
    }
}

/// The `prometheus` crate's own text encoder, with escaped label values
/// and a histogram, reads back exactly.
#[test]
fn reads_the_prometheus_crates_output() {
    use prometheus::{Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};
    let registry = Registry::new();
    let counter = IntCounterVec::new(
        Opts::new("tollgate_requests_total", "Requests.\nBy \"route\"."),
        &["route"],
    )
    .unwrap();
    let histogram = HistogramVec::new(
        HistogramOpts::new("tollgate_request_duration_seconds", "Latency.").buckets(vec![0.1, 1.0]),
        &["route"],
    )
    .unwrap();
    registry.register(Box::new(counter.clone())).unwrap();
    registry.register(Box::new(histogram.clone())).unwrap();
    let tricky = "/a,b=\"c\"\\\n}";
    counter.with_label_values(&[tricky]).inc_by(3);
    for seconds in [0.05, 0.5, 5.0] {
        histogram.with_label_values(&["x"]).observe(seconds);
    }
    let mut text = Vec::new();
    prometheus::TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();

    let scrape = tollgate_e2e::prometheus::parse(&text).unwrap();
    assert_eq!(
        scrape.value("tollgate_requests_total", &[("route", tricky)]),
        Some(3.0),
        "{text}"
    );
    let help = scrape
        .family("tollgate_requests_total")
        .unwrap()
        .help
        .clone();
    assert_eq!(help.as_deref(), Some("Requests.\nBy \"route\"."));
    let h = scrape
        .histogram("tollgate_request_duration_seconds", &[("route", "x")])
        .unwrap();
    assert_eq!(h.buckets, [(0.1, 1.0), (1.0, 2.0), (f64::INFINITY, 3.0)]);
    assert_eq!((h.sum, h.count), (Some(5.55), Some(3.0)));
}
