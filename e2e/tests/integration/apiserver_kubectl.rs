//! The real `kubectl` (v1.33, from `.tools/bin`) works against the test API
//! server with default flags: server-side apply of the Gateway API CRDs and
//! the quickstart, `get` tables across namespaces, `wait`, and `delete`.
//! Skipped with a notice when `.tools/bin/kubectl` is absent
//! (`scripts/install-deps.sh test` installs it).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::{log_dir, workspace_dir};

/// Runs kubectl against `server`; returns (success, stdout, stderr).
async fn kubectl(server: &ApiServer, cache: &PathBuf, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(workspace_dir().join(".tools/bin/kubectl"))
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .current_dir(workspace_dir())
        .output()
        .await
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// kubectl's success or a failure showing its output.
async fn ok(server: &ApiServer, cache: &PathBuf, args: &[&str]) -> String {
    let (success, stdout, stderr) = kubectl(server, cache, args).await;
    assert!(success, "kubectl {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// CRDs, then the quickstart, apply server-side; `get -A` lists them in a
/// table; re-applying changes nothing; `delete -f` removes routes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_gets_and_deletes_the_quickstart() {
    assert!(
        workspace_dir().join(".tools/bin/kubectl").is_file(),
        ".tools/bin/kubectl is missing: run `make deps` (scripts/install-deps.sh test) to install the real kubectl"
    );
    let server = ApiServer::start().await.unwrap();
    let cache = log_dir().join(format!(
        "kubectl-cache-{}-{}",
        std::process::id(),
        server.addr().port()
    ));

    let applied = ok(
        &server,
        &cache,
        &[
            "apply",
            "--server-side",
            "-f",
            "crds/generated/gateway-api/",
        ],
    )
    .await;
    assert!(
        applied.contains("gateways.gateway.networking.k8s.io serverside-applied"),
        "{applied}"
    );
    ok(
        &server,
        &cache,
        &[
            "apply",
            "--server-side",
            "-f",
            "crds/generated/tollgate.dev_gatewayconfigs.yaml",
            "-f",
            "crds/generated/tollgate.dev_ratelimitpolicies.yaml",
        ],
    )
    .await;
    ok(
        &server,
        &cache,
        &[
            "wait",
            "--for=condition=Established",
            "crd/httproutes.gateway.networking.k8s.io",
            "--timeout=10s",
        ],
    )
    .await;

    let applied = ok(
        &server,
        &cache,
        &["apply", "--server-side", "-f", "examples/quickstart/"],
    )
    .await;
    assert!(
        applied.contains("gateway.gateway.networking.k8s.io/quickstart serverside-applied"),
        "{applied}"
    );
    let gateway = server
        .get(
            "gateway.networking.k8s.io/v1",
            "Gateway",
            Some("default"),
            "quickstart",
        )
        .unwrap();
    assert_eq!(gateway["spec"]["gatewayClassName"], "tollgate");

    let table = ok(&server, &cache, &["get", "gateways", "-A"]).await;
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("NAMESPACE") && lines[0].contains("NAME") && lines[0].contains("AGE"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("default") && lines[1].contains("quickstart"),
        "{table}"
    );
    let routes = ok(&server, &cache, &["get", "httproutes", "-o", "name"]).await;
    assert_eq!(routes.lines().count(), 4, "{routes}");

    let before = server.resource_version();
    ok(
        &server,
        &cache,
        &["apply", "--server-side", "-f", "examples/quickstart/"],
    )
    .await;
    assert_eq!(
        server.resource_version(),
        before,
        "re-applying the same manifests writes nothing"
    );

    server.clear_requests();
    ok(
        &server,
        &cache,
        &[
            "delete",
            "-f",
            "examples/quickstart/routes.yaml",
            "-f",
            "examples/quickstart/ratelimit.yaml",
        ],
    )
    .await;
    let (_, stdout, stderr) = kubectl(&server, &cache, &["get", "httproutes"]).await;
    assert!(
        stdout.is_empty() && stderr.contains("No resources found"),
        "{stdout}{stderr}"
    );
    let deletes = server
        .requests()
        .iter()
        .filter(|r| r.method == "DELETE")
        .count();
    assert_eq!(deletes, 5, "four routes and the RateLimitPolicy");
    let class = ok(
        &server,
        &cache,
        &[
            "get",
            "gateway",
            "quickstart",
            "-o",
            "jsonpath={.spec.gatewayClassName}",
        ],
    )
    .await;
    assert_eq!(class, "tollgate");
    let _ = std::fs::remove_dir_all(&cache);
}
