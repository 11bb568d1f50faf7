//! Objects the controller cannot decode, against the in-memory API server:
//! one HTTPRoute using a filter type newer than Tollgate's Gateway API
//! types must not keep the kind's list from completing, nor the others
//! from being served.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::kube_provider::{Provider, has_setup, server_with_crds, setup};
use serde_json::{Value, json};
use tollgate_compile::{CompileOptions, compile};
use tollgate_e2e::apiserver::ApiServer;

const GW: &str = "gateway.networking.k8s.io/v1";
/// A filter type from a Gateway API release newer than Tollgate's types.
const FUTURE: &str = "FutureFilter";

/// Installs a "newer" HTTPRoute CRD: the generated one with [`FUTURE`]
/// added to every enum that lists the filter types, as a later Gateway API
/// release would.
fn install_newer_httproute_crd(server: &ApiServer) {
    server
        .extend_crd_enums(
            "httproutes.gateway.networking.k8s.io",
            "RequestHeaderModifier",
            FUTURE,
        )
        .unwrap();
}

fn future_route() -> Value {
    json!({"apiVersion": GW, "kind": "HTTPRoute",
           "metadata": {"namespace": "app", "name": "future"},
           "spec": {"parentRefs": [{"name": "gw"}],
                    "rules": [{"filters": [{"type": FUTURE}],
                               "backendRefs": [{"name": "echo", "port": 80}]}]}})
}

/// Present before the provider starts (a restart with such an object in
/// the cluster) and added while it runs: either way the first list
/// completes, the good objects are served, and the undecodable route is
/// in the view with the path of the field that failed, so `compile` gives
/// it `Accepted: False` on its Tollgate parent.
#[tokio::test]
async fn an_undecodable_route_blocks_nothing() {
    let server = server_with_crds(&[]).await;
    install_newer_httproute_crd(&server);
    setup(&server);
    server.create(future_route()).unwrap();

    let mut provider = Provider::start(&server).await;
    let view = provider
        .until("the setup", |r| {
            has_setup(r)
                && r.undecodable
                    .contains_key(&("HTTPRoute".into(), "app/future".into()))
        })
        .await;
    assert!(!view.http_routes.contains_key("app/future"));
    let failure = &view.undecodable[&("HTTPRoute".to_string(), "app/future".to_string())];
    assert!(
        failure
            .error
            .starts_with("spec.rules[0].filters[0].type: unknown variant `FutureFilter`"),
        "{}",
        failure.error
    );
    let compiled = compile(&view, &CompileOptions::default());
    let status = compiled
        .statuses
        .iter()
        .find(|s| s.kind == "HTTPRoute" && s.name == "future")
        .expect("the undecodable route has a status");
    let accepted = &status.status["parents"][0]["conditions"][0];
    assert_eq!(accepted["status"], "False");
    assert_eq!(accepted["reason"], "UnsupportedValue");
    assert!(
        compiled.snapshots["app/gw"]
            .routes
            .iter()
            .any(|r| r.name.contains("app/r1"))
    );

    // A second one arriving while running is seen too; fixing it makes it
    // an ordinary route.
    let mut second = future_route();
    second["metadata"]["name"] = json!("future-2");
    server.create(second.clone()).unwrap();
    provider
        .until("future-2", |r| {
            r.undecodable
                .contains_key(&("HTTPRoute".into(), "app/future-2".into()))
        })
        .await;
    second["spec"]["rules"][0]["filters"] = json!([]);
    let mut live = server
        .get(GW, "HTTPRoute", Some("app"), "future-2")
        .unwrap();
    live["spec"] = second["spec"].clone();
    server.replace(live).unwrap();
    provider
        .until("future-2 fixed", |r| {
            r.http_routes.contains_key("app/future-2")
                && !r
                    .undecodable
                    .contains_key(&("HTTPRoute".into(), "app/future-2".into()))
        })
        .await;
}
