//! The test API server refuses what a real one refuses: a PUT of a custom
//! resource without `resourceVersion`, names a kind does not allow, objects
//! in a namespace that does not exist (or is being deleted), and new
//! finalizers on an object being deleted. Core and `events.k8s.io` Events
//! are one collection served in both shapes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support::{call, config_map, gadget, gadget_crd, get};
use serde_json::json;
use tollgate_e2e::apiserver::ApiServer;

const JSON: &str = "application/json";
const MERGE: &str = "application/merge-patch+json";
const GADGETS: &str = "/apis/test.tollgate.dev/v1/namespaces/default/gadgets";

/// A PUT of a custom resource must carry `resourceVersion` (422 without);
/// built-in kinds like ConfigMap allow an unconditional PUT.
#[tokio::test]
async fn put_of_custom_resource_needs_resource_version() {
    let server = ApiServer::start().await.unwrap();
    server.create(gadget_crd()).unwrap();
    let made = call(
        &server,
        "POST",
        GADGETS,
        JSON,
        Some(&gadget("g", json!({"size": 1}))),
    )
    .await;
    assert_eq!(made.code, 201, "{}", made.body);
    let mut body = made.body.clone();
    body["spec"]["size"] = json!(2);
    body["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("resourceVersion");
    let refused = call(&server, "PUT", &format!("{GADGETS}/g"), JSON, Some(&body)).await;
    assert_eq!(
        (refused.code, refused.body["reason"].clone()),
        (422, json!("Invalid"))
    );
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("metadata.resourceVersion"),
        "{}",
        refused.body
    );
    body["metadata"]["resourceVersion"] = made.body["metadata"]["resourceVersion"].clone();
    assert_eq!(
        call(&server, "PUT", &format!("{GADGETS}/g"), JSON, Some(&body))
            .await
            .code,
        200
    );

    let cm = "/api/v1/namespaces/default/configmaps";
    call(&server, "POST", cm, JSON, Some(&config_map("c", json!({})))).await;
    let unconditional = call(
        &server,
        "PUT",
        &format!("{cm}/c"),
        JSON,
        Some(&config_map("c", json!({}))),
    )
    .await;
    assert_eq!(unconditional.code, 200, "{}", unconditional.body);
}

/// Names follow the kind's rule: DNS subdomain for most, DNS label for
/// Namespaces, RFC 1035 label for Services, `<plural>.<group>` for CRDs.
#[tokio::test]
async fn names_are_validated_per_kind() {
    let server = ApiServer::start().await.unwrap();
    let post = |path: &'static str, body: serde_json::Value| {
        let server = &server;
        async move { call(server, "POST", path, JSON, Some(&body)).await }
    };
    let cm = |name: &str| config_map(name, json!({}));
    let cms = "/api/v1/namespaces/default/configmaps";
    assert_eq!(post(cms, cm("a.b-c")).await.code, 201);
    for bad in ["Bad_Name", "-a", "a..b"] {
        let answer = post(cms, cm(bad)).await;
        assert_eq!(answer.code, 422, "{bad}: {}", answer.body);
        assert!(
            answer.body["message"]
                .as_str()
                .unwrap()
                .contains("RFC 1123 subdomain")
        );
    }
    let ns =
        |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
    assert_eq!(post("/api/v1/namespaces", ns("a.b")).await.code, 422);
    assert_eq!(post("/api/v1/namespaces", ns("ab")).await.code, 201);
    let svc =
        |name: &str| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}});
    assert_eq!(
        post("/api/v1/namespaces/default/services", svc("1abc"))
            .await
            .code,
        422
    );
    assert_eq!(
        post("/api/v1/namespaces/default/services", svc("abc"))
            .await
            .code,
        201
    );
    let mut crd = gadget_crd();
    crd["metadata"]["name"] = json!("gadgets");
    let answer = post(
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
        crd,
    )
    .await;
    assert_eq!(answer.code, 422, "{}", answer.body);
    let labelled = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "l", "labels": {"a": "not ok"}}});
    assert_eq!(post(cms, labelled).await.code, 422);
}

