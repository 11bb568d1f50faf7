//! The test API server's lists and watches: selectors and paging, watch
//! replay and streaming, bookmarks, 410 Gone, the restart and expiry
//! switches, kubectl's Table form, the request log and the binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support;

use apiserver_support::{call, call_with, config_map, events, get, pairs, rv, watch};
use serde_json::{Value, json};
use std::time::Duration;
use tollgate_e2e::apiserver::ApiServer;

const CM: &str = "/api/v1/namespaces/default/configmaps";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

/// Lists filter by label and field selectors, page with limit/continue,
/// and span namespaces on the cluster-wide path.
#[tokio::test]
async fn lists_select_and_page() {
    let server = ApiServer::start().await.unwrap();
    server
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}))
        .unwrap();
    for (name, app) in [("a", "web"), ("b", "api"), ("c", "web")] {
        call(
            &server,
            "POST",
            CM,
            JSON,
            Some(&config_map(name, json!({"app": app}))),
        )
        .await;
    }
    call(
        &server,
        "POST",
        "/api/v1/namespaces/other/configmaps",
        JSON,
        Some(&config_map("d", json!({"app": "web"}))),
    )
    .await;
    let names = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    };
    let list = get(&server, &format!("{CM}?labelSelector=app%3Dweb"))
        .await
        .body;
    assert_eq!(
        (list["kind"].clone(), names(&list)),
        (json!("ConfigMapList"), vec!["a".to_string(), "c".into()])
    );
    assert_eq!(rv(&list), server.resource_version());
    assert_eq!(
        names(
            &get(&server, &format!("{CM}?labelSelector=app+notin+(web)"))
                .await
                .body
        ),
        ["b"]
    );
    assert_eq!(
        names(
            &get(&server, &format!("{CM}?fieldSelector=metadata.name%3Db"))
                .await
                .body
        ),
        ["b"]
    );
    assert_eq!(
        names(
            &get(&server, "/api/v1/configmaps?labelSelector=app%3Dweb")
                .await
                .body
        ),
        ["a", "c", "d"]
    );

    let page = get(&server, &format!("{CM}?limit=2")).await.body;
    assert_eq!(
        (names(&page), page["metadata"]["remainingItemCount"].clone()),
        (vec!["a".to_string(), "b".into()], json!(1))
    );
    let token = page["metadata"]["continue"]
        .as_str()
        .unwrap()
        .replace('|', "%7C");
    let rest = get(&server, &format!("{CM}?limit=2&continue={token}"))
        .await
        .body;
    assert_eq!(
        (names(&rest), rest["metadata"]["continue"].clone()),
        (vec!["c".to_string()], Value::Null)
    );
}

/// A watch from a version replays later events, then streams live ones;
/// selectors turn label changes into ADDED/DELETED; timeoutSeconds ends it.
#[tokio::test]
async fn watch_replays_then_streams() {
    let server = ApiServer::start().await.unwrap();
    let start = server.resource_version();
    call(
        &server,
        "POST",
        CM,
        JSON,
        Some(&config_map("a", json!({"app": "web"}))),
    )
    .await;
    call(
        &server,
        "PATCH",
        &format!("{CM}/a"),
        MERGE,
        Some(&json!({"data": {"k": "2"}})),
    )
    .await;
    let path = format!("{CM}?watch=true&resourceVersion={start}&timeoutSeconds=1");
    let (lines, ended) = watch(&server, &path, JSON, 10, Duration::from_secs(5)).await;
    assert!(ended, "timeoutSeconds ends the stream");
    assert_eq!(events(&lines), pairs(&[("ADDED", "a"), ("MODIFIED", "a")]));

    let selected = format!(
        "{CM}?watch=1&labelSelector=app%3Dweb&resourceVersion={}",
        server.resource_version()
    );
    let writes = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        call(
            &server,
            "PATCH",
            &format!("{CM}/a"),
            MERGE,
            Some(&json!({"metadata": {"labels": {"app": "api"}}})),
        )
        .await;
        call(
            &server,
            "PATCH",
            &format!("{CM}/a"),
            MERGE,
            Some(&json!({"metadata": {"labels": {"app": "web"}}})),
        )
        .await;
        call(
            &server,
            "POST",
            CM,
            JSON,
            Some(&config_map("b", json!({"app": "api"}))),
        )
        .await;
        call(&server, "DELETE", &format!("{CM}/a"), JSON, None).await;
    };
    let ((lines, _), ()) = tokio::join!(
        watch(&server, &selected, JSON, 3, Duration::from_secs(5)),
        writes
    );
    assert_eq!(
        events(&lines),
        pairs(&[("DELETED", "a"), ("ADDED", "a"), ("DELETED", "a")])
    );
}

