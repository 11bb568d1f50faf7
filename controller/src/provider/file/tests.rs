use super::*;
use std::path::PathBuf;
use std::time::Duration;

const ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: r, namespace: default}
spec: {}
";

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tollgate-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A YAML error names the file and the line.
#[test]
fn yaml_errors_carry_file_and_line() {
    let dir = temp_dir("line");
    std::fs::write(
        dir.join("bad.yaml"),
        "kind: x\nmetadata:\n  name: [unclosed\n",
    )
    .unwrap();
    let (_, errors) = FileProvider::new(&dir).load();
    assert_eq!(errors.len(), 1);
    let msg = errors[0].to_string();
    assert!(msg.contains("bad.yaml:"), "{msg}");
    assert!(
        matches!(errors[0], FileError::Yaml { line, .. } if line >= 3),
        "{msg}"
    );
}

/// A file that breaks keeps its last good content in effect.
#[test]
fn a_broken_file_keeps_its_last_good_content() {
    let dir = temp_dir("lastgood");
    let file = dir.join("route.yaml");
    std::fs::write(&file, ROUTE).unwrap();
    let mut provider = FileProvider::new(&dir);
    let (r, errors) = provider.load();
    assert!(errors.is_empty());
    assert!(r.http_routes.contains_key("default/r"));

    std::fs::write(&file, "kind: HTTPRoute\n  bad: indentation: here\n").unwrap();
    let (r, errors) = provider.load();
    assert_eq!(errors.len(), 1);
    assert!(
        r.http_routes.contains_key("default/r"),
        "last good route lost"
    );

    std::fs::remove_file(&file).unwrap();
    let (r, errors) = provider.load();
    assert!(errors.is_empty());
    assert!(r.http_routes.is_empty(), "a deleted file's objects must go");
}

/// A schema error in one document rejects the whole file version, not just the document.
#[test]
fn a_schema_error_rejects_the_file_version() {
    let dir = temp_dir("schema");
    let file = dir.join("two.yaml");
    std::fs::write(&file, ROUTE).unwrap();
    let mut provider = FileProvider::new(&dir);
    provider.load();
    let bad = format!(
        "{ROUTE}---\napiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: g}}\nspec: {{listeners: 3}}\n"
    );
    std::fs::write(&file, bad).unwrap();
    let (r, errors) = provider.load();
    assert!(matches!(errors[0], FileError::Document { index: 2, .. }));
    assert!(r.gateways.is_empty());
    assert!(r.http_routes.contains_key("default/r"));
}

/// Unknown kinds and non-manifest files are skipped without errors.
#[test]
fn unknown_kinds_are_skipped() {
    let dir = temp_dir("skip");
    std::fs::write(
        dir.join("d.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n---\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not yaml: [").unwrap();
    let (r, errors) = FileProvider::new(&dir).load();
    assert!(errors.is_empty(), "{errors:?}");
    assert!(r.http_routes.is_empty());
}

/// `run` sends a first complete view, then a new one after a change.
#[tokio::test]
async fn run_sends_changes() {
    let dir = temp_dir("run");
    std::fs::write(dir.join("a.yaml"), ROUTE).unwrap();
    let (tx, mut rx) = tokio::sync::watch::channel(None);
    let task = tokio::spawn(FileProvider::new(&dir).run(tx));
    rx.changed().await.unwrap();
    assert_eq!(rx.borrow().as_ref().unwrap().http_routes.len(), 1);
    std::fs::write(dir.join("b.yaml"), ROUTE.replace("name: r", "name: s")).unwrap();
    tokio::time::timeout(Duration::from_secs(5), rx.changed())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rx.borrow().as_ref().unwrap().http_routes.len(), 2);
    task.abort();
}
