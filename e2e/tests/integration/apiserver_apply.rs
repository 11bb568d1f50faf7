//! Server-side apply on the test API server behaves like the real one:
//! `managedFields` record who owns what, a field another manager owns is a
//! 409 unless forced, fields a manager stops applying are removed, and
//! keyed lists merge item by item.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support::{apply, call, gadget, gadget_crd, get, managers};
use serde_json::{Value, json};
use tollgate_e2e::apiserver::ApiServer;

const GADGETS: &str = "/apis/test.tollgate.dev/v1/namespaces/default/gadgets";

async fn server_with_gadgets() -> ApiServer {
    let server = ApiServer::start().await.unwrap();
    server.create(gadget_crd()).unwrap();
    server
}

fn fields_of<'a>(list: &'a [(String, Value)], manager: &str) -> &'a Value {
    &list.iter().find(|(m, _)| m == manager).unwrap().1
}

/// Two appliers share a field they set to the same value; changing a
/// field the other owns is a 409 naming the owner and the field, until forced.
#[tokio::test]
async fn apply_conflicts_unless_forced() {
    let server = server_with_gadgets().await;
    let path = format!("{GADGETS}/g");
    let a = apply(
        &server,
        &path,
        "alice",
        false,
        &gadget("g", json!({"size": 1, "name": "x"})),
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let shared = apply(
        &server,
        &path,
        "bob",
        false,
        &gadget("g", json!({"size": 1})),
    )
    .await;
    assert_eq!(shared.code, 200, "same value, no conflict: {}", shared.body);

    let clash = apply(
        &server,
        &path,
        "bob",
        false,
        &gadget("g", json!({"size": 2, "name": "y"})),
    )
    .await;
    assert_eq!(
        (clash.code, clash.body["reason"].clone()),
        (409, json!("Conflict"))
    );
    let message = clash.body["message"].as_str().unwrap();
    assert!(
        message.starts_with("Apply failed with 2 conflicts")
            && message.contains("conflict with \"alice\" using test.tollgate.dev/v1: .spec.name")
            && message.contains(".spec.size"),
        "{message}"
    );
    assert_eq!(
        get(&server, &path).await.body["spec"]["size"],
        1,
        "nothing written"
    );

    let forced = apply(
        &server,
        &path,
        "bob",
        true,
        &gadget("g", json!({"size": 2, "name": "y"})),
    )
    .await;
    assert_eq!(forced.code, 200, "{}", forced.body);
    assert_eq!(forced.body["spec"]["size"], 2);
    let owners = managers(&forced.body);
    assert_eq!(
        fields_of(&owners, "bob")["f:spec"],
        json!({"f:name": {}, "f:size": {}})
    );
    assert!(
        owners.iter().all(|(m, _)| m != "alice"),
        "alice lost every field she had: {owners:?}"
    );
}

/// A field its manager stops applying is removed, unless another manager
/// still owns it; keyed lists and sets merge item by item.
#[tokio::test]
async fn apply_removes_fields_no_longer_applied_and_merges_lists() {
    let server = server_with_gadgets().await;
    let path = format!("{GADGETS}/g");
    let first =
        json!({"size": 1, "name": "x", "tags": ["a"], "ports": [{"name": "http", "port": 80}]});
    assert_eq!(
        apply(&server, &path, "alice", false, &gadget("g", first))
            .await
            .code,
        201
    );
    let other = json!({"size": 1, "tags": ["b"], "ports": [{"name": "admin", "port": 9000}]});
    let merged = apply(&server, &path, "bob", false, &gadget("g", other))
        .await
        .body;
    assert_eq!(merged["spec"]["tags"], json!(["a", "b"]));
    assert_eq!(
        merged["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "admin", "port": 9000}])
    );
    let owners = managers(&merged);
    assert_eq!(
        fields_of(&owners, "bob")["f:spec"]["f:ports"],
        json!({"k:{\"name\":\"admin\"}": {".": {}, "f:name": {}, "f:port": {}}})
    );
    assert_eq!(
        fields_of(&owners, "bob")["f:spec"]["f:tags"],
        json!({"v:\"b\"": {}})
    );

    // alice drops name, tag "a" and port "http"; size is still bob's too.
    let smaller = apply(
        &server,
        &path,
        "alice",
        false,
        &gadget("g", json!({"size": 1})),
    )
    .await
    .body;
    assert_eq!(
        smaller["spec"],
        json!({"size": 1, "color": "red", "tags": ["b"], "ports": [{"name": "admin", "port": 9000}]}),
        "only what nobody applies any more is gone"
    );
}

/// Status conditions keyed by `type` are owned per condition: two writers
/// keep each other's conditions, and one dropping its own removes only it.
#[tokio::test]
async fn status_conditions_merge_by_type() {
    let server = server_with_gadgets().await;
    call(
        &server,
        "POST",
        GADGETS,
        "application/json",
        Some(&gadget("g", json!({"size": 1}))),
    )
    .await;
    let status = |conditions: Value| {
        json!({"apiVersion": "test.tollgate.dev/v1", "kind": "Gadget", "metadata": {"name": "g"},
            "status": {"conditions": conditions}})
    };
    let path = format!("{GADGETS}/g/status");
    let ready = json!([{"type": "Ready", "status": "True"}]);
    assert_eq!(
        apply(&server, &path, "ctrl", false, &status(ready))
            .await
            .code,
        200
    );
    let other = json!([{"type": "Other", "status": "False"}]);
    let both = apply(&server, &path, "other", false, &status(other))
        .await
        .body;
    let types = |o: &Value| -> Vec<String> {
        o["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(types(&both), ["Ready", "Other"]);
    let entry = both["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "ctrl")
        .unwrap()
        .clone();
    assert_eq!(entry["subresource"], "status");

    let flipped = apply(
        &server,
        &path,
        "other",
        false,
        &status(json!([{"type": "Ready", "status": "False"}])),
    )
    .await;
    assert_eq!(flipped.code, 409, "Ready is ctrl's: {}", flipped.body);
    let dropped = apply(&server, &path, "ctrl", false, &status(json!([])))
        .await
        .body;
    assert_eq!(types(&dropped), ["Other"]);
}

/// Built-in kinds merge their keyed lists too: Service ports by port and
/// protocol. Updates (PUT, merge patch) take fields over without conflict.
#[tokio::test]
async fn builtin_keyed_lists_and_updates_take_ownership() {
    let server = ApiServer::start().await.unwrap();
    let path = "/api/v1/namespaces/default/services/s";
    let service = |ports: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": ports}});
    let a = apply(
        &server,
        path,
        "a",
        false,
        &service(json!([{"port": 80, "protocol": "TCP", "name": "http"}])),
    )
    .await;
    assert_eq!(a.code, 201, "{}", a.body);
    let b = apply(
        &server,
        path,
        "b",
        false,
        &service(json!([{"port": 443, "protocol": "TCP", "name": "https"}])),
    )
    .await;
    assert_eq!(
        b.body["spec"]["ports"].as_array().unwrap().len(),
        2,
        "{}",
        b.body
    );

    let patched = call(
        &server,
        "PATCH",
        &format!("{path}?fieldManager=editor"),
        "application/merge-patch+json",
        Some(&json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .body;
    let owners = managers(&patched);
    assert_eq!(
        fields_of(&owners, "editor"),
        &json!({"f:metadata": {"f:labels": {"f:x": {}}}})
    );
    let relabel = apply(
        &server,
        path,
        "a",
        false,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "labels": {"x": "z"}},
            "spec": {"ports": [{"port": 80, "protocol": "TCP", "name": "http"}]}}),
    )
    .await;
    assert_eq!(relabel.code, 409, "{}", relabel.body);
}
