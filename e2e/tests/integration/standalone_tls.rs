//! TLS termination in standalone mode: the real controller serving HTTPS
//! listeners from a manifest folder, checked with rustls, curl and openssl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::tls::{Ca, ClientOptions, Leaf, Sender, client_config, connect, get, secret};
use common::*;
use rustls::{ProtocolVersion, SignatureScheme};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;
use tollgate_e2e::Echo;

/// A Gateway `gw` whose listeners are `listeners` (YAML list items), an
/// HTTPRoute attached to all of them, the echo Service and `extra`.
pub(crate) fn manifests(listeners: &str, echo: &Echo, extra: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tollgate}}
spec: {{controllerName: tollgate.dev/gateway-controller}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: default}}
spec:
  gatewayClassName: tollgate
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  listeners:
{listeners}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: echo, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: {svc}, port: 80}}]}}]
{service}{extra}",
        svc = echo.service(),
        service = service(echo.service(), &[echo.port()]),
    )
}

/// An HTTPS listener item on the manifest port.
pub(crate) fn https(name: &str, hostname: Option<&str>, secrets: &[&str], options: &str) -> String {
    let host = hostname.map_or(String::new(), |h| format!("    hostname: \"{h}\"\n"));
    let refs: Vec<String> = secrets.iter().map(|s| format!("{{name: {s}}}")).collect();
    format!(
        "  - name: {name}\n    port: {MANIFEST_PORT}\n    protocol: HTTPS\n{host}    tls:\n      certificateRefs: [{}]\n{options}",
        refs.join(", ")
    )
}

/// One HTTPS listener `web` for `*.example.com` and `example.com`.
pub(crate) async fn one_listener(name: &str, leaf: &Leaf) -> (Echo, PathBuf, Controller) {
    let echo = Echo::start("echo-tls").await.unwrap();
    let dir = manifest_dir(name);
    let listeners = https("web", None, &["web"], "");
    write(
        &dir,
        "all.yaml",
        &manifests(&listeners, &echo, &secret("web", leaf)),
    );
    let ctl = start_controller(&dir, true).await;
    (echo, dir, ctl)
}

