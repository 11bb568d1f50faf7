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
