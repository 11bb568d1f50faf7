//! Pruning and defaulting: what the real server does to a custom resource
//! before it validates it.
//!
//! Fields the schema does not declare are dropped (kept under
//! `x-kubernetes-preserve-unknown-fields` or `additionalProperties`, and
//! `apiVersion`/`kind`/`metadata` of embedded resources), and their paths
//! are reported so `fieldValidation=Strict` can refuse them. A `null` for a
//! field that is not `nullable` is dropped too, then `default`s fill the
//! missing fields of every object present, recursively, as the
//! apiextensions-apiserver does on every read and write.

use serde_json::{Map, Value};

/// Drops undeclared fields and non-nullable nulls from `value` (with
/// `schema`); returns the paths of the undeclared fields (`spec.foo`).
pub(crate) fn prune(value: &mut Value, schema: &Value) -> Vec<String> {
    let mut unknown = Vec::new();
    walk(value, schema, "", &mut unknown);
    unknown
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(value: &mut Value, schema: &Value, path: &str, unknown: &mut Vec<String>) {
    match value {
        Value::Object(map) => prune_object(map, schema, path, unknown),
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, item_schema, &format!("{path}[{i}]"), unknown);
                }
            }
        }
        _ => {}
    }
}

fn prune_object(
    map: &mut Map<String, Value>,
    schema: &Value,
    path: &str,
    unknown: &mut Vec<String>,
) {
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let embedded = schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true));
    let properties = schema.get("properties").and_then(Value::as_object);
    let additional = schema.get("additionalProperties");
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let child = properties
            .and_then(|p| p.get(&key))
            .or_else(|| additional.filter(|a| a.is_object()));
        let Some(child) = child else {
            let kept = preserve
                || additional == Some(&Value::Bool(true))
                || (embedded && matches!(key.as_str(), "apiVersion" | "kind" | "metadata"));
            if !kept {
                map.remove(&key);
                unknown.push(join(path, &key));
            }
            continue;
        };
        let nullable = child.get("nullable") == Some(&Value::Bool(true));
        if map.get(&key).is_some_and(Value::is_null) && !nullable {
            map.remove(&key);
            continue;
        }
        if let Some(v) = map.get_mut(&key) {
            walk(v, child, &join(path, &key), unknown);
        }
    }
}

/// Fills missing fields that have a `default`, in every object of `value`.
pub(crate) fn default(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (key, child) in props {
                    if let (false, Some(d)) = (map.contains_key(key), child.get("default")) {
                        map.insert(key.clone(), d.clone());
                    }
                }
                for (key, child) in props {
                    if let Some(v) = map.get_mut(key) {
                        default(v, child);
                    }
                }
            }
            if let Some(additional) = schema.get("additionalProperties").filter(|a| a.is_object()) {
                for v in map.values_mut() {
                    default(v, additional);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    default(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {
                "a": {"type": "string", "default": "x"},
                "n": {"type": "string"},
                "z": {"type": "string", "nullable": true},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "items": {"type": "array", "items": {"type": "object", "properties": {
                    "b": {"type": "integer", "default": 1}}}}}}}})
    }

    /// Unknown fields are dropped and reported, nulls dropped unless
    /// nullable, preserved subtrees kept.
    #[test]
    fn prune_reports_unknown_fields() {
        let mut value = json!({"spec": {"n": null, "z": null, "extra": 1, "free": {"any": 1},
            "items": [{"b": 2, "c": 3}]}, "other": true});
        let unknown = prune(&mut value, &schema());
        assert_eq!(unknown, ["other", "spec.extra", "spec.items[0].c"]);
        assert_eq!(
            value,
            json!({"spec": {"z": null, "free": {"any": 1}, "items": [{"b": 2}]}})
        );
    }

    /// Defaults fill missing fields of present objects only, list items too.
    #[test]
    fn defaults_fill_missing_fields() {
        let mut value = json!({"spec": {"items": [{}, {"b": 5}]}});
        default(&mut value, &schema());
        assert_eq!(
            value,
            json!({"spec": {"a": "x", "items": [{"b": 1}, {"b": 5}]}})
        );
        let mut empty = json!({});
        default(&mut empty, &schema());
        assert_eq!(empty, json!({}), "no spec, nothing to default");
    }
}
