//! Routing across the filter set through the real binaries: manifests in a
//! folder, `tollgate-controller --with-dataplane`, real echo backends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::*;
use http::Method;
use std::collections::BTreeMap;
use std::time::Duration;
use tollgate_e2e::{Echo, HttpClient};

fn routes() -> String {
    "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: matches, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /admin}}]
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /m}, headers: [{name: X-Env, value: canary}]}]
    backendRefs: [{name: echo-b, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /m}, queryParams: [{name: v, value: '2'}]}]
    backendRefs: [{name: echo-b, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /m}, method: POST}]
    backendRefs: [{name: echo-b, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /m}}]
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: RegularExpression, value: '/items/[0-9]+'}}]
    backendRefs: [{name: echo-b, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: filters, namespace: default}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /headers}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        add: [{name: X-Added, value: one}]
        set: [{name: X-Set, value: two}]
        remove: [X-Remove]
    - type: ResponseHeaderModifier
      responseHeaderModifier:
        set: [{name: X-Resp, value: three}]
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /old}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {scheme: https, statusCode: 302, path: {type: ReplacePrefixMatch, replacePrefixMatch: /new}}
  - matches: [{path: {type: PathPrefix, value: /api}}]
    filters:
    - type: URLRewrite
      urlRewrite: {hostname: internal.example, path: {type: ReplacePrefixMatch, replacePrefixMatch: /v2}}
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /mirror}}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: echo-c, port: 80}}
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /cors}}]
    filters:
    - type: CORS
      cors:
        allowOrigins: ['https://app.example.com']
        allowMethods: [GET, PUT]
        allowHeaders: [X-Token]
        maxAge: 600
    backendRefs: [{name: echo-a, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /split}}]
    backendRefs:
    - {name: echo-a, port: 80, weight: 90}
    - {name: echo-b, port: 80, weight: 10}
  - matches: [{path: {type: PathPrefix, value: /missing}}]
    backendRefs: [{name: no-such-service, port: 80}]
  - matches: [{path: {type: PathPrefix, value: /empty}}]
    backendRefs: [{name: no-endpoints, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: no-endpoints, namespace: default}
spec:
  ports: [{name: http, port: 80}]
"
    .to_string()
}

/// Every kind of match and filter works through the real binaries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn matches_and_filters_through_the_binaries() {
    let a = Echo::start("echo-a").await.unwrap();
    let b = Echo::start("echo-b").await.unwrap();
    let mut c = Echo::start("echo-c").await.unwrap();
    let dir = manifest_dir("routing");
    write(&dir, "base.yaml", &base("gw", "127.0.0.1", &[&a, &b, &c]));
    write(&dir, "routes.yaml", &routes());
    let ctl = start_controller(&dir, true).await;
    let gw = ctl.gateway.clone();
    let client = HttpClient::http1();
    let service = |r: &tollgate_e2e::Reply| r.echo().map(|e| e.service).unwrap_or_default();

    // Matches: exact, header, query, method, regex, default.
    let get = |path: &str, headers: &[(&str, &str)]| {
        let url = format!("{gw}{path}");
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let client = client.clone();
        async move {
            let h: Vec<(&str, &str)> = headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            client.request(Method::GET, &url, &h).await.unwrap()
        }
    };
    assert_eq!(service(&get("/admin", &[]).await), "echo-a");
    assert_eq!(get("/admin/x", &[]).await.status, 404, "Exact is exact");
    assert_eq!(service(&get("/m", &[("X-Env", "canary")]).await), "echo-b");
    assert_eq!(service(&get("/m?v=2", &[]).await), "echo-b");
    assert_eq!(service(&get("/m", &[]).await), "echo-a");
    let post = client
        .request(Method::POST, &format!("{gw}/m"), &[])
        .await
        .unwrap();
    assert_eq!(service(&post), "echo-b");
    assert_eq!(service(&get("/items/42", &[]).await), "echo-b");
    assert_eq!(get("/items/x", &[]).await.status, 404);

    // Normalization happens before routing: no way around an Exact match.
    let dotted = get("/public/../admin", &[]).await;
    assert_eq!(service(&dotted), "echo-a");
    assert_eq!(dotted.echo().unwrap().path, "/admin");
    assert_eq!(service(&get("/%61dmin", &[]).await), "echo-a");
    assert_eq!(get("/a%2Fb", &[]).await.status, 400);

    // Header modifiers.
    let r = get("/headers", &[("X-Remove", "gone"), ("X-Set", "old")]).await;
    let e = r.echo().unwrap();
    assert_eq!(e.header("X-Added"), Some("one"));
    assert_eq!(e.header("X-Set"), Some("two"));
    assert_eq!(e.header("X-Remove"), None);
    assert_eq!(r.header("x-resp"), Some("three"));

    // Redirect: scheme https, well-known port left out, prefix replaced.
    let r = get("/old/page?q=1", &[("Host", "shop.example.com")]).await;
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://shop.example.com/new/page?q=1")
    );

    // Rewrite: host and path prefix.
    let e = get("/api/users", &[]).await.echo().unwrap();
    assert_eq!(e.path, "/v2/users");
    assert_eq!(e.host, "internal.example");

    // Mirror: the copy reaches echo-c while echo-a answers.
    assert_eq!(service(&get("/mirror/one", &[]).await), "echo-a");
    let mut mirrored = false;
    for _ in 0..100 {
        if c.proc().log().contains("/mirror/one") {
            mirrored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(mirrored, "the mirror backend never saw the request");

    // CORS preflight is answered by the gateway.
    let pre = client
        .request(
            Method::OPTIONS,
            &format!("{gw}/cors"),
            &[
                ("Origin", "https://app.example.com"),
                ("Access-Control-Request-Method", "PUT"),
            ],
        )
        .await
        .unwrap();
    assert!(pre.status.is_success(), "{}", pre.status);
    assert_eq!(
        pre.header("access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(pre.echo.is_none(), "a preflight must not reach the backend");

    // Weighted split: exactly 90/10 over 100 requests.
    let mut counts = BTreeMap::new();
    for _ in 0..100 {
        *counts
            .entry(service(&get("/split", &[]).await))
            .or_insert(0) += 1;
    }
    assert_eq!(counts.get("echo-a"), Some(&90), "{counts:?}");
    assert_eq!(counts.get("echo-b"), Some(&10), "{counts:?}");

    // Unresolvable backends: 500 for a missing Service, 503 for no endpoints.
    let r = get("/missing", &[]).await;
    assert_eq!(r.status, 500);
    assert!(r.echo.is_none());
    assert_eq!(get("/empty", &[]).await.status, 503);
    let status = object_status(&ctl.admin, "HTTPRoute", "filters").await;
    let resolved = condition(
        &status["status"]["parents"][0]["conditions"],
        "ResolvedRefs",
    );
    assert_eq!(resolved["reason"], "BackendNotFound", "{status:#}");

    // No route: 404 made by the gateway, not shaped like a backend answer.
    let r = get("/nothing-here", &[]).await;
    assert_eq!(r.status, 404);
    assert!(
        r.header("content-type")
            .unwrap_or("")
            .starts_with("text/plain")
    );
}
