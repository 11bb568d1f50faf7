//! Garbage collection by `ownerReferences`, as kube-controller-manager's
//! garbage collector does it in the background: once an object is gone,
//! every object naming its uid among its owners is deleted (finalizers
//! respected), and their dependents in turn. Tollgate's operator relies on
//! this to remove a Gateway's data plane with the Gateway, so the tests
//! need it. Unlike the real collector, an object with several owners goes
//! as soon as any of them does, and deletion is immediate rather than
//! eventual.

use super::storage::ObjKey;
use serde_json::Value;
use std::collections::BTreeMap;

/// Keys of the objects in `objects` that list `uid` in their
/// `metadata.ownerReferences`.
pub(crate) fn dependents(objects: &BTreeMap<ObjKey, Value>, uid: &str) -> Vec<ObjKey> {
    if uid.is_empty() {
        return Vec::new();
    }
    objects
        .iter()
        .filter(|(_, object)| owned_by(object, uid))
        .map(|(key, _)| key.clone())
        .collect()
}

/// Whether `object` names `uid` among its owners.
fn owned_by(object: &Value, uid: &str) -> bool {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|owners| {
            owners
                .iter()
                .any(|o| o.get("uid").and_then(Value::as_str) == Some(uid))
        })
}

#[cfg(test)]
mod tests {
    use super::super::ApiServer;
    use serde_json::json;

    /// Deleting an owner deletes its dependents, recursively, and leaves
    /// objects owned by others alone; watchers see the deletions.
    #[tokio::test]
    async fn deleting_an_owner_deletes_its_dependents() {
        let server = ApiServer::start().await.expect("server");
        let owner = server
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}))
            .expect("owner");
        let uid = owner["metadata"]["uid"].as_str().expect("uid").to_string();
        let child = server
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]}}),
            )
            .expect("child");
        let child_uid = child["metadata"]["uid"].as_str().expect("uid").to_string();
        server
            .create(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grandchild", "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "child", "uid": child_uid}]}}),
            )
            .expect("grandchild");
        server
            .create(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "stranger", "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "other"}]}}),
            )
            .expect("stranger");
        let before = server.resource_version();
        server
            .delete("v1", "ConfigMap", Some("default"), "owner")
            .expect("delete");
        assert!(
            server
                .get("v1", "ConfigMap", Some("default"), "child")
                .is_err()
        );
        assert!(
            server
                .get("v1", "Secret", Some("default"), "grandchild")
                .is_err()
        );
        assert!(
            server
                .get("v1", "ConfigMap", Some("default"), "stranger")
                .is_ok()
        );
        // owner, child, grandchild: three deletions announced.
        assert_eq!(server.resource_version() - before, 3);
    }
}
