//! Raw HTTP helpers for the API server tests: JSON calls and watch streams
//! read line by line, so tests see exactly what the server sends.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::time::Duration;
use tollgate_e2e::HttpClient;
use tollgate_e2e::apiserver::ApiServer;

/// A JSON answer: status code and body (`Null` when not JSON).
pub struct Answer {
    pub code: u16,
    pub body: Value,
}

/// Sends `method path` with an optional body of `content_type`.
pub async fn call(
    server: &ApiServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<&Value>,
) -> Answer {
    call_with(
        server,
        method,
        path,
        &[("content-type", content_type)],
        body,
    )
    .await
}

/// Like [`call`], with any headers.
pub async fn call_with(
    server: &ApiServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&Value>,
) -> Answer {
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(format!("{}{path}", server.url()))
        .header("user-agent", "apiserver-test/1.0");
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let body = body.map(|b| Bytes::from(b.to_string())).unwrap_or_default();
    let reply = HttpClient::http1()
        .send(builder.body(Full::new(body)).unwrap())
        .await
        .unwrap();
    Answer {
        code: reply.status.as_u16(),
        body: serde_json::from_slice(&reply.body).unwrap_or(Value::Null),
    }
}

/// GET `path` as JSON.
pub async fn get(server: &ApiServer, path: &str) -> Answer {
    call(server, "GET", path, "application/json", None).await
}

/// Opens `path` (a watch) and reads event lines until `want` lines arrived,
/// the stream ended, or `wait` passed.
pub async fn watch(
    server: &ApiServer,
    path: &str,
    accept: &str,
    want: usize,
    wait: Duration,
) -> (Vec<Value>, bool) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let req = Request::get(format!("{}{path}", server.url()))
        .header("accept", accept)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), 200, "watch {path}");
    let mut body = resp.into_body();
    let (mut lines, mut pending) = (Vec::new(), Vec::new());
    let deadline = tokio::time::Instant::now() + wait;
    while lines.len() < want {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (lines, false),
            Ok(None) | Ok(Some(Err(_))) => return (lines, true),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                lines.push(serde_json::from_slice(&line).unwrap());
            }
        }
    }
    (lines, false)
}

/// `type` and `metadata.name` of each watch event.
pub fn events(lines: &[Value]) -> Vec<(String, String)> {
    lines
        .iter()
        .map(|l| {
            let name = l
                .pointer("/object/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            (
                l["type"].as_str().unwrap_or_default().to_string(),
                name.to_string(),
            )
        })
        .collect()
}

/// `(type, name)` pairs from string slices.
pub fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect()
}

/// `metadata.resourceVersion` as a number.
pub fn rv(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .unwrap()
        .parse()
        .unwrap()
}

/// A ConfigMap manifest.
pub fn config_map(name: &str, labels: Value) -> Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels}, "data": {"k": "v"}})
}

/// A minimal namespaced CRD `widgets.test.tollgate.dev` with a status subresource.
pub fn widget_crd() -> Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.test.tollgate.dev"},
        "spec": {"group": "test.tollgate.dev", "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "shortNames": ["wd"], "listKind": "WidgetList"},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
                {"name": "v1alpha1", "served": true, "storage": false,
                 "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}
    })
}

/// A namespaced CRD `gadgets.test.tollgate.dev` with a real structural
/// schema: types, `required`, `enum`, `pattern`, `maxItems`, a default, a
/// set list, keyed lists (`spec.ports` by `name`, `status.conditions` by
/// `type`) and CEL rules, one of them a transition rule and one that uses
/// `cel.bind`.
pub fn gadget_crd() -> Value {
    let conditions = serde_json::json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {"type": "object", "required": ["type", "status"], "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"}}}});
    let spec = serde_json::json!({"type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer", "minimum": 1, "maximum": 10},
        "color": {"type": "string", "enum": ["red", "blue"], "default": "red"},
        "name": {"type": "string", "pattern": "^[a-z]+$", "maxLength": 10},
        "tags": {"type": "array", "maxItems": 3, "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "port": {"type": "integer"}}}},
        "url": {"type": "string"},
        "min": {"type": "integer"},
        "max": {"type": "integer"},
        "bound": {"type": "integer"},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}}},
        "x-kubernetes-validations": [
            {"rule": "!has(self.min) || !has(self.max) || self.min <= self.max", "message": "min must not exceed max"},
            {"rule": "!has(self.url) || isURL(self.url)", "message": "url must be a URL"},
            {"rule": "self.size >= oldSelf.size", "message": "size may not shrink"},
            {"rule": "!has(self.bound) || cel.bind(b, self.bound, b > 0)", "message": "bound must be positive"}]});
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.test.tollgate.dev"},
        "spec": {"group": "test.tollgate.dev", "scope": "Namespaced",
            "names": {"kind": "Gadget", "plural": "gadgets", "singular": "gadget", "listKind": "GadgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec,
                    "status": {"type": "object", "properties": {"conditions": conditions}}}}}}]}
    })
}

/// A Gadget manifest with `spec`.
pub fn gadget(name: &str, spec: Value) -> Value {
    serde_json::json!({"apiVersion": "test.tollgate.dev/v1", "kind": "Gadget",
        "metadata": {"name": name}, "spec": spec})
}

/// Server-side applies `body` to `path` as `manager` (forced when `force`).
pub async fn apply(
    server: &ApiServer,
    path: &str,
    manager: &str,
    force: bool,
    body: &Value,
) -> Answer {
    let path = format!("{path}?fieldManager={manager}&force={force}");
    call(
        server,
        "PATCH",
        &path,
        "application/apply-patch+yaml",
        Some(body),
    )
    .await
}

/// The managers and their `fieldsV1` in `object`'s `managedFields`.
pub fn managers(object: &Value) -> Vec<(String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or_default().to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}
