//! `Compiler` (route results memoized between compiles) against `compile`
//! from scratch, over a sequence of edits of the kinds a route's result
//! depends on. Each view shares unchanged objects with the previous one,
//! as the providers do, so the memo really is exercised.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may unwrap

use serde::Deserialize;
use tollgate_compile::resources::Resources;
use tollgate_compile::{CompileOptions, Compiler, compile};

const GATEWAY_AND_ROUTES: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: tollgate}
spec: {controllerName: tollgate.dev/gateway-controller}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: shop}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: apps, generation: 1}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a}}]
    backendRefs: [{name: echo, port: 80}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 80}}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: c, namespace: shop}
spec:
  parentRefs: [{name: gw, namespace: apps, sectionName: shop}]
  hostnames: [cart.example.com]
  rules:
  - backendRefs: [{name: cart, port: 80}]
---
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: a, namespace: apps, generation: 1}
spec:
  parentRefs: [{name: gw, sectionName: shop}]
  hostnames: [grpc.example.com]
  rules:
  - matches: [{method: {service: echo.Echo}}]
    backendRefs: [{name: echo, port: 80}]
"#;

/// Route `apps/b`, to a Service in another namespace.
pub(crate) const ROUTE_B: &str = r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: b, namespace: apps}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: Exact, value: /b}}]
    backendRefs: [{name: echo, namespace: backends, port: 80}]
"#;

/// Gateway `apps/gw` whose first listener is `http` (a flow mapping), and
/// a `shop` listener for namespaces labelled `team: shop`.
fn gateway(http: &str) -> String {
    format!(
        r#"---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {{name: gw, namespace: apps}}
spec:
  gatewayClassName: tollgate
  listeners:
  - {http}
  - name: shop
    protocol: HTTP
    port: 8080
    hostname: "*.example.com"
    allowedRoutes:
      namespaces:
        from: Selector
        selector: {{matchLabels: {{team: shop}}}}
"#
    )
}

const GRANT: &str = r#"
apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: {name: apps-to-echo, namespace: backends}
spec:
  from: [{group: gateway.networking.k8s.io, kind: HTTPRoute, namespace: apps}]
  to: [{group: "", kind: Service, name: echo}]
"#;

/// A Service with one port named `http`.
fn service(ns: &str, name: &str, port: u16) -> String {
    format!(
        "---\napiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: {ns}}}\n\
         spec: {{ports: [{{name: http, port: {port}}}]}}\n"
    )
}

/// An EndpointSlice of Service `ns/service` with one endpoint.
pub(crate) fn slice(ns: &str, name: &str, service: &str, address: &str, ready: bool) -> String {
    format!(
        "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\n\
         metadata: {{name: {name}, namespace: {ns}, labels: {{kubernetes.io/service-name: {service}}}}}\n\
         addressType: IPv4\nports: [{{name: http, port: 8080}}]\n\
         endpoints: [{{addresses: [{address}], conditions: {{ready: {ready}}}}}]\n"
    )
}

/// The Gateway, routes, Services and EndpointSlices every step starts from.
pub(crate) fn base() -> String {
    [
        GATEWAY_AND_ROUTES.to_string(),
        gateway(
            "{name: http, protocol: HTTP, port: 80, allowedRoutes: {namespaces: {from: Same}}}",
        ),
        format!("---{ROUTE_B}"),
        service("apps", "echo", 80),
        service("apps", "mirror", 80),
        service("backends", "echo", 80),
        service("shop", "cart", 80),
        slice("apps", "echo-1", "echo", "10.0.0.1", true),
        slice("backends", "echo-1", "echo", "10.0.1.1", true),
        slice("shop", "cart-1", "cart", "10.0.2.1", true),
    ]
    .concat()
}

/// Applies every document of `yaml` on top of `base`: unchanged objects
/// stay the same `Arc`, as a provider's next view would have them.
pub(crate) fn edit(base: &Resources, yaml: &str) -> Resources {
    let mut next = base.clone();
    for doc in serde_yaml::Deserializer::from_str(yaml) {
        let value = serde_json::Value::deserialize(doc).unwrap();
        if !value.is_null() {
            next.insert_document(value).unwrap();
        }
    }
    next
}

/// API keys for the AuthPolicies.
pub(crate) const KEYS: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: keys, namespace: apps}
stringData: {ci: ci-key}
"#;

/// An AuthPolicy on `kind` `name` in `apps` asking for API keys from
/// Secret `secret`.
pub(crate) fn auth_policy(kind: &str, name: &str, secret: &str) -> String {
    let policy = format!("policy-{}-{name}", kind.to_ascii_lowercase());
    format!(
        "apiVersion: tollgate.dev/v1alpha1\nkind: AuthPolicy\n\
         metadata: {{name: {policy}, namespace: apps}}\n\
         spec:\n  targetRefs: [{{group: gateway.networking.k8s.io, kind: {kind}, name: {name}}}]\n\
         \x20 apiKeyAuth: {{credentialRefs: [{{name: {secret}}}]}}\n"
    )
}

pub(crate) fn options(now: &str) -> CompileOptions {
    CompileOptions {
        now: now.to_string(),
        ..CompileOptions::default()
    }
}

