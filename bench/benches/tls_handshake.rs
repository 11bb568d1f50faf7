//! Full TLS 1.3 handshakes per second with aws-lc-rs and with ring, for an
//! ECDSA P-256 and an RSA-2048 certificate: why the data plane uses
//! aws-lc-rs (results in docs/tls.md).
//!
//! Client and server are rustls connections in memory, passing records
//! through buffers: what is measured is the handshake's cryptography and
//! rustls's work on both sides, no sockets. Every iteration is a full
//! handshake (no resumption): key exchange (X25519), the server's
//! signature, the client's verification of it and of the certificate.
//!
//! `cargo bench -p tollgate-bench --bench tls_handshake`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, ServerConfig, ServerConnection};
use std::sync::Arc;

struct Pair {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

fn pair(provider: CryptoProvider, alg: &'static rcgen::SignatureAlgorithm) -> Pair {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["bench.example".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let der: CertificateDer<'static> = cert.der().clone();
    let provider = Arc::new(provider);
    let server = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![der.clone()],
            PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(der).unwrap();
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.resumption = rustls::client::Resumption::disabled();
    Pair {
        client: Arc::new(client),
        server: Arc::new(server),
    }
}

fn handshake(pair: &Pair) {
    let name = ServerName::try_from("bench.example").unwrap();
    let mut client = ClientConnection::new(pair.client.clone(), name).unwrap();
    let mut server = ServerConnection::new(pair.server.clone()).unwrap();
    let mut buf = Vec::with_capacity(8192);
    while client.is_handshaking() || server.is_handshaking() {
        buf.clear();
        while client.wants_write() {
            client.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).unwrap();
            }
            server.process_new_packets().unwrap();
        }
        buf.clear();
        while server.wants_write() {
            server.write_tls(&mut buf).unwrap();
        }
        if !buf.is_empty() {
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).unwrap();
            }
            client.process_new_packets().unwrap();
        }
    }
}

/// A provider by name.
type Provider = (&'static str, fn() -> CryptoProvider);

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("tls13_full_handshake");
    let providers: [Provider; 2] = [
        ("aws-lc-rs", rustls::crypto::aws_lc_rs::default_provider),
        ("ring", rustls::crypto::ring::default_provider),
    ];
    let algs: [(&str, &'static rcgen::SignatureAlgorithm); 2] = [
        ("ecdsa-p256", &rcgen::PKCS_ECDSA_P256_SHA256),
        ("rsa-2048", &rcgen::PKCS_RSA_SHA256),
    ];
    for (alg_name, alg) in algs {
        for (provider_name, provider) in providers {
            let pair = pair(provider(), alg);
            group.bench_function(BenchmarkId::new(provider_name, alg_name), |b| {
                b.iter(|| handshake(&pair))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
