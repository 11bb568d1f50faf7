//! Requests reach the backend over every downstream protocol the data plane
//! speaks: HTTP/1.1, HTTP/2 with prior knowledge, and HTTP/1.1 upgraded to h2c.

#![allow(clippy::unwrap_used)]

use crate::server_support;

use server_support::*;
use tollgate_snapshot::Settings;

#[tokio::test]
async fn http1_reaches_the_backend() {
    let (_dp, port) = serving(Settings::default()).await;
    let (status, body) = get(&h1_client(), &format!("http://127.0.0.1:{port}/a?b=c"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["name"], "a");
    assert_eq!(body["path"], "/a?b=c");
}

#[tokio::test]
async fn http2_prior_knowledge_reaches_the_backend() {
    let (_dp, port) = serving(Settings::default()).await;
    let client = h2_client();
    for path in ["/one", "/two"] {
        let (status, body) = get(&client, &format!("http://127.0.0.1:{port}{path}"))
            .await
            .unwrap();
        assert_eq!((status, body["path"].as_str()), (200, Some(path)));
    }
}

/// curl's `--http2` offers `Upgrade: h2c`; the answer to the first request
/// and a second request on the same connection both come over HTTP/2.
#[tokio::test]
async fn upgrade_to_h2c_reaches_the_backend() {
    let (_dp, port) = serving(Settings::default()).await;
    let first = format!("http://127.0.0.1:{port}/first?x=1");
    let second = format!("http://127.0.0.1:{port}/second");
    let out = curl(&[
        "-sS",
        "--http2",
        "-H",
        "x-test: yes",
        "-w",
        "\n%{http_version}\n",
        &first,
        &second,
    ])
    .await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    let one: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(one["path"], "/first?x=1");
    assert_eq!(one["headers"]["x-test"], "yes");
    assert_eq!(one["headers"].get("upgrade"), None);
    assert_eq!(one["headers"].get("http2-settings"), None);
    assert_eq!(lines[1], "2");
    let two: serde_json::Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(two["path"], "/second");
    assert_eq!(lines[3], "2");
}

/// A small request body travels across the upgrade as a DATA frame.
#[tokio::test]
async fn upgrade_to_h2c_carries_a_small_body() {
    let (_dp, port) = serving(Settings::default()).await;
    let url = format!("http://127.0.0.1:{port}/post");
    let out = curl(&[
        "-sS",
        "--http2",
        "-d",
        "hello=world",
        "-w",
        "\n%{http_version}",
        &url,
    ])
    .await;
    let (json, version) = out.rsplit_once('\n').unwrap();
    let body: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(
        (body["method"].as_str(), body["body"].as_str()),
        (Some("POST"), Some("hello=world"))
    );
    assert_eq!(version, "2");
}

/// An offer with a body too large to carry is answered over HTTP/1.1.
#[tokio::test]
async fn a_large_body_declines_the_upgrade() {
    let (_dp, port) = serving(Settings::default()).await;
    let url = format!("http://127.0.0.1:{port}/big");
    let data = "x".repeat(40_000);
    let out = curl(&[
        "-sS",
        "--http2",
        "-d",
        &data,
        "-w",
        "\n%{http_version}",
        &url,
    ])
    .await;
    let (json, version) = out.rsplit_once('\n').unwrap();
    let body: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(body["body"].as_str().map(str::len), Some(40_000));
    assert_eq!(version, "1.1");
}

#[tokio::test]
async fn curl_with_prior_knowledge_speaks_http2() {
    let (_dp, port) = serving(Settings::default()).await;
    let url = format!("http://127.0.0.1:{port}/pk");
    let out = curl(&[
        "-sS",
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version}",
        &url,
    ])
    .await;
    let (json, version) = out.rsplit_once('\n').unwrap();
    let body: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(body["path"], "/pk");
    assert_eq!(version, "2");
}

/// Behind a PROXY-protocol balancer, the header's source is the client
/// (in `X-Forwarded-For`), v1 and v2 alike; a connection without a header
/// is closed unanswered.
#[tokio::test]
async fn proxy_protocol_names_the_client() {
    let backend = echo("a").await;
    let port = free_port();
    let mut snap = snapshot(1, port, &[("/", backend)]);
    snap.sockets[0].proxy_protocol = true;
    let dp = dataplane();
    dp.apply(snap).await.unwrap();
    let request = b"GET /pp HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n";
    let mut v1 = b"PROXY TCP4 198.51.100.7 127.0.0.1 40000 80\r\n".to_vec();
    v1.extend_from_slice(request);
    let mut v2 = b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec();
    v2.extend_from_slice(&[203, 0, 113, 9, 127, 0, 0, 1, 0x9c, 0x40, 0, 80]);
    v2.extend_from_slice(request);
    for (header, client) in [(v1, "198.51.100.7"), (v2, "203.0.113.9")] {
        let (text, _) = raw(port, &header).await;
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
        let seen: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(seen["headers"]["x-forwarded-for"], client, "{seen}");
    }
    let (text, closed) = raw(port, request).await;
    assert!(text.is_empty() && closed, "{text}");
    dp.shutdown();
}
