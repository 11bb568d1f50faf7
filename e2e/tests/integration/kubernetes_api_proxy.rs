//! A controller run from a kubeconfig in a shell with `HTTPS_PROXY` set
//! reaches its API server as kubectl would: through the proxy when the
//! server is elsewhere, directly when it is this machine (or `NO_PROXY`
//! lists it). Either way the data planes' Deployments read the proxy
//! variables from their client Secret, so the Secret must hold them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::k8s::*;
use crate::common::{manifest_dir, write};
use crate::kubernetes_operator::{controller_with_env, gateway, wait_for};
use crate::kubernetes_otlp_tls::base64_decode;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::{ConnectProxy, free_port};

/// Waits until the client Secret holds `env-HTTPS_PROXY`; returns it.
async fn secret_proxy(server: &ApiServer) -> Vec<u8> {
    let start = Instant::now();
    loop {
        let secret = server.get("v1", "Secret", Some("default"), "gw-tollgate-client");
        if let Some(value) = secret
            .ok()
            .and_then(|s| s["data"]["env-HTTPS_PROXY"].as_str().map(str::to_string))
        {
            return base64_decode(&value);
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "the client Secret never got env-HTTPS_PROXY"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Starts a provisioning controller on `server` with `vars`, and waits
/// for the Gateway's Deployment.
async fn provisioning_controller(server: &ApiServer, vars: &[(&str, &str)]) -> tollgate_e2e::Proc {
    apply(server, &gateway(80, "")).await;
    let offset = free_port().unwrap() - 80;
    let (ctl, _) = controller_with_env(server, &["--provision"], offset, vars).await;
    wait_for(server, "apps/v1", "Deployment", "creation", |o| o.is_some())
        .await
        .unwrap();
    ctl
}

/// An API server elsewhere (a name only the proxy resolves, as from a
/// laptop behind a corporate proxy): every connection is a `CONNECT`
/// tunnel to it. Nothing is exported, yet the Secret holds the variable
/// (a missing key would keep the data plane's pod from starting).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_api_server_is_reached_through_https_proxy() {
    let server = cluster().await;
    let proxy = ConnectProxy::start(&[("api.cluster.test", "127.0.0.1")], None)
        .await
        .unwrap();
    let url = proxy.url(None);
    let dir = manifest_dir("api-proxy");
    let named = server
        .kubeconfig_yaml()
        .replace("127.0.0.1", "api.cluster.test");
    assert_ne!(
        named,
        server.kubeconfig_yaml(),
        "the kubeconfig changed form"
    );
    write(&dir, "kubeconfig", &named);
    let kubeconfig = dir.join("kubeconfig").display().to_string();
    // The test's API server speaks plain HTTP, which by kubectl's rules
    // goes through `HTTP_PROXY`; a real one is `https://`.
    let vars = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("HTTPS_PROXY", url.as_str()),
        ("HTTP_PROXY", url.as_str()),
    ];
    let _ctl = provisioning_controller(&server, &vars).await;
    let tunnels = proxy.tunnels();
    let port = server
        .url()
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(
        !tunnels.is_empty(),
        "the API server was not reached through the proxy"
    );
    for tunnel in &tunnels {
        assert!(tunnel.opened, "{tunnels:#?}");
        assert_eq!(tunnel.target, format!("api.cluster.test:{port}"));
    }
    assert_eq!(secret_proxy(&server).await, url.as_bytes());
}

/// An API server on this machine (a local cluster) is reached directly,
/// as kubectl reaches it, though `HTTPS_PROXY` names a proxy: not one
/// tunnel is asked for, and the log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_api_server_is_reached_directly_despite_https_proxy() {
    let server = cluster().await;
    let proxy = ConnectProxy::start(&[], None).await.unwrap();
    let url = proxy.url(None);
    let ctl = provisioning_controller(&server, &[("HTTPS_PROXY", url.as_str())]).await;
    assert_eq!(
        proxy.tunnels(),
        vec![],
        "the local API server went through the proxy"
    );
    assert!(
        ctl.log().contains("API server reached directly"),
        "{}",
        ctl.tail(30)
    );
    assert_eq!(secret_proxy(&server).await, url.as_bytes());
}
