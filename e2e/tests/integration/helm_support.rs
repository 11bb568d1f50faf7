//! Support for the Helm chart tests: the real `helm` (from `.tools/bin`),
//! rendering `charts/tollgate`, and splitting what it prints into objects.

#![allow(dead_code, unreachable_pub, clippy::expect_used)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use tollgate_e2e::apiserver::ApiServer;
use tollgate_e2e::workspace_dir;

/// The release name and namespace every rendering uses, as `deploy/` does.
pub const RELEASE: &str = "tollgate";
pub const NAMESPACE: &str = "tollgate-system";

/// The real helm. A test that needs it fails (never passes unrun) when it
/// is missing, saying how to install it.
pub fn helm_path() -> PathBuf {
    let path = workspace_dir().join(".tools/bin/helm");
    assert!(
        path.is_file(),
        "{} is missing: run `make deps` (scripts/install-deps.sh test) to install the real helm",
        path.display()
    );
    path
}

/// The chart's folder.
pub fn chart_dir() -> PathBuf {
    workspace_dir().join("charts/tollgate")
}

/// `e2e/testdata/helm/<name>`.
pub fn testdata(name: &str) -> PathBuf {
    workspace_dir().join("e2e/testdata/helm").join(name)
}

/// Runs helm with `args` in the workspace: (success, stdout, stderr).
pub fn try_helm(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(helm_path())
        .args(args)
        .current_dir(workspace_dir())
        // No user configuration leaks in (repositories, plugins, registries).
        .env(
            "HELM_CONFIG_HOME",
            workspace_dir().join(".tools/helm/config"),
        )
        .env("HELM_CACHE_HOME", workspace_dir().join(".tools/helm/cache"))
        .env("HELM_DATA_HOME", workspace_dir().join(".tools/helm/data"))
        .output()
        .expect("helm runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Runs helm; panics with its output on failure.
pub fn helm(args: &[&str]) -> String {
    let (ok, stdout, stderr) = try_helm(args);
    assert!(ok, "helm {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

/// `helm install` of the chart as [`RELEASE`] into [`NAMESPACE`] (created)
/// on `server`, with `flags` after (`--set ...`); panics on failure.
pub async fn install_chart(server: &ApiServer, flags: &[&str]) -> String {
    let chart = chart_dir().display().to_string();
    let mut args = vec![
        "install",
        RELEASE,
        &chart,
        "--namespace",
        NAMESPACE,
        "--create-namespace",
    ];
    args.extend_from_slice(flags);
    helm_on(server, &args).await
}

/// Runs helm against `server`; panics with its output on failure.
pub async fn helm_on(server: &ApiServer, args: &[&str]) -> String {
    let out = tokio::process::Command::new(helm_path())
        .arg("--kubeconfig")
        .arg(server.kubeconfig())
        .args(args)
        .current_dir(workspace_dir())
        .env(
            "HELM_CONFIG_HOME",
            workspace_dir().join(".tools/helm/config"),
        )
        .env("HELM_CACHE_HOME", workspace_dir().join(".tools/helm/cache"))
        .env("HELM_DATA_HOME", workspace_dir().join(".tools/helm/data"))
        .output()
        .await
        .expect("helm runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    assert!(
        out.status.success(),
        "helm {args:?} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// `helm template` of `chart` as release `tollgate` in `tollgate-system`,
/// with the values files given.
pub fn render(chart: &Path, values: &[PathBuf], extra: &[&str]) -> String {
    let chart = chart.display().to_string();
    let values: Vec<String> = values.iter().map(|v| v.display().to_string()).collect();
    let mut args = vec!["template", RELEASE, &chart, "--namespace", NAMESPACE];
    for v in &values {
        args.extend(["--values", v]);
    }
    args.extend_from_slice(extra);
    helm(&args)
}

/// The YAML documents of a multi-document text, as JSON, empty ones left out.
pub fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("rendered YAML parses"))
        .filter(|v: &Value| !v.is_null())
        .collect()
}

/// `kind/name` of an object.
pub fn key(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or_default(),
        object["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Where two JSON trees first differ (`/a/b/0`), numbers compared by value
/// (`0` and `0.0` are one number: YAML tools disagree on writing it), or
/// `None` when they are equal.
pub fn first_difference(a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (l, r) = (
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                );
                first_difference(l, r).map(|p| format!("/{k}{p}"))
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (l, r))| first_difference(l, r).map(|p| format!("/{i}{p}"))),
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
        _ if a == b => None,
        _ => Some(format!(": {a} != {b}")),
    }
}
