//! What `compile` produces: snapshots per Gateway and the status of every
//! object, as values (never written into the inputs).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tollgate_snapshot::Snapshot;

/// What `compile` produces.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Compiled {
    /// One snapshot per accepted Gateway, keyed by `namespace/name`.
    pub snapshots: BTreeMap<String, Snapshot>,
    /// The status each object should hold, sorted by kind, namespace, name.
    pub statuses: Vec<ObjectStatus>,
}

/// The status Kubernetes would hold for one object.
///
/// This is also the documented schema of the admin `GET /status` endpoint:
/// a JSON array of these objects.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// Object kind, e.g. `Gateway`.
    pub kind: String,
    /// Namespace; absent for cluster-scoped kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// The object's whole `status`, in the Kubernetes JSON form of its kind
    /// (conditions, listeners, addresses, route parents).
    ///
    /// Shared: a route status unchanged since the previous compile (apart
    /// from condition times) is the previous compile's value, so the
    /// status store and writer recognise it by pointer (`Arc::ptr_eq`) and
    /// copying or freeing it costs nothing.
    #[serde(
        serialize_with = "serialize_shared",
        deserialize_with = "deserialize_shared"
    )]
    pub status: Arc<Value>,
}

fn serialize_shared<S: Serializer>(value: &Arc<Value>, s: S) -> Result<S::Ok, S::Error> {
    value.as_ref().serialize(s)
}

fn deserialize_shared<'de, D: Deserializer<'de>>(d: D) -> Result<Arc<Value>, D::Error> {
    Value::deserialize(d).map(Arc::new)
}

/// Appends the status of one object to `out`.
pub(crate) fn push_status<T: Serialize>(
    out: &mut Compiled,
    kind: &str,
    namespace: Option<&str>,
    name: &str,
    status: &T,
) {
    // Serialising the generated status types cannot fail (string keys,
    // no non-finite floats); a null status would still name the object.
    let status = Arc::new(serde_json::to_value(status).unwrap_or_default());
    out.statuses.push(ObjectStatus {
        kind: kind.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        status,
    });
}
