//! The structural schema of each served type, as server-side apply, pruning
//! and validation read it.
//!
//! A CRD version's `openAPIV3Schema` is the schema of its objects, with
//! `metadata` replaced by the `ObjectMeta` schema below (a real server does
//! the same: a CRD may not describe `metadata` beyond `name`/`generateName`).
//! Built-in kinds have no schema here except the list keys that matter to
//! server-side apply (`conditions` by `type`, Service ports by `port` and
//! `protocol`, ...), copied from the `+listType`/`+listMapKey` markers of the
//! Kubernetes API types; everything else of theirs is schemaless and kept
//! as written.

use serde_json::{Value, json};

/// How a list merges under server-side apply (`x-kubernetes-list-type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ListType {
    /// Replaced whole, owned as one field (the default).
    Atomic,
    /// Scalars merged as a set, each owned by value.
    Set,
    /// Objects merged by the values of these keys, each owned by key.
    Map(Vec<String>),
}

/// The schema of `key` inside an object with `schema`: its declared
/// property, else its `additionalProperties` schema. `None` for a
/// schemaless or unknown field.
pub(crate) fn child<'a>(schema: Option<&'a Value>, key: &str) -> Option<&'a Value> {
    let schema = schema?;
    schema
        .get("properties")
        .and_then(|p| p.get(key))
        .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()))
}

/// Whether `key` is a declared property (a struct field) of `schema`.
pub(crate) fn is_declared(schema: Option<&Value>, key: &str) -> bool {
    schema
        .and_then(|s| s.get("properties"))
        .and_then(|p| p.get(key))
        .is_some()
}

/// The schema of a list's items.
pub(crate) fn items(schema: Option<&Value>) -> Option<&Value> {
    schema?.get("items")
}

/// The list type `schema` declares; atomic when it declares none.
pub(crate) fn list_type(schema: Option<&Value>) -> ListType {
    let Some(schema) = schema else {
        return ListType::Atomic;
    };
    match schema.get("x-kubernetes-list-type").and_then(Value::as_str) {
        Some("set") => ListType::Set,
        Some("map") => ListType::Map(
            schema
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect(),
        ),
        _ => ListType::Atomic,
    }
}

/// Whether an object with `schema` is replaced whole (`x-kubernetes-map-type: atomic`).
pub(crate) fn atomic_map(schema: Option<&Value>) -> bool {
    schema
        .and_then(|s| s.get("x-kubernetes-map-type"))
        .and_then(Value::as_str)
        == Some("atomic")
}

/// The `ObjectMeta` schema: what a client may set, and how its lists merge.
pub(crate) fn object_meta() -> Value {
    let string = json!({"type": "string"});
    let string_map = json!({"type": "object", "additionalProperties": {"type": "string"}});
    json!({
        "type": "object",
        "properties": {
            "name": string, "generateName": string, "namespace": string,
            "uid": string, "resourceVersion": string, "selfLink": string,
            "generation": {"type": "integer"},
            "creationTimestamp": {"type": "string", "nullable": true},
            "deletionTimestamp": {"type": "string", "nullable": true},
            "deletionGracePeriodSeconds": {"type": "integer"},
            "labels": string_map, "annotations": string_map,
            "finalizers": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "ownerReferences": {
                "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
                "items": {"type": "object", "required": ["apiVersion", "kind", "name", "uid"], "properties": {
                    "apiVersion": string, "kind": string, "name": string, "uid": string,
                    "controller": {"type": "boolean"}, "blockOwnerDeletion": {"type": "boolean"},
                }},
            },
            "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
        },
    })
}

/// The schema of a whole object of a type whose own schema is `schema`
/// (`None`: a schemaless built-in, see [`builtin`]).
pub(crate) fn object(schema: Option<&Value>) -> Value {
    let mut out = schema
        .cloned()
        .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
    if let Some(props) = out
        .as_object_mut()
        .map(|o| o.entry("properties").or_insert_with(|| json!({})))
        .and_then(Value::as_object_mut)
    {
        props.insert("metadata".into(), object_meta());
        props.insert("apiVersion".into(), json!({"type": "string"}));
        props.insert("kind".into(), json!({"type": "string"}));
    }
    out
}

/// A keyed-list schema: objects merged by `keys`, anything else kept.
fn keyed(keys: &[&str]) -> Value {
    json!({
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": keys,
        "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
    })
}

/// A schemaless object whose `fields` have the given schemas.
fn loose(fields: Value) -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": fields})
}

/// The merge-relevant part of a built-in kind's schema (`group`, `kind`):
/// the keyed lists of the Kubernetes API types. `None` when nothing of the
/// kind merges by key.
pub(crate) fn builtin(group: &str, kind: &str) -> Option<Value> {
    let conditions = || loose(json!({"conditions": keyed(&["type"])}));
    let schema = match (group, kind) {
        ("", "Namespace")
        | ("apps", "Deployment")
        | ("policy", "PodDisruptionBudget")
        | ("autoscaling", "HorizontalPodAutoscaler") => loose(json!({"status": conditions()})),
        ("", "Service") => loose(json!({
            "spec": loose(json!({"ports": keyed(&["port", "protocol"])})),
            "status": conditions(),
        })),
        ("", "Pod") => loose(json!({
            "spec": loose(json!({"containers": keyed(&["name"]), "initContainers": keyed(&["name"])})),
            "status": conditions(),
        })),
        _ => return None,
    };
    Some(schema)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// List types come from the extensions; anything else is atomic.
    #[test]
    fn list_types_follow_the_extensions() {
        let map = json!({"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]});
        assert_eq!(list_type(Some(&map)), ListType::Map(vec!["type".into()]));
        let set = json!({"x-kubernetes-list-type": "set"});
        assert_eq!(list_type(Some(&set)), ListType::Set);
        assert_eq!(list_type(Some(&json!({}))), ListType::Atomic);
        assert_eq!(list_type(None), ListType::Atomic);
    }

    /// An object's schema gets the ObjectMeta schema at `metadata`.
    #[test]
    fn object_schema_has_object_meta() {
        let crd = json!({"type": "object", "properties": {"metadata": {"type": "object"}}});
        let full = object(Some(&crd));
        let finalizers = full.pointer("/properties/metadata/properties/finalizers");
        assert_eq!(list_type(finalizers), ListType::Set);
        let service = object(builtin("", "Service").as_ref());
        let ports = service.pointer("/properties/spec/properties/ports");
        assert_eq!(
            list_type(ports),
            ListType::Map(vec!["port".into(), "protocol".into()])
        );
    }
}
