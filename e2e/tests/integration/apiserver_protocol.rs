//! The test API server speaks the Kubernetes HTTP protocol: discovery,
//! CRUD, patches, the status subresource, finalizers, lists and watches,
//! checked with a raw HTTP client so every byte is the server's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support;

use apiserver_support::{call, config_map, get, rv, widget_crd};
use serde_json::{Value, json};
use tollgate_e2e::apiserver::ApiServer;

const CM: &str = "/api/v1/namespaces/default/configmaps";
const WIDGETS: &str = "/apis/test.tollgate.dev/v1/namespaces/default/widgets";
const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";

/// Discovery lists the built-in groups, and a CRD adds its group, versions
/// (preferred first), kind, short names and status subresource.
#[tokio::test]
async fn discovery_grows_with_crds() {
    let server = ApiServer::start().await.unwrap();
    assert_eq!(get(&server, "/version").await.body["gitVersion"], "v1.33.0");
    assert_eq!(get(&server, "/api").await.body["versions"], json!(["v1"]));
    let core = get(&server, "/api/v1").await.body;
    let names: Vec<&str> = core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert!(
        names.contains(&"secrets") && names.contains(&"namespaces/status"),
        "{names:?}"
    );
    assert_eq!(get(&server, "/apis/test.tollgate.dev/v1").await.code, 404);

    let crd = call(
        &server,
        "POST",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        JSON,
        Some(&widget_crd()),
    )
    .await;
    assert_eq!(crd.code, 201, "{}", crd.body);
    let established = crd.body["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established");
    assert!(established);
    let groups = get(&server, "/apis").await.body;
    let widget_group = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "test.tollgate.dev")
        .unwrap()
        .clone();
    assert_eq!(widget_group["preferredVersion"]["version"], "v1");
    assert_eq!(widget_group["versions"].as_array().unwrap().len(), 2);
    let resources = get(&server, "/apis/test.tollgate.dev/v1").await.body;
    assert_eq!(resources["resources"][0]["kind"], "Widget");
    assert_eq!(resources["resources"][0]["shortNames"], json!(["wd"]));
    assert_eq!(resources["resources"][1]["name"], "widgets/status");
    let v3 = get(&server, "/openapi/v3").await.body;
    assert!(v3["paths"]["apis/test.tollgate.dev/v1"]["serverRelativeURL"].is_string());

    call(
        &server,
        "DELETE",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.tollgate.dev",
        JSON,
        None,
    )
    .await;
    assert_eq!(get(&server, "/apis/test.tollgate.dev/v1").await.code, 404);
}

/// Create fills server metadata, refuses duplicates with 409 AlreadyExists,
/// supports generateName; get of a missing name is a 404 Status.
#[tokio::test]
async fn create_get_and_errors_are_status_objects() {
    let server = ApiServer::start().await.unwrap();
    let made = call(&server, "POST", CM, JSON, Some(&config_map("a", json!({})))).await;
    assert_eq!(made.code, 201);
    let meta = &made.body["metadata"];
    assert_eq!(meta["namespace"], "default");
    assert_eq!(meta["generation"], 1);
    assert!(
        meta["uid"].is_string()
            && meta["creationTimestamp"].is_string()
            && meta["resourceVersion"].is_string()
    );

    let again = call(&server, "POST", CM, JSON, Some(&config_map("a", json!({})))).await;
    assert_eq!(
        (
            again.code,
            again.body["kind"].clone(),
            again.body["reason"].clone()
        ),
        (409, json!("Status"), json!("AlreadyExists"))
    );

    let generated =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"generateName": "gen-"}});
    let made = call(&server, "POST", CM, JSON, Some(&generated)).await;
    let name = made.body["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let missing = get(&server, &format!("{CM}/nope")).await;
    assert_eq!(
        (missing.code, missing.body["reason"].clone()),
        (404, json!("NotFound"))
    );
    let wrong_ns = call(
        &server,
        "POST",
        "/api/v1/namespaces/other/configmaps",
        JSON,
        Some(&made.body),
    )
    .await;
    assert_eq!(wrong_ns.code, 400);
    let protobuf = call(
        &server,
        "POST",
        CM,
        "application/vnd.kubernetes.protobuf",
        Some(&config_map("p", json!({}))),
    )
    .await;
    // JSON labelled as protobuf: not a protobuf envelope.
    assert_eq!(
        (protobuf.code, protobuf.body["reason"].clone()),
        (400, json!("BadRequest"))
    );
}

