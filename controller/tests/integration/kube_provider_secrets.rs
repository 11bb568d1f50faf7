//! Secrets in Kubernetes mode: the provider lists and watches them by
//! metadata only, holds whole only the referenced ones, and still loads a
//! Secret the moment something starts to reference it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::kube_provider::{Provider, gateway, secret, server_with_crds, setup};
use serde_json::json;
use tollgate_compile::resources::Resources;
use tollgate_e2e::apiserver::ApiServer;

/// The decoded value of key `k` of Secret `key` in the view.
fn value(r: &Resources, key: &str) -> Option<Vec<u8>> {
    let data = r.secrets.get(key)?.data.as_ref()?;
    Some(data.get("k")?.0.clone())
}

/// Every request for the Secret collection (lists and watches, not GETs of
/// one Secret).
fn collection_requests(server: &ApiServer) -> Vec<tollgate_e2e::apiserver::RequestRecord> {
    let requests = server.requests().into_iter();
    requests
        .filter(|r| r.method == "GET" && r.path.ends_with("/secrets"))
        .collect()
}

/// The Secret collection's requests once a watch is among them (after
/// 10 s, whatever there is; the caller's assertions then say what is
/// missing).
async fn watched(server: &ApiServer) -> Vec<tollgate_e2e::apiserver::RequestRecord> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let secrets = collection_requests(server);
        if secrets.iter().any(|r| r.is_watch()) || std::time::Instant::now() > deadline {
            assert!(
                secrets.iter().any(|r| r.is_watch()),
                "no watch: {secrets:?}"
            );
            return secrets;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Lists and watches of Secrets and ConfigMaps ask the API server for
/// `PartialObjectMetadata`, so no Secret's data crosses the wire unless it
/// is referenced (a full list of the cluster's Secrets would be parsed
/// whole on every relist).
#[tokio::test]
async fn secrets_are_listed_and_watched_by_metadata_only() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    server.create(secret("app", "unrelated", "eA==")).unwrap();
    let mut provider = Provider::start(&server).await;
    provider.until("the first view", |_| true).await;
    // The first view comes from the lists; each watch starts after its
    // list, and may not have been asked for yet.
    let secrets = watched(&server).await;
    assert!(
        secrets.iter().any(|r| !r.is_watch()),
        "no list: {secrets:?}"
    );
    for r in &secrets {
        assert!(
            r.accept.contains("as=PartialObjectMetadata"),
            "{} {}?{} asked for {:?}",
            r.method,
            r.path,
            r.query,
            r.accept
        );
    }
    let config_maps = server.requests().into_iter();
    let config_maps: Vec<_> = config_maps
        .filter(|r| r.path.ends_with("/configmaps"))
        .collect();
    assert!(!config_maps.is_empty());
    assert!(
        config_maps
            .iter()
            .all(|r| r.accept.contains("as=PartialObjectMetadata")),
        "{config_maps:?}"
    );
}

/// A Secret that exists unreferenced is loaded once a Gateway starts to
/// reference it; a Secret referenced before it exists arrives when it is
/// created; both follow their updates.
#[tokio::test]
async fn a_secret_referenced_later_is_loaded() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    server.create(secret("app", "early", "MQ==")).unwrap();
    let mut provider = Provider::start(&server).await;
    let view = provider.until("the first view", |_| true).await;
    assert!(view.secrets.is_empty(), "{:?}", view.secrets.keys());

    server.create(gateway("app", "tls", Some("early"))).unwrap();
    provider
        .until("the early Secret, now referenced", |r| {
            value(r, "app/early").as_deref() == Some(b"1")
        })
        .await;

    server
        .create(gateway("app", "tls-late", Some("late")))
        .unwrap();
    provider
        .until("the second Gateway", |r| {
            r.gateways.contains_key("app/tls-late")
        })
        .await;
    server.create(secret("app", "late", "Mg==")).unwrap();
    provider
        .until("the late Secret", |r| {
            value(r, "app/late").as_deref() == Some(b"2")
        })
        .await;

    let mut late = server.get("v1", "Secret", Some("app"), "late").unwrap();
    late["data"]["k"] = json!("Mw==");
    server.replace(late).unwrap();
    provider
        .until("the late Secret's update", |r| {
            value(r, "app/late").as_deref() == Some(b"3")
        })
        .await;
}

/// The Redis password Secret a GatewayConfig names is fetched (the
/// GatewayClass could not accept a password-protected Redis otherwise),
/// and its rotation reaches the view.
#[tokio::test]
async fn a_gateway_config_redis_password_is_loaded() {
    let server = server_with_crds(&[]).await;
    setup(&server);
    server.create(secret("app", "redis-auth", "cHc=")).unwrap();
    server
        .create(
            json!({"apiVersion": "tollgate.dev/v1alpha1", "kind": "GatewayConfig",
                       "metadata": {"namespace": "app", "name": "limits"},
                       "spec": {"rateLimit": {"redis": {"url": "redis://redis:6379",
                                "passwordSecretRef": {"name": "redis-auth"}}}}}),
        )
        .unwrap();
    let mut provider = Provider::start(&server).await;
    provider
        .until("the Redis password", |r| {
            value(r, "app/redis-auth").as_deref() == Some(b"pw")
        })
        .await;
    let mut auth = server
        .get("v1", "Secret", Some("app"), "redis-auth")
        .unwrap();
    auth["data"]["k"] = json!("cHcy");
    server.replace(auth).unwrap();
    provider
        .until("the rotated password", |r| {
            value(r, "app/redis-auth").as_deref() == Some(b"pw2")
        })
        .await;
}
