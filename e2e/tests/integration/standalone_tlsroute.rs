//! TLSRoute in standalone mode: the real controller relaying TLS
//! listener connections by SNI, from a manifest folder.
//!
//! Passthrough is checked end to end with real TLS backends
//! ([`TlsEcho`], which answers with the SNI it saw): the client verifies
//! the backend's certificate (issued by a CA the gateway knows nothing
//! of), which proves the bytes went through untouched. Terminate ends TLS
//! with the listener's certificate and relays plaintext to a TCP echo.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::tls::{ClientOptions, Sender, client_config, secret};
use common::*;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tollgate_e2e::tls::{Ca, Leaf, TlsEcho, provider};

/// The GatewayClass and a Gateway `gw` with one TLS listener `tls` on
/// manifest port `port`, whose remaining lines are `listener`.
fn class_and_gateway(listener: &str, port: u16) -> String {
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
  - name: tls
    port: {port}
    protocol: TLS
{listener}"
    )
}

/// A TLSRoute `name` for `hosts` to `(service, weight)` backends.
pub(crate) fn tls_route(name: &str, hosts: &[&str], backends: &[(&str, u32)]) -> String {
    let refs: Vec<String> = backends
        .iter()
        .map(|(svc, w)| format!("{{name: {svc}, port: 80, weight: {w}}}"))
        .collect();
    format!(
        "---
apiVersion: gateway.networking.k8s.io/v1
kind: TLSRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  hostnames: [{}]
  rules: [{{backendRefs: [{}]}}]
",
        hosts.join(", "),
        refs.join(", ")
    )
}

/// A client that trusts only `ca`, speaking HTTP/1.1.
fn trusting(ca: &Ca) -> Arc<ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.der()).unwrap();
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

async fn tls_connect(
    port: u16,
    sni: &str,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let name = ServerName::try_from(sni.to_string()).unwrap();
    TlsConnector::from(config).connect(name, tcp).await
}

fn der(leaf: &Leaf) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(leaf.chain_pem.as_bytes()).unwrap()
}

/// The JSON a [`TlsEcho`] answers on `stream`, and the certificate the
/// client verified.
async fn ask(
    stream: TlsStream<TcpStream>,
    host: &str,
) -> (serde_json::Value, CertificateDer<'static>) {
    let seen = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    let mut sender = Sender::new(common::tls::Shaken { stream }).await;
    let (status, body) = sender.get(host, "/").await;
    assert_eq!(status, 200, "{body}");
    (serde_json::from_str(&body).unwrap(), seen)
}

