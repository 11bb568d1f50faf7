//! A real kube-rs client works against the test API server: typed and
//! dynamic CRUD, patches and apply, the status subresource, finalizers,
//! and `kube::runtime` watchers that relist after 410 Gone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::apiserver_support;

use apiserver_support::widget_crd;
use futures_util::{Stream, StreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Config};
use serde_json::json;
use std::pin::pin;
use std::time::Duration;
use tollgate_e2e::apiserver::ApiServer;

/// A kube-rs client from the server's kubeconfig, as the controller builds one.
async fn client(server: &ApiServer) -> Client {
    let kubeconfig = Kubeconfig::read_from(server.kubeconfig()).unwrap();
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap();
    Client::try_from(config).unwrap()
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name}, "data": {"k": "v"}})).unwrap()
}

fn api_code(err: kube::Error) -> u16 {
    match err {
        kube::Error::Api(status) => status.code,
        other => panic!("not an API error: {other}"),
    }
}

/// Typed CRUD: create, 409 on duplicate and stale update, merge patch,
/// server-side apply, list, and delete (404 afterwards).
#[tokio::test]
async fn typed_crud_and_patches() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    let made = api.create(&PostParams::default(), &cm("a")).await.unwrap();
    assert_eq!(made.metadata.namespace.as_deref(), Some("default"));
    assert_eq!(
        api_code(
            api.create(&PostParams::default(), &cm("a"))
                .await
                .unwrap_err()
        ),
        409
    );

    let mut changed = made.clone();
    changed.data = Some([("k".to_string(), "w".to_string())].into());
    api.replace("a", &PostParams::default(), &changed)
        .await
        .unwrap();
    assert_eq!(
        api_code(
            api.replace("a", &PostParams::default(), &changed)
                .await
                .unwrap_err()
        ),
        409
    );

    let patched = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"m": "1"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.data.unwrap().get("m").map(String::as_str),
        Some("1")
    );
    let applied = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}, "data": {"x": "1"}});
    let params = PatchParams::apply("tollgate-test").force();
    let b = api
        .patch("b", &params, &Patch::Apply(&applied))
        .await
        .unwrap();
    assert_eq!(
        b.metadata.managed_fields.unwrap()[0].manager.as_deref(),
        Some("tollgate-test")
    );

    let names: Vec<_> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    api.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_code(api.get("a").await.unwrap_err()), 404);
}

