//! The snapshot server over mutual TLS: a Gateway's client certificate
//! opens that Gateway's snapshots and reports and nothing else, other
//! certificates fail the handshake; the CA lives in a Secret made once;
//! the leader issues each Gateway's client certificate into a Secret the
//! Gateway owns and renews it; a data plane picks up replaced certificate
//! files on its next connection.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kube_provider::{client, server_with_crds};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tollgate_controller::pki::secret::{IDENTITY_ANNOTATION, ensure_ca};
use tollgate_controller::pki::{Ca, Issued, Issuer, IssuerConfig, server_config};
use tollgate_controller::publisher::Publisher;
use tollgate_controller::reports::Reports;
use tollgate_controller::serve;
use tollgate_dataplane::{ClientTls, Dataplane, DataplaneOptions, SubscribeOptions};
use tollgate_snapshot::Snapshot;

const DAY: Duration = Duration::from_secs(24 * 3600);

/// A TLS client presenting `cert` (or none) and trusting `ca`.
fn https(
    ca: &Ca,
    cert: Option<&Issued>,
) -> Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Full<Bytes>,
> {
    tollgate_dataplane::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder().with_root_certificates(roots);
    let config = match cert {
        Some(c) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(c.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(c.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector)
}

/// The snapshot server over mutual TLS with Gateways `default/a` and `default/b` published.
async fn tls_server(ca: &Ca) -> (String, Reports) {
    tollgate_dataplane::install_crypto_provider();
    let publisher = Publisher::default();
    publisher.publish(BTreeMap::from([
        ("default/a".to_string(), Snapshot::empty("default/a")),
        ("default/b".to_string(), Snapshot::empty("default/b")),
    ]));
    let reports = Reports::default();
    let hosts = vec!["127.0.0.1".to_string(), "localhost".to_string()];
    let (config, _cert) = server_config(ca, &hosts).unwrap();
    let (p, r) = (publisher.clone(), reports.clone());
    let addr = serve::spawn_tls("127.0.0.1:0".parse().unwrap(), config, move |req| {
        r.serve(&p, req)
    })
    .await
    .unwrap();
    (format!("https://127.0.0.1:{}", addr.port()), reports)
}

async fn get(
    client: &Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    url: &str,
) -> Result<(u16, String), String> {
    let response = client
        .get(url.parse().unwrap())
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = response.status().as_u16();
    let mut body = response.into_body();
    // A stream never ends: the first frame is enough.
    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .ok()
        .flatten()
        .and_then(|f| f.ok())
        .and_then(|f| f.into_data().ok())
        .map(|d| String::from_utf8_lossy(&d).to_string())
        .unwrap_or_default();
    Ok((status, first))
}

async fn post_report(
    client: &Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    >,
    url: &str,
) -> u16 {
    let body = json!({"version": 1, "hash": "h", "pod": "p", "ready": true}).to_string();
    let request = http::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    client.request(request).await.unwrap().status().as_u16()
}

/// Gateway A's certificate reads A's snapshot and posts A's reports; B's
/// are refused with 403; a certificate of another CA, or none, fails the
/// handshake.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_certificate_opens_only_its_own_gateway() {
    let ca = Ca::generate().unwrap();
    let (url, reports) = tls_server(&ca).await;
    let a = ca
        .issue_client("default", "a", SystemTime::now(), DAY)
        .unwrap();
    let as_a = https(&ca, Some(&a));

    let (status, line) = get(&as_a, &format!("{url}/v1/snapshots/default/a"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    let snapshot: Snapshot = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(snapshot.gateway, "default/a");
    assert_eq!(snapshot.schema_version, tollgate_snapshot::schema_version());

    let denied_before = tollgate_controller::pki::authz::denied();
    let (status, _) = get(&as_a, &format!("{url}/v1/snapshots/default/b"))
        .await
        .unwrap();
    assert_eq!(status, 403, "A's certificate must not read B's snapshot");
    assert_eq!(
        post_report(&as_a, &format!("{url}/v1/reports/default/b")).await,
        403
    );
    assert!(
        reports.of("default/b").is_empty(),
        "B's report must not be recorded"
    );
    assert!(tollgate_controller::pki::authz::denied() >= denied_before + 2);
    assert_eq!(
        post_report(&as_a, &format!("{url}/v1/reports/default/a")).await,
        204
    );
    assert_eq!(reports.of("default/a")["p"].hash, "h");

    let stranger = Ca::generate().unwrap();
    let forged = stranger
        .issue_client("default", "a", SystemTime::now(), DAY)
        .unwrap();
    let as_forged = https(&ca, Some(&forged));
    assert!(
        get(&as_forged, &format!("{url}/v1/snapshots/default/a"))
            .await
            .is_err(),
        "a certificate of another CA must fail the handshake"
    );
    let anonymous = https(&ca, None);
    assert!(
        get(&anonymous, &format!("{url}/v1/snapshots/default/a"))
            .await
            .is_err(),
        "a client without a certificate must fail the handshake"
    );
}

fn write_tls_dir(dir: &Path, cert: &Issued, ca_pem: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("tls.crt"), &cert.cert_pem).unwrap();
    std::fs::write(dir.join("tls.key"), &cert.key_pem).unwrap();
    std::fs::write(dir.join("ca.crt"), ca_pem).unwrap();
}

/// A data plane with `--tls-dir` follows its Gateway over mutual TLS; when
/// its files are replaced (a rotation: here from an unusable certificate
/// to a good one) the next connection presents the new certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_plane_presents_rotated_certificate_files() {
    let ca = Ca::generate().unwrap();
    let (url, reports) = tls_server(&ca).await;
    let dir = std::env::temp_dir().join(format!("tollgate-mtls-{}", std::process::id()));
    let stranger = Ca::generate().unwrap();
    let forged = stranger
        .issue_client("default", "a", SystemTime::now(), DAY)
        .unwrap();
    write_tls_dir(&dir, &forged, ca.cert_pem());
    let dataplane = Dataplane::new(DataplaneOptions {
        gateway: "default/a".into(),
        ..DataplaneOptions::default()
    });
    let options = SubscribeOptions {
        url: url.clone(),
        tls: ClientTls::from_dir(&dir),
        state_dir: None,
    };
    tokio::spawn(tollgate_dataplane::subscribe_with(
        options,
        dataplane.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        dataplane.status().version,
        None,
        "the forged certificate must not get a snapshot"
    );

    let good = ca
        .issue_client("default", "a", SystemTime::now(), DAY)
        .unwrap();
    write_tls_dir(&dir, &good, ca.cert_pem());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while dataplane.status().version.is_none() || reports.of("default/a").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no snapshot after the certificate was replaced"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dataplane.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Two replicas starting together agree on one CA kept in a Secret; the
/// leader's issuer gives each existing published Gateway a client
/// certificate Secret it owns, and renews it when a third of its life is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_issues_and_renews_gateway_certificates() {
    let server = server_with_crds(&[]).await;
    let kube = client(&server).await;
    server
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tollgate"}}))
        .unwrap();
    let (one, two) = tokio::join!(
        ensure_ca(kube.clone(), "tollgate", "tollgate-snapshot-ca"),
        ensure_ca(kube.clone(), "tollgate", "tollgate-snapshot-ca"),
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!(
        one.cert_pem(),
        two.cert_pem(),
        "both replicas must use one CA"
    );
    let again = ensure_ca(kube.clone(), "tollgate", "tollgate-snapshot-ca")
        .await
        .unwrap();
    assert_eq!(again.cert_pem(), one.cert_pem());

    let gw = server
        .create(json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
            "metadata": {"name": "a", "namespace": "default"},
            "spec": {"gatewayClassName": "tollgate", "listeners": [{"name": "http", "port": 80, "protocol": "HTTP"}]}}))
        .unwrap();
    let uid = gw["metadata"]["uid"].as_str().unwrap().to_string();
    let publisher = Publisher::default();
    publisher.publish(BTreeMap::from([
        ("default/a".to_string(), Snapshot::empty("default/a")),
        ("default/gone".to_string(), Snapshot::empty("default/gone")),
    ]));
    let config = IssuerConfig {
        lifetime: Duration::from_secs(6),
        check_every: Duration::from_millis(200),
        recheck: Duration::ZERO,
        // What the controller's OTEL_EXPORTER_OTLP_CERTIFICATE names.
        extra_files: BTreeMap::from([("otlp-ca.crt".to_string(), "COLLECTOR CA".to_string())]),
        reload_extra_files: None,
    };
    let (leader_tx, leader_rx) = tokio::sync::watch::channel(false);
    let issuer = Issuer::new(kube.clone(), Arc::new(one), publisher, config);
    tokio::spawn(issuer.run(leader_rx));
    let secrets: Api<Secret> = Api::namespaced(kube.clone(), "default");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(
        secrets
            .get_opt("a-tollgate-client")
            .await
            .unwrap()
            .is_none(),
        "only the leader issues"
    );

    leader_tx.send_replace(true);
    let first = wait_for_secret(&secrets, "a-tollgate-client", None).await;
    let owner = &first.metadata.owner_references.clone().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Gateway", uid.as_str())
    );
    assert_eq!(first.type_.as_deref(), Some("kubernetes.io/tls"));
    let data = first.data.clone().unwrap();
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(!data[key].0.is_empty(), "{key}");
    }
    assert_eq!(
        data["otlp-ca.crt"].0, b"COLLECTOR CA",
        "the OTLP CA travels along"
    );
    assert_eq!(
        first.metadata.annotations.clone().unwrap()[IDENTITY_ANNOTATION],
        "urn:tollgate:gateway:default:a"
    );
    let crt = String::from_utf8(data["tls.crt"].0.clone()).unwrap();
    let der = CertificateDer::from_pem_slice(crt.as_bytes()).unwrap();
    assert_eq!(
        tollgate_controller::pki::server::uri_sans(&der),
        ["urn:tollgate:gateway:default:a"]
    );
    assert!(
        secrets
            .get_opt("gone-tollgate-client")
            .await
            .unwrap()
            .is_none()
    );

    // Renewed once two thirds of the 6 s life passed.
    let renewed = wait_for_secret(&secrets, "a-tollgate-client", Some(&crt)).await;
    assert_ne!(renewed.data.unwrap()["tls.crt"].0, crt.as_bytes());
}

/// Waits for Secret `name` to exist with a `tls.crt` other than `not`.
async fn wait_for_secret(secrets: &Api<Secret>, name: &str, not: Option<&str>) -> Secret {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(secret) = secrets.get_opt(name).await.unwrap() {
            let crt = secret
                .data
                .as_ref()
                .and_then(|d| d.get("tls.crt"))
                .map(|b| String::from_utf8_lossy(&b.0).to_string());
            if crt.is_some() && crt.as_deref() != not {
                return secret;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Secret {name} not (re)issued"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
