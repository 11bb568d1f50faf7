//! A controller that exports to a TLS collector gives its data planes the
//! same trust: the files its `OTEL_EXPORTER_OTLP_*CERTIFICATE` and
//! `*CLIENT_KEY` variables name go into each Gateway's client Secret, and
//! the provisioned Deployment's variables point at the mounted copies
//! (the controller's paths mean nothing in a data plane's pod). A renewed
//! file reaches the Secret without a restart. The export headers (a
//! collector's token) and the proxy variables (a proxy URL may hold a
//! password) travel in the Secret too, never in the Deployment.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::k8s::*;
use crate::common::manifest_dir;
use crate::kubernetes_operator::{controller_with_env, gateway, wait_for};
use serde_json::Value;
use tollgate_e2e::free_port;
use tollgate_e2e::tls::Ca;

/// The value of variable `name` in the Deployment's data-plane container.
fn env_value<'a>(deployment: &'a Value, name: &str) -> Option<&'a str> {
    deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == name)?["value"]
        .as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_planes_get_the_controllers_collector_certificates() {
    let ca = Ca::new("collector CA").unwrap();
    let client = Ca::new("exporter CA")
        .unwrap()
        .client("exporter", 3)
        .unwrap();
    let dir = manifest_dir("otlp-tls-operator");
    let write = |file: &str, text: &str| {
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path.to_string_lossy().into_owned()
    };
    let ca_path = write("collector-ca.pem", &ca.pem());
    let cert_path = write("exporter.pem", &client.chain_pem);
    let key_path = write("exporter-key.pem", &client.key_pem);

    let server = cluster().await;
    apply(&server, &gateway(80, "")).await;
    let offset = free_port().unwrap() - 80;
    // Nothing listens at the endpoint: exports fail and are dropped,
    // which costs the controller nothing else.
    let vars = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://localhost:1"),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_path.as_str()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            cert_path.as_str(),
        ),
        ("OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", key_path.as_str()),
        ("OTEL_EXPORTER_OTLP_HEADERS", "x-collector-token=tok-7f3a9"),
        ("HTTP_PROXY", "http://gw:pr0xy-pass@proxy.internal:3128"),
        ("no_proxy", "localhost,10.0.0.0/8"),
    ];
    // Not HTTPS_PROXY: the controller's own kubeconfig client would take
    // it for the API server, and this proxy does not exist.
    let (mut ctl, _) = controller_with_env(&server, &["--provision"], offset, &vars).await;

    let deployment = wait_for(&server, "apps/v1", "Deployment", "creation", |o| {
        o.is_some()
    })
    .await
    .unwrap();
    let mounted = [
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", "otlp-ca.crt", ca.pem()),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE",
            "otlp-traces-client.crt",
            client.chain_pem.clone(),
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY",
            "otlp-traces-client.key",
            client.key_pem.clone(),
        ),
    ];
    for (var, key, _) in &mounted {
        assert_eq!(
            env_value(&deployment, var),
            Some(format!("/etc/tollgate/client/{key}").as_str()),
            "{var} points at the Secret's copy"
        );
    }
    assert_eq!(
        env_value(&deployment, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        Some("https://localhost:1")
    );
    // The collector's token and the proxy (with its password) are read
    // from the Secret, never written into the Deployment.
    let from_secret = [
        ("OTEL_EXPORTER_OTLP_HEADERS", "otlp-headers"),
        ("HTTP_PROXY", "env-HTTP_PROXY"),
        ("no_proxy", "env-no_proxy"),
    ];
    for (var, key) in from_secret {
        let entry = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .and_then(|env| env.iter().find(|e| e["name"] == var))
            .cloned()
            .unwrap_or_else(|| panic!("{var} reaches the data plane: {deployment:#}"));
        assert_eq!(
            entry["valueFrom"]["secretKeyRef"],
            serde_json::json!({"name": "gw-tollgate-client", "key": key}),
            "{entry:#}"
        );
    }
    for secret in ["tok-7f3a9", "pr0xy-pass"] {
        assert!(!deployment.to_string().contains(secret), "{deployment:#}");
    }

    // The certificate issuer copies the files into the client Secret.
    let start = std::time::Instant::now();
    let secret = loop {
        let secret = server.get("v1", "Secret", Some("default"), "gw-tollgate-client");
        if let Ok(secret) = secret
            && secret["data"].get("otlp-ca.crt").is_some()
        {
            break secret;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the client Secret never got the OTLP files\n{}",
            ctl.tail(30)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    // Labelled as the objects provisioned beside it are.
    let labels = &secret["metadata"]["labels"];
    assert_eq!(labels["gateway.networking.k8s.io/gateway-name"], "gw");
    assert_eq!(
        labels["gateway.networking.k8s.io/gateway-class-name"],
        "tollgate"
    );
    for (_, key, text) in &mounted {
        let encoded = secret["data"][key].as_str().unwrap_or_default();
        assert_eq!(
            base64_decode(encoded),
            text.as_bytes(),
            "{key} holds the controller's file"
        );
    }
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        assert!(secret["data"].get(key).is_some(), "{key}: {secret:#?}");
    }
    let token = secret["data"]["otlp-headers"].as_str().unwrap_or_default();
    assert_eq!(base64_decode(token), b"x-collector-token=tok-7f3a9");
    let proxy = secret["data"]["env-HTTP_PROXY"]
        .as_str()
        .unwrap_or_default();
    assert_eq!(
        base64_decode(proxy),
        b"http://gw:pr0xy-pass@proxy.internal:3128"
    );

    // The collector's CA renewed in the controller's file: the copy
    // follows, without a restart.
    let renewed = Ca::new("renewed collector CA").unwrap().pem();
    write("collector-ca.pem", &renewed);
    let start = std::time::Instant::now();
    loop {
        let secret = server.get("v1", "Secret", Some("default"), "gw-tollgate-client");
        let copy = secret.ok().map(|s| {
            let encoded = s["data"]["otlp-ca.crt"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            base64_decode(&encoded)
        });
        if copy.as_deref() == Some(renewed.as_bytes()) {
            break;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(15),
            "the renewed CA never reached the data plane's Secret\n{}",
            ctl.tail(30)
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    ctl.stop();
}

/// Standard base64, as Secret data is written.
pub(crate) fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap_or_default()
}