/// One edit of the view, named.
pub(crate) type Step = (&'static str, fn(&Resources) -> Resources);

/// Edits of every kind a route's compile, attachment or status reads.
pub(crate) fn steps() -> Vec<Step> {
    vec![
        ("unchanged view", |r| r.clone()),
        ("route edit", |r| {
            edit(
                r,
                r#"
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: a, namespace: apps, generation: 2}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{path: {type: PathPrefix, value: /a2}}]
    backendRefs: [{name: echo, port: 80}]
    filters:
    - type: RequestMirror
      requestMirror: {backendRef: {name: mirror, port: 80}}
"#,
            )
        }),
        ("service port change", |r| {
            edit(r, &service("apps", "echo", 81))
        }),
        ("service port back", |r| {
            edit(r, &service("apps", "echo", 80))
        }),
        ("endpoint becomes not ready", |r| {
            edit(r, &slice("apps", "echo-1", "echo", "10.0.0.1", false))
        }),
        ("second endpoint slice", |r| {
            edit(r, &slice("backends", "echo-2", "echo", "10.0.1.2", true))
        }),
        ("reference grant added", |r| edit(r, GRANT)),
        ("reference grant removed", |r| {
            let mut next = r.clone();
            next.reference_grants.remove("backends/apps-to-echo");
            next
        }),
        ("mirror service deleted", |r| {
            let mut next = r.clone();
            next.services.remove("apps/mirror");
            next
        }),
        ("gateway listener change", |r| {
            let http = "{name: http, protocol: HTTP, port: 80, hostname: a.example.com, \
                        allowedRoutes: {namespaces: {from: All}}}";
            edit(r, &gateway(http))
        }),
        ("namespace labels change", |r| {
            edit(
                r,
                r#"
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {team: other}}
"#,
            )
        }),
        ("route deleted", |r| {
            let mut next = r.clone();
            next.http_routes.remove("apps/b");
            next
        }),
        ("route added back", |r| edit(r, ROUTE_B)),
        ("grpc route edit, same name as an HTTPRoute", |r| {
            edit(
                r,
                r#"
apiVersion: gateway.networking.k8s.io/v1
kind: GRPCRoute
metadata: {name: a, namespace: apps, generation: 2}
spec:
  parentRefs: [{name: gw}]
  rules:
  - matches: [{method: {service: echo.Echo, method: Say}}]
    backendRefs: [{name: echo, port: 80}]
"#,
            )
        }),
        ("grpc route deleted", |r| {
            let mut next = r.clone();
            next.grpc_routes.remove("apps/a");
            next
        }),
        ("grant added again", |r| edit(r, GRANT)),
        // Policies are applied outside the memo: a memoized route must
        // pick up every policy change without being recompiled.
        ("auth policy on route added", |r| {
            edit(r, &auth_policy("HTTPRoute", "a", "keys"))
        }),
        ("its secret added", |r| edit(r, KEYS)),
        ("gateway policy added", |r| {
            edit(r, &auth_policy("Gateway", "gw", "keys"))
        }),
        ("route policy now names a missing secret", |r| {
            edit(r, &auth_policy("HTTPRoute", "a", "gone"))
        }),
        ("route policy deleted", |r| {
            let mut next = r.clone();
            next.auth_policies.remove("apps/policy-httproute-a");
            next
        }),
        ("secret deleted", |r| {
            let mut next = r.clone();
            next.secrets.remove("apps/keys");
            next
        }),
    ]
}

/// The options of step `i`: the clock moves every fourth step, which
/// restamps every route; in between, unchanged routes come from the memos.
pub(crate) fn step_options(i: usize) -> CompileOptions {
    options(if (i / 4).is_multiple_of(2) {
        "2025-01-01T00:00:00Z"
    } else {
        "2025-01-01T00:00:01Z"
    })
}

/// Each step is one edit; after each, the memoized compile must equal a
/// compile from scratch, byte for byte once serialised.
#[test]
fn memoized_compile_equals_compile_from_scratch_after_each_edit() {
    let steps = steps();
    let mut compiler = Compiler::default();
    let mut resources = edit(&Resources::default(), &base());
    let first = options("2025-01-01T00:00:00Z");
    assert_eq!(
        compiler.compile(&resources, &first),
        compile(&resources, &first)
    );
    for (i, (name, step)) in steps.iter().enumerate() {
        resources = step(&resources);
        let opts = step_options(i);
        let memoized = compiler.compile(&resources, &opts);
        let scratch = compile(&resources, &opts);
        // A route status that did not change keeps the times of the
        // compile that produced it (`Compiler::compile`'s guarantee).
        assert_eq!(
            without_times(serde_json::to_value(&memoized).unwrap()),
            without_times(serde_json::to_value(&scratch).unwrap()),
            "after {name}"
        );
    }
}

/// `value` with every `lastTransitionTime` removed.
pub(crate) fn without_times(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| k != "lastTransitionTime")
                .map(|(k, v)| (k, without_times(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_times).collect()),
        other => other,
    }
}

/// Views with the same content but new objects (a provider that parsed
/// everything again) compile the same as shared ones.
#[test]
fn reparsed_objects_compile_the_same() {
    let opts = options("2025-01-01T00:00:00Z");
    let mut compiler = Compiler::default();
    let a = edit(&Resources::default(), &base());
    let b = edit(&Resources::default(), &format!("{}---{GRANT}", base()));
    assert_eq!(compiler.compile(&a, &opts), compile(&a, &opts));
    assert_eq!(compiler.compile(&b, &opts), compile(&b, &opts));
    assert_eq!(compiler.compile(&a, &opts), compile(&a, &opts));
}
