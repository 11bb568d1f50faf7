//! TLS to backends (BackendTLSPolicy): real rustls backends with
//! certificates made by rcgen, checked for what they saw (SNI, ALPN,
//! client certificate) and for failing closed when verification fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use http::StatusCode;
use tollgate_e2e::tls::{Ca, Leaf, TlsEcho};
use tollgate_snapshot::*;

fn new_ca(name: &str) -> Ca {
    Ca::new(name).unwrap()
}

fn leaf(ca: &Ca, dns: &[&str], uris: &[&str]) -> Leaf {
    ca.leaf(dns, uris).unwrap()
}

async fn tls_echo(leaf: &Leaf, alpn: &[&str], client_ca: Option<&Ca>) -> TlsEcho {
    TlsEcho::start(leaf, alpn, client_ca).await.unwrap()
}

fn endpoint_of(echo: &TlsEcho) -> Endpoint {
    Endpoint {
        address: "127.0.0.1".into(),
        port: echo.addr.port(),
    }
}

/// Backend TLS trusting `ca` for `hostname`.
fn trusting(ca: &Ca, hostname: &str) -> BackendTls {
    BackendTls {
        hostname: hostname.into(),
        ca_certificates: vec![ca.pem()],
        policy: "backendtlspolicy/default/test".into(),
        ..BackendTls::default()
    }
}

/// A gateway sending everything to `backend` over `tls`.
async fn gateway(
    backend_at: &TlsEcho,
    tls: BackendTls,
    client: Option<ClientCertificate>,
) -> Gateway {
    let endpoint = endpoint_of(backend_at);
    Gateway::start(move |port| {
        let mut b = backend("secure", vec![endpoint]);
        b.tls = Some(tls);
        let mut s = snapshot(
            port,
            80,
            vec![vhost("*", vec![prefix("/", 0)])],
            vec![route("all", vec![], vec![to(0, 1)])],
            vec![b],
        );
        s.backend_client_certificate = client;
        s
    })
    .await
}

#[tokio::test]
async fn verified_backend_gets_sni_and_h2_by_alpn() {
    let ca = new_ca("test ca");
    let echo = tls_echo(
        &leaf(&ca, &["abc.example.com"], &[]),
        &["h2", "http/1.1"],
        None,
    )
    .await;
    let gw = gateway(&echo, trusting(&ca, "abc.example.com"), None).await;
    let answer = gw.get("front.example.com", "/hello").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = answer.echo();
    assert_eq!(seen["sni"], "abc.example.com");
    assert_eq!(seen["alpn"], "h2");
    assert_eq!(seen["version"], "HTTP/2.0");
    assert_eq!(seen["path"], "/hello");
    assert_eq!(seen["clientCertificate"], false);
}

#[tokio::test]
async fn backend_offering_only_http1_gets_http1() {
    let ca = new_ca("test ca");
    let echo = tls_echo(&leaf(&ca, &["abc.example.com"], &[]), &["http/1.1"], None).await;
    let gw = gateway(&echo, trusting(&ca, "abc.example.com"), None).await;
    let answer = gw.get("front.example.com", "/one").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let seen = answer.echo();
    assert_eq!(seen["version"], "HTTP/1.1");
    assert_eq!(seen["host"], "front.example.com");
    // The pooled connection is reused: one handshake for two requests.
    assert_eq!(
        gw.get("front.example.com", "/two").await.status,
        StatusCode::OK
    );
    assert_eq!(echo.handshakes(), 1);
}

/// Every way verification can fail ends in a gateway 502, never a request
/// sent unverified.
#[tokio::test]
async fn failed_verification_fails_closed() {
    let ca = new_ca("test ca");
    let other = new_ca("other ca");
    let echo = tls_echo(&leaf(&ca, &["abc.example.com"], &[]), &["http/1.1"], None).await;
    let cases = [
        ("untrusted CA", trusting(&other, "abc.example.com")),
        (
            "hostname not in certificate",
            trusting(&ca, "other.example.com"),
        ),
        (
            "nothing trusted",
            BackendTls {
                hostname: "abc.example.com".into(),
                ..BackendTls::default()
            },
        ),
        (
            "subjectAltNames without a match",
            BackendTls {
                subject_alt_names: vec![SubjectAltName::Hostname("nope.example.com".into())],
                ..trusting(&ca, "abc.example.com")
            },
        ),
    ];
    for (case, tls) in cases {
        let gw = gateway(&echo, tls, None).await;
        let answer = gw.get("front.example.com", "/").await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_GATEWAY,
            "{case}: {}",
            answer.text()
        );
        assert_eq!(answer.headers["x-tollgate-error"], "upstream-tls", "{case}");
    }
    assert_eq!(echo.handshakes(), 0);
}

/// With subjectAltNames the hostname is only the SNI; the certificate must
/// carry one of the names (DNS or URI) instead.
#[tokio::test]
async fn subject_alt_names_replace_the_hostname() {
    let ca = new_ca("test ca");
    let spiffe = "spiffe://cluster.local/ns/default/sa/api";
    let echo = tls_echo(
        &leaf(&ca, &["api.internal"], &[spiffe]),
        &["http/1.1"],
        None,
    )
    .await;
    for san in [
        SubjectAltName::Hostname("api.internal".into()),
        SubjectAltName::Uri(spiffe.into()),
    ] {
        let tls = BackendTls {
            subject_alt_names: vec![
                SubjectAltName::Hostname("other.internal".into()),
                san.clone(),
            ],
            ..trusting(&ca, "sni.example.com")
        };
        let gw = gateway(&echo, tls, None).await;
        let answer = gw.get("front.example.com", "/").await;
        assert_eq!(answer.status, StatusCode::OK, "{san:?}: {}", answer.text());
        assert_eq!(answer.echo()["sni"], "sni.example.com");
    }
}

#[tokio::test]
async fn client_certificate_is_presented_when_the_gateway_names_one() {
    let ca = new_ca("server ca");
    let clients = new_ca("client ca");
    let echo = tls_echo(
        &leaf(&ca, &["abc.example.com"], &[]),
        &["http/1.1"],
        Some(&clients),
    )
    .await;
    let without = gateway(&echo, trusting(&ca, "abc.example.com"), None).await;
    assert_eq!(without.get("a", "/").await.status, StatusCode::BAD_GATEWAY);
    let client_leaf = leaf(&clients, &["gateway.example.com"], &[]);
    let client = ClientCertificate {
        certificate_chain: client_leaf.chain_pem,
        private_key: Redacted::new(client_leaf.key_pem),
        source: "secret/default/client".into(),
    };
    let with = gateway(&echo, trusting(&ca, "abc.example.com"), Some(client)).await;
    let answer = with.get("a", "/").await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.echo()["clientCertificate"], true);
}
