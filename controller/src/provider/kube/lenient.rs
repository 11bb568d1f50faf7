//! Decoding objects one by one, so one object the controller cannot read
//! never blocks its whole kind.
//!
//! The typed Gateway API structs reject what they do not know: an HTTPRoute
//! with a filter type newer than the compiled-in types, an enum value from
//! a later release. Listed as `ObjectList<HttpRoute>`, one such object fails
//! the whole list, and a controller restarted with it in the cluster never
//! completes its first list. [`Lenient`] is the watched type instead: its
//! list items decode independently, each into the typed object or into an
//! [`Undecodable`] record saying where decoding failed, and `compile` turns
//! that record into a status condition on the object.
//!
//! The `status` is dropped before decoding: `compile` never reads it, and a
//! status written by another controller in a shape of its own must not
//! make an object undecodable (nor its every status write a change).

use ::kube::Resource;
use ::kube::api::ObjectMeta;
use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;
use tollgate_compile::resources::Undecodable;

/// An object of kind `K` as the API server sent it: decoded, or not.
#[derive(Clone, Debug)]
pub(crate) struct Lenient<K> {
    meta: ObjectMeta,
    /// The typed object, or why it did not decode.
    pub(crate) decoded: Result<Arc<K>, Arc<Undecodable>>,
    /// What change detection compares (`fingerprint::content`), hashed
    /// from the JSON already at hand when decoding.
    print: u64,
}

/// The fingerprint `Lenient` computed when it was decoded.
pub(super) fn print_of<K>(object: &Lenient<K>) -> u64 {
    object.print
}

impl<'de, K> Deserialize<'de> for Lenient<K>
where
    K: Resource<DynamicType = ()> + DeserializeOwned,
{
    /// Fails only when the metadata itself does not decode (which the API
    /// server never sends); anything else becomes an [`Undecodable`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut value = Value::deserialize(deserializer)?;
        // `compile` never reads a status, and other controllers write
        // statuses of their own shape: only the rest must decode.
        // managedFields are never read and often the largest part.
        if let Some(object) = value.as_object_mut() {
            object.remove("status");
            if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
                meta.remove("managedFields");
            }
        }
        let meta = match value.get("metadata") {
            Some(m) => ObjectMeta::deserialize(m).map_err(serde::de::Error::custom)?,
            None => ObjectMeta::default(),
        };
        let print = super::fingerprint::value_content(&mut value);
        let decoded = match serde_path_to_error::deserialize::<_, K>(&value) {
            Ok(object) => Ok(Arc::new(object)),
            Err(e) => Err(Arc::new(Undecodable::new(
                &K::kind(&()),
                &meta,
                format!("{}: {}", e.path(), e.inner()),
                &value,
            ))),
        };
        Ok(Lenient {
            meta,
            decoded,
            print,
        })
    }
}

impl<K: Serialize> Serialize for Lenient<K> {
    /// The typed object, or for an undecodable one its metadata and error:
    /// what change detection compares.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match &self.decoded {
            Ok(object) => object.serialize(serializer),
            Err(failure) => serde_json::json!({
                "metadata": self.meta,
                "undecodable": failure.error,
            })
            .serialize(serializer),
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Lenient<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        &self.meta
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.meta
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gateway_api::experimental::httproutes::HttpRoute;

    fn route(filter_type: &str) -> Value {
        serde_json::json!({
            "status": {"parents": [{"conditions": [{"type": "half a condition"}]}]},
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": "r", "namespace": "ns", "generation": 3,
                          "managedFields": [{"manager": "kubectl"}]},
            "spec": {
                "parentRefs": [{"name": "gw"}],
                "rules": [{"filters": [{"type": filter_type}]}]
            }
        })
    }

    /// One undecodable item does not fail the list; it becomes a record
    /// that names the object, its generation, its parents and the path
    /// of the field that failed.
    #[test]
    fn a_list_survives_an_undecodable_item() {
        let list = serde_json::json!([route("RequestHeaderModifier"), route("FromTheFuture")]);
        let items: Vec<Lenient<HttpRoute>> = serde_json::from_value(list).unwrap();
        assert!(items[0].decoded.is_ok());
        assert!(items[0].meta.managed_fields.is_none());
        let failure = items[1].decoded.as_ref().unwrap_err();
        assert_eq!(failure.kind, "HTTPRoute");
        assert_eq!(failure.namespace.as_deref(), Some("ns"));
        assert_eq!(failure.name, "r");
        assert_eq!(failure.generation, Some(3));
        assert!(
            failure
                .error
                .starts_with("spec.rules[0].filters[0].type: unknown variant `FromTheFuture`"),
            "{}",
            failure.error
        );
        assert_eq!(failure.parent_refs, vec![serde_json::json!({"name": "gw"})]);
    }

    /// The fingerprint taken while decoding leaves out what every status
    /// write changes, and the decoded object keeps those fields.
    #[test]
    fn the_print_ignores_status_writes_and_the_object_keeps_its_metadata() {
        let mut written = route("RequestHeaderModifier");
        written["metadata"]["resourceVersion"] = serde_json::json!("99");
        written["status"] = serde_json::json!({"parents": []});
        let items: Vec<Lenient<HttpRoute>> =
            serde_json::from_value(serde_json::json!([route("RequestHeaderModifier"), written]))
                .unwrap();
        assert_eq!(print_of(&items[0]), print_of(&items[1]));
        let decoded = items[1].decoded.as_ref().unwrap();
        assert_eq!(decoded.metadata.generation, Some(3));
        assert_eq!(decoded.metadata.resource_version.as_deref(), Some("99"));
        let other: Lenient<HttpRoute> =
            serde_json::from_value(route("ResponseHeaderModifier")).unwrap();
        assert_ne!(print_of(&items[0]), print_of(&other));
    }

    /// Metadata that does not decode is the one thing that fails.
    #[test]
    fn broken_metadata_is_an_error() {
        let bad = serde_json::json!({"metadata": {"name": 7}});
        assert!(serde_json::from_value::<Lenient<HttpRoute>>(bad).is_err());
    }
}
