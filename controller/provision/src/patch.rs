//! The strategic-merge-patch escape hatch (`spec.kubernetes.patches`).
//!
//! A subset of Kubernetes' strategic merge patch, enough for what users
//! patch into a Deployment or Service: objects merge key by key, `null`
//! removes a key, lists whose items all carry a `name` (containers, env,
//! volumes, volumeMounts, ports) merge item by item by that name, an item
//! with `"$patch": "delete"` removes the item of that name, and every other
//! list is replaced whole (a JSON merge patch). Doing it on JSON keeps the
//! patch independent of which fields Tollgate's typed settings cover.

use serde_json::Value;

/// Merges `patch` into `target` (see the module documentation).
pub fn strategic_merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                match value {
                    Value::Null => {
                        target.remove(key);
                    }
                    _ => match target.get_mut(key) {
                        Some(existing) => strategic_merge(existing, value),
                        None => {
                            let mut fresh = Value::Null;
                            strategic_merge(&mut fresh, value);
                            target.insert(key.clone(), fresh);
                        }
                    },
                }
            }
        }
        (Value::Array(target), Value::Array(patch)) if named(target) && named(patch) => {
            for item in patch {
                let name = item.get("name");
                let position = target.iter().position(|t| t.get("name") == name);
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match (position, delete) {
                    (Some(i), true) => {
                        target.remove(i);
                    }
                    (Some(i), false) => strategic_merge(&mut target[i], item),
                    (None, true) => {}
                    (None, false) => target.push(without_directives(item)),
                }
            }
        }
        (target, patch) => *target = without_directives(patch),
    }
}

/// Whether every item of `items` is an object with a string `name`.
fn named(items: &[Value]) -> bool {
    items
        .iter()
        .all(|i| i.get("name").is_some_and(Value::is_string))
}

/// `value` without `$patch` keys or null members (a patch's deletions mean
/// nothing where there is nothing to delete).
fn without_directives(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, v)| k.as_str() != "$patch" && !v.is_null())
                .map(|(k, v)| (k.clone(), without_directives(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_directives).collect()),
        other => other.clone(),
    }
}

/// Merges the JSON of `overlay` over `base` field by field at every depth
/// (RFC 7386 without deletions): how a Gateway's own GatewayConfig
/// overrides its class's.
pub fn overlay(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(key) {
                    Some(existing) if !value.is_null() => self::overlay(existing, value),
                    Some(_) => {}
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) if !overlay.is_null() => *base = overlay.clone(),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Named lists merge by name; other lists are replaced; null removes.
    #[test]
    fn named_lists_merge_by_name() {
        let mut target = json!({
            "containers": [{"name": "dataplane", "image": "a", "env": [{"name": "X", "value": "1"}]}],
            "args": ["--a"],
            "keep": 1, "drop": 2,
        });
        let patch = json!({
            "containers": [
                {"name": "dataplane", "env": [{"name": "Y", "value": "2"}, {"name": "X", "value": "3"}]},
                {"name": "sidecar", "image": "s"},
            ],
            "args": ["--b"],
            "drop": null,
        });
        strategic_merge(&mut target, &patch);
        assert_eq!(
            target,
            json!({
                "containers": [
                    {"name": "dataplane", "image": "a", "env": [{"name": "X", "value": "3"}, {"name": "Y", "value": "2"}]},
                    {"name": "sidecar", "image": "s"},
                ],
                "args": ["--b"],
                "keep": 1,
            })
        );
    }

    /// `$patch: delete` removes the named item, and never lands in output.
    #[test]
    fn patch_delete_removes_an_item() {
        let mut target = json!({"volumes": [{"name": "tmp"}, {"name": "state"}]});
        strategic_merge(
            &mut target,
            &json!({"volumes": [{"name": "tmp", "$patch": "delete"}, {"name": "new", "$patch": "delete"}]}),
        );
        assert_eq!(target, json!({"volumes": [{"name": "state"}]}));
    }

    /// A Gateway's settings replace the class's one field at a time; maps
    /// merge by key; lists are replaced.
    #[test]
    fn overlay_is_field_by_field() {
        let mut base = json!({"deployment": {"replicas": 2, "image": "i", "podLabels": {"a": "1"}, "tolerations": [{"key": "x"}]}});
        overlay(
            &mut base,
            &json!({"deployment": {"replicas": 3, "podLabels": {"b": "2"}, "tolerations": []}}),
        );
        assert_eq!(
            base,
            json!({"deployment": {"replicas": 3, "image": "i", "podLabels": {"a": "1", "b": "2"}, "tolerations": []}})
        );
    }
}
