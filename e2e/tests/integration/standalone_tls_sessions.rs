//! TLS session resumption in standalone mode: tickets and the session
//! cache outlive snapshot swaps, and a listener can turn resumption off.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::standalone_tls::{https, manifests, one_listener, wait_serving};

use common::tls::{Ca, ClientOptions, client_config, connect, get, secret};
use common::*;
use rustls::HandshakeKind;
use rustls::client::ClientSessionMemoryCache;
use std::sync::Arc;
use std::time::Duration;
use tollgate_e2e::Echo;

/// Resumption works: a second connection with the first one's session
/// store resumes (TLS 1.3 tickets and TLS 1.2), and still does after an
/// unrelated snapshot swap, since ticket keys and the session cache are
/// process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_resume_across_snapshot_swaps() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["example.com"]);
    let (echo, dir, ctl) = one_listener("tls-resume", &leaf).await;
    wait_serving(&ctl, &ca, "example.com").await;
    second_handshake_is(&ctl, &ca, HandshakeKind::Resumed).await;
    // A swap (another route) keeps the ticket keys: still resumed.
    let config = client_config(&ca, &remembering(None));
    let first = connect(ctl.port, "example.com", config.clone())
        .await
        .unwrap();
    assert_eq!(get(first, "example.com", "/").await.0, 200);
    let listeners = https("web", None, &["web"], "");
    let route = format!(
        "---\napiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: more, namespace: default}}\nspec:\n  parentRefs: [{{name: gw}}]\n  rules: [{{matches: [{{path: {{type: Exact, value: /new}}}}], backendRefs: [{{name: {}, port: 80}}]}}]\n",
        echo.service()
    );
    let extra = secret("web", &leaf) + &route;
    write(&dir, "all.yaml", &manifests(&listeners, &echo, &extra));
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let probe = connect(
            ctl.port,
            "example.com",
            client_config(&ca, &ClientOptions::default()),
        )
        .await
        .unwrap();
        let (status, _) = get(probe, "example.com", "/new").await;
        let echo_routed = status == 200;
        if echo_routed {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new route never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = connect(ctl.port, "example.com", config).await.unwrap();
    assert_eq!(again.kind(), Some(HandshakeKind::Resumed));
}

/// `tollgate.dev/session-resumption: "off"` on a listener: no tickets and
/// no session IDs, so a client that kept its session store still makes a
/// full handshake, in TLS 1.3 and in TLS 1.2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resumption_can_be_turned_off() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["example.com"]);
    let echo = Echo::start("echo-no-resume").await.unwrap();
    let dir = manifest_dir("tls-no-resume");
    let off = "      options:\n        tollgate.dev/session-resumption: \"off\"\n";
    let listeners = https("web", None, &["web"], off);
    write(
        &dir,
        "all.yaml",
        &manifests(&listeners, &echo, &secret("web", &leaf)),
    );
    let ctl = start_controller(&dir, true).await;
    wait_serving(&ctl, &ca, "example.com").await;
    second_handshake_is(&ctl, &ca, HandshakeKind::Full).await;
}

/// In TLS 1.3 and in TLS 1.2, a client that keeps its session store makes
/// a full handshake, then one of kind `second`.
async fn second_handshake_is(ctl: &Controller, ca: &Ca, second: HandshakeKind) {
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let config = client_config(ca, &remembering(Some(version)));
        let kinds = two_handshakes(ctl.port, &config).await;
        assert_eq!(kinds, [HandshakeKind::Full, second], "{version:?}");
    }
}

/// Client options with a session store (and only `version`, if given).
fn remembering(version: Option<&'static rustls::SupportedProtocolVersion>) -> ClientOptions {
    ClientOptions {
        versions: version.map_or_else(|| ClientOptions::default().versions, |v| vec![v]),
        resumption: Some(Arc::new(ClientSessionMemoryCache::new(16))),
        ..ClientOptions::default()
    }
}

/// How two connections made one after the other with `config` shook hands;
/// each reads a response first, since TLS 1.3 tickets arrive after the
/// handshake.
async fn two_handshakes(port: u16, config: &Arc<rustls::ClientConfig>) -> [HandshakeKind; 2] {
    let mut kinds = [HandshakeKind::Full; 2];
    for kind in &mut kinds {
        let shaken = connect(port, "example.com", config.clone()).await.unwrap();
        *kind = shaken.kind().unwrap();
        assert_eq!(get(shaken, "example.com", "/").await.0, 200);
    }
    kinds
}
