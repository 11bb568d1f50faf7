//! TLS configuration changes in standalone mode: certificate rotation
//! under load, a broken Secret next to a good one, and a redirect to a
//! real HTTPS listener.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::standalone_tls::{https, manifests, one_listener, wait_serving};

use common::tls::{Ca, ClientOptions, Sender, client_config, connect, get, secret};
use common::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tollgate_e2e::{Echo, HttpClient};

/// Replacing a listener's Secret while a client makes new TLS connections
/// back to back fails no handshake and no request; new handshakes get the
/// new certificate within a second of the file change; a connection opened
/// before keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_rotation_under_load() {
    let ca = Ca::new();
    let old = ca.leaf(&["example.com"]);
    let new = ca.leaf(&["example.com"]);
    let (echo, dir, ctl) = one_listener("tls-rotate", &old).await;
    wait_serving(&ctl, &ca, "example.com").await;
    let config = client_config(&ca, &ClientOptions::default());
    let early = connect(ctl.port, "example.com", config.clone())
        .await
        .unwrap();
    assert_eq!(early.leaf(), old.der);
    let mut early = Sender::new(early).await;
    assert_eq!(early.get("example.com", "/").await.0, 200);

    let stop = Arc::new(AtomicBool::new(false));
    let (handshakes, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_new = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let load = {
        let (stop, handshakes, failures, first_new) = (
            stop.clone(),
            handshakes.clone(),
            failures.clone(),
            first_new.clone(),
        );
        let (config, port, new_der) = (config.clone(), ctl.port, new.der.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                match connect(port, "example.com", config.clone()).await {
                    Ok(shaken) => {
                        handshakes.fetch_add(1, Ordering::Relaxed);
                        if shaken.leaf() == new_der {
                            first_new.lock().unwrap().get_or_insert_with(Instant::now);
                        }
                        if get(shaken, "example.com", "/").await.0 != 200 {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => {
                        eprintln!("handshake failed: {e}");
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let listeners = https("web", None, &["web"], "");
    let rotated = Instant::now();
    write(
        &dir,
        "all.yaml",
        &manifests(&listeners, &echo, &secret("web", &new)),
    );
    let deadline = rotated + Duration::from_secs(5);
    while first_new.lock().unwrap().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    load.await.unwrap();
    let seen = first_new
        .lock()
        .unwrap()
        .expect("the new certificate was never served");
    let took = seen - rotated;
    let total = handshakes.load(Ordering::Relaxed);
    eprintln!("new certificate after {took:?}; {total} handshakes");
    assert!(
        took < Duration::from_secs(1),
        "new certificate after {took:?}"
    );
    assert_eq!(failures.load(Ordering::Relaxed), 0, "of {total} handshakes");
    assert!(total > 20, "only {total} handshakes");
    // The connection from before the rotation still serves, with its
    // session (and certificate) unchanged.
    assert_eq!(early.get("example.com", "/after").await.0, 200);
}

/// A listener whose Secret does not parse is left out
/// (ResolvedRefs=False InvalidCertificateRef) while the other HTTPS
/// listener on the same port keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_secret_leaves_the_other_listener_serving() {
    let ca = Ca::new();
    let good = ca.leaf(&["good.example.com"]);
    let echo = Echo::start("echo-bad-secret").await.unwrap();
    let dir = manifest_dir("tls-bad-secret");
    let listeners = [
        https("good", Some("good.example.com"), &["good"], ""),
        https("bad", Some("bad.example.com"), &["bad"], ""),
    ]
    .concat();
    let bad = "---\napiVersion: v1\nkind: Secret\nmetadata: {name: bad, namespace: default}\ntype: kubernetes.io/tls\nstringData: {tls.crt: not a certificate, tls.key: not a key}\n";
    let secrets = secret("good", &good) + bad;
    write(&dir, "all.yaml", &manifests(&listeners, &echo, &secrets));
    let ctl = start_controller(&dir, true).await;
    wait_serving(&ctl, &ca, "good.example.com").await;
    let status = object_status(&ctl.admin, "Gateway", "gw").await;
    let listeners = status["status"]["listeners"].as_array().unwrap();
    let bad_status = listeners.iter().find(|l| l["name"] == "bad").unwrap();
    let resolved = condition(&bad_status["conditions"], "ResolvedRefs");
    assert_eq!(resolved["status"], "False", "{bad_status:#}");
    assert_eq!(resolved["reason"], "InvalidCertificateRef");
    let message = resolved["message"].as_str().unwrap();
    assert!(message.contains("no PEM certificate"), "{message}");
    assert!(!message.contains("not a key"), "{message}");
    let good_status = listeners.iter().find(|l| l["name"] == "good").unwrap();
    assert_eq!(
        condition(&good_status["conditions"], "Programmed")["status"],
        "True"
    );
}

/// A RequestRedirect with `scheme: https, port: 443` on the HTTP listener
/// sends clients to the HTTPS listener, which serves them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirect_to_the_https_listener() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["example.com"]);
    let echo = Echo::start("echo-redirect").await.unwrap();
    let dir = manifest_dir("tls-redirect");
    let listeners = format!(
        "  - {{name: http, port: {MANIFEST_PORT}, protocol: HTTP}}\n  - name: https\n    port: 443\n    protocol: HTTPS\n    tls: {{certificateRefs: [{{name: web}}]}}\n"
    );
    let redirect = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: to-https, namespace: default}
spec:
  parentRefs: [{name: gw, sectionName: http}]
  hostnames: [example.com]
  rules:
  - filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, port: 443}
";
    let extra = secret("web", &leaf) + redirect;
    write(&dir, "all.yaml", &manifests(&listeners, &echo, &extra));
    let ctl = start_controller(&dir, true).await;
    let https_port = ctl.port - MANIFEST_PORT + 443;
    let deadline = Instant::now() + Duration::from_secs(10);
    let reply = loop {
        let req = http::Request::get(format!("{}/path?q=1", ctl.gateway))
            .header("host", "example.com")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        let reply = HttpClient::http1().send(req).await.unwrap();
        if reply.status == 301 || reply.status == 302 || Instant::now() > deadline {
            break reply;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply.status, 302, "{}", reply.text());
    assert_eq!(
        reply.header("location"),
        Some("https://example.com/path?q=1")
    );
    // The manifest port 443 is bound at its offset: follow by hand.
    let config = client_config(&ca, &ClientOptions::default());
    let shaken = connect(https_port, "example.com", config).await.unwrap();
    let (status, body) = get(shaken, "example.com", "/path?q=1").await;
    assert_eq!(status, 200, "{body}");
    let echo: tollgate_e2e::echo::EchoResponse = serde_json::from_str(&body).unwrap();
    assert_eq!(echo.path, "/path?q=1");
    assert_eq!(echo.headers["X-Forwarded-Proto"], ["https"]);
}
