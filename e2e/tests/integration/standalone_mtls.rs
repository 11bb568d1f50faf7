//! Mutual TLS in standalone mode: the real controller and data plane
//! validating client certificates from a Gateway's `spec.tls.frontend`,
//! with a revocation list from the `tollgate.dev/client-crl-secret`
//! annotation and the details header configured in a GatewayConfig.
//!
//! One Gateway, two HTTPS listeners: the default validation
//! (`AllowValidOnly`) on manifest port 80, and a per-port override on 443
//! (`AllowInsecureFallback`), both trusting the same client CA. Clients are
//! rustls (with and without a certificate, one from another CA, a revoked
//! one) and curl.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bytes::Bytes;
use common::tls::{Ca, secret};
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tollgate_e2e::Echo;
use tollgate_e2e::tls::{Ca as ClientCa, Leaf as Identity};

/// The details header, as the GatewayConfig names it.
const HEADER: &str = "x-client-cert";
/// The same, as the echo backend writes names.
const ECHOED: &str = "X-Client-Cert";
/// SNI and Host of every request.
const HOST: &str = "mtls.example";
/// The serial number the revocation list names.
const REVOKED_SERIAL: u64 = 0x66;

/// `text` indented for a YAML block scalar.
fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}

/// Everything one test needs: the controller, its backend, the CAs.
struct Setup {
    ctl: Controller,
    _echo: Echo,
    dir: PathBuf,
    server_ca: Ca,
    client_ca: ClientCa,
}

