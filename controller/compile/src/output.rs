//! What `compile` produces: snapshots per Gateway and the status of every
//! object, as values (never written into the inputs).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    pub status: serde_json::Value,
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
    let status = serde_json::to_value(status).unwrap_or_default();
    out.statuses.push(ObjectStatus {
        kind: kind.to_string(),
        namespace: namespace.map(str::to_string),
        name: name.to_string(),
        status,
    });
}
