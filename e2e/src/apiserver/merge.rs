//! Schema-aware object operations behind server-side apply: merging an
//! applied configuration into a live object, removing fields by
//! [`FieldSet`], and comparing two objects field by field.
//!
//! Objects merge key by key; lists merge as their schema says (atomic lists
//! are replaced, sets are unions, keyed lists merge item by item by key);
//! `x-kubernetes-map-type: atomic` objects are replaced.

use super::fieldset::{FieldSet, item_element};
use super::schema::{self, ListType};
use serde_json::{Map, Value};

/// `applied` merged into `live`.
pub(crate) fn merge(live: &Value, applied: &Value, schema: Option<&Value>) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) if !schema::atomic_map(schema) => {
            let mut out = l.clone();
            for (key, value) in a {
                let merged = match l.get(key) {
                    Some(old) => merge(old, value, schema::child(schema, key)),
                    None => value.clone(),
                };
                out.insert(key.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(a)) => {
            let list_type = schema::list_type(schema);
            if list_type == ListType::Atomic {
                return applied.clone();
            }
            let items = schema::items(schema);
            let key = |v: &Value| item_element(&list_type, v);
            let mut out: Vec<Value> = l
                .iter()
                .map(|old| match a.iter().find(|new| key(new) == key(old)) {
                    Some(new) => merge(old, new, items),
                    None => old.clone(),
                })
                .collect();
            for new in a {
                if !l.iter().any(|old| key(old) == key(new)) {
                    out.push(new.clone());
                }
            }
            Value::Array(out)
        }
        _ => applied.clone(),
    }
}

/// `value` without the members of `remove`. A struct left empty by the
/// removal goes too, unless `keep` (the fields still owned by someone) has
/// anything at or under it.
pub(crate) fn remove(
    value: &mut Value,
    schema: Option<&Value>,
    remove_set: &FieldSet,
    keep: &FieldSet,
) {
    match value {
        Value::Object(map) => {
            for (element, sub) in remove_set.children() {
                let Some(key) = element.strip_prefix("f:") else {
                    continue;
                };
                let kept = keep.child(element).cloned().unwrap_or_default();
                if sub.is_member() && kept.is_empty() {
                    map.remove(key);
                    continue;
                }
                if let Some(child) = map.get_mut(key) {
                    remove(child, schema::child(schema, key), sub, &kept);
                    let emptied = child.as_object().is_some_and(Map::is_empty);
                    if emptied && kept.is_empty() {
                        map.remove(key);
                    }
                }
            }
        }
        Value::Array(list) => {
            let list_type = schema::list_type(schema);
            let items = schema::items(schema);
            list.retain_mut(|item| {
                let Some(element) = item_element(&list_type, item) else {
                    return true;
                };
                let Some(sub) = remove_set.child(&element) else {
                    return true;
                };
                let kept = keep.child(&element).cloned().unwrap_or_default();
                if sub.is_member() && kept.is_empty() {
                    return false;
                }
                remove(item, items, sub, &kept);
                true
            });
        }
        _ => {}
    }
}

/// The value at a field-set path in `value`.
fn lookup<'a>(value: &'a Value, schema: Option<&Value>, path: &[String]) -> Option<&'a Value> {
    let Some((first, rest)) = path.split_first() else {
        return Some(value);
    };
    if let Some(key) = first.strip_prefix("f:") {
        let child = value.as_object()?.get(key)?;
        return lookup(child, schema::child(schema, key), rest);
    }
    let list_type = schema::list_type(schema);
    let item = value
        .as_array()?
        .iter()
        .find(|item| item_element(&list_type, item).as_deref() == Some(first.as_str()))?;
    lookup(item, schema::items(schema), rest)
}

/// What changed from `old` to `new`: (added, removed, modified) fields.
/// Modified fields are members of both whose values differ and that have
/// no members below them (leaves).
pub(crate) fn compare(
    old: &Value,
    new: &Value,
    schema: Option<&Value>,
) -> (FieldSet, FieldSet, FieldSet) {
    let before = FieldSet::of(old, schema);
    let after = FieldSet::of(new, schema);
    let added = after.difference(&before);
    let removed = before.difference(&after);
    let mut modified = FieldSet::default();
    for path in before.intersection(&after).paths() {
        let (a, b) = (lookup(old, schema, &path), lookup(new, schema, &path));
        let leaf = !has_members_below(&after, &path) && !has_members_below(&before, &path);
        if a != b && leaf {
            modified.insert(&path);
        }
    }
    (added, removed, modified)
}

/// Whether `set` has members strictly below `path`.
fn has_members_below(set: &FieldSet, path: &[String]) -> bool {
    let mut node = set;
    for element in path {
        match node.child(element) {
            Some(next) => node = next,
            None => return false,
        }
    }
    node.children().any(|(_, c)| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
            "conditions": {"type": "array", "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}},
            "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
            "atomic": {"type": "array", "items": {"type": "string"}},
        }})
    }

    /// Keyed lists merge item by item, sets are unions, atomic lists are replaced.
    #[test]
    fn merge_follows_list_types() {
        let live = json!({"conditions": [{"type": "A", "status": "True", "reason": "x"}, {"type": "B"}],
            "tags": ["a"], "atomic": ["a"], "other": 1});
        let applied = json!({"conditions": [{"type": "A", "status": "False"}, {"type": "C"}],
            "tags": ["b", "a"], "atomic": ["b"]});
        assert_eq!(
            merge(&live, &applied, Some(&schema())),
            json!({"conditions": [{"type": "A", "status": "False", "reason": "x"}, {"type": "B"}, {"type": "C"}],
                "tags": ["a", "b"], "atomic": ["b"], "other": 1})
        );
    }

    /// Removing keyed items and fields; emptied structs go unless still owned.
    #[test]
    fn remove_by_field_set() {
        let mut value = json!({"conditions": [{"type": "A"}, {"type": "B"}], "spec": {"x": 1}, "keep": {"y": 1}});
        let remove_set = FieldSet::from_fields_v1(&json!({
            "f:conditions": {"k:{\"type\":\"A\"}": {".": {}, "f:type": {}}},
            "f:spec": {"f:x": {}}, "f:keep": {"f:y": {}}}));
        let keep = FieldSet::from_fields_v1(&json!({"f:keep": {"f:y": {}}}));
        remove(&mut value, Some(&schema()), &remove_set, &keep);
        assert_eq!(
            value,
            json!({"conditions": [{"type": "B"}], "keep": {"y": 1}})
        );
    }

    /// Compare reports added, removed and modified leaves.
    #[test]
    fn compare_finds_changes() {
        let old = json!({"a": 1, "b": 2, "conditions": [{"type": "A", "status": "True"}]});
        let new = json!({"a": 1, "b": 3, "c": 4, "conditions": [{"type": "A", "status": "False"}]});
        let (added, removed, modified) = compare(&old, &new, Some(&schema()));
        assert_eq!(added.to_fields_v1(), json!({"f:c": {}}));
        assert!(removed.is_empty());
        assert_eq!(
            modified.to_fields_v1(),
            json!({"f:b": {}, "f:conditions": {"k:{\"type\":\"A\"}": {"f:status": {}}}})
        );
    }
}
