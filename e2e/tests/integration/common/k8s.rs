//! Support for the Kubernetes end-to-end tests: the in-memory API server,
//! the real `kubectl` (from `.tools/bin`), and the real controller pointed
//! at the API server through a kubeconfig, exactly as in a cluster.

use super::{Controller, MANIFEST_PORT};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::{Proc, free_port, log_dir, wait_http_ok, workspace_dir};

/// The real kubectl. A test that needs it fails (never passes unrun) when
/// it is missing, saying how to install it.
pub fn kubectl_path() -> PathBuf {
    let path = workspace_dir().join(".tools/bin/kubectl");
    assert!(
        path.is_file(),
        "{} is missing: run `make deps` (scripts/install-deps.sh test) to install the real kubectl",
        path.display()
    );
    path
}

/// Runs `kubectl` against `server`; panics with its output on failure.
pub async fn kubectl(server: &ApiServer, args: &[&str]) -> String {
    let (ok, stdout, stderr) = try_kubectl(server, args).await;
    assert!(ok, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// Runs `kubectl` against `server`: (success, stdout, stderr).
pub async fn try_kubectl(server: &ApiServer, args: &[&str]) -> (bool, String, String) {
    // One discovery cache per API server: kubectl trusts a stale cache.
    let cache = log_dir().join(format!(
        "kubectl-cache-{}-{}",
        std::process::id(),
        server.addr().port()
    ));
    let out = tokio::process::Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(&cache)
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .await
        .expect("kubectl runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// `kubectl apply --server-side` of a YAML text, as manager `kubectl`
/// without `--force-conflicts`: a field another manager (the controller)
/// owns is a conflict, as on a real cluster.
pub async fn apply(server: &ApiServer, yaml: &str) {
    let file = log_dir().join(format!(
        "apply-{}-{}.yaml",
        server.addr().port(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::write(&file, yaml).expect("write manifest");
    kubectl(
        server,
        &["apply", "--server-side", "-f", file.to_str().unwrap_or("")],
    )
    .await;
}

/// A test API server with the Gateway API and Tollgate CRDs installed.
pub async fn cluster() -> ApiServer {
    let server = ApiServer::start().await.expect("API server starts");
    kubectl(
        &server,
        &[
            "apply",
            "--server-side",
            "-f",
            "crds/generated/gateway-api/",
            "-f",
            "crds/generated/tollgate.dev_gatewayconfigs.yaml",
            "-f",
            "crds/generated/tollgate.dev_authpolicies.yaml",
            "-f",
            "crds/generated/tollgate.dev_ratelimitpolicies.yaml",
        ],
    )
    .await;
    server
}

/// Starts `tollgate-controller` in Kubernetes mode against `server`, as
/// replica `identity`, and waits until it is ready.
pub async fn start_kube_controller(
    server: &ApiServer,
    identity: &str,
    with_dataplane: bool,
    manifest_port: u16,
) -> Controller {
    start_kube_controller_with_env(server, identity, with_dataplane, manifest_port, &[]).await
}

/// [`start_kube_controller`] with extra environment variables (`OTEL_*`).
pub async fn start_kube_controller_with_env(
    server: &ApiServer,
    identity: &str,
    with_dataplane: bool,
    manifest_port: u16,
    env: &[(&str, &str)],
) -> Controller {
    let port = loop {
        let p = free_port().expect("free port");
        if p > manifest_port {
            break p;
        }
    };
    let admin = format!("127.0.0.1:{}", free_port().expect("free port"));
    let dataplane_admin = format!("127.0.0.1:{}", free_port().expect("free port"));
    let snapshots = format!("127.0.0.1:{}", free_port().expect("free port"));
    let offset = (port - manifest_port).to_string();
    let mut args = vec![
        "--listener-port-offset",
        &offset,
        "--admin-address",
        &admin,
        "--dataplane-admin-address",
        &dataplane_admin,
        "--snapshot-address",
        &snapshots,
        "--lease-duration-seconds",
        "3",
        "--lease-renew-seconds",
        "1",
    ];
    if with_dataplane {
        args.push("--with-dataplane");
    } else {
        // A separate data plane is started by the test, not provisioned.
        args.push("--no-provision");
    }
    let kubeconfig = server.kubeconfig().display().to_string();
    let mut vars = vec![
        ("KUBECONFIG", kubeconfig.as_str()),
        ("POD_NAME", identity),
        ("RUST_LOG", "info"),
    ];
    vars.extend_from_slice(env);
    let mut proc = Proc::spawn("tollgate-controller", args, vars).expect("controller starts");
    let ready = format!("http://{admin}/readyz");
    if let Err(e) = wait_http_ok(&ready, Duration::from_secs(30)).await {
        proc.check_running().expect("controller running");
        panic!("controller not ready: {e}\n{}", proc.tail(40));
    }
    Controller {
        proc,
        gateway: format!("http://127.0.0.1:{port}"),
        port,
        admin: format!("http://{admin}"),
        dataplane_admin: format!("http://{dataplane_admin}"),
        // Kubernetes mode serves snapshots over mutual TLS only.
        snapshots: format!("https://{snapshots}"),
    }
}

/// The default manifest port of the test Gateways.
pub const PORT: u16 = MANIFEST_PORT;

/// Polls `kubectl get` with a JSONPath until it prints `want`.
pub async fn wait_jsonpath(server: &ApiServer, what: &[&str], path: &str, want: &str) {
    let start = Instant::now();
    let jsonpath = format!("jsonpath={path}");
    loop {
        let mut args: Vec<&str> = vec!["get"];
        args.extend_from_slice(what);
        args.extend_from_slice(&["-o", &jsonpath]);
        let (_, out, _) = try_kubectl(server, &args).await;
        if out.trim() == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "kubectl get {what:?} {path} is {out:?}, want {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Status writes (`/status` PUT or PATCH) recorded by the API server.
pub fn status_writes(server: &ApiServer) -> Vec<tollgate_e2e::apiserver::RequestRecord> {
    server
        .requests()
        .into_iter()
        .filter(|r| (r.method == "PATCH" || r.method == "PUT") && r.path.ends_with("/status"))
        .collect()
}

/// An HTTPRoute `name` in `default` on Gateway `gw`, sending `path` (a
/// PathPrefix) to Service `backend` port 80.
pub fn http_route(name: &str, path: &str, backend: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: {name}, namespace: default}}
spec:
  parentRefs: [{{name: gw}}]
  rules:
  - matches: [{{path: {{type: PathPrefix, value: {path}}}}}]
    backendRefs: [{{name: {backend}, port: 80}}]
"
    )
}

/// Waits for the client-certificate Secret the controller issues the data
/// plane of Gateway `ns/gw` (`<gw>-tollgate-client`) and returns it.
pub async fn client_secret(server: &ApiServer, ns: &str, gw: &str) -> serde_json::Value {
    let name = format!("{gw}-tollgate-client");
    let start = Instant::now();
    loop {
        if let Ok(secret) = server.get("v1", "Secret", Some(ns), &name) {
            return secret;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the controller issued no Secret {ns}/{name}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Plays the kubelet's part for a data plane of Gateway `ns/gw`: writes
/// the keys of its client-certificate Secret ([`client_secret`]) as files
/// into a fresh folder, as a Secret volume would, for
/// `tollgate-dataplane --tls-dir`.
pub async fn client_certificate_dir(server: &ApiServer, ns: &str, gw: &str) -> PathBuf {
    use base64::Engine as _;
    let secret = client_secret(server, ns, gw).await;
    let dir = log_dir().join(format!(
        "client-cert-{ns}-{gw}-{}",
        free_port().expect("port")
    ));
    std::fs::create_dir_all(&dir).expect("client cert folder");
    for key in ["tls.crt", "tls.key", "ca.crt"] {
        let b64 = secret["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("the client Secret of {ns}/{gw} has no {key}: {secret}"));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .expect("base64 Secret data");
        std::fs::write(dir.join(key), bytes).expect("writing a key file");
    }
    dir
}