pub(crate) async fn wait_serving(ctl: &Controller, ca: &Ca, sni: &str) {
    let config = client_config(ca, &ClientOptions::default());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(shaken) = connect(ctl.port, sni, config.clone()).await
            && get(shaken, sni, "/").await.0 == 200
        {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "HTTPS never served");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ALPN decides the protocol on TLS: `h2` gets HTTP/2, `http/1.1` or no
/// ALPN at all gets HTTP/1.1; the backend sees `X-Forwarded-Proto: https`.
/// curl, with the test CA and `--resolve`, agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_chooses_http2_or_http1() {
    let ca = Ca::new();
    let leaf = ca.leaf(&["example.com", "*.example.com"]);
    let (_echo, dir, ctl) = one_listener("tls-alpn", &leaf).await;
    wait_serving(&ctl, &ca, "a.example.com").await;
    for (alpn, want_alpn) in [
        (vec!["h2", "http/1.1"], Some(b"h2".to_vec())),
        (vec!["http/1.1"], Some(b"http/1.1".to_vec())),
        (vec![], None),
    ] {
        let options = ClientOptions {
            alpn: alpn.clone(),
            ..ClientOptions::default()
        };
        let shaken = connect(ctl.port, "a.example.com", client_config(&ca, &options))
            .await
            .unwrap();
        assert_eq!(shaken.alpn(), want_alpn, "alpn {alpn:?}");
        let (status, body) = get(shaken, "a.example.com", "/x").await;
        assert_eq!(status, 200, "{body}");
        let echo: tollgate_e2e::echo::EchoResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(
            echo.headers["X-Forwarded-Proto"],
            ["https"],
            "alpn {alpn:?}"
        );
    }
    tls_require_curl();
    let cafile = ca.write(&dir);
    for flag in ["--http2", "--http1.1"] {
        let out = Command::new("curl")
            .args(["-sS", "--fail", flag, "--cacert"])
            .arg(&cafile)
            .args([
                "--resolve",
                &format!("b.example.com:{}:127.0.0.1", ctl.port),
                "-w",
                "\n%{http_version}",
                &format!("https://b.example.com:{}/curl", ctl.port),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "curl {flag}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let version = text.lines().last().unwrap();
        assert_eq!(version, if flag == "--http2" { "2" } else { "1.1" });
    }
}

fn tls_require_curl() {
    common::tls::require_tool("curl", "curl");
}

/// On one port: an exact listener, a wildcard listener and a hostname-less
/// one, each with its own certificate. SNI picks the listener and so the
/// certificate (exact, then the wildcard, then the hostname-less one, which
/// also serves clients without SNI); a request whose Host belongs to
/// another listener than the SNI's gets 421, over HTTP/1.1 and HTTP/2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_selects_listener_and_certificate() {
    let ca = Ca::new();
    let exact = ca.leaf(&["api.example.com"]);
    let wild = ca.leaf(&["*.example.com"]);
    let default = ca.leaf(&["fallback.test", "127.0.0.1"]);
    let echo = Echo::start("echo-sni").await.unwrap();
    let dir = manifest_dir("tls-sni");
    let listeners = [
        https("exact", Some("api.example.com"), &["exact"], ""),
        https("wild", Some("*.example.com"), &["wild"], ""),
        https("default", None, &["default"], ""),
    ]
    .concat();
    let secrets = [
        secret("exact", &exact),
        secret("wild", &wild),
        secret("default", &default),
    ]
    .concat();
    write(&dir, "all.yaml", &manifests(&listeners, &echo, &secrets));
    let ctl = start_controller(&dir, true).await;
    wait_serving(&ctl, &ca, "api.example.com").await;
    let config = client_config(&ca, &ClientOptions::default());
    for (sni, want) in [
        ("api.example.com", &exact),
        ("www.example.com", &wild),
        ("fallback.test", &default),
    ] {
        let shaken = connect(ctl.port, sni, config.clone()).await.unwrap();
        assert_eq!(shaken.leaf(), want.der, "sni {sni}");
        assert_eq!(get(shaken, sni, "/").await.0, 200, "sni {sni}");
    }
    // No SNI (an IP address is never sent as SNI): the hostname-less one.
    let shaken = connect(ctl.port, "127.0.0.1", config.clone())
        .await
        .unwrap();
    assert_eq!(shaken.leaf(), default.der);
    // Host and SNI disagree: 421, on HTTP/2 (coalescing) and HTTP/1.1.
    for alpn in [vec!["h2"], vec!["http/1.1"]] {
        let options = ClientOptions {
            alpn: alpn.clone(),
            ..ClientOptions::default()
        };
        let shaken = connect(ctl.port, "www.example.com", client_config(&ca, &options))
            .await
            .unwrap();
        let mut sender = Sender::new(shaken).await;
        assert_eq!(sender.get("www.example.com", "/").await.0, 200);
        let (status, body) = sender.get("api.example.com", "/").await;
        assert_eq!(status, 421, "alpn {alpn:?}: {body}");
        // A Host of the same listener is fine on the same connection.
        assert_eq!(sender.get("other.example.com", "/").await.0, 200);
    }
}

/// A listener with an ECDSA and an RSA certificate serves ECDSA to a
/// client that verifies ECDSA, and RSA to one that verifies only RSA.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_or_ecdsa_by_what_the_client_verifies() {
    let ca = Ca::new();
    let ecdsa = ca.leaf(&["example.com"]);
    let rsa = ca.leaf_with(&["example.com"], &rcgen::PKCS_RSA_SHA256);
    let echo = Echo::start("echo-algs").await.unwrap();
    let dir = manifest_dir("tls-algs");
    let listeners = https("web", None, &["ecdsa", "rsa"], "");
    let secrets = [secret("ecdsa", &ecdsa), secret("rsa", &rsa)].concat();
    write(&dir, "all.yaml", &manifests(&listeners, &echo, &secrets));
    let ctl = start_controller(&dir, true).await;
    wait_serving(&ctl, &ca, "example.com").await;
    let rsa_only = ClientOptions {
        schemes: vec![
            SignatureScheme::RSA_PSS_SHA256,
            SignatureScheme::RSA_PSS_SHA384,
            SignatureScheme::RSA_PKCS1_SHA256,
        ],
        ..ClientOptions::default()
    };
    let ecdsa_only = ClientOptions {
        schemes: vec![SignatureScheme::ECDSA_NISTP256_SHA256],
        ..ClientOptions::default()
    };
    for (name, options, want) in [
        ("modern", ClientOptions::default(), &ecdsa),
        ("rsa-only", rsa_only, &rsa),
        ("ecdsa-only", ecdsa_only, &ecdsa),
    ] {
        let shaken = connect(ctl.port, "example.com", client_config(&ca, &options))
            .await
            .unwrap();
        assert_eq!(shaken.leaf(), want.der, "{name}");
        assert_eq!(get(shaken, "example.com", "/").await.0, 200, "{name}");
    }
}