impl Setup {
    async fn start(name: &str) -> Setup {
        let echo = Echo::start("echo-mtls").await.unwrap();
        let dir = manifest_dir(name);
        let server_ca = Ca::new();
        let client_ca = ClientCa::new("tollgate client CA").unwrap();
        let listeners = format!(
            "  - {{name: strict, port: {MANIFEST_PORT}, protocol: HTTPS, tls: {{certificateRefs: [{{name: web}}]}}}}\n  \
             - {{name: fallback, port: 443, protocol: HTTPS, tls: {{certificateRefs: [{{name: web}}]}}}}\n"
        );
        let manifests = format!(
            "apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {{name: tollgate}}
spec:
  controllerName: tollgate.dev/gateway-controller
  parametersRef: {{group: tollgate.dev, kind: GatewayConfig, name: mtls, namespace: default}}
---
apiVersion: tollgate.dev/v1alpha1
kind: GatewayConfig
metadata: {{name: mtls, namespace: default}}
spec:
  tls:
    clientCertificateHeader: {{name: X-Client-Cert, fields: [Subject, URI, DNS, Hash]}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: gw
  namespace: default
  annotations: {{tollgate.dev/client-crl-secret: client-crl}}
spec:
  gatewayClassName: tollgate
  addresses: [{{type: IPAddress, value: 127.0.0.1}}]
  tls:
    frontend:
      default:
        validation:
          caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: client-ca}}]
      perPort:
      - port: 443
        tls:
          validation:
            mode: AllowInsecureFallback
            caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: client-ca}}]
  listeners:
{listeners}---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: echo, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules: [{{backendRefs: [{{name: {svc}, port: 80}}]}}]
{service}{web}---
apiVersion: v1
kind: ConfigMap
metadata: {{name: client-ca, namespace: default}}
data:
  ca.crt: |
{ca}---
apiVersion: v1
kind: Secret
metadata: {{name: client-crl, namespace: default}}
type: Opaque
stringData:
  ca.crl: |
{crl}",
            svc = echo.service(),
            service = service(echo.service(), &[echo.port()]),
            web = secret("web", &server_ca.leaf(&[HOST])),
            ca = indent(&client_ca.pem()),
            crl = indent(&client_ca.crl(&[REVOKED_SERIAL]).unwrap()),
        );
        write(&dir, "all.yaml", &manifests);
        let ctl = start_controller(&dir, true).await;
        Setup {
            ctl,
            _echo: echo,
            dir,
            server_ca,
            client_ca,
        }
    }

    /// The bound port of the listener on manifest port `manifest`.
    fn port(&self, manifest: u16) -> u16 {
        self.ctl.port + (manifest - MANIFEST_PORT)
    }

    /// A client trusting the server CA, presenting `identity` if any.
    fn client(&self, identity: Option<&Identity>) -> Arc<ClientConfig> {
        let builder = ClientConfig::builder_with_provider(tollgate_e2e::tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(self.server_ca.roots());
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => {
                let chain = CertificateDer::pem_slice_iter(id.chain_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = PrivateKeyDer::from_pem_slice(id.key_pem.as_bytes()).unwrap();
                builder.with_client_auth_cert(chain, key).unwrap()
            }
        };
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }

    /// Waits until both listeners answer a client with a valid certificate.
    async fn wait_serving(&self, valid: &Identity) {
        let deadline = Instant::now() + Duration::from_secs(15);
        for manifest in [MANIFEST_PORT, 443] {
            loop {
                let got = request(self.port(manifest), self.client(Some(valid)), None).await;
                if matches!(got, Ok((200, _))) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "port {manifest} never served: {got:?}\n{}",
                    self.ctl.proc.tail(30)
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// `GET /` over TLS with `config`, optionally with a client-sent copy of
/// the details header; the status and the echo's JSON, or why it failed.
async fn request(
    port: u16,
    config: Arc<ClientConfig>,
    spoof: Option<&str>,
) -> Result<(u16, Value), String> {
    let tcp = TcpStream::connect(("127.0.0.1", port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let name = ServerName::try_from(HOST).unwrap();
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let mut req = http::Request::get("/").header("host", HOST);
    if let Some(value) = spoof {
        req = req.header(HEADER, value);
    }
    // With TLS 1.3 the server's verdict on the client certificate arrives
    // after the client's side of the handshake: as an error here.
    let response = sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

/// The details header values the backend saw.
fn details(echo: &Value) -> Vec<String> {
    echo["headers"][ECHOED]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// The header Tollgate writes for `cn` (from `Ca::client`) with
/// the configured fields, Subject, URI, DNS, Hash, in that order.
fn assert_details_of(values: &[String], cn: &str) {
    assert_eq!(values.len(), 1, "one header, the gateway's: {values:?}");
    let prefix = format!(
        "Subject=\"O=Tollgate Tests,CN={cn}\";URI=spiffe://tests.example/{cn};DNS={cn}.example;Hash="
    );
    let value = &values[0];
    let hash = value
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{value}"));
    assert_eq!(hash.len(), 64, "{value}");
    assert!(hash.bytes().all(|b| b.is_ascii_hexdigit()), "{value}");
}

/// On the listener with the default validation (`AllowValidOnly`): no
/// certificate, one from another CA and a revoked one get no response; a
/// valid one gets 200, and the backend sees its details in the configured
/// header and fields, never the copy the client sent. curl agrees.
#[tokio::test]
async fn only_valid_client_certificates_get_through_with_their_details() {
    let setup = Setup::start("mtls-strict").await;
    let alice = setup.client_ca.client("alice", 7).unwrap();
    setup.wait_serving(&alice).await;
    let port = setup.port(MANIFEST_PORT);

    let (status, echo) = request(port, setup.client(Some(&alice)), Some("Hash=forged"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_details_of(&details(&echo), "alice");

    let stranger = ClientCa::new("another CA")
        .unwrap()
        .client("mallory", 8)
        .unwrap();
    let revoked = setup.client_ca.client("revoked", REVOKED_SERIAL).unwrap();
    for (who, identity) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&stranger)),
        ("a revoked certificate", Some(&revoked)),
    ] {
        let got = request(port, setup.client(identity), None).await;
        assert!(got.is_err(), "{who} was let in: {got:?}");
    }

    common::tls::require_tool("curl", "curl");
    let ca = setup.server_ca.write(&setup.dir);
    let (cert, key) = (setup.dir.join("alice.crt"), setup.dir.join("alice.key"));
    std::fs::write(&cert, &alice.chain_pem).unwrap();
    std::fs::write(&key, &alice.key_pem).unwrap();
    let url = format!("https://{HOST}:{port}/curl");
    let resolve = format!("{HOST}:{port}:127.0.0.1");
    let curl = |with_cert: bool| {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "10", "--cacert"])
            .arg(&ca)
            .args(["--resolve", &resolve, "-H", &format!("{HEADER}: forged")]);
        if with_cert {
            cmd.arg("--cert").arg(&cert).arg("--key").arg(&key);
        }
        cmd.arg(&url).output().unwrap()
    };
    let out = curl(true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let echo: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_details_of(&details(&echo), "alice");
    let out = curl(false);
    assert!(
        !out.status.success(),
        "curl without a certificate got through"
    );
}

/// On the port whose per-port entry says `AllowInsecureFallback`: a client
/// without a certificate, with another CA's or with a revoked one is let in
/// without the header (and its forged copy is removed); a valid
/// certificate still earns it. The Gateway says it is insecure.
#[tokio::test]
async fn insecure_fallback_port_lets_clients_in_without_details() {
    let setup = Setup::start("mtls-fallback").await;
    let alice = setup.client_ca.client("alice", 9).unwrap();
    setup.wait_serving(&alice).await;
    let port = setup.port(443);

    let (status, echo) = request(port, setup.client(Some(&alice)), Some("Hash=forged"))
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_details_of(&details(&echo), "alice");

    let stranger = ClientCa::new("another CA")
        .unwrap()
        .client("mallory", 10)
        .unwrap();
    let revoked = setup.client_ca.client("revoked", REVOKED_SERIAL).unwrap();
    for (who, identity) in [
        ("no certificate", None),
        ("another CA's certificate", Some(&stranger)),
        ("a revoked certificate", Some(&revoked)),
    ] {
        let (status, echo) = request(port, setup.client(identity), Some("Hash=forged"))
            .await
            .unwrap_or_else(|e| panic!("{who}: {e}"));
        assert_eq!(status, 200, "{who}");
        assert_eq!(details(&echo), Vec::<String>::new(), "{who} got details");
    }

    let status = statuses(&setup.ctl.admin).await;
    assert!(
        status.contains("InsecureFrontendValidationMode"),
        "the Gateway reports the insecure mode: {status}"
    );
}

/// The Gateway statuses the controller serves on its admin endpoint.
async fn statuses(admin: &str) -> String {
    let reply = tollgate_e2e::get(&format!("{admin}/status")).await.unwrap();
    String::from_utf8_lossy(&reply.body).into_owned()
}