/// Without a version a watch starts with the current objects; bookmarks
/// carry the latest version; the metadata form sends PartialObjectMetadata.
#[tokio::test]
async fn watch_initial_state_bookmarks_and_metadata_form() {
    let server = ApiServer::start().await.unwrap();
    call(&server, "POST", CM, JSON, Some(&config_map("a", json!({})))).await;
    let accept = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    let (lines, _) = watch(
        &server,
        &format!("{CM}?watch=true&allowWatchBookmarks=true"),
        accept,
        2,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(events(&lines)[0], ("ADDED".to_string(), "a".to_string()));
    assert_eq!(lines[0]["object"]["kind"], "PartialObjectMetadata");
    assert_eq!(lines[0]["object"]["data"], Value::Null);
    assert_eq!(lines[1]["type"], "BOOKMARK");
    assert_eq!(rv(&lines[1]["object"]), server.resource_version());

    let initial = format!(
        "{CM}?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan"
    );
    let (lines, _) = watch(&server, &initial, JSON, 2, Duration::from_secs(5)).await;
    assert_eq!(
        lines[1]["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
}

/// After the history is compacted, a watch from an older version gets a
/// 410 Expired ERROR event; from the current version it works.
#[tokio::test]
async fn expired_versions_get_410() {
    let server = ApiServer::start().await.unwrap();
    let old = server.resource_version();
    call(&server, "POST", CM, JSON, Some(&config_map("a", json!({})))).await;
    server.expire_resource_versions();
    let (lines, ended) = watch(
        &server,
        &format!("{CM}?watch=true&resourceVersion={old}"),
        JSON,
        5,
        Duration::from_secs(5),
    )
    .await;
    assert!(ended);
    assert_eq!(lines.len(), 1);
    assert_eq!(
        (lines[0]["type"].clone(), lines[0]["object"]["code"].clone()),
        (json!("ERROR"), json!(410))
    );
    let now = server.resource_version();
    let (lines, ended) = watch(
        &server,
        &format!("{CM}?watch=true&resourceVersion={now}&timeoutSeconds=1"),
        JSON,
        5,
        Duration::from_secs(5),
    )
    .await;
    assert!(ended && lines.is_empty());
}

/// drop_watches ends open streams; restart closes connections and serves
/// the same data on the same port.
#[tokio::test]
async fn switches_end_watches_and_restart_keeps_data() {
    let server = ApiServer::start().await.unwrap();
    call(&server, "POST", CM, JSON, Some(&config_map("a", json!({})))).await;
    let now = server.resource_version();
    let path = format!("{CM}?watch=true&resourceVersion={now}");
    let drop_soon = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.drop_watches();
    };
    let ((lines, ended), ()) = tokio::join!(
        watch(&server, &path, JSON, 1, Duration::from_secs(5)),
        drop_soon
    );
    assert!(ended && lines.is_empty());

    let restart_soon = async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        server.restart().await;
    };
    let ((_, ended), ()) = tokio::join!(
        watch(&server, &path, JSON, 1, Duration::from_secs(5)),
        restart_soon
    );
    assert!(ended, "restart ends the stream");
    assert_eq!(get(&server, &format!("{CM}/a")).await.code, 200);
    assert_eq!(server.resource_version(), now);
}

/// `kubectl get` asks for a Table: NAME and AGE columns, one row per object.
#[tokio::test]
async fn table_form_for_kubectl_get() {
    let server = ApiServer::start().await.unwrap();
    call(&server, "POST", CM, JSON, Some(&config_map("a", json!({})))).await;
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let table = call_with(&server, "GET", CM, &[("accept", accept)], None)
        .await
        .body;
    assert_eq!(table["kind"], "Table");
    assert_eq!(table["columnDefinitions"][0]["name"], "Name");
    assert_eq!(table["rows"][0]["cells"][0], "a");
    assert_eq!(
        table["rows"][0]["object"]["metadata"]["namespace"],
        "default"
    );
}

/// The request log records method, path, query, user agent and field
/// manager, so tests can count writes.
#[tokio::test]
async fn request_log_records_calls() {
    let server = ApiServer::start().await.unwrap();
    server.clear_requests();
    call(
        &server,
        "POST",
        &format!("{CM}?fieldManager=me"),
        JSON,
        Some(&config_map("a", json!({}))),
    )
    .await;
    get(&server, &format!("{CM}/a")).await;
    let log = server.requests();
    assert_eq!(log.len(), 2);
    assert_eq!(
        (
            log[0].method.as_str(),
            log[0].field_manager.as_deref(),
            log[0].status
        ),
        ("POST", Some("me"), 201)
    );
    assert!(log[0].is_write() && !log[1].is_write());
    assert_eq!(log[1].user_agent, "apiserver-test/1.0");
    let made = server.get("v1", "ConfigMap", Some("default"), "a").unwrap();
    assert_eq!(made["metadata"]["managedFields"][0]["manager"], "me");
}

/// The `tollgate-test-apiserver` binary serves on `--bind` and writes a
/// kubeconfig pointing at itself to `--kubeconfig`.
#[tokio::test]
async fn binary_serves_and_writes_kubeconfig() {
    let port = tollgate_e2e::free_port().unwrap();
    let kubeconfig = tollgate_e2e::log_dir().join(format!("bin-apiserver-{port}.kubeconfig"));
    let bind = format!("127.0.0.1:{port}");
    let args = [
        "--bind",
        bind.as_str(),
        "--kubeconfig",
        kubeconfig.to_str().unwrap(),
    ];
    let _server = tollgate_e2e::Proc::spawn(
        "tollgate-test-apiserver",
        args,
        std::iter::empty::<(&str, &str)>(),
    )
    .unwrap();
    tollgate_e2e::wait_http_ok(&format!("http://{bind}/version"), Duration::from_secs(10))
        .await
        .unwrap();
    let mut text = String::new();
    for _ in 0..50 {
        text = std::fs::read_to_string(&kubeconfig).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(text.contains(&format!("server: http://{bind}")), "{text}");
    let _ = std::fs::remove_file(&kubeconfig);
}