/// Listeners limited to TLS 1.2 or to TLS 1.3 refuse the other version
/// (rustls client and `openssl s_client`), and a cipher-suite option is
/// what openssl negotiates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_cipher_options_hold() {
    common::tls::require_tool("openssl", "openssl");
    let ca = Ca::new();
    let leaf = ca.leaf(&["*.example.com"]);
    let echo = Echo::start("echo-versions").await.unwrap();
    let dir = manifest_dir("tls-versions");
    let listeners = [
        https(
            "old",
            Some("old.example.com"),
            &["web"],
            "      options:\n        tollgate.dev/max-tls-version: \"1.2\"\n        tollgate.dev/cipher-suites: TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256\n",
        ),
        https(
            "new",
            Some("new.example.com"),
            &["web"],
            "      options:\n        tollgate.dev/min-tls-version: \"1.3\"\n        tollgate.dev/cipher-suites: TLS13_AES_256_GCM_SHA384\n",
        ),
    ]
    .concat();
    write(
        &dir,
        "all.yaml",
        &manifests(&listeners, &echo, &secret("web", &leaf)),
    );
    let ctl = start_controller(&dir, true).await;
    wait_serving(&ctl, &ca, "new.example.com").await;
    for (sni, version, ok) in [
        ("old.example.com", &rustls::version::TLS12, true),
        ("old.example.com", &rustls::version::TLS13, false),
        ("new.example.com", &rustls::version::TLS13, true),
        ("new.example.com", &rustls::version::TLS12, false),
    ] {
        let options = ClientOptions {
            versions: vec![version],
            ..ClientOptions::default()
        };
        let got = connect(ctl.port, sni, client_config(&ca, &options)).await;
        assert_eq!(got.is_ok(), ok, "{sni} {version:?}");
        if let Ok(shaken) = got {
            let want = if ok && sni.starts_with("old") {
                ProtocolVersion::TLSv1_2
            } else {
                ProtocolVersion::TLSv1_3
            };
            assert_eq!(shaken.version(), Some(want));
        }
    }
    let cafile = ca.write(&dir);
    let s_client = |sni: &str, flag: &str| {
        let out = Command::new("openssl")
            .args(["s_client", "-connect", &format!("127.0.0.1:{}", ctl.port)])
            .args(["-servername", sni, flag, "-CAfile"])
            .arg(&cafile)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let old = s_client("old.example.com", "-tls1_2");
    assert!(old.contains("ECDHE-ECDSA-CHACHA20-POLY1305"), "{old}");
    assert!(old.contains("Verify return code: 0"), "{old}");
    let refused = s_client("old.example.com", "-tls1_3");
    assert!(!refused.contains("Cipher is TLS_"), "{refused}");
    let new = s_client("new.example.com", "-tls1_3");
    assert!(new.contains("TLS_AES_256_GCM_SHA384"), "{new}");
    let refused = s_client("new.example.com", "-tls1_2");
    assert!(
        refused.contains("Cipher is (NONE)") || refused.contains("alert"),
        "{refused}"
    );
}
