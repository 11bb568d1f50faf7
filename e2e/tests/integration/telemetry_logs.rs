//! Logs through the real binaries: the access log on standard output and
//! as OTLP log records, and the log filter changed at run time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::telemetry_support::*;
use http::Method;
use serde_json::Value;
use std::time::{Duration, Instant};
use tollgate_e2e::otlp::{LogRecord, Receiver, SpanKind};
use tollgate_e2e::{Echo, HttpClient, Proc};

/// Every access-log line the process wrote so far, as text and as JSON.
fn access_lines(proc: &Proc) -> Vec<(String, Value)> {
    proc.log()
        .lines()
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| Some((l.to_string(), serde_json::from_str::<Value>(l).ok()?)))
        .filter(|(_, v)| v["log"] == "access")
        .collect()
}

/// Waits for `n` access-log lines.
async fn wait_lines(proc: &Proc, n: usize) -> Vec<(String, Value)> {
    let start = Instant::now();
    loop {
        let lines = access_lines(proc);
        if lines.len() >= n {
            return lines;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{} access lines, not {n}:\n{}",
            lines.len(),
            proc.tail(30)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One access-log line per request on stdout with the documented fields,
/// and the same records over OTLP, each in its request's trace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_log_on_stdout_and_over_otlp() {
    let receiver = Receiver::start().await.unwrap();
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{accessLog: {enabled: true, otlp: true}}";
    let manifests = shop_manifests(&echo, settings);
    let env = otel_env(&receiver, "http/protobuf", "gw-logs");
    let ctl = start("access-log", &manifests, &env).await;
    let client = HttpClient::http1();

    // (path, status, error.type, trace, body length)
    let mut sent = Vec::new();
    for path in ["/shop/a", "/shop/b?x=1", "/shop/c", "/nowhere", "/empty/z"] {
        let trace = ClientTrace::new();
        let header = trace.traceparent(true);
        let reply = send(
            &client,
            &format!("{}{path}", ctl.gateway),
            &[("traceparent", &header), ("user-agent", "logs-test/2")],
        )
        .await;
        sent.push((path, reply.status.as_u16(), trace, reply.body.len()));
    }
    let statuses: Vec<u16> = sent.iter().map(|s| s.1).collect();
    assert_eq!(statuses, [200, 200, 200, 404, 503]);

    let lines = wait_lines(&ctl.proc, sent.len()).await;
    assert_eq!(lines.len(), sent.len(), "one line per request");
    let records = receiver
        .wait_for_logs(sent.len(), Duration::from_secs(15))
        .await;
    assert_eq!(records.len(), sent.len(), "{}", receiver.summary());

    for (path, status, trace, body_len) in &sent {
        let mine: Vec<&(String, Value)> = lines
            .iter()
            .filter(|(_, v)| v["trace_id"] == trace.trace_id.as_str())
            .collect();
        assert_eq!(mine.len(), 1, "{path}: {lines:#?}");
        let (text, line) = mine[0];
        let field = |k: &str| {
            line.get(k)
                .unwrap_or_else(|| panic!("{path}: no {k} in {text}"))
        };
        field("time")
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap();
        let span_id = field("span_id").as_str().unwrap();
        assert_eq!(span_id.len(), 16);
        assert_ne!(span_id, trace.span_id, "the gateway's own span");
        assert_eq!(field("method"), "GET");
        assert_eq!(field("host"), format!("127.0.0.1:{}", ctl.port).as_str());
        let bare = path.split('?').next().unwrap();
        assert_eq!(field("path"), bare, "no query unless recordQuery");
        assert!(line.get("query").is_none(), "{text}");
        assert_eq!(field("status"), *status);
        assert_eq!(field("bytes_in"), 0);
        assert_eq!(field("bytes_out"), *body_len as u64, "{text}");
        let duration = field("duration_ms").as_f64().unwrap();
        assert!(duration > 0.0, "{text}");
        assert_eq!(field("client_address"), "127.0.0.1");
        assert_eq!(field("user_agent"), "logs-test/2");
        assert_eq!(field("gateway"), "default/gw");
        let routed = *status != 404;
        if routed {
            assert_eq!(field("route"), "default/shop");
            assert!(field("rule").is_i64(), "{text}");
        } else {
            assert!(line.get("route").is_none(), "{text}");
        }
        match status {
            200 => {
                assert!(line.get("error_type").is_none(), "{text}");
                assert!(field("backend").as_str().unwrap().contains("echo"));
                let endpoint = format!("127.0.0.1:{}", echo.port());
                assert_eq!(field("endpoint"), endpoint.as_str());
                let upstream = field("upstream_duration_ms").as_f64().unwrap();
                assert!(upstream > 0.0 && upstream <= duration, "{text}");
            }
            404 => assert_eq!(field("error_type"), "routing"),
            _ => {
                assert_eq!(field("error_type"), "no-endpoints");
                assert!(line.get("endpoint").is_none(), "{text}");
            }
        }

        // The span_id is the server span's (when the span reached the
        // collector), and the OTLP record is the same line in the same trace.
        let spans = wait_trace(&receiver, &trace.trace_id, 1).await;
        let server: Vec<_> = spans
            .iter()
            .filter(|s| s.kind == SpanKind::Server)
            .collect();
        assert_eq!(server[0].span_id, span_id);
        let record: Vec<&LogRecord> = records
            .iter()
            .filter(|r| r.trace_id.as_deref() == Some(trace.trace_id.as_str()))
            .collect();
        assert_eq!(record.len(), 1, "{path}: {records:#?}");
        let record = record[0];
        assert_eq!(record.body_str(), Some(text.as_str()));
        assert_eq!(record.span_id.as_deref(), Some(span_id));
        assert_eq!(record.origin.scope, "tollgate.access");
        assert_eq!(record.origin.service_name(), Some("gw-logs"));
        assert_eq!(record.str_attr("http.request.method"), Some("GET"));
        assert_eq!(record.str_attr("url.path"), Some(bare));
        assert_eq!(
            record.attributes.get("http.response.status_code"),
            Some(&serde_json::json!(status))
        );
        assert_eq!(record.str_attr("client.address"), Some("127.0.0.1"));
        // The Host value split as the conventions ask, not `host:port`.
        assert_eq!(record.str_attr("server.address"), Some("127.0.0.1"));
        assert!(record.attributes.contains_key("server.port"), "{record:#?}");
        assert_eq!(record.str_attr("network.protocol.version"), Some("1.1"));
        assert_eq!(
            record.attributes.get("http.response.body.size"),
            Some(&line["bytes_out"])
        );
        assert_eq!(record.str_attr("user_agent.original"), Some("logs-test/2"));
        assert_eq!(record.str_attr("tollgate.gateway"), Some("default/gw"));
        if routed {
            assert_eq!(record.str_attr("tollgate.route"), Some("default/shop"));
            assert!(record.str_attr("http.route").is_some());
        }
        if *status != 200 {
            assert_eq!(record.str_attr("error.type"), line["error_type"].as_str());
        }
    }
}

/// `PUT /log-level` on the data-plane admin port turns debug lines on
/// without a restart; a filter that does not parse gets 400 and changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_level_changes_at_run_time() {
    let echo = Echo::start("echo").await.unwrap();
    let manifests = shop_manifests(&echo, "{}");
    let ctl = start("log-level", &manifests, &[]).await;
    let client = HttpClient::http1();
    let level = |admin: String| {
        let client = client.clone();
        async move {
            let reply = client.get(&format!("{admin}/log-level")).await.unwrap();
            assert_eq!(reply.status, 200);
            reply.text().trim().to_string()
        }
    };
    let put = |admin: String, filter: &'static str| {
        let client = client.clone();
        async move {
            let req = http::Request::builder()
                .method(Method::PUT)
                .uri(format!("{admin}/log-level"))
                .body(http_body_util::Full::new(bytes::Bytes::from(filter)))
                .unwrap();
            client.send(req).await.unwrap()
        }
    };
    // A refused request is logged at debug level only.
    let refused = "request refused";
    assert_eq!(level(ctl.dataplane_admin.clone()).await, "info");
    let reply = send(&client, &format!("{}/before-debug", ctl.gateway), &[]).await;
    assert_eq!(reply.status, 404);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!ctl.proc.log().contains(refused), "{}", ctl.proc.tail(20));

    let reply = put(ctl.dataplane_admin.clone(), "debug").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(level(ctl.dataplane_admin.clone()).await, "debug");
    // One process, one filter: the controller's port reports it too.
    assert_eq!(level(ctl.admin.clone()).await, "debug");
    let reply = send(&client, &format!("{}/after-debug", ctl.gateway), &[]).await;
    assert_eq!(reply.status, 404);
    let start = Instant::now();
    while !ctl.proc.log().contains(refused) {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{}",
            ctl.proc.tail(20)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let log = ctl.proc.log();
    let line = log.lines().find(|l| l.contains(refused)).unwrap();
    assert!(
        line.contains("DEBUG") && line.contains("/after-debug"),
        "{line}"
    );

    for admin in [&ctl.dataplane_admin, &ctl.admin] {
        let reply = put(admin.clone(), "info,[unclosed").await;
        assert_eq!(reply.status, 400, "{admin}: {}", reply.text());
        assert!(
            reply.text().contains("invalid log filter"),
            "{}",
            reply.text()
        );
        assert_eq!(level(admin.clone()).await, "debug", "unchanged");
    }
    let reply = put(ctl.admin.clone(), "info").await;
    assert_eq!(reply.status, 200);
    assert_eq!(level(ctl.dataplane_admin.clone()).await, "info");
}

/// A chunked upload declares no length: its line counts the body bytes
/// that went upstream (a declared `Content-Length` is taken as it is).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_upload_logs_its_bytes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let echo = Echo::start("echo").await.unwrap();
    let settings = "{accessLog: {enabled: true}}";
    let manifests = shop_manifests(&echo, settings);
    let ctl = start("access-log-chunked", &manifests, &[]).await;
    let address = ctl.gateway.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = "POST /shop/upload HTTP/1.1\r\nhost: example.com\r\nconnection: close\r\n\
                   transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = conn.read_to_end(&mut answer);
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let lines = wait_lines(&ctl.proc, 1).await;
    let (text, line) = lines
        .iter()
        .find(|(_, v)| v["path"] == "/shop/upload")
        .unwrap_or_else(|| panic!("no line for the upload: {lines:#?}"));
    assert_eq!(line["method"], "POST", "{text}");
    assert_eq!(line["bytes_in"], 11, "{text}");
}