/// Connects until `sni` is relayed (the first snapshot is applied).
async fn wait_relayed(port: u16, sni: &str, config: &Arc<ClientConfig>) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while tls_connect(port, sni, config.clone()).await.is_err() {
        assert!(Instant::now() < deadline, "{sni} never relayed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Two TLS backends with certificates from a CA of their own: `a` for
/// a.example.com, `b` for b.example.com, both for w.example.com.
pub(crate) struct Backends {
    ca: Ca,
    a: (Leaf, TlsEcho),
    b: (Leaf, TlsEcho),
}

pub(crate) async fn two_backends() -> Backends {
    let ca = Ca::new("backend CA the gateway never sees").unwrap();
    let leaf_a = ca.leaf(&["a.example.com", "w.example.com"], &[]).unwrap();
    let leaf_b = ca.leaf(&["b.example.com", "w.example.com"], &[]).unwrap();
    let echo_a = TlsEcho::start(&leaf_a, &["http/1.1"], None).await.unwrap();
    let echo_b = TlsEcho::start(&leaf_b, &["http/1.1"], None).await.unwrap();
    Backends {
        ca,
        a: (leaf_a, echo_a),
        b: (leaf_b, echo_b),
    }
}

/// A Passthrough listener on manifest `port`, `routes`, and Services
/// `svc-a` and `svc-b` for the backends.
pub(crate) fn passthrough_manifests(b: &Backends, routes: &str, port: u16) -> String {
    format!(
        "{}{routes}{}{}",
        class_and_gateway("    tls: {mode: Passthrough}\n", port),
        service("svc-a", &[b.a.1.addr.port()]),
        service("svc-b", &[b.b.1.addr.port()]),
    )
}

/// Waits until `sni` is relayed on `port`, then checks that the client
/// sees the certificate of the backend for `sni` (a or b) and the backend
/// the client's SNI.
pub(crate) async fn relays_to(port: u16, b: &Backends, sni: &str) {
    let client = trusting(&b.ca);
    wait_relayed(port, sni, &client).await;
    let leaf = if sni.starts_with("a.") {
        &b.a.0
    } else {
        &b.b.0
    };
    let stream = tls_connect(port, sni, client).await.unwrap();
    let (seen, cert) = ask(stream, sni).await;
    assert_eq!(seen["sni"], sni);
    assert_eq!(cert, der(leaf), "{sni}: the backend's own certificate");
}

/// Two routes by SNI, each to its own TLS backend: the client sees the
/// backend's own certificate (the gateway has none) and the backend the
/// client's SNI; a name no route covers is closed before any handshake;
/// a 3:1 route sends three of every four connections to the first
/// backend. The route's status is Accepted.
#[tokio::test]
async fn passthrough_routes_by_sni_with_weights() {
    let b = two_backends().await;
    let dir = manifest_dir("tlsroute-passthrough");
    let routes = [
        tls_route("a", &["a.example.com"], &[("svc-a", 1)]),
        tls_route("b", &["b.example.com"], &[("svc-b", 1)]),
        tls_route("w", &["w.example.com"], &[("svc-a", 3), ("svc-b", 1)]),
    ]
    .concat();
    write(
        &dir,
        "all.yaml",
        &passthrough_manifests(&b, &routes, MANIFEST_PORT),
    );
    let ctl = start_controller(&dir, true).await;
    let port = ctl.port;
    let client = trusting(&b.ca);
    relays_to(port, &b, "a.example.com").await;
    relays_to(port, &b, "b.example.com").await;

    let unknown = tls_connect(port, "c.other.test", client.clone()).await;
    assert!(unknown.is_err(), "an unknown SNI is closed");

    let before = (b.a.1.handshakes(), b.b.1.handshakes());
    for _ in 0..8 {
        let stream = tls_connect(port, "w.example.com", client.clone())
            .await
            .unwrap();
        let (seen, _) = ask(stream, "w.example.com").await;
        assert_eq!(seen["sni"], "w.example.com");
    }
    let after = (b.a.1.handshakes(), b.b.1.handshakes());
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        (6, 2),
        "weights 3:1"
    );

    let status = object_status(&ctl.admin, "TLSRoute", "w").await;
    let accepted = condition(&status["status"]["parents"][0]["conditions"], "Accepted");
    assert_eq!(accepted["status"], "True", "{status:#}");
}

/// A relayed connection holds only its sockets: rewriting the manifests
/// so its route is gone stops new connections for the name, while the
/// open one keeps working.
#[tokio::test]
async fn a_relay_survives_a_snapshot_swap() {
    let b = two_backends().await;
    let dir = manifest_dir("tlsroute-swap");
    let both = [
        tls_route("a", &["a.example.com"], &[("svc-a", 1)]),
        tls_route("b", &["b.example.com"], &[("svc-b", 1)]),
    ]
    .concat();
    write(
        &dir,
        "all.yaml",
        &passthrough_manifests(&b, &both, MANIFEST_PORT),
    );
    let ctl = start_controller(&dir, true).await;
    let port = ctl.port;
    let client = trusting(&b.ca);
    wait_relayed(port, "a.example.com", &client).await;

    let stream = tls_connect(port, "a.example.com", client.clone())
        .await
        .unwrap();
    let mut open = Sender::new(common::tls::Shaken { stream }).await;
    assert_eq!(open.get("a.example.com", "/").await.0, 200);

    let only_b = tls_route("b", &["b.example.com"], &[("svc-b", 1)]);
    write(
        &dir,
        "all.yaml",
        &passthrough_manifests(&b, &only_b, MANIFEST_PORT),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while tls_connect(port, "a.example.com", client.clone())
        .await
        .is_ok()
    {
        assert!(Instant::now() < deadline, "the route never went away");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = open.get("a.example.com", "/again").await;
    assert_eq!(status, 200, "the open relay still works: {body}");
    assert!(body.contains("/again"), "{body}");
}

/// A plain TCP server that echoes what it reads.
async fn tcp_echo() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    port
}

/// Terminate: the gateway ends TLS with the listener's certificate (the
/// client trusts the gateway's CA) and relays the plaintext to a TCP
/// backend, which echoes it back through the same TLS session.
#[tokio::test]
async fn terminate_relays_plaintext_to_a_tcp_backend() {
    let ca = common::tls::Ca::new();
    let leaf = ca.leaf(&["t.example.com"]);
    let echo_port = tcp_echo().await;
    let dir = manifest_dir("tlsroute-terminate");
    let listener = "    tls: {mode: Terminate, certificateRefs: [{name: gw-cert}]}\n";
    let text = format!(
        "{}{}{}{}",
        class_and_gateway(listener, MANIFEST_PORT),
        tls_route("t", &["t.example.com"], &[("svc-t", 1)]),
        service("svc-t", &[echo_port]),
        secret("gw-cert", &leaf),
    );
    write(&dir, "all.yaml", &text);
    let ctl = start_controller(&dir, true).await;
    let port = ctl.port;
    let options = ClientOptions {
        alpn: Vec::new(),
        ..ClientOptions::default()
    };
    let config = client_config(&ca, &options);
    wait_relayed(port, "t.example.com", &config).await;

    let mut stream = tls_connect(port, "t.example.com", config.clone())
        .await
        .unwrap();
    let cert = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    assert_eq!(cert, leaf.der, "the listener's certificate");
    stream.write_all(b"hello through TLS").await.unwrap();
    let mut back = vec![0; 17];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"hello through TLS");
}