/// Dynamic objects of a CRD: status patches change only status; spec
/// patches bump generation; finalizers hold a delete until removed.
#[tokio::test]
async fn custom_resources_status_and_finalizers() {
    let server = ApiServer::start().await.unwrap();
    server.create(widget_crd()).unwrap();
    let gvk = GroupVersionKind::gvk("test.tollgate.dev", "v1", "Widget");
    let api: Api<DynamicObject> =
        Api::default_namespaced_with(client(&server).await, &ApiResource::from_gvk(&gvk));
    let widget = json!({"apiVersion": "test.tollgate.dev/v1", "kind": "Widget",
        "metadata": {"name": "w", "finalizers": ["tollgate.dev/test"]}, "spec": {"size": 1}});
    let obj: DynamicObject = serde_json::from_value(widget).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();

    let status =
        json!({"apiVersion": "test.tollgate.dev/v1", "kind": "Widget", "status": {"ready": true}});
    let after = api
        .patch_status(
            "w",
            &PatchParams::apply("status-writer").force(),
            &Patch::Apply(&status),
        )
        .await
        .unwrap();
    assert_eq!(after.data["status"]["ready"], true);
    assert_eq!(after.metadata.generation, Some(1));
    let after = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(after.metadata.generation, Some(2));

    let deleting = api
        .delete("w", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(deleting.metadata.deletion_timestamp.is_some());
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert_eq!(api_code(api.get("w").await.unwrap_err()), 404);
}

/// Polls `stream` until `done` holds for an event, or fails after 10 s.
async fn until<K, S>(stream: &mut S, mut done: impl FnMut(&Event<K>) -> bool) -> Vec<String>
where
    K: kube::Resource,
    S: Stream<Item = Result<Event<K>, watcher::Error>> + Unpin,
{
    let mut seen = Vec::new();
    let wait = async {
        while let Some(event) = stream.next().await {
            let Ok(event) = event else { continue };
            let name = |k: &K| k.meta().name.clone().unwrap_or_default();
            seen.push(match &event {
                Event::Init => "Init".to_string(),
                Event::InitApply(k) => format!("InitApply {}", name(k)),
                Event::InitDone => "InitDone".to_string(),
                Event::Apply(k) => format!("Apply {}", name(k)),
                Event::Delete(k) => format!("Delete {}", name(k)),
            });
            if done(&event) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("timed out; saw {seen:?}"));
    seen
}

/// kube's watcher lists, then watches; after the history is compacted
/// and its watch dropped it gets 410 Gone and relists, seeing what it missed.
#[tokio::test]
async fn watcher_relists_after_410() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let mut stream = pin!(watcher(api.clone(), watcher::Config::default()));
    let seen = until(&mut stream, |e| matches!(e, Event::InitDone)).await;
    assert_eq!(seen, ["Init", "InitApply a", "InitDone"]);
    api.create(&PostParams::default(), &cm("b")).await.unwrap();
    until(&mut stream, |e| matches!(e, Event::Apply(_))).await;

    // The stream is not polled now: its watch ends after "c", and "d" is
    // written and compacted away before the watcher rewatches from "c".
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    server.drop_watches();
    api.create(&PostParams::default(), &cm("d")).await.unwrap();
    server.expire_resource_versions();
    let seen = until(&mut stream, |e| matches!(e, Event::InitDone)).await;
    assert!(
        seen.ends_with(&[
            "Init".into(),
            "InitApply a".into(),
            "InitApply b".into(),
            "InitApply c".into(),
            "InitApply d".into(),
            "InitDone".into()
        ]),
        "{seen:?}"
    );
    let lists = server
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/configmaps") && !r.is_watch())
        .count();
    assert_eq!(lists, 2, "one list at start, one relist after 410");
}

/// The metadata watcher uses the PartialObjectMetadata forms of list and watch.
#[tokio::test]
async fn metadata_watcher_sees_names() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    let meta: Api<PartialObjectMeta<ConfigMap>> =
        Api::default_namespaced(api.clone().into_client());
    let mut stream = pin!(watcher(meta, watcher::Config::default()));
    until(&mut stream, |e| matches!(e, Event::InitDone)).await;
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let seen = until(&mut stream, |e| matches!(e, Event::Delete(_))).await;
    assert_eq!(seen, ["Apply a", "Delete a"]);
}

/// After a restart the kube client reconnects to the same port and the data is intact.
#[tokio::test]
async fn client_survives_restart() {
    let server = ApiServer::start().await.unwrap();
    let api: Api<ConfigMap> = Api::default_namespaced(client(&server).await);
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    server.restart().await;
    let mut got = api.get("a").await;
    for _ in 0..20 {
        if got.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = api.get("a").await;
    }
    assert_eq!(got.unwrap().metadata.name.as_deref(), Some("a"));
}

/// kube's event Recorder creates an `events.k8s.io/v1` Event, then patches
/// its series when the same event repeats.
#[tokio::test]
async fn recorder_creates_then_patches_events() {
    use k8s_openapi::api::core::v1::ObjectReference;
    use kube::runtime::events::{Event as Note, EventType, Recorder, Reporter};
    let server = ApiServer::start().await.unwrap();
    let reporter = Reporter {
        controller: "tollgate".into(),
        instance: None,
    };
    let recorder = Recorder::new(client(&server).await, reporter);
    let reference = ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("ConfigMap".into()),
        namespace: Some("default".into()),
        name: Some("a".into()),
        ..ObjectReference::default()
    };
    let note = Note {
        type_: EventType::Normal,
        reason: "Tested".into(),
        note: Some("n".into()),
        action: "Test".into(),
        secondary: None,
    };
    recorder.publish(&note, &reference).await.unwrap();
    recorder.publish(&note, &reference).await.unwrap();
    let events = server
        .list("events.k8s.io/v1", "Event", Some("default"))
        .unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["series"]["count"], 2);
    assert_eq!(events[0]["regarding"]["name"], "a");
}