/// Namespaced objects need their Namespace: 404 when it is missing, 403
/// while it is being deleted. The usual namespaces exist from the start.
#[tokio::test]
async fn namespaces_must_exist() {
    let server = ApiServer::start().await.unwrap();
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
        assert_eq!(
            get(&server, &format!("/api/v1/namespaces/{ns}")).await.code,
            200,
            "{ns}"
        );
    }
    let path = "/api/v1/namespaces/team/configmaps";
    let missing = call(
        &server,
        "POST",
        path,
        JSON,
        Some(&config_map("a", json!({}))),
    )
    .await;
    assert_eq!(
        (missing.code, missing.body["message"].clone()),
        (404, json!("namespaces \"team\" not found"))
    );
    let apply = call(
        &server,
        "PATCH",
        "/api/v1/namespaces/team/configmaps/a?fieldManager=t",
        "application/apply-patch+yaml",
        Some(&config_map("a", json!({}))),
    )
    .await;
    assert_eq!(apply.code, 404, "apply creates need the namespace too");

    let ns = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team", "finalizers": ["tollgate.dev/hold"]}});
    assert_eq!(
        call(&server, "POST", "/api/v1/namespaces", JSON, Some(&ns))
            .await
            .code,
        201
    );
    assert_eq!(
        call(
            &server,
            "POST",
            path,
            JSON,
            Some(&config_map("a", json!({})))
        )
        .await
        .code,
        201
    );
    call(&server, "DELETE", "/api/v1/namespaces/team", JSON, None).await;
    let terminating = call(
        &server,
        "POST",
        path,
        JSON,
        Some(&config_map("b", json!({}))),
    )
    .await;
    assert_eq!(
        (terminating.code, terminating.body["reason"].clone()),
        (403, json!("Forbidden"))
    );
}

/// No finalizer may be added once an object is being deleted; removing
/// the last one still deletes it.
#[tokio::test]
async fn no_new_finalizers_while_deleting() {
    let server = ApiServer::start().await.unwrap();
    let cms = "/api/v1/namespaces/default/configmaps";
    let mut cm = config_map("f", json!({}));
    cm["metadata"]["finalizers"] = json!(["tollgate.dev/a"]);
    call(&server, "POST", cms, JSON, Some(&cm)).await;
    call(&server, "DELETE", &format!("{cms}/f"), JSON, None).await;
    let add = json!({"metadata": {"finalizers": ["tollgate.dev/a", "tollgate.dev/b"]}});
    let refused = call(&server, "PATCH", &format!("{cms}/f"), MERGE, Some(&add)).await;
    assert_eq!(refused.code, 422, "{}", refused.body);
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap()
            .contains("no new finalizers can be added if the object is being deleted"),
        "{}",
        refused.body
    );
    let release = json!({"metadata": {"finalizers": null}});
    assert_eq!(
        call(&server, "PATCH", &format!("{cms}/f"), MERGE, Some(&release))
            .await
            .code,
        200
    );
    assert_eq!(get(&server, &format!("{cms}/f")).await.code, 404);
}

/// An Event written through either API is read through both, with the
/// field names of each.
#[tokio::test]
async fn core_and_events_api_events_are_one_collection() {
    let server = ApiServer::start().await.unwrap();
    let core = "/api/v1/namespaces/default/events";
    let new = "/apis/events.k8s.io/v1/namespaces/default/events";
    let event = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"},
        "involvedObject": {"kind": "ConfigMap", "name": "c", "namespace": "default"},
        "message": "hello", "reason": "Tested", "count": 3, "type": "Normal",
        "source": {"component": "test"}, "reportingComponent": "tollgate"});
    assert_eq!(
        call(&server, "POST", core, JSON, Some(&event)).await.code,
        201
    );
    let seen = get(&server, &format!("{new}/e1")).await.body;
    assert_eq!(seen["apiVersion"], "events.k8s.io/v1");
    assert_eq!(
        (
            &seen["regarding"]["name"],
            &seen["note"],
            &seen["deprecatedCount"],
            &seen["reportingController"]
        ),
        (&json!("c"), &json!("hello"), &json!(3), &json!("tollgate"))
    );
    assert_eq!(seen["deprecatedSource"]["component"], "test");
    assert!(seen.get("message").is_none() && seen.get("involvedObject").is_none());

    let event = json!({"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e2"},
        "regarding": {"kind": "Pod", "name": "p"}, "note": "new style", "reason": "R", "action": "A",
        "reportingController": "tollgate", "reportingInstance": "i", "type": "Normal",
        "eventTime": "2026-01-01T00:00:00.000000Z"});
    assert_eq!(
        call(&server, "POST", new, JSON, Some(&event)).await.code,
        201
    );
    let list = get(&server, core).await.body;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let e2 = items
        .iter()
        .find(|e| e["metadata"]["name"] == "e2")
        .unwrap();
    assert_eq!(
        (&e2["message"], &e2["involvedObject"]["name"]),
        (&json!("new style"), &json!("p"))
    );
    let selected = get(&server, &format!("{new}?fieldSelector=regarding.name%3Dp"))
        .await
        .body;
    assert_eq!(selected["items"].as_array().unwrap().len(), 1, "{selected}");
    let patched = call(
        &server,
        "PATCH",
        &format!("{new}/e1"),
        MERGE,
        Some(&json!({"note": "changed"})),
    )
    .await;
    assert_eq!(patched.body["note"], "changed");
    assert_eq!(
        get(&server, &format!("{core}/e1")).await.body["message"],
        "changed"
    );
}