/// PUT with a stale resourceVersion is a 409 Conflict; a current one wins
/// and bumps the version; a write that changes nothing keeps it.
#[tokio::test]
async fn update_uses_optimistic_concurrency() {
    let server = ApiServer::start().await.unwrap();
    let first = call(&server, "POST", CM, JSON, Some(&config_map("a", json!({}))))
        .await
        .body;
    let mut changed = first.clone();
    changed["data"]["k"] = json!("w");
    let updated = call(&server, "PUT", &format!("{CM}/a"), JSON, Some(&changed)).await;
    assert_eq!(updated.code, 200);
    assert!(rv(&updated.body) > rv(&first));
    let stale = call(&server, "PUT", &format!("{CM}/a"), JSON, Some(&changed)).await;
    assert_eq!(
        (stale.code, stale.body["reason"].clone()),
        (409, json!("Conflict"))
    );
    let same = call(
        &server,
        "PUT",
        &format!("{CM}/a"),
        JSON,
        Some(&updated.body),
    )
    .await;
    assert_eq!(rv(&same.body), rv(&updated.body));
}

/// Merge, JSON and strategic patches change the object; apply creates,
/// then replaces what its manager applied, and records its field manager.
#[tokio::test]
async fn patch_formats_and_server_side_apply() {
    let server = ApiServer::start().await.unwrap();
    call(
        &server,
        "POST",
        CM,
        JSON,
        Some(&config_map("a", json!({"x": "1"}))),
    )
    .await;
    let merged = call(
        &server,
        "PATCH",
        &format!("{CM}/a"),
        MERGE,
        Some(&json!({"data": {"k": null, "n": "2"}})),
    )
    .await;
    assert_eq!(merged.body["data"], json!({"n": "2"}));
    let ops = json!([{"op": "add", "path": "/data/j", "value": "3"}, {"op": "remove", "path": "/metadata/labels/x"}]);
    let patched = call(
        &server,
        "PATCH",
        &format!("{CM}/a"),
        "application/json-patch+json",
        Some(&ops),
    )
    .await;
    assert_eq!(patched.body["data"], json!({"n": "2", "j": "3"}));
    assert_eq!(patched.body["metadata"]["labels"], json!({}));
    let strategic = call(
        &server,
        "PATCH",
        &format!("{CM}/a"),
        "application/strategic-merge-patch+json",
        Some(&json!({"data": {"s": "4"}})),
    )
    .await;
    assert_eq!(strategic.body["data"]["s"], "4");
    let bad = call(
        &server,
        "PATCH",
        &format!("{CM}/a"),
        "text/plain",
        Some(&json!({})),
    )
    .await;
    assert_eq!(bad.code, 415);

    let apply_path = format!("{CM}/applied?fieldManager=tester&force=true");
    let yaml = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: \"1\"\n";
    let created = call_raw(&server, &apply_path, yaml).await;
    assert_eq!(created.code, 201, "{}", created.body);
    let again = call_raw(&server, &apply_path, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"applied\"},\"data\":{\"b\":\"2\"}}").await;
    // The manager stopped applying `a`, and nobody else owns it: it is removed.
    assert_eq!(again.body["data"], json!({"b": "2"}));
    let managers = again.body["metadata"]["managedFields"].as_array().unwrap();
    assert!(
        managers
            .iter()
            .any(|m| m["manager"] == "tester" && m["operation"] == "Apply"),
        "{managers:?}"
    );
    let no_manager = call(
        &server,
        "PATCH",
        &format!("{CM}/applied"),
        "application/apply-patch+yaml",
        Some(&config_map("applied", json!({}))),
    )
    .await;
    assert_eq!(no_manager.code, 422);
}

