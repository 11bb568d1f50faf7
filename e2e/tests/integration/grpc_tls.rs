//! gRPC over TLS on both sides: clients reach an HTTPS listener with ALPN
//! `h2`, and a backend under a BackendTLSPolicy is reached over verified
//! TLS speaking HTTP/2 by ALPN.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::tls::{Ca as ListenerCa, ClientOptions, client_config, connect, secret};
use crate::grpc_support::*;
use tollgate_e2e::grpc::{EchoRequest, GrpcClient, GrpcEcho};
use tollgate_e2e::tls::Ca;

/// A GRPCRoute on an HTTPS listener: the client negotiates `h2` by ALPN
/// (no upgrade), calls through the TLS connection, and gateway-made
/// answers are gRPC answers there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_listener_with_alpn_h2() {
    let b = backends(&["echo"]).await;
    let ca = ListenerCa::new();
    let leaf = ca.leaf(&["*.example.com"]);
    let gateway = gateway().replace(
        "{name: http, port: 80, protocol: HTTP, hostname: \"*.example.com\", allowedRoutes: {namespaces: {from: All}}}",
        "{name: https, port: 80, protocol: HTTPS, hostname: \"*.example.com\", tls: {certificateRefs: [{name: cert}]}, allowedRoutes: {namespaces: {from: All}}}",
    );
    assert!(gateway.contains("HTTPS"), "gateway() changed its listener");
    let rules = "  - matches: [{method: {service: tollgate.echo.v1.Echo}}]\n    backendRefs: [{name: svc-echo, port: 9000}]\n";
    let files = [
        ("gateway.yaml", gateway),
        ("secret.yaml", secret("cert", &leaf)),
        ("svc.yaml", grpc_service("svc-echo", &[b[0].port()])),
        (
            "route.yaml",
            grpc_route("secure", &["secure.example.com"], rules),
        ),
    ];
    let (_dir, ctl) = serve("grpc-https", &files).await;
    let config = client_config(&ca, &ClientOptions::default());
    let start = std::time::Instant::now();
    let mut c = loop {
        if let Ok(shaken) = connect(ctl.port, "secure.example.com", config.clone()).await {
            assert_eq!(shaken.alpn().as_deref(), Some(&b"h2"[..]));
            let c = GrpcClient::over(shaken.stream, "https://secure.example.com").await;
            let mut c = c.unwrap();
            if c.say("ready?").await.is_ok() {
                break c;
            }
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let reply = c.say("over https").await.unwrap();
    assert_eq!(
        (reply.backend.as_str(), reply.message.as_str()),
        ("echo", "over https")
    );
    let mut other = c.with_service("other.Service");
    let status = other.say("x").await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented);
    assert!(is_gateway_answer(&status), "{status:?}");
}

/// A GRPCRoute backend under a BackendTLSPolicy is reached over TLS,
/// verified against the policy's CA ConfigMap, speaking HTTP/2 by ALPN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_backend_with_alpn_h2() {
    let ca = Ca::new("grpc backend CA").unwrap();
    let leaf = ca.leaf(&["backend.example.com"], &[]).unwrap();
    let backend = GrpcEcho::start_tls("tls", &leaf).await.unwrap();
    let indented: String = ca.pem().lines().map(|l| format!("    {l}\n")).collect();
    let tls = format!(
        "apiVersion: v1
kind: Service
metadata: {{name: svc-tls, namespace: default}}
spec:
  ports: [{{name: https, port: 443}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: svc-tls-0
  namespace: default
  labels: {{kubernetes.io/service-name: svc-tls}}
addressType: IPv4
ports: [{{name: https, port: {port}}}]
endpoints: [{{addresses: [127.0.0.1], conditions: {{ready: true}}}}]
---
apiVersion: v1
kind: ConfigMap
metadata: {{name: backend-ca, namespace: default}}
data:
  ca.crt: |
{indented}---
apiVersion: gateway.networking.k8s.io/v1
kind: BackendTLSPolicy
metadata: {{name: svc-tls, namespace: default}}
spec:
  targetRefs: [{{group: \"\", kind: Service, name: svc-tls}}]
  validation:
    hostname: backend.example.com
    caCertificateRefs: [{{group: \"\", kind: ConfigMap, name: backend-ca}}]
",
        port = backend.port()
    );
    let rules = "  - backendRefs: [{name: svc-tls, port: 443}]\n";
    let files = [
        ("gateway.yaml", gateway()),
        ("tls.yaml", tls),
        ("route.yaml", grpc_route("tls", &["tls.example.com"], rules)),
    ];
    let (_dir, ctl) = serve("grpc-tls-backend", &files).await;
    wait_routed(&ctl, "tls.example.com", "tollgate.echo.v1.Echo").await;
    let mut c = client(&ctl, "tls.example.com").await;
    let reply = c.say("over tls").await.unwrap();
    assert_eq!(reply.backend, "tls");
    assert_eq!(reply.message, "over tls");
    // Streams work over the TLS backend too.
    let request = tonic::Request::new(EchoRequest {
        count: 3,
        ..EchoRequest::default()
    });
    let mut stream = c.count(request).await.unwrap().into_inner();
    let mut n = 0;
    while let Some(reply) = stream.message().await.unwrap() {
        assert_eq!(reply.count, n);
        n += 1;
    }
    assert_eq!(n, 3);
}
