//! Custom resources are checked against their CRD's schema as a real API
//! server checks them: unknown fields pruned (or refused under
//! `fieldValidation=Strict`), defaults applied, OpenAPI keywords enforced,
//! and `x-kubernetes-validations` CEL rules evaluated, transition rules
//! included. Rules the server cannot evaluate are listed, not hidden.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support::{apply, call, gadget, gadget_crd};
use serde_json::{Value, json};
use tollgate_e2e::apiserver::ApiServer;

const GADGETS: &str = "/apis/test.tollgate.dev/v1/namespaces/default/gadgets";
const JSON: &str = "application/json";

async fn server_with_gadgets() -> ApiServer {
    let server = ApiServer::start().await.unwrap();
    server.create(gadget_crd()).unwrap();
    server
}

fn message(body: &Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// Unknown fields are dropped by default and refused under Strict;
/// defaults fill what is missing.
#[tokio::test]
async fn unknown_fields_pruned_or_refused_and_defaults_applied() {
    let server = server_with_gadgets().await;
    let body = gadget(
        "a",
        json!({"size": 1, "extra": true, "free": {"anything": [1]}}),
    );
    let made = call(&server, "POST", GADGETS, JSON, Some(&body)).await;
    assert_eq!(made.code, 201, "{}", made.body);
    assert_eq!(
        made.body["spec"],
        json!({"size": 1, "color": "red", "free": {"anything": [1]}})
    );

    let strict = call(
        &server,
        "POST",
        &format!("{GADGETS}?fieldValidation=Strict"),
        JSON,
        Some(&gadget("b", json!({"size": 1, "extra": true}))),
    )
    .await;
    assert_eq!(strict.code, 400, "{}", strict.body);
    assert_eq!(
        message(&strict.body),
        "strict decoding error: unknown field \"spec.extra\""
    );
    let applied = call(
        &server,
        "PATCH",
        &format!("{GADGETS}/b?fieldManager=t&fieldValidation=Strict"),
        "application/apply-patch+yaml",
        Some(&gadget("b", json!({"size": 1, "extra": true}))),
    )
    .await;
    assert_eq!(
        applied.code, 400,
        "server-side apply is strict too: {}",
        applied.body
    );
}

/// Types, required fields, enums, patterns, bounds and maxItems are enforced.
#[tokio::test]
async fn openapi_keywords_are_enforced() {
    let server = server_with_gadgets().await;
    let cases = [
        (
            json!({"size": "1"}),
            "spec.size: Invalid value: \"string\": spec.size in body must be of type integer",
        ),
        (json!({}), "spec.size: Required value"),
        (
            json!({"size": 1, "color": "green"}),
            "spec.color: Unsupported value: \"green\": supported values: \"red\", \"blue\"",
        ),
        (
            json!({"size": 1, "name": "ABC"}),
            "spec.name in body should match '^[a-z]+$'",
        ),
        (
            json!({"size": 11}),
            "spec.size in body should be less than or equal to 10",
        ),
        (
            json!({"size": 1, "tags": ["a", "b", "c", "d"]}),
            "spec.tags: Too many: 4: must have at most 3 items",
        ),
        (
            json!({"size": 1, "ports": [{"name": "a"}, {"name": "a"}]}),
            "spec.ports[1]: Duplicate value",
        ),
    ];
    for (i, (spec, want)) in cases.into_iter().enumerate() {
        let answer = call(
            &server,
            "POST",
            GADGETS,
            JSON,
            Some(&gadget(&format!("g{i}"), spec.clone())),
        )
        .await;
        assert_eq!(
            (answer.code, answer.body["reason"].clone()),
            (422, json!("Invalid")),
            "{spec}: {}",
            answer.body
        );
        assert!(
            message(&answer.body).contains(want),
            "{spec}: {}",
            message(&answer.body)
        );
    }
    assert_eq!(
        call(
            &server,
            "POST",
            GADGETS,
            JSON,
            Some(&gadget("ok", json!({"size": 1})))
        )
        .await
        .code,
        201
    );
    let status = json!({"apiVersion": "test.tollgate.dev/v1", "kind": "Gadget", "metadata": {"name": "ok"},
        "status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}});
    let bad_status = apply(
        &server,
        &format!("{GADGETS}/ok/status"),
        "ctrl",
        false,
        &status,
    )
    .await;
    assert_eq!(
        bad_status.code, 422,
        "status writes are validated: {}",
        bad_status.body
    );
}

/// CEL rules reject what they say, transition rules compare with the
/// stored object, and a rule the server cannot evaluate is listed.
#[tokio::test]
async fn cel_rules_are_evaluated() {
    let server = server_with_gadgets().await;
    let post = |name: &str, spec: Value| {
        let body = gadget(name, spec);
        let server = &server;
        async move { call(server, "POST", GADGETS, JSON, Some(&body)).await }
    };
    let minmax = post("a", json!({"size": 1, "min": 5, "max": 2})).await;
    assert_eq!(minmax.code, 422, "{}", minmax.body);
    assert!(
        message(&minmax.body).contains("spec: Invalid value: \"object\": min must not exceed max"),
        "{}",
        minmax.body
    );
    let url = post("b", json!({"size": 1, "url": "not a url"})).await;
    assert!(
        message(&url.body).contains("url must be a URL"),
        "{}",
        url.body
    );
    assert_eq!(
        post(
            "c",
            json!({"size": 5, "url": "https://example.com/x", "min": 1, "max": 2})
        )
        .await
        .code,
        201
    );

    let shrink = call(
        &server,
        "PATCH",
        &format!("{GADGETS}/c"),
        "application/merge-patch+json",
        Some(&json!({"spec": {"size": 3}})),
    )
    .await;
    assert_eq!(shrink.code, 422, "{}", shrink.body);
    assert!(
        message(&shrink.body).contains("size may not shrink"),
        "{}",
        shrink.body
    );

    // cel.bind is beyond the CEL crate: the rule is not enforced, but listed.
    assert_eq!(post("d", json!({"size": 1, "bound": -1})).await.code, 201);
    let unevaluable = server.unevaluable_rules();
    let rules: Vec<(&str, &str, &str)> = unevaluable
        .iter()
        .map(|u| (u.resource.as_str(), u.path.as_str(), u.rule.as_str()))
        .collect();
    assert_eq!(
        rules,
        [(
            "gadgets.test.tollgate.dev/v1",
            "spec",
            "!has(self.bound) || cel.bind(b, self.bound, b > 0)"
        )]
    );
}