async fn call_raw(server: &ApiServer, path: &str, body: &str) -> apiserver_support::Answer {
    let client = tollgate_e2e::HttpClient::http1();
    let req = http::Request::patch(format!("{}{path}", server.url()))
        .header("content-type", "application/apply-patch+yaml")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let reply = client.send(req).await.unwrap();
    apiserver_support::Answer {
        code: reply.status.as_u16(),
        body: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    }
}

/// With a status subresource the main endpoint ignores `.status`, `/status`
/// changes only `.status`, and only spec changes bump `generation`.
#[tokio::test]
async fn status_subresource_and_generation() {
    let server = ApiServer::start().await.unwrap();
    server.create(widget_crd()).unwrap();
    let widget = json!({"apiVersion": "test.tollgate.dev/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1}, "status": {"ready": true}});
    let made = call(&server, "POST", WIDGETS, JSON, Some(&widget))
        .await
        .body;
    assert_eq!(made["status"], Value::Null, "status is dropped on create");

    let status = json!({"status": {"ready": true}, "spec": {"size": 99}, "metadata": {"labels": {"l": "x"}}});
    let after = call(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w/status"),
        MERGE,
        Some(&status),
    )
    .await
    .body;
    assert_eq!(
        (
            after["status"]["ready"].clone(),
            after["spec"]["size"].clone()
        ),
        (json!(true), json!(1))
    );
    assert_eq!(
        (
            after["metadata"]["generation"].clone(),
            after["metadata"]["labels"].clone()
        ),
        (json!(1), Value::Null)
    );

    let main = json!({"status": {"ready": false}, "metadata": {"labels": {"l": "x"}}});
    let after = call(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w"),
        MERGE,
        Some(&main),
    )
    .await
    .body;
    assert_eq!(
        (
            after["status"]["ready"].clone(),
            after["metadata"]["generation"].clone()
        ),
        (json!(true), json!(1))
    );
    let after = call(
        &server,
        "PATCH",
        &format!("{WIDGETS}/w"),
        MERGE,
        Some(&json!({"spec": {"size": 2}})),
    )
    .await
    .body;
    assert_eq!(after["metadata"]["generation"], 2);

    let old_version = get(
        &server,
        "/apis/test.tollgate.dev/v1alpha1/namespaces/default/widgets/w",
    )
    .await
    .body;
    assert_eq!(old_version["apiVersion"], "test.tollgate.dev/v1alpha1");
    assert_eq!(
        get(&server, "/api/v1/namespaces/default/configmaps/x/status")
            .await
            .code,
        404
    );
}

/// Deleting an object with finalizers only marks it; removing the last
/// finalizer deletes it.
#[tokio::test]
async fn finalizers_hold_deletion() {
    let server = ApiServer::start().await.unwrap();
    let mut cm = config_map("f", json!({}));
    cm["metadata"]["finalizers"] = json!(["tollgate.dev/test"]);
    call(&server, "POST", CM, JSON, Some(&cm)).await;
    let marked = call(&server, "DELETE", &format!("{CM}/f"), JSON, None).await;
    assert_eq!(marked.code, 200);
    assert!(marked.body["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(get(&server, &format!("{CM}/f")).await.code, 200);
    let released = call(
        &server,
        "PATCH",
        &format!("{CM}/f"),
        MERGE,
        Some(&json!({"metadata": {"finalizers": null}})),
    )
    .await;
    assert_eq!(released.code, 200);
    assert_eq!(get(&server, &format!("{CM}/f")).await.code, 404);
}
